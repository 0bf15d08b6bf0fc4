//! `--bwlimit RATE`: holds a client's transfers to RATE bytes per second.
//! The client is a blocking program, so it simply sleeps until the bytes
//! it moved are due (the server, which must never block, parks connections
//! on its timers instead: server::throttle). Bytes are moved in slices of
//! a twentieth of a second, so the rate holds over short stretches too.

use std::time::{Duration, Instant};

pub struct Pace {
    /// Bytes per second, never 0.
    rate: u64,
    /// Since when `moved` bytes were counted.
    since: Instant,
    moved: u64,
}

impl Pace {
    /// None for 0 (no limit).
    pub fn new(rate: u64) -> Option<Pace> {
        (rate > 0).then(|| Pace {
            rate,
            since: Instant::now(),
            moved: 0,
        })
    }

    /// The most bytes to move before the next [`Pace::wait`].
    pub fn slice(&self) -> usize {
        usize::try_from(self.rate / 20)
            .unwrap_or(usize::MAX)
            .clamp(4096, 1 << 20)
    }

    /// `n` more bytes moved: sleeps until they are due. Time spent idle
    /// (between transfers, waiting for the server) is not saved up beyond
    /// a second, so a pause is not followed by a burst.
    pub fn wait(&mut self, n: usize) {
        self.moved += n as u64;
        let due = self.since + Duration::from_secs_f64(self.moved as f64 / self.rate as f64);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > Duration::from_secs(1) {
            self.since = now - Duration::from_secs(1);
            self.moved = self.rate;
        }
    }
}

/// Writes `bytes` to `out`, paced when there is a limit.
pub fn write_paced(
    out: &mut dyn std::io::Write,
    bytes: &[u8],
    pace: Option<&mut Pace>,
) -> std::io::Result<()> {
    let Some(pace) = pace else {
        return out.write_all(bytes);
    };
    for slice in bytes.chunks(pace.slice()) {
        out.write_all(slice)?;
        pace.wait(slice.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_the_rate() {
        assert!(Pace::new(0).is_none());
        let mut p = Pace::new(1 << 20).unwrap();
        assert_eq!(p.slice(), 52_428);
        let start = Instant::now();
        for _ in 0..10 {
            p.wait(26_214); // 10 x 1/40 s worth
        }
        let secs = start.elapsed().as_secs_f64();
        assert!((0.24..0.35).contains(&secs), "{secs}");
    }
}
