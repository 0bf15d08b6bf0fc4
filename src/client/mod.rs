//! The client side of the protocol, shared by `shell`, `put` and `get`: a
//! blocking connection that speaks frames through `proto` (the one
//! implementation of the wire format), logs in, and runs requests.

pub mod auth;
pub mod progress;
pub mod throttle;
pub mod transfer;

use std::io::{BufReader, ErrorKind, IsTerminal, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::MAX_REPLY_FRAME;
use crate::proto::{frame, Entry, Password, Reply, Request, Status, TreeEntry, PROTOCOL_VERSION};
use crate::tls::client::{Trust, Verdict};

/// Socket buffer asked of the kernel for transfers.
const SOCKET_BUF: usize = 4 * 1024 * 1024;

/// The byte stream under a client connection: TLS by default, plain TCP
/// when asked for with `--plaintext`.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Buffered>>),
}

/// The socket under a TLS client stream, read through a large buffer:
/// rustls asks for at most 4 KiB a call, which would otherwise be a
/// syscall per 4 KiB of a download.
pub struct Buffered(BufReader<TcpStream>);

impl Read for Buffered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf)
    }
}

impl Write for Buffered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.get_mut().write(buf)
    }
    fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
        self.0.get_mut().write_vectored(bufs)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.get_mut().flush()
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

pub struct Client {
    /// Reads go through the buffer; writes go straight to the stream.
    conn: BufReader<Stream>,
    pub greeting: Reply,
    pub user: Option<String>,
    /// `--bwlimit`, shared with the command's other connections.
    pub throttle: Option<std::sync::Arc<throttle::Throttle>>,
}

/// How a client reaches and authenticates to a server: the library's own
/// options, which `cli.rs` builds from the command line (the library knows
/// nothing of clap).
#[derive(Clone, Debug)]
pub struct ConnectOpts {
    /// HOST:PORT.
    pub server: String,
    /// The user to log in as (else ~/.netrc's, else $USER).
    pub user: Option<String>,
    /// A file whose first line is the password.
    pub password_file: Option<PathBuf>,
    pub timeouts: Timeouts,
    /// Attempts after a transient network error.
    pub retries: u32,
    /// `SHA256:HEX`: the only certificate to accept.
    pub fingerprint: Option<String>,
    /// The only CAs to accept.
    pub ca_file: Option<PathBuf>,
    /// Plain TCP instead of TLS.
    pub plaintext: bool,
    /// `--bwlimit`: shared by every connection opened with these options.
    pub throttle: Option<std::sync::Arc<throttle::Throttle>>,
}

/// Timeouts for a connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub io: Duration,
}

/// How long a `--plaintext` client waits for the greeting: a TLS server
/// says nothing until it hears a TLS hello.
const PLAINTEXT_GREETING_WAIT: Duration = Duration::from_secs(5);

fn tcp_connect(addr: &str, t: Timeouts) -> Result<TcpStream> {
    let conn_err = |source| Error::Connect {
        addr: addr.to_string(),
        source,
    };
    // A malformed address is the caller's mistake (usage); a well-formed
    // one whose name doesn't resolve is a connection failure, like a
    // refused connect (a DNS outage is not a config error).
    if !crate::addr::well_formed(addr) {
        return Err(Error::Usage(format!(
            "bad server address {addr:?}: expected HOST:PORT"
        )));
    }
    let addrs: Vec<_> = addr.to_socket_addrs().map_err(conn_err)?.collect();
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, t.connect) {
            Ok(s) => {
                s.set_nodelay(true).map_err(conn_err)?;
                s.set_read_timeout(Some(t.io)).map_err(conn_err)?;
                s.set_write_timeout(Some(t.io)).map_err(conn_err)?;
                let _ = rustix::net::sockopt::set_socket_send_buffer_size(&s, SOCKET_BUF);
                let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&s, SOCKET_BUF);
                return Ok(s);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(conn_err(last.unwrap_or_else(|| {
        std::io::Error::other("no address to connect to")
    })))
}

/// Runs the TLS handshake now, so that trust problems surface as such
/// rather than as a failed first read.
fn handshake(addr: &str, tcp: TcpStream, trust: &Trust) -> Result<Stream> {
    let (config, verdict) = crate::tls::client::config(trust, addr)?;
    let name = crate::tls::client::server_name(addr)?;
    let conn = rustls::ClientConnection::new(config, name)
        .map_err(|e| Error::Tls(format!("{addr}: TLS setup: {e}")))?;
    let mut s = rustls::StreamOwned::new(conn, Buffered(BufReader::with_capacity(256 * 1024, tcp)));
    while s.conn.is_handshaking() {
        if let Err(e) = s.conn.complete_io(&mut s.sock) {
            let verdict = verdict.lock().unwrap_or_else(|p| p.into_inner()).take();
            return Err(match verdict {
                Some(Verdict::Unknown { fingerprint }) => Error::Untrusted {
                    server: addr.to_string(),
                    fingerprint,
                },
                Some(Verdict::Changed { expected, got }) => Error::Tls(format!(
                    "WARNING: THE CERTIFICATE OF {addr} HAS CHANGED!\n\
                     expected {expected}\n     got {got}\n\
                     Someone may be intercepting the connection, or the server got a new \
                     certificate. Refusing to connect. If the change is expected, remove \
                     {addr}'s line from {}.",
                    trust.known.display()
                )),
                Some(Verdict::NotPinned { expected, got }) => Error::Tls(format!(
                    "{addr}: certificate fingerprint {got} is not the expected {expected}; refusing"
                )),
                None => match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::InvalidCertificate(c)) => {
                        Error::Tls(format!("{addr}: certificate rejected: {c:?}"))
                    }
                    Some(rustls::Error::InvalidMessage(_)) => Error::Tls(format!(
                        "{addr} did not answer with TLS: if that server runs with TLS \
                         turned off, connect with --plaintext"
                    )),
                    Some(other) => Error::Tls(format!("{addr}: TLS handshake failed: {other}")),
                    None => Error::ConnectionLost(e),
                },
            });
        }
    }
    Ok(Stream::Tls(Box::new(s)))
}

impl Client {
    /// Connects (TLS with `trust`, or plain TCP when None), reads the
    /// greeting and checks the protocol version.
    pub fn connect(addr: &str, t: Timeouts, trust: Option<&Trust>) -> Result<Client> {
        let tcp = tcp_connect(addr, t)?;
        let stream = match trust {
            Some(trust) => handshake(addr, tcp, trust)?,
            None => {
                let _ = tcp.set_read_timeout(Some(t.io.min(PLAINTEXT_GREETING_WAIT)));
                Stream::Plain(tcp)
            }
        };
        let mut client = Client {
            conn: BufReader::with_capacity(64 * 1024, stream),
            greeting: Reply::default(),
            user: None,
            throttle: None,
        };
        let greeting = match client.recv() {
            Err(Error::ConnectionLost(e))
                if trust.is_none()
                    && matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) =>
            {
                return Err(Error::Tls(format!(
                    "{addr} sent no greeting: it probably requires TLS (connect without --plaintext)"
                )))
            }
            Err(Error::Protocol(_)) if trust.is_none() => {
                return Err(Error::Tls(format!(
                    "{addr} answered with something other than miniftp frames: \
                     it probably requires TLS (connect without --plaintext)"
                )))
            }
            other => other?,
        };
        if let Stream::Plain(s) = client.conn.get_ref() {
            let _ = s.set_read_timeout(Some(t.io));
        }
        if greeting.status() != Some(Status::Greeting) {
            return Err(Error::remote(&greeting));
        }
        match greeting.protocol {
            Some(PROTOCOL_VERSION) => {}
            Some(v) => {
                return Err(Error::Protocol(format!(
                    "{addr} speaks miniftp protocol {v}, this client speaks {PROTOCOL_VERSION}; \
                     use a miniftp release that matches the server"
                )))
            }
            None => {
                return Err(Error::Protocol(format!(
                    "{addr} did not announce a protocol version: is it a miniftp server?"
                )))
            }
        }
        client.greeting = greeting;
        Ok(client)
    }

    /// Sends one request frame.
    pub fn send(&mut self, req: &Request) -> Result<()> {
        frame::write_frame(self.conn.get_mut(), req.to_json().as_bytes())
            .map_err(Error::ConnectionLost)
    }

    /// Reads one reply frame.
    pub fn recv(&mut self) -> Result<Reply> {
        let text = frame::read_frame(&mut self.conn, MAX_REPLY_FRAME).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                Error::Protocol(format!("bad frame from the server: {e}"))
            } else {
                Error::ConnectionLost(e)
            }
        })?;
        Reply::from_json(&text)
            .map_err(|e| Error::Protocol(format!("bad reply from the server: {e}")))
    }

    /// Sends a request and returns its reply, whatever the status.
    pub fn request(&mut self, req: &Request) -> Result<Reply> {
        self.send(req)?;
        self.recv()
    }

    /// Sends a request; a failure status becomes an error.
    pub fn call(&mut self, req: &Request) -> Result<Reply> {
        let reply = self.request(req)?;
        if reply.is_success() {
            Ok(reply)
        } else {
            Err(Error::remote(&reply))
        }
    }

    pub fn login(&mut self, user: &str, password: &Password) -> Result<Reply> {
        let reply = self.request(&Request::Login {
            user: user.to_string(),
            password: password.clone(),
            protocol: Some(PROTOCOL_VERSION),
        })?;
        if reply.status() == Some(Status::LoggedIn) {
            self.user = Some(user.to_string());
            Ok(reply)
        } else {
            Err(match reply.status() {
                Some(Status::AuthFailed) | Some(Status::TooManyFailures) => Error::Auth(reply.msg),
                _ => Error::remote(&reply),
            })
        }
    }

    /// Every entry of a directory (following the server's pages).
    pub fn list(&mut self, path: Option<&str>) -> Result<Vec<Entry>> {
        let mut all = Vec::new();
        let mut start = 0;
        loop {
            let reply = self.call(&Request::Ls {
                path: path.map(str::to_string),
                start,
            })?;
            all.extend(reply.entries.unwrap_or_default());
            match reply.next {
                Some(n) if n > start => start = n,
                _ => return Ok(all),
            }
        }
    }

    /// Every entry below `path` (itself, for a file) with the SHA-256 of
    /// each regular file, following the server's pages. A server without
    /// the `tree` request is told apart from other failures.
    pub fn tree(&mut self, path: &str, recursive: bool) -> Result<Vec<TreeEntry>> {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let reply = self.request(&Request::Tree {
                path: Some(path.to_string()),
                recursive,
                after: after.take(),
            })?;
            if reply.status() == Some(Status::UnknownCommand) {
                return Err(Error::Protocol(
                    "the server is too old for this command (it has no `tree` request): \
                     update the server"
                        .into(),
                ));
            }
            if !reply.is_success() {
                return Err(Error::remote(&reply));
            }
            all.extend(reply.tree.unwrap_or_default());
            match reply.after {
                Some(a) => after = Some(a),
                None => return Ok(all),
            }
        }
    }

    /// Metadata of a remote path, or None if it does not exist.
    pub fn stat(&mut self, path: &str) -> Result<Option<Entry>> {
        let reply = self.request(&Request::Stat {
            path: path.to_string(),
        })?;
        match reply.status() {
            Some(Status::Ok) => Ok(reply.entry),
            Some(Status::NotFound) => Ok(None),
            _ => Err(Error::remote(&reply)),
        }
    }

    pub fn quit(mut self) {
        let _ = self.send(&Request::Quit);
        let _ = self.recv();
    }

    /// The stream, for writing file bodies (unbuffered).
    pub(crate) fn writer(&mut self) -> &mut Stream {
        self.conn.get_mut()
    }

    /// The buffered reader, for reading file bodies.
    pub(crate) fn reader(&mut self) -> &mut BufReader<Stream> {
        &mut self.conn
    }
}

/// Credentials resolved once, reused for reconnects.
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: Password,
}

impl Login {
    /// From the flags, environment, ~/.netrc, or (if `prompt`) a prompt.
    pub fn resolve(args: &ConnectOpts, prompt: bool) -> Result<Login> {
        let user = auth::user_name(args)?;
        let password = auth::password(args, &user, prompt)?;
        Ok(Login { user, password })
    }
}

impl ConnectOpts {
    /// What to trust for TLS, or None with --plaintext (which warns loudly
    /// when the server is not on this machine: the password would cross
    /// the network in clear).
    pub fn trust(&self) -> Result<Option<Trust>> {
        if self.plaintext {
            if !crate::addr::is_local(&self.server) {
                eprintln!(
                    "miniftp: WARNING: --plaintext to {}: your password and files cross the \
                     network UNENCRYPTED",
                    self.server
                );
            }
            return Ok(None);
        }
        // An empty MINIFTP_FINGERPRINT or MINIFTP_CA_FILE means "not set".
        let pin = match self.fingerprint.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => Some(crate::tls::parse_fingerprint(f).ok_or_else(|| {
                Error::Usage(format!(
                    "--fingerprint {f:?}: expected SHA256: and 64 hex digits (colons allowed)"
                ))
            })?),
            None => None,
        };
        Ok(Some(Trust {
            pin,
            ca_file: self.ca_file.clone().filter(|f| !f.as_os_str().is_empty()),
            known: crate::tls::client::default_known_servers(),
        }))
    }
}

/// Checks that the server's address is well formed and resolves, so that
/// a wrong server name is reported before any password is asked for.
pub fn check_server(opts: &ConnectOpts) -> Result<()> {
    if !crate::addr::well_formed(&opts.server) {
        return Err(Error::Usage(format!(
            "bad server address {:?}: expected HOST:PORT",
            opts.server
        )));
    }
    opts.server
        .to_socket_addrs()
        .map(|_| ())
        .map_err(|source| Error::Connect {
            addr: opts.server.clone(),
            source,
        })
}

/// Connects to the server the flags name. A certificate nobody vouches for
/// is shown and, with a terminal, offered for trust (stored in the
/// known-servers file, like ssh); without one it is an error that says how
/// to trust it.
pub fn connect(args: &ConnectOpts) -> Result<Client> {
    let trust = args.trust()?;
    match Client::connect(&args.server, args.timeouts, trust.as_ref()) {
        Err(Error::Untrusted {
            server,
            fingerprint,
        }) if std::io::stdin().is_terminal() => {
            let trust = trust.expect("only TLS connections are untrusted");
            eprintln!(
                "The certificate of {server} is not signed by a CA this machine trusts.\n\
                 Its fingerprint is {fingerprint}\n\
                 Compare it with the `fingerprint` line the server printed when it started."
            );
            eprint!(
                "Trust it and remember it in {}? [y/N] ",
                trust.known.display()
            );
            let mut answer = String::new();
            let _ = std::io::stdin().read_line(&mut answer);
            if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES") {
                return Err(Error::Tls(format!("{server}: certificate not trusted")));
            }
            crate::tls::client::remember(&trust.known, &server, &fingerprint)?;
            Client::connect(&args.server, args.timeouts, Some(&trust))
        }
        other => other,
    }
}

/// Connects and logs in, retrying transient network errors (refused,
/// reset, a server that is full or restarting) with a short back-off.
pub fn open(args: &ConnectOpts, login: &Login) -> Result<Client> {
    let mut attempt = 0;
    loop {
        let result = connect(args).and_then(|mut c| {
            c.login(&login.user, &login.password)?;
            c.throttle = args.throttle.clone();
            Ok(c)
        });
        match result {
            Err(e) if e.is_transient() && attempt < args.retries => {
                attempt += 1;
                let wait = Duration::from_millis(500 << attempt.min(4));
                log::debug!("{e}; retrying in {wait:?}");
                std::thread::sleep(wait);
            }
            other => return other,
        }
    }
}

/// Runs one file transfer, and after a transient network error reconnects
/// and runs it again with `resume` set, up to `--retries` times.
pub fn with_retries<T>(
    args: &ConnectOpts,
    login: &Login,
    client: &mut Client,
    resume: bool,
    mut transfer: impl FnMut(&mut Client, bool) -> Result<T>,
) -> Result<T> {
    let mut attempt = 0;
    let mut resume = resume;
    loop {
        match transfer(client, resume) {
            Err(e) if e.is_transient() && attempt < args.retries => {
                attempt += 1;
                eprintln!(
                    "miniftp: {e}; reconnecting to resume ({attempt}/{})",
                    args.retries
                );
                *client = open(args, login)?;
                resume = true;
            }
            other => return other,
        }
    }
}
