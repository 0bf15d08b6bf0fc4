//! An upload in progress. The body arrives as a raw byte stream of the
//! announced size (or, for unknown sizes, in length-prefixed chunks ending
//! with an empty one). Bytes are hashed and written to the hidden partial
//! file as they arrive; nothing is visible under the real name until the
//! client's digest has matched ([`finish`]).
//!
//! An error in the middle of the body (disk full, I/O error, quota passed
//! by a chunked body) is answered at once; the partial is removed and the
//! rest of the body is read and discarded, so the session stays usable.

use std::io::ErrorKind;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::PumpStatus;
use crate::limits::{FRAME_HEADER_LEN, PUMP_BUDGET};
use crate::proto::{Reply, Status};
use crate::server::io::Io;
use crate::server::quota::{Account, Reservation};
use crate::server::workers::with_scratch;
use crate::server::TransferLog;
use crate::storage::{Committed, FsError, Leftover, UploadHandle, VPath};

/// Where the body stream stands.
pub enum Body {
    /// `remaining` bytes of a body of announced size.
    Sized {
        remaining: u64,
    },
    /// Chunked: reading a chunk's 8-byte length (`have` bytes of it so far),
    /// or `left` bytes of the current chunk.
    ChunkHeader {
        header: [u8; FRAME_HEADER_LEN],
        have: usize,
    },
    ChunkData {
        left: u64,
    },
    /// The body has ended.
    Done,
}

pub struct Upload {
    pub account: Arc<Account>,
    /// None once the upload failed (the rest of the body is discarded).
    pub handle: Option<UploadHandle>,
    pub hasher: Sha256,
    pub body: Body,
    /// Body bytes received by this transfer.
    pub received: u64,
    pub reservation: Option<Reservation>,
    pub path: VPath,
    /// Resume offset: bytes of the partial before this transfer.
    pub offset: u64,
    /// Whether this upload holds the path's resumable-partial claim.
    pub claimed: bool,
    pub started: Instant,
    /// The error already sent to the client, if the upload failed.
    pub failure: Option<Status>,
    /// Whether the in-progress mark was given back.
    pub ended: bool,
}

impl Upload {
    /// An upload that was refused while its body is on the way (`eager`):
    /// it reads and discards the body and its trailer; `reply` is the
    /// refusal already sent.
    pub fn discarding(account: Arc<Account>, path: &str, body: Body, reply: &Reply) -> Upload {
        Upload {
            account,
            handle: None,
            hasher: Sha256::new(),
            body,
            received: 0,
            reservation: None,
            path: VPath::resolve(&VPath::root(), path).unwrap_or_default(),
            offset: 0,
            claimed: false,
            started: Instant::now(),
            failure: Some(reply.status().unwrap_or(Status::BadArguments)),
            ended: true,
        }
    }

    /// Feeds body bytes; returns how many belonged to the body (it stops at
    /// the body's end). Errors are answered through `io`.
    fn feed(&mut self, data: &[u8], io: &mut Io) -> usize {
        let mut used = 0;
        while used < data.len() {
            let rest = &data[used..];
            match &mut self.body {
                Body::Done => break,
                Body::Sized { remaining } => {
                    let n = rest.len().min(*remaining as usize);
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.body = Body::Done;
                    }
                    self.write(&rest[..n], io);
                    used += n;
                }
                Body::ChunkHeader { header, have } => {
                    let n = rest.len().min(FRAME_HEADER_LEN - *have);
                    header[*have..*have + n].copy_from_slice(&rest[..n]);
                    *have += n;
                    used += n;
                    if *have == FRAME_HEADER_LEN {
                        let len = u64::from_be_bytes(*header);
                        if len == 0 {
                            self.body = Body::Done;
                        } else {
                            self.body = Body::ChunkData { left: len };
                            self.grow(len, io);
                        }
                    }
                }
                Body::ChunkData { left } => {
                    let n = rest.len().min(*left as usize);
                    *left -= n as u64;
                    if *left == 0 {
                        self.body = Body::ChunkHeader {
                            header: [0; FRAME_HEADER_LEN],
                            have: 0,
                        };
                    }
                    self.write(&rest[..n], io);
                    used += n;
                }
            }
        }
        used
    }

    /// How many bytes the next read may take without passing the body's end.
    fn want(&self, cap: usize) -> usize {
        match &self.body {
            Body::Sized { remaining } => cap.min(*remaining as usize),
            Body::ChunkHeader { have, .. } => FRAME_HEADER_LEN - have,
            Body::ChunkData { left } => cap.min(*left as usize),
            Body::Done => 0,
        }
    }

    fn write(&mut self, bytes: &[u8], io: &mut Io) {
        self.received += bytes.len() as u64;
        let Some(handle) = self.handle.as_mut() else {
            return;
        };
        self.hasher.update(bytes);
        if let Err(e) = handle.write_all(bytes) {
            let path = self.path.clone();
            let e = FsError::from_io(e, &path);
            self.fail(Reply::new(e.status(), e.to_string()), io);
        }
    }

    fn grow(&mut self, len: u64, io: &mut Io) {
        if self.handle.is_none() {
            return;
        }
        if let Some(r) = self.reservation.as_mut() {
            if let Err(e) = r.grow(len) {
                let msg = format!("{}: {e}", self.path);
                self.fail(Reply::new(Status::QuotaExceeded, msg), io);
            }
        }
    }

    /// Sends `reply` at once, removes the partial and switches to
    /// discarding the rest of the body.
    pub fn fail(&mut self, reply: Reply, io: &mut Io) {
        self.failure = reply.status();
        io.send(&reply);
        let _ = io.flush();
        self.discard();
    }

    /// Removes the partial and gives back what it held (quota, claim).
    pub fn discard(&mut self) {
        if let Some(handle) = self.handle.take() {
            self.account.storage.abort_upload(handle, false);
            self.account.sub_used(self.offset);
        }
        self.reservation = None;
        self.release_claim();
    }

    /// Keeps a resumable partial for a later `put` with an offset (client
    /// gone, server shutting down); non-resumable partials are removed.
    /// The log entry of this upload, once it has completed.
    pub fn log(&self) -> TransferLog {
        TransferLog {
            op: "put",
            path: self.path.to_string(),
            bytes: self.received,
            started: self.started,
        }
    }

    pub fn abandon(&mut self) {
        if let Some(handle) = self.handle.take() {
            let left = self.account.storage.abort_upload(handle, true);
            if left >= self.offset {
                self.account.add_used(left - self.offset);
            } else {
                self.account.sub_used(self.offset - left);
            }
        }
        self.reservation = None;
        self.release_claim();
    }

    /// Gives back the resumable-partial claim and the in-progress mark.
    /// Runs once, whichever way the upload ends.
    fn release_claim(&mut self) {
        if self.claimed {
            self.account.release_upload(&self.path);
            self.claimed = false;
        }
        if !self.ended {
            self.account.end_upload(&self.path);
            self.ended = true;
        }
    }

    pub fn body_done(&self) -> bool {
        matches!(self.body, Body::Done)
    }

    /// Moves body bytes from the socket (and any already buffered in
    /// `io.rbuf`) into the partial.
    pub fn pump(&mut self, io: &mut Io) -> PumpStatus {
        if !io.rbuf.is_empty() {
            let buffered = std::mem::take(&mut io.rbuf);
            let used = self.feed(&buffered, io);
            io.rbuf = buffered[used..].to_vec();
        }
        // A helper thread only pays when a core would otherwise idle: with
        // other transfers pumping, the pool keeps both cores busy already.
        let pumping = Pumping::start();
        let parallel = pumping.alone
            && self.handle.is_some()
            && matches!(self.body, Body::Sized { remaining } if remaining >= PARALLEL_MIN);
        if parallel {
            self.pump_parallel(io)
        } else {
            self.pump_serial(io)
        }
    }

    fn pump_serial(&mut self, io: &mut Io) -> PumpStatus {
        let mut moved = 0usize;
        with_scratch(|buf| loop {
            if self.body_done() {
                return PumpStatus::Done;
            }
            if moved >= PUMP_BUDGET {
                return PumpStatus::Yield;
            }
            let want = self.want(buf.len());
            match io.transport.read(&mut buf[..want]) {
                Ok(0) => return PumpStatus::Closed,
                Ok(n) => {
                    moved += n;
                    self.feed(&buf[..n], io);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return PumpStatus::WouldBlock,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return PumpStatus::Closed,
            }
        })
    }
}

impl Upload {
    /// The pump for a large body: this worker receives and writes while a
    /// helper thread hashes the previous buffer, so hashing (the costliest
    /// step, ~0.6 s per GiB) overlaps the copy instead of adding to it.
    fn pump_parallel(&mut self, io: &mut Io) -> PumpStatus {
        let mut hasher = std::mem::take(&mut self.hasher);
        let mut free = take_buffers();
        let (status, hasher, free) = std::thread::scope(|s| {
            let (full_tx, full_rx) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(PIPE_BUFS);
            let (free_tx, free_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
            let helper = s.spawn(move || {
                for (buf, n) in full_rx {
                    hasher.update(&buf[..n]);
                    let _ = free_tx.send(buf);
                }
                hasher
            });
            let mut moved = 0usize;
            let status = loop {
                let Body::Sized { remaining } = self.body else {
                    break PumpStatus::Done;
                };
                if self.handle.is_none() {
                    // Failed mid-body: the rest is drained by the plain pump.
                    break PumpStatus::Yield;
                }
                if moved >= PUMP_BUDGET {
                    break PumpStatus::Yield;
                }
                let mut buf = match free.pop() {
                    Some(b) => b,
                    None => match free_rx.recv() {
                        Ok(b) => b,
                        Err(_) => break PumpStatus::Closed,
                    },
                };
                // Fill the buffer as far as the socket allows: a read may
                // return a single TLS record, and handing the hasher 16 KiB
                // at a time costs more in wake-ups than it saves.
                let want = buf.len().min(remaining as usize);
                let mut n = 0;
                let mut stop = None;
                while n < want {
                    match io.transport.read(&mut buf[n..want]) {
                        Ok(0) => {
                            stop = Some(PumpStatus::Closed);
                            break;
                        }
                        Ok(k) => n += k,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {
                            stop = Some(PumpStatus::WouldBlock);
                            break;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(_) => {
                            stop = Some(PumpStatus::Closed);
                            break;
                        }
                    }
                }
                if n == 0 {
                    free.push(buf);
                    break stop.unwrap_or(PumpStatus::Yield);
                }
                moved += n;
                self.received += n as u64;
                self.body = if remaining == n as u64 {
                    Body::Done
                } else {
                    Body::Sized {
                        remaining: remaining - n as u64,
                    }
                };
                let handle = self.handle.as_mut().expect("checked above");
                if let Err(e) = handle.write_all(&buf[..n]) {
                    let e = FsError::from_io(e, &self.path);
                    self.fail(Reply::new(e.status(), e.to_string()), io);
                    free.push(buf);
                } else if full_tx.send((buf, n)).is_err() {
                    break PumpStatus::Closed;
                }
                if let Some(status) = stop {
                    // A short body ending at EOF still counts what came.
                    break if self.body_done() {
                        PumpStatus::Done
                    } else {
                        status
                    };
                }
            };
            drop(full_tx);
            let hasher = helper.join().unwrap_or_default();
            free.extend(free_rx.try_iter());
            (status, hasher, free)
        });
        self.hasher = hasher;
        give_back_buffers(free);
        status
    }
}

/// Bodies at least this big are hashed on a helper thread.
const PARALLEL_MIN: u64 = 2 << 20;
/// Upload pump jobs running right now, over all connections.
static PUMPING: AtomicUsize = AtomicUsize::new(0);

/// One running pump job in [`PUMPING`], counted out on drop, so a pump
/// that panics (caught per connection) doesn't leave the count high and
/// the helper thread off for good.
struct Pumping {
    /// No other upload pump was running when this one started.
    alone: bool,
}

impl Pumping {
    fn start() -> Pumping {
        Pumping {
            alone: PUMPING.fetch_add(1, Ordering::Relaxed) == 0,
        }
    }
}

impl Drop for Pumping {
    fn drop(&mut self) {
        PUMPING.fetch_sub(1, Ordering::Relaxed);
    }
}
/// Buffers in flight between the receiving and the hashing thread.
const PIPE_BUFS: usize = 3;

thread_local! {
    /// Each worker's buffers for parallel pumps, kept between jobs.
    static PIPE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_buffers() -> Vec<Vec<u8>> {
    let mut bufs = PIPE.with(|p| std::mem::take(&mut *p.borrow_mut()));
    while bufs.len() < PIPE_BUFS + 1 {
        bufs.push(vec![0u8; crate::limits::PUMP_BUF]);
    }
    bufs
}

fn give_back_buffers(bufs: Vec<Vec<u8>>) {
    PIPE.with(|p| *p.borrow_mut() = bufs);
}

/// Checks the client's digest and makes the upload visible. Runs on a
/// worker (fsync and rename may take milliseconds). Also returns a replaced
/// old version whose removal the caller does after replying.
pub fn finish(mut up: Box<Upload>, client_sha256: &str, fsync: bool) -> (Reply, Option<Leftover>) {
    let Some(handle) = up.handle.take() else {
        return (
            Reply::new(Status::BadSequence, "upload already failed"),
            None,
        );
    };
    let digest: [u8; 32] = up.hasher.clone().finalize().into();
    let hex_digest = hex::encode(digest);
    let size = up.offset + up.received;
    if !client_sha256.eq_ignore_ascii_case(&hex_digest) {
        up.handle = Some(handle);
        up.discard();
        let mut r = Reply::new(
            Status::IntegrityFailure,
            format!(
                "{}: SHA-256 mismatch (received {hex_digest}, sender said {client_sha256}); \
                 the upload was discarded and any previous version is untouched",
                up.path
            ),
        );
        r.sha256 = Some(hex_digest);
        return (r, None);
    }
    let account = Arc::clone(&up.account);
    // The new bytes are on disk already (in the partial): count them before
    // the rename makes them visible, so a racing session that replaces or
    // removes this file right after can never subtract them first.
    if let Some(r) = up.reservation.take() {
        r.commit(up.received);
    } else {
        account.add_used(up.received);
    }
    match account.storage.commit_upload(handle, &digest, fsync) {
        Ok(Committed { replaced, leftover }) => {
            account.sub_used(replaced);
            up.release_claim();
            let mut r = Reply::new(
                Status::TransferComplete,
                format!("{}: stored {size} bytes, SHA-256 verified", up.path),
            );
            r.size = Some(size);
            r.sha256 = Some(hex_digest);
            (r, leftover)
        }
        Err(e) => {
            // commit_upload removed the partial, counted in full above.
            account.sub_used(up.offset + up.received);
            up.release_claim();
            (Reply::new(e.status(), e.to_string()), None)
        }
    }
}

/// Safety net: an upload dropped without an explicit end (a panic, a path
/// nobody foresaw) still gives back its claim and quota and keeps its
/// partial resumable. The normal paths call `abandon`/`discard` on a worker.
impl Drop for Upload {
    fn drop(&mut self) {
        self.abandon();
    }
}
