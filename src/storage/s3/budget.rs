//! The memory all uploads to the store may hold at once. A part must be
//! whole in memory before it is sent (its SHA-256 goes in a header ahead of
//! its body), so every upload holds up to one part; with 1024 connections
//! and 8 MiB parts that could be 8 GiB. Uploads take their part buffer from
//! this budget and give it back when the part is sent or the upload ends;
//! one that cannot get room within a deadline fails (the user retries).

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The shared budget, in bytes.
#[derive(Debug)]
pub struct BufferBudget {
    total: u64,
    free: Mutex<u64>,
    freed: Condvar,
}

/// Room taken from a [`BufferBudget`]; given back on drop.
#[derive(Debug)]
pub struct Permit {
    budget: Arc<BufferBudget>,
    bytes: u64,
}

/// No room came free in time.
#[derive(Debug, thiserror::Error)]
#[error("too many uploads to the object store at once ({want} bytes of part buffer not free within {waited:?}); try again")]
pub struct NoRoom {
    pub want: u64,
    pub waited: Duration,
}

impl BufferBudget {
    pub fn new(total: u64) -> Arc<BufferBudget> {
        Arc::new(BufferBudget {
            total,
            free: Mutex::new(total),
            freed: Condvar::new(),
        })
    }

    /// Takes `bytes` (at most the whole budget), waiting up to `wait` for
    /// other uploads to give room back.
    pub fn take(self: &Arc<Self>, bytes: u64, wait: Duration) -> Result<Permit, NoRoom> {
        let bytes = bytes.min(self.total);
        let deadline = Instant::now() + wait;
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < bytes {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NoRoom {
                    want: bytes,
                    waited: wait,
                });
            }
            free = self
                .freed
                .wait_timeout(free, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= bytes;
        Ok(Permit {
            budget: Arc::clone(self),
            bytes,
        })
    }

    /// Bytes not taken now.
    pub fn free(&self) -> u64 {
        *self.free.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut free = self.budget.free.lock().unwrap_or_else(|p| p.into_inner());
        *free += self.bytes;
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_taken_and_given_back() {
        let b = BufferBudget::new(100);
        let p1 = b.take(60, Duration::ZERO).unwrap();
        assert_eq!(b.free(), 40);
        assert!(b.take(60, Duration::from_millis(20)).is_err());
        drop(p1);
        assert_eq!(b.free(), 100);
        // More than the whole budget takes the whole budget.
        let all = b.take(1000, Duration::ZERO).unwrap();
        assert_eq!(b.free(), 0);
        drop(all);
    }

    #[test]
    fn a_waiter_gets_room_freed_by_another_thread() {
        let b = BufferBudget::new(100);
        let p = b.take(100, Duration::ZERO).unwrap();
        let b2 = Arc::clone(&b);
        let t = std::thread::spawn(move || b2.take(50, Duration::from_secs(30)).is_ok());
        std::thread::sleep(Duration::from_millis(20));
        drop(p);
        assert!(t.join().unwrap());
    }
}
