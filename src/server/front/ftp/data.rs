//! One FTP session's data channel as sockets: the passive listener (or an
//! active-mode connect), the data connection it yields, TLS on it with the
//! resumption check, and its end (our close_notify and FIN, then reading
//! until the client closes too). It knows nothing of FTP commands: the
//! connection (`server::conn::ftp`) tells it what to do and turns what it
//! reports into the session's inputs.
//!
//! Its sockets are registered on the connection's own channels
//! ([`LISTENER`], [`STREAM`]); the loop hands their readiness back, and the
//! connection deregisters them when it ends (`Conn::finish`).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Registry, Token};

use super::codec::FtpCodec;
use crate::limits::{FTP_DATA_TIMEOUT, LINGER, MAX_PASSIVE_TRIES};
use crate::server::io::Io;
use crate::server::transport::Transport;

/// The channel a passive listener is registered on.
pub const LISTENER: usize = 1;
/// The channel the data connection is registered on.
pub const STREAM: usize = 2;

/// Where the data connection stands.
pub enum Link {
    None,
    /// A passive listener waits for the client until `until`.
    Listening {
        sock: TcpListener,
        until: Instant,
    },
    /// Active mode: connecting to the client until `until`.
    Connecting {
        sock: TcpStream,
        until: Instant,
    },
    /// Connected (TLS, if any, may still be shaking hands).
    Open(Box<Io>),
    /// A pump job holds the connection.
    Lent,
    /// Our side is shut (close_notify and FIN sent once `wbuf` and TLS are
    /// flushed); reading until the client closes too, or `until`.
    Closing {
        io: Box<Io>,
        shut: bool,
        until: Instant,
    },
}

/// What happened on the data channel, for the connection to act on.
#[derive(Debug, PartialEq, Eq)]
pub enum Happened {
    /// Nothing new.
    Nothing,
    /// The data connection is up (TLS handshake done and checked, if any).
    Connected,
    /// A closing connection has flushed what it had to say and is shut.
    Flushed,
    /// No connection came (or the connect failed) in time.
    NoConnection,
    /// The TLS handshake failed.
    TlsFailed(String),
    /// Under `require_tls_session_reuse`, the handshake did not resume
    /// the control connection's session.
    NotResumed,
    /// The connection failed while the loop was using it.
    Broken,
}

pub struct DataChannel {
    pub link: Link,
    /// Readiness of the data connection not used up yet.
    pub readable: bool,
    pub writable: bool,
    /// The connection is counted in the connection limits.
    pub counted: bool,
    /// TLS was set up on the data connection and its handshake checked.
    secured: bool,
}

impl Default for DataChannel {
    fn default() -> Self {
        DataChannel {
            link: Link::None,
            readable: false,
            writable: false,
            counted: false,
            secured: false,
        }
    }
}

impl DataChannel {
    /// Opens a passive listener on `ip` (a port from `range`, else any),
    /// replacing what the channel held; returns its address.
    pub fn listen(
        &mut self,
        ip: IpAddr,
        range: Option<(u16, u16)>,
        cursor: &AtomicU32,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> std::io::Result<SocketAddr> {
        self.close(registry);
        let mut sock = bind_passive(ip, range, cursor)?;
        let local = sock.local_addr()?;
        registry.register(&mut sock, token, Interest::READABLE)?;
        self.link = Link::Listening {
            sock,
            until: now + FTP_DATA_TIMEOUT,
        };
        Ok(local)
    }

    /// Active mode: starts connecting to the client's `addr`.
    pub fn connect(
        &mut self,
        addr: SocketAddr,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> std::io::Result<()> {
        self.close(registry);
        let mut sock = TcpStream::connect(addr)?;
        registry.register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
        self.link = Link::Connecting {
            sock,
            until: now + FTP_DATA_TIMEOUT,
        };
        Ok(())
    }

    /// Whether a listener or connection is there (or being made).
    pub fn is_set_up(&self) -> bool {
        !matches!(self.link, Link::None)
    }

    /// Readiness on one of the channel's sockets.
    pub fn on_ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        self.writable |= writable;
    }

    /// Accepts the client's data connection when it has come: only from
    /// `peer` (the control connection's address); any other is closed and
    /// logged. Registers it on `token`.
    pub fn accept(&mut self, peer: IpAddr, registry: &Registry, token: Token) -> Happened {
        let Link::Listening { sock, .. } = &mut self.link else {
            return Happened::Nothing;
        };
        loop {
            match sock.accept() {
                Ok((stream, from)) if from.ip().to_canonical() != peer.to_canonical() => {
                    log::warn!(
                        "ftp: refused a data connection from {from}: the session's \
                         control connection is from {peer}"
                    );
                    drop(stream);
                }
                Ok((stream, _)) => return self.opened(stream, registry, token),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Happened::Nothing,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    log::warn!("ftp: accepting a data connection failed: {e}");
                    return Happened::Nothing;
                }
            }
        }
    }

    /// The listener gave way to its one connection.
    fn opened(&mut self, mut stream: TcpStream, registry: &Registry, token: Token) -> Happened {
        if let Link::Listening { mut sock, .. } = std::mem::replace(&mut self.link, Link::None) {
            let _ = registry.deregister(&mut sock);
        }
        let _ = stream.set_nodelay(true);
        if let Err(e) =
            registry.register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
        {
            log::warn!("ftp: cannot register a data connection: {e}");
            return Happened::Broken;
        }
        self.readable = true;
        self.writable = true;
        self.secured = false;
        self.link = Link::Open(Box::new(Io::new(
            Transport::Plain(stream),
            Box::new(FtpCodec),
        )));
        Happened::Connected
    }

    /// Active mode: whether the connect finished (and how).
    pub fn connected(&mut self) -> Happened {
        let Link::Connecting { sock, .. } = &mut self.link else {
            return Happened::Nothing;
        };
        if !self.writable {
            return Happened::Nothing;
        }
        match sock.take_error() {
            Ok(None) => {}
            _ => return Happened::NoConnection,
        }
        match sock.peer_addr() {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotConnected => {
                self.writable = false;
                return Happened::Nothing;
            }
            Err(_) => return Happened::NoConnection,
        }
        let Link::Connecting { sock, .. } = std::mem::replace(&mut self.link, Link::None) else {
            unreachable!("matched above")
        };
        let _ = sock.set_nodelay(true);
        self.readable = true;
        self.secured = false;
        self.link = Link::Open(Box::new(Io::new(
            Transport::Plain(sock),
            Box::new(FtpCodec),
        )));
        Happened::Connected
    }

    /// Moves the data connection's TLS handshake on (starting TLS with
    /// `tls` on the first call): Ok(true) once it is done, at once without
    /// TLS. Whether it may serve the transfer is the caller's to decide
    /// (then [`DataChannel::secured`]).
    pub fn handshake(&mut self, tls: Option<&Arc<rustls::ServerConfig>>) -> Result<bool, Happened> {
        let Link::Open(io) = &mut self.link else {
            return Ok(false);
        };
        let Some(config) = tls else {
            return Ok(true);
        };
        if io.transport.tls_state().is_none() {
            let conn = rustls::ServerConnection::new(Arc::clone(config))
                .map_err(|e| Happened::TlsFailed(e.to_string()))?;
            let Link::Open(plain) = std::mem::replace(&mut self.link, Link::Lent) else {
                unreachable!("matched above")
            };
            let mut secured = Box::new((*plain).start_tls(conn));
            // A cut connection must not read as a complete file.
            secured.transport.set_strict_eof();
            self.link = Link::Open(secured);
        }
        let Link::Open(io) = &mut self.link else {
            unreachable!("set above")
        };
        match io.transport.handshake() {
            Ok(done) => {
                // Data may have come with the handshake's last flight; if
                // not done, the socket is drained.
                self.readable = done;
                Ok(done)
            }
            Err(e) => Err(Happened::TlsFailed(e.to_string())),
        }
    }

    /// The data connection's TLS, once it has some.
    pub fn tls_state(&self) -> Option<&rustls::ServerConnection> {
        match &self.link {
            Link::Open(io) => io.transport.tls_state(),
            _ => None,
        }
    }

    /// Whether the connection was found fit for the transfer.
    pub fn is_secured(&self) -> bool {
        self.secured
    }

    /// The connection may serve the transfer (its TLS, if any, checked).
    pub fn secured(&mut self) {
        self.secured = true;
        self.readable = true;
    }

    /// Takes the connection for a pump job (only when it is up).
    pub fn lend(&mut self) -> Option<Box<Io>> {
        if !matches!(self.link, Link::Open(_)) || !self.secured {
            return None;
        }
        match std::mem::replace(&mut self.link, Link::Lent) {
            Link::Open(io) => Some(io),
            _ => unreachable!("checked above"),
        }
    }

    /// A pump job gave the connection back.
    pub fn give_back(&mut self, io: Box<Io>) {
        self.link = Link::Open(io);
    }

    /// Writes what the connection's buffer holds (a listing page): true
    /// once it is all out, Err when the connection failed.
    pub fn flush(&mut self) -> Result<bool, Happened> {
        let Link::Open(io) = &mut self.link else {
            return Ok(false);
        };
        if !io.has_output() {
            return Ok(true);
        }
        if !self.writable {
            return Ok(false);
        }
        match io.flush() {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.writable = false;
                Ok(false)
            }
            Err(_) => Err(Happened::Broken),
        }
    }

    /// The buffer the loop writes listing pages into.
    pub fn out_buf(&mut self) -> Option<&mut Vec<u8>> {
        match &mut self.link {
            Link::Open(io) => Some(&mut io.wbuf),
            _ => None,
        }
    }

    /// Ends the connection cleanly: what is buffered goes out, then our
    /// close_notify (under TLS) and FIN, then the connection lingers until
    /// the client closes too. [`Happened::Flushed`] comes from
    /// [`DataChannel::linger`] once it is shut.
    pub fn finish(&mut self, now: Instant) {
        if let Link::Open(io) = std::mem::replace(&mut self.link, Link::None) {
            self.link = Link::Closing {
                io,
                shut: false,
                until: now + LINGER,
            };
            self.writable = true;
            self.readable = true;
        }
    }

    /// Moves a closing connection on: flush, shut, read until the peer's
    /// end (then it is closed) or the deadline.
    pub fn linger(&mut self, registry: &Registry, now: Instant) -> Happened {
        let Link::Closing { io, shut, until } = &mut self.link else {
            return Happened::Nothing;
        };
        let mut happened = Happened::Nothing;
        if !*shut {
            match io.flush() {
                Ok(true) => {
                    io.transport.shutdown_write();
                    *shut = true;
                    happened = Happened::Flushed;
                }
                Ok(false) if now < *until => return Happened::Nothing,
                // A client that doesn't read what is left: it is lost.
                _ => {
                    self.close(registry);
                    return Happened::Broken;
                }
            }
        }
        if drain(io) || now >= *until {
            self.close(registry);
        }
        happened
    }

    /// A listener or connect whose time is up.
    pub fn expired(&self, now: Instant) -> bool {
        match &self.link {
            Link::Listening { until, .. } | Link::Connecting { until, .. } => now >= *until,
            _ => false,
        }
    }

    /// Closes whatever the channel holds at once (deregistered first); a
    /// lent connection comes back to a closed channel and is dropped.
    pub fn close(&mut self, registry: &Registry) {
        match std::mem::replace(&mut self.link, Link::None) {
            Link::None => {}
            Link::Listening { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
            }
            Link::Connecting { mut sock, .. } => {
                let _ = registry.deregister(&mut sock);
            }
            Link::Open(mut io) | Link::Closing { mut io, .. } => {
                let _ = registry.deregister(io.transport.stream_mut());
            }
            Link::Lent => self.link = Link::Lent,
        }
        self.readable = false;
        self.writable = false;
    }
}

/// Reads and drops input until EOF or an error (true: the peer is done) or
/// the socket is drained (false).
fn drain(io: &mut Io) -> bool {
    let mut sink = [0u8; 4096];
    loop {
        match io.transport.read(&mut sink) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return true,
        }
    }
}

/// Binds a passive listener: a port of `range` (from the shared cursor, so
/// sessions spread over it), at most `MAX_PASSIVE_TRIES` of them; without
/// a range, any port.
fn bind_passive(
    ip: IpAddr,
    range: Option<(u16, u16)>,
    cursor: &AtomicU32,
) -> std::io::Result<TcpListener> {
    let Some((lo, hi)) = range else {
        return TcpListener::bind(SocketAddr::new(ip, 0));
    };
    let span = u32::from(hi - lo) + 1;
    let mut last = std::io::Error::new(ErrorKind::AddrInUse, "no passive port free");
    for _ in 0..span.min(MAX_PASSIVE_TRIES as u32) {
        let port = lo + (cursor.fetch_add(1, Ordering::Relaxed) % span) as u16;
        match TcpListener::bind(SocketAddr::new(ip, port)) {
            Ok(l) => return Ok(l),
            Err(e) => last = e,
        }
    }
    Err(last)
}
