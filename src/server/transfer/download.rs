//! A download in progress: the `150` header (already queued), then the raw
//! body, then a `226` trailer carrying the SHA-256 of the whole file.
//!
//! When the storage remembers the file's digest, the body goes out with
//! sendfile (zero-copy, no hashing). Otherwise it is read, hashed and sent
//! through the worker's scratch buffer, and the digest is remembered for the
//! next download if the file did not change meanwhile.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::PumpStatus;
use crate::limits::PUMP_BUDGET;
use crate::proto::{Reply, Status};
use crate::server::io::Io;
use crate::server::quota::Account;
use crate::server::workers::with_scratch;
use crate::storage::{ReadHandle, VPath};

pub struct Download {
    pub account: Arc<Account>,
    pub handle: ReadHandle,
    pub path: VPath,
    /// Next byte of the file to send.
    pub pos: u64,
    /// First byte sent (the resume offset).
    pub offset: u64,
    /// Hashing state when the digest is not known in advance; it has
    /// already seen bytes `0..pos`.
    pub hasher: Option<Sha256>,
    pub started: Instant,
}

impl Download {
    pub fn sent(&self) -> u64 {
        self.pos - self.offset
    }

    /// Sends the queued header, body bytes, and at the end the trailer.
    pub fn pump(&mut self, io: &mut Io) -> PumpStatus {
        match io.flush() {
            Ok(true) => {}
            Ok(false) => return PumpStatus::WouldBlock,
            Err(_) => return PumpStatus::Closed,
        }
        let end = self.handle.size;
        let mut moved = 0usize;
        while self.pos < end {
            if moved >= PUMP_BUDGET {
                return PumpStatus::Yield;
            }
            let want = (end - self.pos).min((PUMP_BUDGET - moved) as u64) as usize;
            let step = if self.hasher.is_none() {
                let before = self.pos;
                match io
                    .transport
                    .sendfile(self.handle.file(), &mut self.pos, want)
                {
                    Some(Ok(0)) => return PumpStatus::Closed, // file shrank under us
                    Some(Ok(_)) => Ok((self.pos - before) as usize),
                    Some(Err(e)) => Err(e),
                    None => self.copy_chunk(io, want),
                }
            } else {
                self.copy_chunk(io, want)
            };
            match step {
                Ok(n) => moved += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return PumpStatus::WouldBlock,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return PumpStatus::Closed,
            }
        }
        let digest: [u8; 32] = match (self.handle.digest, self.hasher.take()) {
            (Some(d), _) => d,
            (None, Some(h)) => {
                let d: [u8; 32] = h.finalize().into();
                self.account.storage.remember_digest(&self.handle, &d);
                d
            }
            (None, None) => unreachable!("a download without a digest always hashes"),
        };
        let mut r = Reply::new(
            Status::TransferComplete,
            format!("{}: sent {} bytes", self.path, self.sent()),
        );
        r.size = Some(end);
        r.sha256 = Some(hex::encode(digest));
        io.send(&r);
        match io.flush() {
            Ok(_) => PumpStatus::Done,
            Err(_) => PumpStatus::Closed,
        }
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
