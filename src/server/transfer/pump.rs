//! Pump jobs: move a transfer's bytes between the socket and storage on a
//! worker. A pump runs until the socket would block or the transfer ends;
//! when it has moved `PUMP_BUDGET` bytes it puts itself at the back of its
//! pool's queue ([`Outcome::Again`]) so other jobs get their turn, and only
//! comes back to the loop when it needs readiness, is done, is told to
//! stop (`cancel`: shutdown, a kick), or has moved the bytes its
//! bandwidth grant allowed (`limit`: the connection then asks the loop's
//! throttle for more, and parks on a timer until they are due).
//!
//! Every step counts its bytes: in the metrics, in the transfer's
//! [`Progress`](super::progress::Progress), and in `spent` for the
//! throttle.
//!
//! A run of eager puts (small files sent with their bodies and trailers
//! behind their requests) is handled by one upload pump: after a file ends,
//! it decodes the next request with the connection's codec and, while that
//! is another eager put, goes on with it.
//!
//! Where a pump's replies go is its [`Route`]: on the socket it pumps (the
//! native protocol, whose bodies and replies share a connection), or back
//! to the loop (FTP, whose bodies are on a data connection and whose
//! replies go on the control connection through the FTP session).

use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use super::download::{DStep, Download};
use super::progress::Watch;
use super::upload::{End, Step, Upload};
use crate::limits::{EAGER_BATCH, PARALLEL_HASH_MIN, PIPE_BUFS, PUMP_BUDGET, PUMP_BUF};
use crate::proto::{Reply, Request};
use crate::server::audit::{self, Ended};
use crate::server::cmd::{put, Ctx};
use crate::server::front::body::Body;
use crate::server::front::Decoded;
use crate::server::io::Io;
use crate::server::metrics::{self, TransferResult};
use crate::server::session::{Gate, REVOKED};
use crate::server::workers::with_scratch;
use crate::server::Outcome;

/// Where a connection stands when a pump hands it back to the loop.
pub enum After {
    /// The upload waits for more input.
    Upload(Box<Upload>),
    /// The download waits for the socket to take more.
    Download(Box<Download>),
    /// Back to reading requests; `next` was already decoded (it came where
    /// an upload's trailer was expected, or after a run of eager puts).
    Ready(Option<Decoded>),
    /// The peer is gone; the transfer was ended.
    Lost,
    /// The connection is to close after the replies already queued.
    Close(&'static str),
}

/// Where a pump's replies go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// Written on the socket being pumped, in line with the body.
    Inline,
    /// Handed back to the loop in [`Pumped::said`]. The pump then moves
    /// one transfer and stops at its first reply (a failure midway ends
    /// it: the rest of the data connection is not read).
    Back,
}

/// The job's report to the loop.
pub struct Pumped {
    pub io: Box<Io>,
    pub after: After,
    /// The socket was drained (only then may the loop wait for an edge).
    pub drained: bool,
    /// Bytes moved (a step that moved nothing is not activity).
    pub moved: bool,
    /// File bytes moved, for the throttle (may pass the grant by body
    /// bytes that came in with a request).
    pub spent: u64,
    /// Transfers that ended in the job, for the log.
    pub logs: Vec<Ended>,
    /// Replies for the loop to deliver ([`Route::Back`]).
    pub said: Vec<Reply>,
    /// Body bytes the transfer has moved so far, in all its jobs.
    pub bytes: u64,
}

/// Bytes a pump may move before it hands the connection back: what is
/// left of its grant, `PUMP_BUDGET` at most. None: no limit.
fn budget(limit: Option<u64>) -> usize {
    limit.map_or(PUMP_BUDGET, |l| {
        usize::try_from(l).unwrap_or(usize::MAX).min(PUMP_BUDGET)
    })
}

/// Counts `n` bytes moved against the grant and in the metrics; trims the
/// budget so a grant spent on buffered bytes stops the reading too.
fn tally(limit: &mut Option<u64>, spent: &mut u64, budget: &mut usize, n: u64) {
    *spent += n;
    if let Some(left) = limit.as_mut() {
        *left = left.saturating_sub(n);
        *budget = (*budget).min(self::budget(Some(*left)));
    }
}

/// An upload (or a run of eager ones) in a job.
pub struct UploadPump {
    pub io: Box<Io>,
    pub up: Box<Upload>,
    pub ctx: Ctx,
    /// The session's grant, checked before each commit.
    pub gate: Gate,
    pub fsync: bool,
    pub cancel: Arc<AtomicBool>,
    pub logs: Vec<Ended>,
    /// Files ended in this job so far (eager runs stop at `EAGER_BATCH`).
    pub files: usize,
    /// Whether this job moved any bytes.
    pub moved: bool,
    pub route: Route,
    /// Replies kept for the loop ([`Route::Back`]).
    pub said: Vec<Reply>,
    /// Bytes left of the bandwidth grant; None: unlimited.
    pub limit: Option<u64>,
    /// File bytes moved by this job.
    pub spent: u64,
    /// Where `miniftp admin who` looks for the transfer in flight.
    pub watch: Watch,
}

/// Why an upload pump hands the connection back.
enum Stop {
    /// The upload waits for input (`drained`: the socket said so).
    Waiting {
        drained: bool,
    },
    /// Back to requests, with the one already decoded, if any.
    Ready(Option<Decoded>),
    Lost,
    Close(&'static str),
}

impl UploadPump {
    pub fn run(mut self) -> Outcome {
        self.watch.set(Some(&self.up.progress));
        let mut budget = budget(self.limit);
        loop {
            let (before, received) = (budget, self.up.received);
            let step = self
                .up
                .advance(&mut self.io, &mut budget, self.fsync, &mut self.gate);
            let n = self.up.received - received;
            tally(&mut self.limit, &mut self.spent, &mut budget, n);
            self.up.progress.add(n);
            metrics::global().received(n);
            self.moved |= budget < before || n > 0;
            let stop = match step {
                Step::Say(reply) if self.route == Route::Back => {
                    // The upload failed (and discarded its partial).
                    if self.up.began() {
                        let status = reply.status();
                        self.logs.push(Ended {
                            log: self.up.log(),
                            result: audit::result_of(status),
                            status,
                            sha256: None,
                        });
                    }
                    self.said.push(reply);
                    Stop::Ready(None)
                }
                Step::Say(reply) => {
                    self.io.send(&reply);
                    let _ = self.io.flush();
                    continue;
                }
                // The grant is spent: the loop's throttle says when more
                // may come.
                Step::Yield if self.limit == Some(0) => Stop::Waiting { drained: false },
                Step::Yield if !self.cancel.load(Ordering::Relaxed) => {
                    return Outcome::Again(Box::new(move || self.run()))
                }
                Step::Yield => Stop::Waiting { drained: false },
                Step::WouldBlock => Stop::Waiting { drained: true },
                Step::Closed => {
                    self.up.keep();
                    self.note(&End::Kept(None));
                    Stop::Lost
                }
                Step::Revoked(reply) => {
                    self.say(reply);
                    self.note(&End::Kept(None));
                    Stop::Close(REVOKED)
                }
                Step::Ended { end, next } => match self.ended(end, next) {
                    Some(stop) => stop,
                    None => {
                        budget = self::budget(self.limit);
                        continue;
                    }
                },
            };
            return self.back(stop);
        }
    }

    /// Answers an ended upload; goes on with the next eager put if one is
    /// buffered (None), or says how to hand the connection back.
    fn ended(&mut self, end: End, next: Option<Decoded>) -> Option<Stop> {
        if let Some(reply) = end.reply() {
            self.say(reply.clone());
        }
        self.note(&end);
        if let End::Committed {
            later: Some(cleanup),
            ..
        } = end
        {
            // The reply first; freeing a large file can wait.
            cleanup();
        }
        self.files += 1;
        if self.route == Route::Back {
            return Some(Stop::Ready(None));
        }
        let next = match next {
            Some(n) => Some(n),
            None if self.files < EAGER_BATCH => self.io.decode(true).ok().map(|(d, _)| d),
            None => None,
        };
        match next {
            Some(Decoded::Request(Request::Put {
                path,
                size,
                offset,
                mkdirs,
                eager: true,
                mtime,
            })) => {
                let (up, reply) = put::begin_eager(&self.ctx, &path, size, offset, mkdirs, mtime);
                self.io.send(&reply);
                self.up = up;
                self.watch.set(Some(&self.up.progress));
                None
            }
            Some(Decoded::Incomplete) | None => Some(Stop::Ready(None)),
            other => Some(Stop::Ready(other)),
        }
    }

    /// Delivers a reply by the pump's route.
    fn say(&mut self, reply: Reply) {
        match self.route {
            Route::Inline => {
                self.io.send(&reply);
                let _ = self.io.flush();
            }
            Route::Back => self.said.push(reply),
        }
    }

    /// The transfer's end, for the log (an upload refused before it began
    /// was logged as a refusal already).
    fn note(&mut self, end: &End) {
        if !self.up.began() {
            return;
        }
        let status = end.status(self.up.failure());
        self.logs.push(Ended {
            log: self.up.log(),
            result: audit::result_of(status),
            status,
            sha256: end.sha256(),
        });
    }

    fn back(self, stop: Stop) -> Outcome {
        let bytes = self.up.received;
        let (after, drained) = match stop {
            Stop::Waiting { drained } => (After::Upload(self.up), drained),
            Stop::Ready(next) => (After::Ready(next), false),
            Stop::Lost => (After::Lost, false),
            Stop::Close(why) => (After::Close(why), false),
        };
        Outcome::Pumped(Box::new(Pumped {
            io: self.io,
            bytes,
            after,
            drained,
            moved: self.moved || self.files > 0,
            spent: self.spent,
            logs: self.logs,
            said: self.said,
        }))
    }
}

/// A download in a job.
pub struct DownloadPump {
    pub io: Box<Io>,
    pub down: Box<Download>,
    pub cancel: Arc<AtomicBool>,
    /// Whether this job moved any bytes.
    pub moved: bool,
    pub route: Route,
    /// Bytes left of the bandwidth grant; None: unlimited.
    pub limit: Option<u64>,
    /// File bytes moved by this job.
    pub spent: u64,
}

impl DownloadPump {
    pub fn run(mut self) -> Outcome {
        let mut budget = budget(self.limit);
        let (before, sent) = (budget, self.down.sent());
        let step = self.down.advance(&mut self.io, &mut budget);
        let n = self.down.sent() - sent;
        tally(&mut self.limit, &mut self.spent, &mut budget, n);
        self.down.progress.add(n);
        metrics::global().sent(n);
        self.moved |= budget < before;
        let mut said = Vec::new();
        let (after, drained, end) = match step {
            DStep::Yield if self.limit == Some(0) => (None, false, None),
            DStep::Yield if !self.cancel.load(Ordering::Relaxed) => {
                return Outcome::Again(Box::new(move || self.run()))
            }
            DStep::Yield => (None, false, None),
            DStep::WouldBlock => (None, true, None),
            DStep::Done(reply) if self.route == Route::Back => {
                let end = (TransferResult::Ok, reply.status(), reply.sha256.clone());
                said.push(reply);
                (Some(After::Ready(None)), false, Some(end))
            }
            DStep::Done(reply) => {
                self.io.send(&reply);
                let _ = self.io.flush();
                let end = (TransferResult::Ok, reply.status(), reply.sha256);
                (Some(After::Ready(None)), false, Some(end))
            }
            DStep::Closed => (
                Some(After::Lost),
                false,
                Some((TransferResult::Aborted, None, None)),
            ),
        };
        let moved = self.moved || end.is_some();
        let logs = end
            .map(|(result, status, sha256)| Ended {
                log: self.down.log(),
                result,
                status: status.filter(|_| result != TransferResult::Ok),
                sha256,
            })
            .into_iter()
            .collect();
        let bytes = self.down.sent();
        let after = after.unwrap_or(After::Download(self.down));
        Outcome::Pumped(Box::new(Pumped {
            io: self.io,
            after,
            drained,
            moved,
            spent: self.spent,
            logs,
            said,
            bytes,
        }))
    }
}

/// Reads body bytes through the worker's scratch buffer, hashing inline.
/// None once the body is done.
pub(super) fn receive_serial(up: &mut Upload, io: &mut Io, budget: &mut usize) -> Option<Step> {
    with_scratch(|buf| loop {
        if up.body_mut().is_done() {
            return None;
        }
        if *budget == 0 {
            return Some(Step::Yield);
        }
        let want = up.body_mut().want(buf.len().min(*budget));
        match io.transport.read(&mut buf[..want]) {
            Ok(0) if up.body_mut().eof() => return None,
            Ok(0) => return Some(Step::Closed),
            Ok(n) => {
                *budget = budget.saturating_sub(n);
                if let (_, Some(reply)) = up.feed(&buf[..n]) {
                    return Some(Step::Say(reply));
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Some(Step::WouldBlock),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Some(Step::Closed),
        }
    })
}

/// Upload pump jobs running right now, over all connections.
static PUMPING: AtomicUsize = AtomicUsize::new(0);

/// One running parallel receive in [`PUMPING`], counted out on drop, so a
/// pump that panics (caught per connection) doesn't leave the count high
/// and the helper thread off for good.
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

/// Whether a body is big enough to hash on a helper thread. The thread
/// only pays when a core would otherwise idle: with other uploads pumping,
/// the pool keeps both cores busy already.
pub(super) fn parallel_worth_it(body: &Body) -> bool {
    body.remaining().is_some_and(|r| r >= PARALLEL_HASH_MIN) && PUMPING.load(Ordering::Relaxed) == 0
}

/// The receive for a large body: this worker reads and writes while a
/// helper thread hashes the previous buffer, so hashing (the costliest
/// step, ~0.6 s per GiB) overlaps the copy instead of adding to it.
pub(super) fn receive_parallel(up: &mut Upload, io: &mut Io, budget: &mut usize) -> Option<Step> {
    let pumping = Pumping::start();
    if !pumping.alone {
        drop(pumping);
        return receive_serial(up, io, budget);
    }
    let mut hasher = std::mem::take(up.hasher_mut());
    let mut free = take_buffers();
    let (step, hasher, free) = std::thread::scope(|s| {
        let (full_tx, full_rx) = crossbeam_channel::bounded::<(Vec<u8>, usize)>(PIPE_BUFS);
        let (free_tx, free_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let helper = s.spawn(move || {
            for (buf, n) in full_rx {
                sha2::Digest::update(&mut hasher, &buf[..n]);
                let _ = free_tx.send(buf);
            }
            hasher
        });
        let step = receive_into(up, io, budget, &mut free, &free_rx, &full_tx);
        drop(full_tx);
        let hasher = helper.join().unwrap_or_default();
        free.extend(free_rx.try_iter());
        (step, hasher, free)
    });
    *up.hasher_mut() = hasher;
    give_back_buffers(free);
    step
}

/// The receiving side of [`receive_parallel`]: fills buffers from the
/// socket, writes them, and passes them on to be hashed.
fn receive_into(
    up: &mut Upload,
    io: &mut Io,
    budget: &mut usize,
    free: &mut Vec<Vec<u8>>,
    free_rx: &crossbeam_channel::Receiver<Vec<u8>>,
    full_tx: &crossbeam_channel::Sender<(Vec<u8>, usize)>,
) -> Option<Step> {
    loop {
        let remaining = up.body_mut().remaining().filter(|r| *r > 0)?;
        if up.failed() {
            // Failed mid-body: the rest is drained by the plain receive.
            return Some(Step::Yield);
        }
        if *budget == 0 {
            return Some(Step::Yield);
        }
        let mut buf = match free.pop().map_or_else(|| free_rx.recv().ok(), Some) {
            Some(b) => b,
            None => return Some(Step::Closed),
        };
        let want = buf.len().min(remaining as usize).min(*budget);
        let (n, stop) = fill_buffer(io, &mut buf[..want]);
        if n == 0 {
            free.push(buf);
            return Some(stop.unwrap_or(Step::Yield));
        }
        *budget = budget.saturating_sub(n);
        let _ = up.body_mut().next(&buf[..n]);
        if let Some(reply) = up.write_unhashed(&buf[..n]) {
            free.push(buf);
            return Some(Step::Say(reply));
        }
        if full_tx.send((buf, n)).is_err() {
            return Some(Step::Closed);
        }
        if let Some(step) = stop {
            // A body ending right at a stop still counts what came.
            return if up.body_mut().is_done() {
                None
            } else {
                Some(step)
            };
        }
    }
}

/// Fills `buf` as far as the socket allows: a read may return a single TLS
/// record, and handing the hasher 16 KiB at a time costs more in wake-ups
/// than it saves. Returns the bytes read and why it stopped early.
fn fill_buffer(io: &mut Io, buf: &mut [u8]) -> (usize, Option<Step>) {
    let mut n = 0;
    while n < buf.len() {
        match io.transport.read(&mut buf[n..]) {
            Ok(0) => return (n, Some(Step::Closed)),
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return (n, Some(Step::WouldBlock)),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return (n, Some(Step::Closed)),
        }
    }
    (n, None)
}

thread_local! {
    /// Each worker's buffers for parallel receives, kept between jobs.
    static PIPE: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn take_buffers() -> Vec<Vec<u8>> {
    let mut bufs = PIPE.with(|p| std::mem::take(&mut *p.borrow_mut()));
    while bufs.len() < PIPE_BUFS + 1 {
        bufs.push(vec![0u8; PUMP_BUF]);
    }
    bufs
}

fn give_back_buffers(bufs: Vec<Vec<u8>>) {
    PIPE.with(|p| *p.borrow_mut() = bufs);
}
