//! Bandwidth limits, sans I/O: token buckets per user (shared by all of a
//! user's sessions, so ten connections get no more than one: pyftpdlib
//! #597) and one global bucket per direction. Before moving file bytes a
//! connection asks [`Throttle::grant`] for them; the answer is a number of
//! bytes and the moment they may move. A moment in the future means: park
//! on the loop's timer heap until then, then move them without asking
//! again. Nothing here sleeps, and nothing blocks a thread.
//!
//! Each bucket is kept as a virtual clock (GCRA): `tat` is the moment its
//! tokens ran dry, every grant pushes it on by bytes ÷ rate, and a grant
//! that finds no tokens is *reserved* for the moment they will be there.
//! Reserving at once makes waiting sessions queue in the order they asked:
//! two connections woken at the same instant can't take turns forever at a
//! third's expense. Buckets start empty (as rclone's) and bank at most a
//! tenth of a second of their rate, so over any stretch of seconds the
//! bytes moved stay within a few percent of the limit. Grants are at least
//! a small chunk (a fiftieth of a second, 512 bytes to 256 KiB), so a
//! parked connection is not woken for a handful of bytes.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Which way the bytes go, seen from the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Client to server (put).
    Up,
    /// Server to client (get).
    Down,
}

/// The answer to a request for bytes: move `bytes` at `at` (at once when
/// `at` is not after now). They are reserved until then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    pub bytes: u64,
    pub at: Instant,
}

/// One token bucket as a virtual clock.
#[derive(Debug)]
struct Bucket {
    /// Bytes per second (never 0: no limit means no bucket).
    rate: u64,
    /// How much time's worth of tokens it may bank.
    burst: Duration,
    /// When the tokens granted so far are all paid for; before `now`
    /// means tokens are banked (at most `burst`'s worth).
    tat: Instant,
}

impl Bucket {
    fn new(rate: u64, now: Instant) -> Bucket {
        let mut b = Bucket {
            rate,
            burst: Duration::ZERO,
            tat: now,
        };
        b.set_rate(rate);
        b
    }

    fn set_rate(&mut self, rate: u64) {
        self.rate = rate;
        let burst = (rate / 10).max(self.min_grant());
        self.burst = self.time_for(burst);
    }

    /// The smallest grant worth waking up for.
    fn min_grant(&self) -> u64 {
        (self.rate / 50).clamp(512, 256 * 1024)
    }

    /// How long `bytes` take at the rate (rounded up).
    fn time_for(&self, bytes: u64) -> Duration {
        let nanos = (u128::from(bytes) * 1_000_000_000).div_ceil(u128::from(self.rate));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// `tat`, but no further back than the burst allows.
    fn start(&self, now: Instant) -> Instant {
        self.tat.max(now.checked_sub(self.burst).unwrap_or(now))
    }

    /// Whole bytes banked now.
    fn available(&self, now: Instant) -> u64 {
        let banked = now.saturating_duration_since(self.start(now)).as_nanos();
        u64::try_from(banked * u128::from(self.rate) / 1_000_000_000).unwrap_or(u64::MAX)
    }

    /// The most this bucket would grant of `want` now: what it has banked,
    /// or else a worthwhile chunk (reserved for later).
    fn chunk(&self, want: u64, now: Instant) -> u64 {
        want.min(self.available(now).max(self.min_grant()))
    }

    /// Reserves `bytes`; returns when they may move.
    fn take(&mut self, bytes: u64, now: Instant) -> Instant {
        self.tat = self.start(now) + self.time_for(bytes);
        // Banked tokens cover them at once; otherwise when tat is reached.
        if self.tat <= now {
            now
        } else {
            self.tat
        }
    }

    fn give_back(&mut self, bytes: u64) {
        let t = self.time_for(bytes);
        self.tat = self.tat.checked_sub(t).unwrap_or(self.tat);
    }
}

/// Limits in bytes per second for each direction; 0 is no limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rates {
    pub up: u64,
    pub down: u64,
}

impl Rates {
    fn get(&self, dir: Direction) -> u64 {
        match dir {
            Direction::Up => self.up,
            Direction::Down => self.down,
        }
    }
}

/// A pair of optional buckets, up and down.
#[derive(Debug, Default)]
struct Pair {
    up: Option<Bucket>,
    down: Option<Bucket>,
}

impl Pair {
    fn new(rates: Rates, now: Instant) -> Pair {
        let mut p = Pair::default();
        p.set(rates, now);
        p
    }

    /// New rates; a bucket keeps its tokens (up to its new burst).
    fn set(&mut self, rates: Rates, now: Instant) {
        for dir in [Direction::Up, Direction::Down] {
            let rate = rates.get(dir);
            let slot = self.get_mut(dir);
            match (slot.as_mut(), rate) {
                (_, 0) => *slot = None,
                (Some(b), r) => b.set_rate(r),
                (None, r) => *slot = Some(Bucket::new(r, now)),
            }
        }
    }

    fn get_mut(&mut self, dir: Direction) -> &mut Option<Bucket> {
        match dir {
            Direction::Up => &mut self.up,
            Direction::Down => &mut self.down,
        }
    }
}

struct UserEntry {
    buckets: Pair,
    /// Sessions of this user that joined and have not left.
    sessions: usize,
}

/// Every bucket of the server, kept by the loop (so no locks). Entries per
/// user live while the user has sessions: the table is bounded by the
/// number of connections.
pub struct Throttle {
    global: Pair,
    users: HashMap<String, UserEntry>,
}

impl Throttle {
    /// `global`: the config's `limits.rate_up` / `rate_down`.
    pub fn new(global: Rates, now: Instant) -> Throttle {
        Throttle {
            global: Pair::new(global, now),
            users: HashMap::new(),
        }
    }

    /// A session of `user` starts (after login), with the user's limits
    /// from the users file. Also how new limits reach a live user.
    pub fn join(&mut self, user: &str, rates: Rates, now: Instant) {
        match self.users.get_mut(user) {
            Some(e) => {
                e.sessions += 1;
                e.buckets.set(rates, now);
            }
            None => {
                let entry = UserEntry {
                    buckets: Pair::new(rates, now),
                    sessions: 1,
                };
                self.users.insert(user.to_string(), entry);
            }
        }
    }

    /// New limits for a user with sessions (users file reloaded).
    pub fn set_user_rates(&mut self, user: &str, rates: Rates, now: Instant) {
        if let Some(e) = self.users.get_mut(user) {
            e.buckets.set(rates, now);
        }
    }

    /// A session of `user` ended; the last one takes the buckets along.
    pub fn leave(&mut self, user: &str) {
        if let Some(e) = self.users.get_mut(user) {
            e.sessions = e.sessions.saturating_sub(1);
            if e.sessions == 0 {
                self.users.remove(user);
            }
        }
    }

    /// The buckets that bind `user` in `dir`: the global one, the user's.
    fn buckets(&mut self, user: &str, dir: Direction) -> Vec<&mut Bucket> {
        let mut buckets: Vec<&mut Bucket> = Vec::with_capacity(2);
        if let Some(b) = self.global.get_mut(dir).as_mut() {
            buckets.push(b);
        }
        if let Some(b) = self
            .users
            .get_mut(user)
            .and_then(|e| e.buckets.get_mut(dir).as_mut())
        {
            buckets.push(b);
        }
        buckets
    }

    /// Whether any limit binds `user` in `dir` (else its transfers need
    /// no grants at all).
    pub fn limited(&self, user: &str, dir: Direction) -> bool {
        let user_limit = self.users.get(user).is_some_and(|e| match dir {
            Direction::Up => e.buckets.up.is_some(),
            Direction::Down => e.buckets.down.is_some(),
        });
        let global = match dir {
            Direction::Up => self.global.up.is_some(),
            Direction::Down => self.global.down.is_some(),
        };
        user_limit || global
    }

    /// Up to `want` bytes for `user` in `dir`: as many as both the
    /// user's and the global bucket allow, at the later of the moments
    /// each can cover them. `want` = 0 and unlimited directions are granted
    /// in full at once.
    pub fn grant(&mut self, user: &str, dir: Direction, want: u64, now: Instant) -> Grant {
        let buckets = self.buckets(user, dir);
        let bytes = buckets
            .iter()
            .map(|b| b.chunk(want, now))
            .min()
            .unwrap_or(want);
        let mut at = now;
        if bytes > 0 {
            for b in buckets {
                at = at.max(b.take(bytes, now));
            }
        }
        Grant { bytes, at }
    }

    /// `n` bytes moved beyond what was granted (body bytes that came in
    /// with a request): paid for now, so the next grant comes that much
    /// later.
    pub fn charge(&mut self, user: &str, dir: Direction, n: u64, now: Instant) {
        if n > 0 {
            for b in self.buckets(user, dir) {
                b.take(n, now);
            }
        }
    }

    /// `n` granted bytes were not moved (the transfer ended, or moved
    /// less): back into the buckets, so a short read costs nothing.
    pub fn refund(&mut self, user: &str, dir: Direction, n: u64) {
        for b in self.buckets(user, dir) {
            b.give_back(n);
        }
    }

    #[cfg(test)]
    fn users(&self) -> usize {
        self.users.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    /// Moves as much as the throttle allows for `secs` of simulated time:
    /// each of `sessions` asks for `chunk` bytes, moves them at the moment
    /// it is given, and asks again 100 µs later. Returns the bytes moved
    /// per session within the time.
    fn simulate(
        t: &mut Throttle,
        sessions: &[(&str, Direction)],
        chunk: u64,
        secs: u64,
        start: Instant,
    ) -> Vec<u64> {
        let end = start + Duration::from_secs(secs);
        let mut next: Vec<Instant> = vec![start; sessions.len()];
        let mut moved = vec![0u64; sessions.len()];
        loop {
            let (i, &asks) = next.iter().enumerate().min_by_key(|(_, t)| **t).unwrap();
            if asks >= end {
                return moved;
            }
            let (user, dir) = sessions[i];
            let g = t.grant(user, dir, chunk, asks);
            assert!(g.bytes > 0 && g.bytes <= chunk && g.at >= asks, "{g:?}");
            if g.at < end {
                moved[i] += g.bytes;
            }
            next[i] = g.at + Duration::from_micros(100);
        }
    }

    fn within(moved: u64, limit: u64, pct: u64) -> bool {
        moved <= limit + limit * pct / 100 && moved + limit * pct / 100 >= limit
    }

    #[test]
    fn one_user_stays_within_its_rate_over_ten_seconds() {
        let now = Instant::now();
        let mut t = Throttle::new(Rates::default(), now);
        t.join("alice", Rates { up: MIB, down: 0 }, now);
        let moved = simulate(&mut t, &[("alice", Direction::Up)], 4 * MIB, 10, now);
        assert!(within(moved[0], 10 * MIB, 2), "moved {}", moved[0]);
    }

    #[test]
    fn a_users_sessions_share_its_rate_and_others_are_unaffected() {
        let now = Instant::now();
        let mut t = Throttle::new(Rates::default(), now);
        for _ in 0..4 {
            t.join(
                "alice",
                Rates {
                    up: 0,
                    down: 2 * MIB,
                },
                now,
            );
        }
        t.join("bob", Rates::default(), now);
        let sessions = [
            ("alice", Direction::Down),
            ("alice", Direction::Down),
            ("alice", Direction::Down),
            ("alice", Direction::Down),
            ("alice", Direction::Up),
            ("bob", Direction::Down),
        ];
        let moved = simulate(&mut t, &sessions, 256 * 1024, 10, now);
        let alice_down: u64 = moved[..4].iter().sum();
        assert!(within(alice_down, 20 * MIB, 2), "alice moved {alice_down}");
        for m in &moved[..4] {
            assert!(within(*m, 5 * MIB, 10), "equal shares: {moved:?}");
        }
        // Alice's uploads are unlimited, and so is Bob (256 KiB every
        // 100 µs of simulated time).
        assert!(moved[4] > 1000 * MIB, "{moved:?}");
        assert!(moved[5] > 1000 * MIB, "{moved:?}");
    }

    #[test]
    fn the_global_limit_binds_everyone_fairly() {
        let now = Instant::now();
        let mut t = Throttle::new(
            Rates {
                up: 0,
                down: 4 * MIB,
            },
            now,
        );
        t.join(
            "alice",
            Rates {
                up: 0,
                down: 3 * MIB,
            },
            now,
        );
        t.join("bob", Rates::default(), now);
        let sessions = [("alice", Direction::Down), ("bob", Direction::Down)];
        let moved = simulate(&mut t, &sessions, MIB, 10, now);
        assert!(within(moved[0] + moved[1], 40 * MIB, 2), "{moved:?}");
        assert!(within(moved[0], 20 * MIB, 10), "{moved:?}");
        assert!(within(moved[1], 20 * MIB, 10), "{moved:?}");
    }

    #[test]
    fn grants_are_worthwhile_chunks_reserved_in_order() {
        let now = Instant::now();
        let mut t = Throttle::new(Rates::default(), now);
        t.join(
            "alice",
            Rates {
                up: 100_000,
                down: 0,
            },
            now,
        );
        let ms = Duration::from_millis;
        let grant = |t: &mut Throttle, want, at| t.grant("alice", Direction::Up, want, at);
        // Empty at first: a chunk of 2000 bytes (1/50 s), due in 20 ms.
        let g = grant(&mut t, 1 << 20, now);
        assert_eq!((g.bytes, g.at), (2000, now + ms(20)));
        // A second asker queues behind it.
        let g = grant(&mut t, 1 << 20, now);
        assert_eq!((g.bytes, g.at), (2000, now + ms(40)));
        // Banked tokens go at once.
        let later = now + ms(70);
        let g = grant(&mut t, 1 << 20, later);
        assert_eq!((g.bytes, g.at), (3000, later));
        // A refund is banked again: 1000 bytes, less than a chunk, so the
        // next chunk is due 10 ms sooner than without it.
        t.refund("alice", Direction::Up, 1000);
        let g = grant(&mut t, 1 << 20, later);
        assert_eq!((g.bytes, g.at), (2000, later + ms(10)));
        // The bucket banks a tenth of a second at most.
        let much_later = later + Duration::from_secs(60);
        let g = grant(&mut t, 1 << 20, much_later);
        assert_eq!((g.bytes, g.at), (10_000, much_later));
        // Small requests wait only for themselves.
        let g = grant(&mut t, 100, much_later);
        assert_eq!((g.bytes, g.at), (100, much_later + ms(1)));
        // Unlimited directions and users are never held.
        let g = t.grant("alice", Direction::Down, 1 << 30, now);
        assert_eq!((g.bytes, g.at), (1 << 30, now));
        let g = t.grant("carol", Direction::Up, 1 << 30, now);
        assert_eq!((g.bytes, g.at), (1 << 30, now));
        assert!(t.limited("alice", Direction::Up));
        assert!(!t.limited("alice", Direction::Down));
        assert!(!t.limited("carol", Direction::Up));
        // Bytes moved without a grant push the next one back: 1000 bytes
        // are 10 ms at 100 kB/s.
        let g = grant(&mut t, 1 << 20, much_later + ms(1));
        assert_eq!((g.bytes, g.at), (2000, much_later + ms(21)));
        t.charge("alice", Direction::Up, 1000, much_later + ms(1));
        let g = grant(&mut t, 1 << 20, much_later + ms(1));
        assert_eq!((g.bytes, g.at), (2000, much_later + ms(51)));
    }

    #[test]
    fn entries_live_as_long_as_sessions() {
        let now = Instant::now();
        let mut t = Throttle::new(Rates::default(), now);
        t.join(
            "alice",
            Rates {
                up: 1000,
                down: 1000,
            },
            now,
        );
        t.join(
            "alice",
            Rates {
                up: 1000,
                down: 1000,
            },
            now,
        );
        t.leave("alice");
        assert_eq!(t.users(), 1);
        t.leave("alice");
        assert_eq!(t.users(), 0);
        t.leave("alice");
        // New limits from a reloaded users file apply at once.
        t.join("bob", Rates { up: 1000, down: 0 }, now);
        t.set_user_rates("bob", Rates::default(), now);
        let g = t.grant("bob", Direction::Up, 1 << 20, now);
        assert_eq!((g.bytes, g.at), (1 << 20, now));
    }
}
