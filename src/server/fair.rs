//! A job queue served round-robin across lanes, for the worker pools: a
//! lane is a client address (password checks) or a user (file work). One
//! FIFO let whoever queued most be served most: a thousand wrong logins
//! from twenty addresses made a real login wait behind all of them, and
//! four sessions listing a huge directory made every other user's `stat`
//! wait behind their listings. Here each lane with work waiting gets one
//! job in turn, so a job waits for at most one job of every other busy
//! lane (plus the jobs already running), however many the others queued.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Condvar, Mutex, MutexGuard};

/// A blocking multi-consumer queue, fair across lanes `K`.
pub struct FairQueue<K, T> {
    state: Mutex<Lanes<K, T>>,
    ready: Condvar,
}

struct Lanes<K, T> {
    /// Waiting jobs of each lane that has some (no empty queues).
    queues: HashMap<K, VecDeque<T>>,
    /// Lanes with jobs waiting, in the order they are served: a lane is
    /// here exactly when it has a queue.
    turn: VecDeque<K>,
    closed: bool,
}

impl<K: Hash + Eq + Clone, T> Default for FairQueue<K, T> {
    fn default() -> Self {
        FairQueue {
            state: Mutex::new(Lanes {
                queues: HashMap::new(),
                turn: VecDeque::new(),
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }
}

impl<K: Hash + Eq + Clone, T> FairQueue<K, T> {
    fn state(&self) -> MutexGuard<'_, Lanes<K, T>> {
        // Every change below leaves the two fields consistent before any
        // call that could panic, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `job` at the end of `lane`; a lane that had nothing waiting
    /// takes its turn after the lanes already waiting.
    pub fn push(&self, lane: K, job: T) {
        let mut s = self.state();
        match s.queues.get_mut(&lane) {
            Some(q) => q.push_back(job),
            None => {
                s.queues.insert(lane.clone(), VecDeque::from([job]));
                s.turn.push_back(lane);
            }
        }
        drop(s);
        self.ready.notify_one();
    }

    /// The next job, waiting for one; None once the queue is closed and
    /// drained.
    pub fn pop(&self) -> Option<T> {
        let mut s = self.state();
        loop {
            if let Some(job) = s.next() {
                return Some(job);
            }
            if s.closed {
                return None;
            }
            s = self.ready.wait(s).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// Wakes every waiting `pop`: they return what is left, then None.
    pub fn close(&self) {
        self.state().closed = true;
        self.ready.notify_all();
    }

    /// Jobs waiting, all lanes together (the metrics' queue depth).
    pub fn len(&self) -> usize {
        self.state().queues.values().map(VecDeque::len).sum()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.state().turn.is_empty()
    }
}

impl<K: Hash + Eq + Clone, T> Lanes<K, T> {
    /// One job of the lane whose turn it is; that lane goes to the back
    /// if it has more.
    fn next(&mut self) -> Option<T> {
        let lane = self.turn.pop_front()?;
        let queue = self.queues.get_mut(&lane)?;
        let job = queue.pop_front();
        if queue.is_empty() {
            self.queues.remove(&lane);
        } else {
            self.turn.push_back(lane);
        }
        job
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn drain(q: &FairQueue<&'static str, u32>) -> Vec<u32> {
        let mut out = Vec::new();
        while !q.is_empty() {
            out.extend(q.pop());
        }
        out
    }

    #[test]
    fn lanes_take_turns_and_each_keeps_its_order() {
        let q = FairQueue::default();
        for i in 0..5 {
            q.push("flood", i);
        }
        q.push("alice", 100);
        q.push("bob", 200);
        q.push("alice", 101);
        assert_eq!(q.len(), 8);
        assert_eq!(drain(&q), vec![0, 100, 200, 1, 101, 2, 3, 4]);
        assert!(q.is_empty());
    }

    #[test]
    fn a_newcomer_waits_for_one_job_per_busy_lane_at_most() {
        let q = FairQueue::default();
        let lanes = ["a", "b", "c", "d"];
        for round in 0..100 {
            for lane in lanes {
                q.push(lane, round);
            }
        }
        // Some of the flood has been served already.
        for _ in 0..7 {
            q.pop();
        }
        q.push("late", 9999);
        let before = drain(&q).iter().position(|&j| j == 9999).unwrap();
        assert!(before <= lanes.len(), "waited behind {before} jobs");
    }

    #[test]
    fn an_emptied_lane_goes_to_the_back_when_it_comes_again() {
        let q = FairQueue::default();
        q.push("a", 1);
        q.push("b", 2);
        assert_eq!(q.pop(), Some(1));
        q.push("a", 3);
        q.push("b", 4);
        // b was waiting: it goes first, then a, then b's second job.
        assert_eq!(drain(&q), vec![2, 3, 4]);
    }

    #[test]
    fn close_wakes_waiters_after_the_rest_is_served() {
        let q = Arc::new(FairQueue::<u8, u32>::default());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let q = Arc::clone(&q);
                std::thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Some(j) = q.pop() {
                        got.push(j);
                    }
                    got
                })
            })
            .collect();
        for i in 0..30 {
            q.push((i % 3) as u8, i);
        }
        q.close();
        let mut all: Vec<u32> = waiters
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort();
        assert_eq!(all, (0..30).collect::<Vec<_>>());
    }
}
