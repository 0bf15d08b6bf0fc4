//! The byte pipe under a connection: plain TCP or TLS 1.3 (rustls, which
//! is sans-I/O: it only ever touches the socket through our non-blocking
//! reads and writes here). Framing, commands and transfers above it have one
//! code path whatever the wire carries. A `Transport` is owned by the
//! connection and moves, whole, into a worker's transfer job and back.

use std::io::{self, ErrorKind, Read, Write};

use mio::net::TcpStream;
use rustls::ServerConnection;

use crate::limits::{READ_AHEAD, TLS_BUFFER_LIMIT};

pub enum Transport {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

pub struct TlsStream {
    sock: TcpStream,
    tls: ServerConnection,
    /// A TCP EOF without the peer's close_notify reads as an error
    /// (`UnexpectedEof`), not as the end: for streams whose end is their
    /// content's end (FTP data connections), where a cut connection must
    /// never pass for a complete file.
    strict_eof: bool,
    /// Ciphertext read ahead from the socket. rustls reads at most 4 KiB a
    /// call; feeding it from here turns 16 syscalls into one. Empty (and
    /// freed) whenever the socket is drained, so idle connections hold none.
    ahead: ReadAhead,
}

/// Bytes read from the socket in one go, handed out in small pieces.
#[derive(Default)]
pub struct ReadAhead {
    buf: Vec<u8>,
    start: usize,
}

impl ReadAhead {
    fn is_empty(&self) -> bool {
        self.start >= self.buf.len()
    }

    /// One socket read into the (empty) buffer.
    fn fill(&mut self, sock: &mut impl Read) -> io::Result<usize> {
        self.buf.resize(READ_AHEAD, 0);
        self.start = 0;
        match sock.read(&mut self.buf) {
            Ok(n) => {
                self.buf.truncate(n);
                Ok(n)
            }
            Err(e) => {
                self.release();
                Err(e)
            }
        }
    }

    fn release(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
    }
}

impl Read for ReadAhead {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let n = out.len().min(self.buf.len() - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        if self.is_empty() {
            self.release();
        }
        Ok(n)
    }
}

impl Transport {
    pub fn tls(sock: TcpStream, mut tls: ServerConnection) -> Transport {
        tls.set_buffer_limit(Some(TLS_BUFFER_LIMIT));
        Transport::Tls(Box::new(TlsStream {
            sock,
            tls,
            strict_eof: false,
            ahead: ReadAhead::default(),
        }))
    }

    /// TLS over a connection that was plain so far (FTP's `AUTH TLS`, a
    /// protected data connection): the handshake comes next. `early` is
    /// input already read (a client that did not wait for the reply): the
    /// handshake reads it first.
    pub fn into_tls(self, tls: ServerConnection, early: Vec<u8>) -> Transport {
        match self {
            Transport::Plain(sock) => {
                let mut t = Transport::tls(sock, tls);
                if let Transport::Tls(s) = &mut t {
                    s.ahead = ReadAhead {
                        buf: early,
                        start: 0,
                    };
                }
                t
            }
            tls @ Transport::Tls(_) => tls,
        }
    }

    /// With TLS: a TCP EOF without close_notify is an error from now on
    /// (see `TlsStream::strict_eof`).
    pub fn set_strict_eof(&mut self) {
        if let Transport::Tls(t) = self {
            t.strict_eof = true;
        }
    }

    /// The TLS state, when there is TLS (resumption checks).
    pub fn tls_state(&self) -> Option<&ServerConnection> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => Some(&t.tls),
        }
    }

    /// The TLS state, to set what its session tickets will carry.
    pub fn tls_mut(&mut self) -> Option<&mut ServerConnection> {
        match self {
            Transport::Plain(_) => None,
            Transport::Tls(t) => Some(&mut t.tls),
        }
    }

    /// Moves a TLS handshake on as far as the socket allows: Ok(true) once
    /// it is complete (at once without TLS), Ok(false) when it waits for
    /// the peer. Application data that came with the handshake stays
    /// buffered for `read`.
    pub fn handshake(&mut self) -> io::Result<bool> {
        let Transport::Tls(t) = self else {
            return Ok(true);
        };
        while t.tls.is_handshaking() {
            if !t.flush_out()? || !t.tls.wants_read() {
                return Ok(false);
            }
            if t.ahead.is_empty() {
                match t.ahead.fill(&mut t.sock) {
                    Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            t.tls.read_tls(&mut t.ahead)?;
            let processed = t.tls.process_new_packets();
            let _ = t.flush_out();
            processed.map_err(|e| io::Error::new(ErrorKind::InvalidData, e))?;
        }
        t.flush_out()?;
        Ok(true)
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &mut t.sock,
        }
    }

    /// Reads plaintext. `WouldBlock` only when nothing is buffered in TLS
    /// and the socket is drained, so edge-triggered readiness stays exact.
    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }

    /// Writes plaintext; with TLS, `WouldBlock` while earlier records are
    /// still waiting for the socket.
    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    /// Ends our sending side: TLS says close_notify first, then the TCP
    /// stream is shut for writing (best effort: the peer may be gone).
    pub fn shutdown_write(&mut self) {
        if let Transport::Tls(t) = self {
            t.tls.send_close_notify();
            let _ = t.flush_out();
        }
        let _ = self.stream_mut().shutdown(std::net::Shutdown::Write);
    }

    /// Whether a TLS handshake is still under way.
    pub fn is_handshaking(&self) -> bool {
        matches!(self, Transport::Tls(t) if t.tls.is_handshaking())
    }

    /// Whether bytes wait for the socket: encrypted records, or (during
    /// the handshake) replies rustls holds until the keys exist.
    pub fn pending_out(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            Transport::Tls(t) => t.tls.wants_write() || t.tls.is_handshaking(),
        }
    }

    /// Pushes waiting encrypted bytes out: Ok(true) once none are left.
    pub fn flush_out(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(_) => Ok(true),
            Transport::Tls(t) => t.flush_out(),
        }
    }

    /// Zero-copy send of up to `count` bytes of `file` from `*offset`
    /// (advanced by what was sent). `None` when this transport can't do it
    /// (TLS encrypts in user space), and the caller copies through a buffer.
    pub fn sendfile(
        &mut self,
        file: std::os::fd::BorrowedFd<'_>,
        offset: &mut u64,
        count: usize,
    ) -> Option<io::Result<usize>> {
        match self {
            Transport::Plain(s) => {
                Some(rustix::fs::sendfile(&*s, file, Some(offset), count).map_err(io::Error::from))
            }
            Transport::Tls(_) => None,
        }
    }
}

impl TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
            if self.ahead.is_empty() && self.ahead.fill(&mut self.sock)? == 0 {
                if !self.strict_eof {
                    return Ok(0);
                }
                // Tell rustls the TCP stream ended: the next read says
                // Ok(0) if close_notify came first, else UnexpectedEof.
                self.tls.read_tls(&mut io::empty())?;
                return match self.tls.reader().read(buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        Err(ErrorKind::UnexpectedEof.into())
                    }
                    other => other,
                };
            }
            match self.tls.read_tls(&mut self.ahead) {
                Ok(0) => return Ok(0),
                Ok(_) => {
                    let processed = self.tls.process_new_packets();
                    // Handshake replies and alerts go out at once.
                    let _ = self.flush_out();
                    if let Err(e) = processed {
                        return Err(io::Error::new(ErrorKind::InvalidData, e));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.flush_out()? {
            return Err(ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write(buf)?;
        let _ = self.flush_out()?;
        if n == 0 && !buf.is_empty() {
            return Err(ErrorKind::WouldBlock.into());
        }
        Ok(n)
    }

    fn flush_out(&mut self) -> io::Result<bool> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.sock) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }
}
