//! The client side of the protocol, shared by `shell`, `put` and `get`: a
//! blocking connection that speaks frames through `proto` (the one
//! implementation of the wire format), logs in, and runs requests.

pub mod auth;
pub mod progress;
pub mod transfer;

use std::io::BufReader;
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::limits::MAX_REPLY_FRAME;
use crate::proto::{frame, Entry, Password, Reply, Request, Status, PROTOCOL_VERSION};

/// Socket buffer asked of the kernel for transfers.
const SOCKET_BUF: usize = 4 * 1024 * 1024;

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    pub greeting: Reply,
    pub user: Option<String>,
}

/// Timeouts for a connection.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    pub io: Duration,
}

impl Client {
    /// Connects, reads the greeting and checks the protocol version.
    pub fn connect(addr: &str, t: Timeouts) -> Result<Client> {
        let conn_err = |source| Error::Connect {
            addr: addr.to_string(),
            source,
        };
        let addrs: Vec<_> = addr
            .to_socket_addrs()
            .map_err(|e| Error::Usage(format!("bad server address {addr:?}: {e}")))?
            .collect();
        let mut last = None;
        let mut stream = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, t.connect) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let stream = stream.ok_or_else(|| {
            conn_err(last.unwrap_or_else(|| std::io::Error::other("no address to connect to")))
        })?;
        stream.set_nodelay(true).map_err(conn_err)?;
        stream.set_read_timeout(Some(t.io)).map_err(conn_err)?;
        stream.set_write_timeout(Some(t.io)).map_err(conn_err)?;
        let _ = rustix::net::sockopt::set_socket_send_buffer_size(&stream, SOCKET_BUF);
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&stream, SOCKET_BUF);
        let writer = stream.try_clone().map_err(conn_err)?;
        let mut client = Client {
            reader: BufReader::with_capacity(64 * 1024, stream),
            writer,
            greeting: Reply::default(),
            user: None,
        };
        let greeting = client.recv()?;
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
        frame::write_frame(&mut self.writer, req.to_json().as_bytes())
            .map_err(Error::ConnectionLost)
    }

    /// Reads one reply frame.
    pub fn recv(&mut self) -> Result<Reply> {
        let text = frame::read_frame(&mut self.reader, MAX_REPLY_FRAME).map_err(|e| {
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

    pub(crate) fn writer(&mut self) -> &mut TcpStream {
        &mut self.writer
    }

    pub(crate) fn reader(&mut self) -> &mut BufReader<TcpStream> {
        &mut self.reader
    }
}

impl crate::cli::ConnectArgs {
    pub fn timeouts(&self) -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(self.connect_timeout.max(1)),
            io: Duration::from_secs(self.timeout.max(1)),
        }
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
    pub fn resolve(args: &crate::cli::ConnectArgs, prompt: bool) -> Result<Login> {
        let user = auth::user_name(args)?;
        let password = auth::password(args, &user, prompt)?;
        Ok(Login { user, password })
    }
}

/// Connects and logs in, retrying transient network errors (refused,
/// reset, a server that is full or restarting) with a short back-off.
pub fn open(args: &crate::cli::ConnectArgs, login: &Login) -> Result<Client> {
    let mut attempt = 0;
    loop {
        let result = Client::connect(&args.server, args.timeouts()).and_then(|mut c| {
            c.login(&login.user, &login.password)?;
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
