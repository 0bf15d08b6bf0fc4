//! The byte pipe under a connection. Today plain TCP; the enum is where TLS
//! slots in, so that framing, commands and transfers above it have one code
//! path whatever the wire carries. A `Transport` is owned by the connection
//! and moves, whole, into a worker's transfer job and back.

use std::fs::File;
use std::io::{self, Read, Write};

use mio::net::TcpStream;

pub enum Transport {
    Plain(TcpStream),
}

impl Transport {
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        match self {
            Transport::Plain(s) => s,
        }
    }

    pub fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
        }
    }

    pub fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
        }
    }

    /// Zero-copy send of up to `count` bytes of `file` from `*offset`
    /// (advanced by what was sent). `None` when this transport can't do it
    /// (e.g. once it encrypts), and the caller copies through a buffer.
    pub fn sendfile(
        &mut self,
        file: &File,
        offset: &mut u64,
        count: usize,
    ) -> Option<io::Result<usize>> {
        match self {
            Transport::Plain(s) => {
                Some(rustix::fs::sendfile(&*s, file, Some(offset), count).map_err(io::Error::from))
            }
        }
    }
}
