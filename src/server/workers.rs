//! Worker pools for everything that may take milliseconds: password hashing
//! (the auth pool) and file operations and transfers (the io pool). Two
//! pools, so a burst of logins never delays a `cd` or a download. A job's
//! result goes back to the loop through a channel and a mio `Waker`.
//!
//! Queue bound: each connection has at most one job in flight, so a queue
//! never holds more than `limits.max_connections` jobs. A panic inside a job
//! is caught and reported as [`Outcome::Panicked`]: it ends that connection,
//! never the server.

use std::cell::RefCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use mio::{Token, Waker};

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

pub struct Pool {
    tx: Sender<(Token, u64, Job)>,
}

impl Pool {
    pub fn new(
        name: &str,
        threads: usize,
        done: Sender<Completion>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded::<(Token, u64, Job)>();
        for i in 0..threads.max(1) {
            let rx: Receiver<(Token, u64, Job)> = rx.clone();
            let done = done.clone();
            let waker = Arc::clone(&waker);
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for (token, conn_id, job) in rx {
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
        Ok(Pool { tx })
    }

    pub fn submit(&self, token: Token, conn_id: u64, job: Job) {
        // The receivers live as long as the process; a send can't fail
        // while the loop runs.
        let _ = self.tx.send((token, conn_id, job));
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
