//! Worker pools for everything that may take milliseconds: password hashing
//! (the auth pool) and file operations and transfers (the io pool). Two
//! pools, so a burst of logins never delays a `cd` or a download. A job's
//! result goes back to the loop through a channel and a mio `Waker`; a job
//! that answers [`Outcome::Again`] is put at the back of its own pool's
//! queue instead (a transfer that spent its byte budget lets others run
//! without a trip through the loop).
//!
//! Queue bound: each connection has at most one job in flight, so a queue
//! never holds more than `limits.max_connections` jobs (plus cleanups). A
//! panic inside a job is caught and reported as [`Outcome::Panicked`]: it
//! ends that connection, never the server.

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

type Queued = (Token, u64, Job);

pub struct Pool {
    tx: Sender<Queued>,
}

impl Pool {
    pub fn new(
        name: &str,
        threads: usize,
        done: Sender<Completion>,
        waker: Arc<Waker>,
    ) -> std::io::Result<Pool> {
        let (tx, rx) = crossbeam_channel::unbounded::<Queued>();
        for i in 0..threads.max(1) {
            let worker = Worker {
                rx: rx.clone(),
                again: tx.clone(),
                done: done.clone(),
                waker: Arc::clone(&waker),
            };
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || worker.run())?;
        }
        Ok(Pool { tx })
    }

    pub fn submit(&self, token: Token, conn_id: u64, job: Job) {
        // The receivers live as long as the process; a send can't fail
        // while the loop runs.
        let _ = self.tx.send((token, conn_id, job));
    }
}

struct Worker {
    rx: Receiver<Queued>,
    /// This pool's own queue, for jobs that go again.
    again: Sender<Queued>,
    done: Sender<Completion>,
    waker: Arc<Waker>,
}

impl Worker {
    fn run(self) {
        for (token, conn_id, job) in &self.rx {
            let outcome = catch_unwind(AssertUnwindSafe(job)).unwrap_or(Outcome::Panicked);
            if let Outcome::Again(job) = outcome {
                let _ = self.again.send((token, conn_id, job));
                continue;
            }
            let done = Completion {
                token,
                conn_id,
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
