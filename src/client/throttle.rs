//! `--bwlimit`: a token bucket shared by every connection of one command,
//! so `-j 4` moves no more than one connection would. Bytes are taken
//! after they move; a debt is paid by sleeping, outside the lock.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
pub struct Throttle {
    /// Bytes per second.
    rate: f64,
    /// Most bytes that may go at once after an idle spell.
    burst: f64,
    /// Tokens (negative: a debt) as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl Throttle {
    pub fn new(bytes_per_sec: u64) -> Throttle {
        let rate = bytes_per_sec.max(1) as f64;
        Throttle {
            rate,
            burst: (rate / 10.0).max(64.0 * 1024.0),
            state: Mutex::new((0.0, Instant::now())),
        }
    }

    /// Accounts for `n` bytes moved, sleeping as long as the rate asks.
    pub fn take(&self, n: usize) {
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
            s.0 = (s.0 + refill).min(self.burst) - n as f64;
            s.1 = now;
            if s.0 < 0.0 {
                -s.0 / self.rate
            } else {
                0.0
            }
        };
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate() {
        let t = Throttle::new(1 << 20);
        let start = Instant::now();
        for _ in 0..8 {
            t.take(64 << 10);
        }
        // 512 KiB at 1 MiB/s: about half a second, less the burst.
        let secs = start.elapsed().as_secs_f64();
        assert!((0.3..2.0).contains(&secs), "{secs}");
    }
}
