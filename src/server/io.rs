//! The part of a connection that moves between the loop and a worker's
//! transfer job: the transport, the two small byte buffers and the codec
//! that reads requests from one and writes replies into the other. Buffers
//! start empty and shrink back after use, so an idle connection costs
//! almost nothing.

use std::io::{self, ErrorKind};

use super::front::{Codec, Decoded};
use super::transport::Transport;
use crate::limits::KEEP_CAPACITY;
use crate::proto::Reply;

pub struct Io {
    pub transport: Transport,
    /// Bytes received but not yet parsed (at most one frame's worth).
    pub rbuf: Vec<u8>,
    /// Encoded replies not yet written.
    pub wbuf: Vec<u8>,
    pub codec: Box<dyn Codec>,
    /// When the request being answered arrived: its first reply is timed
    /// (`miniftp_request_duration_seconds`).
    pub asked: Option<std::time::Instant>,
}

/// What a read attempt found.
#[derive(Debug, PartialEq, Eq)]
pub enum Fill {
    /// Got bytes; the socket may have more.
    Data,
    /// The socket has nothing more right now.
    WouldBlock,
    /// `rbuf` reached its cap; the socket may have more.
    Full,
    /// The peer closed its side.
    Eof,
}

impl Io {
    pub fn new(transport: Transport, codec: Box<dyn Codec>) -> Io {
        Io {
            transport,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            codec,
            asked: None,
        }
    }

    /// TLS from now on over what was a plain connection (FTP's `AUTH TLS`,
    /// a protected data connection). Input already buffered is the start
    /// of the handshake.
    pub fn start_tls(self, tls: rustls::ServerConnection) -> Io {
        let Io {
            transport,
            rbuf,
            wbuf,
            codec,
            asked,
        } = self;
        Io {
            transport: transport.into_tls(tls, rbuf),
            rbuf: Vec::new(),
            wbuf,
            codec,
            asked,
        }
    }

    /// Whether anything waits to be written (replies, or TLS records).
    pub fn has_output(&self) -> bool {
        !self.wbuf.is_empty() || self.transport.pending_out()
    }

    /// Queues a reply in the connection's wire format, and counts it.
    pub fn send(&mut self, reply: &Reply) {
        let metrics = super::metrics::global();
        metrics.reply(reply.code);
        if let Some(asked) = self.asked.take() {
            metrics.request_took(asked.elapsed().as_secs_f64());
        }
        self.codec.encode(reply, &mut self.wbuf);
    }

    /// The next request in `rbuf`, consumed. With `read`, when no whole
    /// request is buffered, one fill from the socket first (which reads
    /// until the socket would block); the fill's result says whether the
    /// socket is drained or the peer is done.
    pub fn decode(&mut self, read: bool) -> io::Result<(Decoded, Option<Fill>)> {
        let (decoded, used) = self.codec.decode(&self.rbuf);
        self.consume(used);
        if !matches!(decoded, Decoded::Incomplete) || !read {
            return Ok((decoded, None));
        }
        let fill = self.fill(self.codec.max_request())?;
        let (decoded, used) = self.codec.decode(&self.rbuf);
        self.consume(used);
        Ok((decoded, Some(fill)))
    }

    /// Writes as much of `wbuf` as the socket takes: Ok(true) once empty,
    /// Ok(false) when the socket is full. A short write keeps the tail.
    pub fn flush(&mut self) -> io::Result<bool> {
        let mut sent = 0;
        let result = loop {
            if sent == self.wbuf.len() {
                break Ok(true);
            }
            match self.transport.write(&self.wbuf[sent..]) {
                Ok(0) => break Err(ErrorKind::WriteZero.into()),
                Ok(n) => sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => break Err(e),
            }
        };
        self.wbuf.drain(..sent);
        if self.wbuf.is_empty() && self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::new();
        }
        match result {
            Ok(true) => self.transport.flush_out(),
            other => other,
        }
    }

    /// Reads into `rbuf` until the socket is drained or `rbuf` holds `cap`
    /// bytes.
    pub fn fill(&mut self, cap: usize) -> io::Result<Fill> {
        let mut tmp = [0u8; 16 * 1024];
        let mut got = false;
        loop {
            let room = cap.saturating_sub(self.rbuf.len()).min(tmp.len());
            if room == 0 {
                return Ok(Fill::Full);
            }
            match self.transport.read(&mut tmp[..room]) {
                Ok(0) => return Ok(Fill::Eof),
                Ok(n) => {
                    self.rbuf.extend_from_slice(&tmp[..n]);
                    got = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    return Ok(if got { Fill::Data } else { Fill::WouldBlock });
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Drops the first `n` bytes of `rbuf` (a consumed frame).
    pub fn consume(&mut self, n: usize) {
        self.rbuf.drain(..n);
        if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_CAPACITY {
            self.rbuf = Vec::new();
        }
    }
}
