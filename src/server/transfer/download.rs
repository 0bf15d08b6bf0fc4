//! A download in progress: the `150` header (already queued), then the raw
//! body, then a `226` trailer carrying the SHA-256 of the whole file.
//!
//! When the storage has the file's digest and offers a file descriptor, the
//! body goes out with sendfile (zero-copy, no hashing). Otherwise it is
//! read, hashed and sent through the worker's scratch buffer, and the digest
//! is remembered for the next download if the file did not change meanwhile.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::progress::Progress;
use crate::proto::{Reply, Status};
use crate::server::io::Io;
use crate::server::metrics::TransferOp;
use crate::server::quota::Account;
use crate::server::workers::with_scratch;
use crate::server::TransferLog;
use crate::storage::{ReadHandle, VPath};

pub struct Download {
    pub account: Arc<Account>,
    pub handle: Box<dyn ReadHandle>,
    pub path: VPath,
    /// Next byte of the file to send.
    pub pos: u64,
    /// First byte sent (the resume offset).
    pub offset: u64,
    /// Hashing state when the digest is not known in advance; it has
    /// already seen bytes `0..pos`.
    pub hasher: Option<Sha256>,
    pub started: Instant,
    /// Bytes so far, for `miniftp admin who`.
    pub progress: Arc<Progress>,
}

/// What one call of [`Download::advance`] came to.
pub enum DStep {
    /// The socket takes nothing more now.
    WouldBlock,
    /// The byte budget is spent; go on later.
    Yield,
    /// The whole body went out: this is the trailer to send.
    Done(Reply),
    /// The peer is gone, the socket failed, or the file shrank.
    Closed,
}

impl Download {
    pub fn sent(&self) -> u64 {
        self.pos - self.offset
    }

    pub fn log(&self) -> TransferLog {
        TransferLog {
            op: TransferOp::Get,
            path: self.path.to_string(),
            bytes: self.sent(),
            started: self.started,
        }
    }

    /// Sends what is queued, then body bytes until the end, the socket
    /// would block or `budget` is spent.
    pub fn advance(&mut self, io: &mut Io, budget: &mut usize) -> DStep {
        match io.flush() {
            Ok(true) => {}
            Ok(false) => return DStep::WouldBlock,
            Err(_) => return DStep::Closed,
        }
        let end = self.handle.size();
        while self.pos < end {
            if *budget == 0 {
                return DStep::Yield;
            }
            let want = (end - self.pos).min(*budget as u64) as usize;
            match self.send_some(io, want) {
                Ok(0) => return DStep::Closed, // the file shrank under us
                Ok(n) => *budget = budget.saturating_sub(n),
                Err(e) if e.kind() == ErrorKind::WouldBlock => return DStep::WouldBlock,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return DStep::Closed,
            }
        }
        DStep::Done(self.trailer())
    }

    /// Zero-copy when possible, else through the scratch buffer.
    fn send_some(&mut self, io: &mut Io, want: usize) -> std::io::Result<usize> {
        if self.hasher.is_none() {
            if let Some(fd) = self.handle.as_fd() {
                let before = self.pos;
                if let Some(sent) = io.transport.sendfile(fd, &mut self.pos, want) {
                    return sent.map(|_| (self.pos - before) as usize);
                }
            }
        }
        self.copy_chunk(io, want)
    }

    /// The `226` with the whole file's digest (remembered for next time
    /// when it had to be computed).
    fn trailer(&mut self) -> Reply {
        let digest: [u8; 32] = match (self.handle.digest(), self.hasher.take()) {
            (Some(d), _) => d,
            (None, Some(h)) => {
                let d: [u8; 32] = h.finalize().into();
                self.handle.remember_digest(&d);
                d
            }
            (None, None) => unreachable!("a download without a digest always hashes"),
        };
        let mut r = Reply::new(
            Status::TransferComplete,
            format!("{}: sent {} bytes", self.path, self.sent()),
        );
        r.size = Some(self.handle.size());
        r.sha256 = Some(hex::encode(digest));
        r
    }

    /// Reads, hashes and writes one buffer's worth. Only bytes the socket
    /// took are hashed and counted: the rest is read again next time.
    fn copy_chunk(&mut self, io: &mut Io, want: usize) -> std::io::Result<usize> {
        with_scratch(|buf| {
            let n = want.min(buf.len());
            let got = self.handle.read_at(&mut buf[..n], self.pos)?;
            if got == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "file shrank during the download",
                ));
            }
            let wrote = io.transport.write(&buf[..got])?;
            if let Some(h) = self.hasher.as_mut() {
                h.update(&buf[..wrote]);
            }
            self.pos += wrote as u64;
            Ok(wrote)
        })
    }
}
