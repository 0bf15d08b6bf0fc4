//! Worker pools for everything that may take milliseconds: password hashing
//! (the auth pool) and file operations and transfers (the io pool). Two
//! pools, so a burst of logins never delays a `cd` or a download. A job's
//! result goes back to the loop through a channel and a mio `Waker`; a job
//! that answers [`Outcome::Again`] is put at the back of its lane instead
//! (a transfer that spent its byte budget lets others run without a trip
//! through the loop).
//!
//! Each pool serves its queue round-robin across lanes ([`FairQueue`]):
//! password checks by client address, file work by user, cleanups in a
//! lane of their own, so no address or user can make the others wait
//! behind everything it queued. Queue bound: each connection has at most
//! one job in flight, so a queue never holds more than
//! `limits.max_connections` jobs (plus cleanups). A panic inside a job is
//! caught and reported as [`Outcome::Panicked`]: it ends that connection,
//! never the server.

use std::cell::RefCell;
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crossbeam_channel::Sender;
use mio::{Token, Waker};

use super::fair::FairQueue;
use super::Outcome;
use crate::limits::PUMP_BUF;

pub type Job = Box<dyn FnOnce() -> Outcome + Send>;

/// A finished job, addressed to the connection that asked for it. The id
/// guards against a slab slot reused by a newer connection.
pub struct Completion {
    pub token: Token,
    pub conn_id: u64,
    pub outcome: Outcome,
}

/// Whose turn a job waits for (see [`FairQueue`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// A client address: password checks (and anything before login), so
    /// a flood from some addresses can't starve a login from another.
    Addr(IpAddr),
    /// A user, all of their sessions together.
    User(String),
    /// Cleanup for connections that are gone.
    Cleanup,
}

/// A job waiting in a pool, with whom it answers to.
struct Queued {
    lane: Lane,
    token: Token,
    conn_id: u64,
    job: Job,
}

pub struct Pool {
    queue: Arc<FairQueue<Lane, Queued>>,
}

impl Pool {
    pub fn new(
        name: &str,
        threads: usize,
        done: Sender<Completion>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Pool> {
        let queue = Arc::new(FairQueue::default());
        for i in 0..threads.max(1) {
            let worker = Worker {
                queue: Arc::clone(&queue),
                done: done.clone(),
                waker: Arc::clone(&waker),
            };
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker.run())?;
        }
        Ok(Pool { queue })
    }

    /// Jobs waiting for a worker (the metrics' queue depth).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues `job` of connection `conn_id` at the back of `lane`.
    pub fn submit(&self, lane: Lane, token: Token, conn_id: u64, job: Job) {
        self.queue.push(
            lane.clone(),
            Queued {
                lane,
                token,
                conn_id,
                job,
            },
        );
    }
}

impl Drop for Pool {
    /// The threads finish what is queued, then end.
    fn drop(&mut self) {
        self.queue.close();
    }
}

struct Worker {
    /// This pool's queue: where jobs come from, and where a job that goes
    /// again returns (at the back of its lane).
    queue: Arc<FairQueue<Lane, Queued>>,
    done: Sender<Completion>,
    waker: Arc<Waker>,
}

impl Worker {
    fn run(self) {
        while let Some(q) = self.queue.pop() {
            let outcome = catch_unwind(AssertUnwindSafe(q.job)).unwrap_or(Outcome::Panicked);
            if let Outcome::Again(job) = outcome {
                self.queue.push(q.lane.clone(), Queued { job, ..q });
                continue;
            }
            let done = Completion {
                token: q.token,
                conn_id: q.conn_id,
                outcome,
            };
            if self.done.send(done).is_err() {
                return;
            }
            let _ = self.waker.wake();
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` with this worker thread's scratch buffer (`PUMP_BUF` bytes).
/// Buffers belong to workers, not connections: a slow or idle connection
/// holds no buffer at all.
pub fn with_scratch<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        if s.len() < PUMP_BUF {
            s.resize(PUMP_BUF, 0);
        }
        f(&mut s[..])
    })
}
