//! Worker pools for everything that may take milliseconds: password hashing
//! (the auth pool) and file operations and transfers (the io pool). Two
//! pools, so a burst of logins never delays a `cd` or a download. A job's
//! result goes back to the loop through a channel and a mio `Waker`.
//!
//! Queue bound: each connection has at most one job in flight, so a queue
//! never holds more than `limits.max_connections` jobs. Each pool serves
//! its queue round-robin across lanes ([`FairQueue`]): password checks by
//! client address, file work by user, so no address or user can make the
//! others wait behind everything it queued. A panic inside a job is caught
//! and reported as [`Outcome::Panicked`]: it ends that connection, never
//! the server.

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
    /// A client address: password checks, so a flood from some addresses
    /// can't starve a login from another.
    Addr(IpAddr),
    /// A user, all of their sessions together.
    User(String),
    /// Cleanup for connections that are gone.
    Cleanup,
}

pub struct Pool {
    queue: Arc<FairQueue<Lane, (Token, u64, Job)>>,
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
            let queue: Arc<FairQueue<Lane, (Token, u64, Job)>> = Arc::clone(&queue);
            let done = done.clone();
            let waker = Arc::clone(&waker);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    while let Some((token, conn_id, job)) = queue.pop() {
                        let outcome = catch_unwind(AssertUnwindSafe(job))
                            .unwrap_or_else(|_| Outcome::Panicked);
                        if done
                            .send(Completion {
                                token,
                                conn_id,
                                outcome,
                            })
                            .is_err()
                        {
                            return;
                        }
                        let _ = waker.wake();
                    }
                })?;
        }
        Ok(Pool { queue })
    }

    /// Queues `job` for `conn_id` in `lane`.
    pub fn submit(&self, lane: Lane, token: Token, conn_id: u64, job: Job) {
        self.queue.push(lane, (token, conn_id, job));
    }
}

impl Drop for Pool {
    /// The threads finish what is queued, then end.
    fn drop(&mut self) {
        self.queue.close();
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
