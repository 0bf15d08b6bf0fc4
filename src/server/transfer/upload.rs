//! The upload state machine: one for every way a body arrives (raw bytes
//! of an announced size, chunks, or a data connection read to its end) and
//! every way it starts (a `put` answered with `150`, or an eager `put` whose
//! body is already on the way). Bytes are hashed and written to the hidden
//! partial as they arrive; nothing is visible under the real name until the
//! digest has matched.
//!
//! An upload has one set of ends ([`End`]): committed, refused (the partial
//! is removed), or kept for resuming. A failure in the middle of the body
//! (disk full, quota passed by a chunked body) is told at once ([`Step::Say`])
//! and the rest of the body and its trailer are read and dropped, so the
//! session stays in step.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::progress::Progress;

use crate::proto::{Reply, Status};
use crate::server::cmd::{fs_reply, fs_status};
use crate::server::front::body::{Body, Piece};
use crate::server::front::Decoded;
use crate::server::io::{Fill, Io};
use crate::server::metrics::TransferOp;
use crate::server::quota::{Account, Reservation};
use crate::server::session::Gate;
use crate::server::TransferLog;
use crate::storage::{Committed, FsError, NotCommitted, UploadHandle, VPath};

pub struct Upload {
    pub account: Arc<Account>,
    /// None once the upload failed (the rest of the body is dropped).
    handle: Option<Box<dyn UploadHandle>>,
    hasher: Sha256,
    body: Body,
    /// Body bytes received by this transfer.
    pub received: u64,
    reservation: Option<Reservation>,
    pub path: VPath,
    /// Resume offset: bytes of the partial before this transfer.
    offset: u64,
    /// Whether this upload holds the path's resumable-partial claim.
    claimed: bool,
    pub started: Instant,
    /// The error already told, if the upload failed.
    failure: Option<Status>,
    /// Whether the in-progress mark was given back.
    ended: bool,
    /// Whether a `done` trailer with the client's digest follows the body
    /// (native); without one the end of the body is the end.
    trailer: bool,
    /// The body's length is known only at its end (a data connection read
    /// to EOF): each piece is reserved against the quota as it arrives.
    reserve_as_read: bool,
    /// False for an upload refused before it began (an eager put whose
    /// body is read and dropped): its refusal was logged already.
    opened: bool,
    /// Bytes so far, for `miniftp admin who`.
    pub progress: Arc<Progress>,
}

/// What one call of [`Upload::advance`] came to.
pub enum Step {
    /// The socket has nothing more now.
    WouldBlock,
    /// The byte budget is spent; go on later.
    Yield,
    /// Tell the client this now; the upload goes on (dropping the rest).
    Say(Reply),
    /// The upload is over; `next` is input for the caller to handle as a
    /// new request (what came after a failed upload's body, or input that
    /// ends the connection).
    Ended { end: End, next: Option<Decoded> },
    /// The peer is gone (or the socket failed) before the end.
    Closed,
    /// The session's account was taken back before the commit: the
    /// upload was kept, and this reply ends the session.
    Revoked(Reply),
}

/// How an upload ended.
pub enum End {
    /// Stored under its name (`226`); `later` is cleanup for after the
    /// reply (freeing a large replaced file).
    Committed {
        reply: Reply,
        later: Option<Box<dyn FnOnce() + Send>>,
    },
    /// Not stored and the partial is gone; the reply says why.
    Refused(Reply),
    /// Not stored; the partial is kept for a resume. A reply when the
    /// client is to hear why (another request came instead of the trailer).
    Kept(Option<Reply>),
    /// The remains of an upload that failed earlier were read; it was
    /// answered already.
    Drained,
}

impl End {
    /// The reply to send, if any.
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            End::Committed { reply, .. } | End::Refused(reply) | End::Kept(Some(reply)) => {
                Some(reply)
            }
            End::Kept(None) | End::Drained => None,
        }
    }

    /// The status this end gives the transfer (None: kept for a
    /// resume); `failure` is the upload's, told earlier, for `Drained`.
    pub fn status(&self, failure: Option<Status>) -> Option<Status> {
        match self {
            End::Committed { reply, .. } | End::Refused(reply) => reply.status(),
            End::Kept(_) => None,
            End::Drained => failure,
        }
    }

    /// The stored file's SHA-256, once committed.
    pub fn sha256(&self) -> Option<String> {
        match self {
            End::Committed { reply, .. } => reply.sha256.clone(),
            _ => None,
        }
    }
}

/// What `cmd::put` found when it opened the partial.
pub struct Opened {
    pub account: Arc<Account>,
    pub handle: Box<dyn UploadHandle>,
    pub reservation: Reservation,
    pub path: VPath,
    pub offset: u64,
    pub claimed: bool,
}

impl Upload {
    /// An upload whose body arrives as `body`; `trailer` as on [`Upload`].
    pub fn new(opened: Opened, body: Body, trailer: bool) -> Upload {
        let size = body.remaining().map(|r| opened.offset + r);
        let progress = Progress::new(
            TransferOp::Put,
            opened.path.to_string(),
            size,
            opened.offset,
        );
        Upload {
            reserve_as_read: matches!(body, Body::UntilEof),
            hasher: opened.handle.prefix(),
            handle: Some(opened.handle),
            account: opened.account,
            body,
            received: 0,
            reservation: Some(opened.reservation),
            path: opened.path,
            offset: opened.offset,
            claimed: opened.claimed,
            started: Instant::now(),
            failure: None,
            ended: false,
            trailer,
            opened: true,
            progress,
        }
    }

    /// An upload refused while its body is already on the way (`eager`):
    /// it reads and drops the body and its trailer; `reply` is the refusal,
    /// already told.
    pub fn refused(account: Arc<Account>, path: VPath, body: Body, reply: &Reply) -> Upload {
        let progress = Progress::new(TransferOp::Put, path.to_string(), None, 0);
        Upload {
            account,
            handle: None,
            hasher: Sha256::new(),
            body,
            received: 0,
            reservation: None,
            path,
            offset: 0,
            claimed: false,
            started: Instant::now(),
            failure: Some(reply.status().unwrap_or(Status::BadArguments)),
            ended: true,
            trailer: true,
            reserve_as_read: false,
            opened: false,
            progress,
        }
    }

    /// The log entry of this upload.
    pub fn log(&self) -> TransferLog {
        TransferLog {
            op: TransferOp::Put,
            path: self.path.to_string(),
            bytes: self.received,
            started: self.started,
        }
    }

    /// Moves the upload on as far as the input allows: body bytes already
    /// buffered, then the socket, then (native) the trailer. `budget`
    /// bounds the body bytes read in this call.
    pub fn advance(
        &mut self,
        io: &mut Io,
        budget: &mut usize,
        fsync: bool,
        gate: &mut Gate,
    ) -> Step {
        if !self.body.is_done() {
            if let Some(step) = self.take_buffered(io) {
                return step;
            }
        }
        if !self.body.is_done() {
            if let Some(step) = self.read_body(io, budget) {
                return step;
            }
        }
        if !self.trailer {
            return self.finish_gated(None, fsync, gate);
        }
        self.await_trailer(io, fsync, gate)
    }

    /// Body bytes that came in with the request (or after a trailer).
    fn take_buffered(&mut self, io: &mut Io) -> Option<Step> {
        if io.rbuf.is_empty() {
            return None;
        }
        let buffered = std::mem::take(&mut io.rbuf);
        let (used, say) = self.feed(&buffered);
        io.rbuf = buffered[used..].to_vec();
        say.map(Step::Say)
    }

    /// Reads body bytes from the socket until the body ends (None), the
    /// socket would block, the budget is spent or something must be told.
    fn read_body(&mut self, io: &mut Io, budget: &mut usize) -> Option<Step> {
        if self.handle.is_some() && super::pump::parallel_worth_it(&self.body) {
            return super::pump::receive_parallel(self, io, budget);
        }
        super::pump::receive_serial(self, io, budget)
    }

    /// Feeds body bytes; returns how many belonged to the body (it stops
    /// at the body's end) and a failure to tell, if one happened.
    pub fn feed(&mut self, data: &[u8]) -> (usize, Option<Reply>) {
        let mut used = 0;
        let mut say = None;
        while used < data.len() && !self.body.is_done() {
            let (piece, n) = self.body.next(&data[used..]);
            used += n;
            let failed = match piece {
                Piece::Data(bytes) if self.reserve_as_read => {
                    self.grow(bytes.len() as u64).or_else(|| self.write(bytes))
                }
                Piece::Data(bytes) => self.write(bytes),
                Piece::Chunk(len) => self.grow(len),
                Piece::Nothing => None,
            };
            say = say.or(failed);
        }
        (used, say)
    }

    /// The body's framing state, for the pumps.
    pub(super) fn body_mut(&mut self) -> &mut Body {
        &mut self.body
    }

    /// Writes payload bytes to the partial (or drops them after a failure).
    pub(super) fn write(&mut self, bytes: &[u8]) -> Option<Reply> {
        self.received += bytes.len() as u64;
        let handle = self.handle.as_mut()?;
        self.hasher.update(bytes);
        let e = handle.write_all(bytes).err()?;
        Some(self.fail_write(e))
    }

    /// Writes bytes that someone else hashed (the parallel pump).
    pub(super) fn write_unhashed(&mut self, bytes: &[u8]) -> Option<Reply> {
        self.received += bytes.len() as u64;
        let handle = self.handle.as_mut()?;
        let e = handle.write_all(bytes).err()?;
        Some(self.fail_write(e))
    }

    /// A write to the partial failed: the partial is removed, unless the
    /// storage is only unavailable for now (then it is kept for a resume).
    fn fail_write(&mut self, e: std::io::Error) -> Reply {
        let e = FsError::from_io(e, &self.path);
        if matches!(e, FsError::Unavailable { .. }) {
            let reply = fs_reply(e);
            self.failure = reply.status();
            self.keep();
            return reply;
        }
        self.fail(fs_reply(e))
    }

    pub(super) fn hasher_mut(&mut self) -> &mut Sha256 {
        &mut self.hasher
    }

    pub(super) fn failed(&self) -> bool {
        self.handle.is_none()
    }

    /// Why the upload failed, once it has; None while it goes on.
    pub fn failure(&self) -> Option<Status> {
        self.failure
    }

    /// Whether the upload began (see the `opened` field).
    pub fn began(&self) -> bool {
        self.opened
    }

    /// Reserves the next chunk of a body of unknown size.
    fn grow(&mut self, len: u64) -> Option<Reply> {
        self.handle.as_ref()?;
        let e = self.reservation.as_mut()?.grow(len).err()?;
        let msg = format!("{}: {e}", self.path);
        Some(self.fail(Reply::new(Status::QuotaExceeded, msg)))
    }

    /// Gives up the partial after a failure mid-body; returns the reply.
    fn fail(&mut self, reply: Reply) -> Reply {
        self.failure = reply.status();
        self.discard();
        reply
    }

    /// Waits for the `done` trailer (or whatever comes instead).
    fn await_trailer(&mut self, io: &mut Io, fsync: bool, gate: &mut Gate) -> Step {
        let (decoded, fill) = match io.decode(true) {
            Ok(x) => x,
            Err(_) => return Step::Closed,
        };
        let failed = self.failure.is_some();
        let ended = |end, next| Step::Ended { end, next };
        match decoded {
            Decoded::Incomplete => match fill {
                Some(Fill::Eof) => Step::Closed,
                _ => Step::WouldBlock,
            },
            Decoded::Request(crate::proto::Request::Done { .. }) if failed => {
                ended(End::Drained, None)
            }
            Decoded::Request(crate::proto::Request::Done { sha256 }) => {
                self.finish_gated(Some(&sha256), fsync, gate)
            }
            // Input after which the stream can't be read: the connection
            // ends, and a live upload is kept for a resume.
            fatal @ Decoded::Invalid { fatal: true, .. } => {
                let end = if failed {
                    End::Drained
                } else {
                    self.keep();
                    End::Kept(None)
                };
                ended(end, Some(fatal))
            }
            // No op to go by, or a bad `done`: its error, and the trailer
            // is still awaited.
            Decoded::Invalid { reply, op, .. } if op.as_deref().is_none_or(|o| o == "done") => {
                Step::Say(reply)
            }
            // A failed upload is over: what follows is a new request.
            other if failed => ended(End::Drained, Some(other)),
            // Another request ends a live upload; the 503 is its answer.
            Decoded::Request(req) => ended(self.keep_for(req.op()), None),
            Decoded::Invalid { op, .. } => ended(self.keep_for(op.as_deref().unwrap_or("?")), None),
            // Never: FTP bodies have no trailer.
            Decoded::Ftp(_) => ended(self.keep_for("an FTP command"), None),
        }
    }

    /// Ends a live upload because `op` came instead of its trailer: `503`,
    /// the partial kept for a resume.
    fn keep_for(&mut self, op: &str) -> End {
        self.keep();
        End::Kept(Some(Reply::new(
            Status::BadSequence,
            format!(
                "expected the done trailer after the body, got {op}; \
                 the upload was kept for resuming"
            ),
        )))
    }

    /// [`Upload::finish`], once the session's grant is checked again.
    fn finish_gated(&mut self, client_sha256: Option<&str>, fsync: bool, gate: &mut Gate) -> Step {
        if self.handle.is_some() {
            if let Some(end) = gate.check() {
                self.keep();
                return Step::Revoked(end);
            }
        }
        let end = self.finish(client_sha256, fsync);
        Step::Ended { end, next: None }
    }

    /// Checks the digest (the client's, when it sent one) and makes the
    /// upload visible.
    pub fn finish(&mut self, client_sha256: Option<&str>, fsync: bool) -> End {
        let Some(handle) = self.handle.take() else {
            return End::Drained;
        };
        let digest: [u8; 32] = self.hasher.clone().finalize().into();
        let hex_digest = hex::encode(digest);
        if let Some(theirs) = client_sha256.filter(|c| !c.eq_ignore_ascii_case(&hex_digest)) {
            self.handle = Some(handle);
            self.discard();
            let mut r = Reply::new(
                Status::IntegrityFailure,
                format!(
                    "{}: SHA-256 mismatch (received {hex_digest}, sender said {theirs}); \
                     the upload was discarded and any previous version is untouched",
                    self.path
                ),
            );
            r.sha256 = Some(hex_digest);
            return End::Refused(r);
        }
        self.commit(handle, &digest, fsync)
    }

    fn commit(&mut self, handle: Box<dyn UploadHandle>, digest: &[u8; 32], fsync: bool) -> End {
        let account = Arc::clone(&self.account);
        let size = self.offset + self.received;
        // The new bytes are stored already (in the partial): count them
        // before the commit makes them visible, so a racing session that
        // replaces or removes this file right after can never subtract
        // them first.
        match self.reservation.take() {
            Some(r) => r.commit(self.received),
            None => account.add_used(self.received),
        }
        let result = handle.commit(digest, fsync);
        self.release_claim();
        match result {
            Ok(Committed { replaced, later }) => {
                account.sub_used(replaced);
                let mut r = Reply::new(
                    Status::TransferComplete,
                    format!("{}: stored {size} bytes, SHA-256 verified", self.path),
                );
                r.size = Some(size);
                r.sha256 = Some(hex::encode(digest));
                End::Committed { reply: r, later }
            }
            // The backend removed the partial (counted in full above), or
            // kept `kept` bytes of it when the storage was unavailable.
            Err(NotCommitted { error, kept }) => {
                account.sub_used(size.saturating_sub(kept));
                let reply = Reply::new(fs_status(&error), error.to_string());
                if kept > 0 {
                    End::Kept(Some(reply))
                } else {
                    End::Refused(reply)
                }
            }
        }
    }

    /// Removes the partial and gives back what it held (quota, claim).
    pub fn discard(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort(false);
            self.account.sub_used(self.offset);
        }
        self.reservation = None;
        self.release_claim();
    }

    /// Keeps a resumable partial for a later `put` with an offset (client
    /// gone, server shutting down, another request came); a private
    /// partial is removed.
    pub fn keep(&mut self) {
        if let Some(handle) = self.handle.take() {
            let left = handle.abort(true);
            if left >= self.offset {
                self.account.add_used(left - self.offset);
            } else {
                self.account.sub_used(self.offset - left);
            }
        }
        self.reservation = None;
        self.release_claim();
    }

    /// Ends an upload that stopped before its body did (its data
    /// connection never came, or was refused): kept for resuming like
    /// [`Upload::keep`], unless it holds nothing (no byte arrived and it
    /// resumed nothing): an empty partial is not worth keeping.
    pub fn abandon(&mut self) {
        if self.received == 0 && self.offset == 0 {
            self.discard();
        } else {
            self.keep();
        }
    }

    /// Gives back the resumable-partial claim and the in-progress mark.
    /// Runs once, whichever way the upload ends.
    fn release_claim(&mut self) {
        if self.claimed {
            self.account.release_upload(&self.path);
            self.claimed = false;
        }
        if !self.ended {
            self.account.upload_ended(&self.path);
            self.ended = true;
        }
    }
}

/// Safety net: an upload dropped without an end (a panic, a path nobody
/// foresaw) still gives back its claim and quota and keeps its partial
/// resumable. The normal paths end it on a worker.
impl Drop for Upload {
    fn drop(&mut self) {
        self.keep();
    }
}
