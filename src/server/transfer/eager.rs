//! Runs of eager puts, handled in one worker job. A client uploading many
//! small files sends each `put` with its body and `done` right behind it
//! (`eager`), many files ahead of the replies. Handling each file as three
//! jobs (open, body, commit) costs six thread wake-ups per file; this job
//! takes the connection's transport and goes through as many of them as are
//! already on the wire, the same steps in the same order, answering each.
//!
//! The job stops at the first thing it doesn't handle itself — a request
//! that is not an eager put, a body or trailer still on the way, a budget
//! of files — and hands the connection back to the loop in that state.

use super::upload::{finish, Upload};
use super::PumpStatus;
use crate::limits::{FRAME_HEADER_LEN, MAX_REQUEST_FRAME};
use crate::proto::frame::{self, Check};
use crate::proto::message::decode_request;
use crate::proto::Request;
use crate::server::cmd::{put, Ctx};
use crate::server::io::Io;
use crate::server::{Outcome, TransferLog};

/// Files one job handles before it lets other connections' jobs run.
const BATCH: usize = 64;

/// Where the connection stands when the batch job ends.
pub enum BatchEnd {
    /// Reading requests again (the next one, if any, is in `rbuf`).
    Ready,
    /// An upload's body is still arriving.
    Upload(Box<Upload>),
    /// An upload waits for its `done` trailer.
    Trailer(Box<Upload>),
    /// The peer is gone (the upload, if any, is abandoned by the caller).
    Closed(Option<Box<Upload>>),
}

/// Handles the eager put `first` and the ones queued behind it.
pub fn run(ctx: &Ctx, io: &mut Io, first: Request, fsync: bool) -> (BatchEnd, Vec<TransferLog>) {
    let mut logs = Vec::new();
    let mut req = first;
    for n in 1.. {
        let Request::Put {
            path,
            size,
            offset,
            mkdirs,
            eager: true,
            mtime,
        } = req
        else {
            unreachable!("only eager puts start or continue a batch");
        };
        let (mut up, reply) = match put::begin(ctx, &path, size, offset, mkdirs, true, mtime) {
            Outcome::UploadBegun(Ok(x)) => x,
            _ => unreachable!("an eager put always begins (or discards) its body"),
        };
        io.send(&reply);
        match up.pump(io) {
            PumpStatus::Done => {}
            PumpStatus::Closed => return (BatchEnd::Closed(Some(up)), logs),
            PumpStatus::WouldBlock | PumpStatus::Yield => return (BatchEnd::Upload(up), logs),
        }
        // The trailer.
        match next_request(io) {
            Some(Request::Done { sha256 }) => {
                if up.failure.is_none() {
                    let log = up.log();
                    let (reply, leftover) = finish(up, &sha256, fsync);
                    io.send(&reply);
                    if let Some(old) = leftover {
                        // The reply first; freeing a large file can wait.
                        let _ = io.flush();
                        old.remove();
                    }
                    logs.push(log);
                }
            }
            // Not (yet) a trailer: the loop takes it from here.
            _ => return (BatchEnd::Trailer(up), logs),
        }
        let _ = io.flush();
        if n == BATCH {
            // The next request stays in `rbuf` for the loop.
            break;
        }
        match peek_request(io) {
            Some(next @ Request::Put { eager: true, .. }) => {
                consume_frame(io);
                req = next;
            }
            _ => break,
        }
    }
    (BatchEnd::Ready, logs)
}

/// The next complete request in `rbuf` (reading more if the socket has
/// it), without consuming it. None if incomplete, or not a request.
fn peek_request(io: &mut Io) -> Option<Request> {
    loop {
        match frame::check(&io.rbuf, MAX_REQUEST_FRAME) {
            Ok(Check::Complete { end }) => {
                let text = frame::payload(&io.rbuf[..end]).ok()?;
                return decode_request(text).ok();
            }
            Ok(Check::Incomplete { .. }) => match io.fill(MAX_REQUEST_FRAME + FRAME_HEADER_LEN) {
                Ok(crate::server::io::Fill::Data | crate::server::io::Fill::Full) => {}
                _ => return None,
            },
            Err(_) => return None,
        }
    }
}

fn consume_frame(io: &mut Io) {
    if let Ok(Check::Complete { end }) = frame::check(&io.rbuf, MAX_REQUEST_FRAME) {
        io.consume(end);
    }
}

/// The next request if it is complete, consumed only when it is `done`.
fn next_request(io: &mut Io) -> Option<Request> {
    let req = peek_request(io)?;
    if matches!(req, Request::Done { .. }) {
        consume_frame(io);
    }
    Some(req)
}
