//! Per-address limits kept on the loop: open connections per IP, and failed
//! logins per IP with a growing delay and then a lockout (vsftpd's
//! `delay_failed_login`, unFTP's failed-logins policy). A login attempt
//! counts against its address from the moment it is queued for its
//! password check, not only once it has failed: an address has at most
//! `max_failed_logins` checks queued or running, minus its recent failures,
//! so logins sent all at once can't buy more hashes than the limit.
//! The tables are bounded: connections and attempts by `max_connections`,
//! failures by `MAX_FAILED_LOGIN_ENTRIES` (the oldest entry is evicted).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use mio::Token;

use super::workers::Job;
use crate::config::Limits;
use crate::limits::MAX_FAILED_LOGIN_ENTRIES;

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// What to do with a failed login.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Answer after this delay.
    Delay(Duration),
    /// The address is now locked out for this long.
    LockedOut(Duration),
}

#[derive(Default)]
pub struct Limiter {
    open: HashMap<IpAddr, usize>,
    total: usize,
    failures: HashMap<IpAddr, Failures>,
    /// Password checks queued or running, per address...
    checking: HashMap<IpAddr, u32>,
    /// ...and the address of each, by connection id.
    attempts: HashMap<u64, IpAddr>,
    /// Logins waiting for their address to have a check to spare, in
    /// order; at most one per connection.
    waiting: HashMap<IpAddr, VecDeque<Parked>>,
}

/// A login waiting for its password check: its connection and its job.
pub type Parked = (Token, u64, Job);

/// What to do with a login that asks for a password check.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Check it now.
    Check,
    /// The address has as many checks queued or running as it has
    /// failures left before a lockout: wait for one of them to end.
    Wait,
    /// The address is locked out for this long.
    LockedOut(Duration),
}

impl Limiter {
    /// Admits a new connection from `ip`, or says which limit it hit.
    pub fn admit(&mut self, ip: IpAddr, limits: &Limits) -> Result<(), &'static str> {
        if self.total >= limits.max_connections {
            return Err("too many connections to this server, try again later");
        }
        let n = self.open.entry(ip).or_default();
        if *n >= limits.max_connections_per_ip {
            return Err("too many connections from your address, try again later");
        }
        *n += 1;
        self.total += 1;
        Ok(())
    }

    pub fn release(&mut self, ip: IpAddr) {
        if let Some(n) = self.open.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.open.remove(&ip);
            }
            self.total -= 1;
        }
    }

    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.total
    }

    /// Time left on a lockout of `ip`, if it is locked out.
    pub fn locked(&mut self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let f = self.failures.get_mut(&ip)?;
        match f.locked_until {
            Some(until) if until > now => Some(until - now),
            Some(_) => {
                self.failures.remove(&ip);
                None
            }
            None => None,
        }
    }

    /// Whether a login from `ip` may have its password checked now. Checks
    /// queued or running count against the address as if they had failed
    /// already, so however many logins it sends at once, it never gets
    /// more checks than failures it has left before a lockout.
    pub fn admit_login(&mut self, ip: IpAddr, now: Instant, limits: &Limits) -> Admission {
        if let Some(left) = self.locked(ip, now) {
            return Admission::LockedOut(left);
        }
        let lockout = Duration::from_secs(limits.lockout_secs);
        let failed = self
            .failures
            .get(&ip)
            .filter(|f| now.duration_since(f.last) <= lockout)
            .map_or(0, |f| f.count);
        let checking = self.checking.get(&ip).copied().unwrap_or(0);
        if failed.saturating_add(checking) >= limits.max_failed_logins {
            return Admission::Wait;
        }
        Admission::Check
    }

    /// Counts the password check of connection `conn_id` from `ip`, which
    /// [`Limiter::admit_login`] let through, until [`Limiter::end_attempt`].
    pub fn begin_attempt(&mut self, conn_id: u64, ip: IpAddr) {
        *self.checking.entry(ip).or_default() += 1;
        self.attempts.insert(conn_id, ip);
    }

    /// The password check of connection `conn_id` is over, whatever its
    /// outcome (also for a connection that is gone); its address, if it
    /// had one running.
    pub fn end_attempt(&mut self, conn_id: u64) -> Option<IpAddr> {
        let ip = self.attempts.remove(&conn_id)?;
        if let Some(n) = self.checking.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.checking.remove(&ip);
            }
        }
        Some(ip)
    }

    /// Keeps a login that must wait ([`Admission::Wait`]).
    pub fn park(&mut self, ip: IpAddr, login: Parked) {
        self.waiting.entry(ip).or_default().push_back(login);
    }

    /// The next waiting login of `ip` that can go on now, and how: to its
    /// check, or refused because the address got locked out meanwhile.
    pub fn next_waiting(
        &mut self,
        ip: IpAddr,
        now: Instant,
        limits: &Limits,
    ) -> Option<(Parked, Admission)> {
        self.waiting.get(&ip)?;
        let admission = self.admit_login(ip, now, limits);
        if admission == Admission::Wait {
            return None;
        }
        let queue = self.waiting.get_mut(&ip)?;
        let login = queue.pop_front()?;
        if queue.is_empty() {
            self.waiting.remove(&ip);
        }
        Some((login, admission))
    }

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant, limits: &Limits) -> Verdict {
        let lockout = Duration::from_secs(limits.lockout_secs);
        if !self.failures.contains_key(&ip) && self.failures.len() >= MAX_FAILED_LOGIN_ENTRIES {
            if let Some(oldest) = self
                .failures
                .iter()
                .min_by_key(|(_, f)| f.last)
                .map(|(ip, _)| *ip)
            {
                self.failures.remove(&oldest);
            }
        }
        let f = self.failures.entry(ip).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        // A failure long after the previous one starts a new count.
        if now.duration_since(f.last) > lockout {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        if f.count >= limits.max_failed_logins {
            f.locked_until = Some(now + lockout);
            return Verdict::LockedOut(lockout);
        }
        let factor = 1u64 << (f.count - 1).min(16);
        Verdict::Delay(Duration::from_millis(
            limits.failed_login_delay_ms.saturating_mul(factor),
        ))
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits() {
        let limits = Limits {
            max_connections: 3,
            max_connections_per_ip: 2,
            ..Limits::default()
        };
        let mut l = Limiter::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.admit(a, &limits).is_ok());
        assert!(l.admit(a, &limits).is_ok());
        assert!(l.admit(a, &limits).is_err());
        assert!(l.admit(b, &limits).is_ok());
        assert!(l.admit(b, &limits).is_err(), "total reached");
        l.release(a);
        assert!(l.admit(b, &limits).is_ok());
        assert_eq!(l.total(), 3);
    }

    #[test]
    fn delay_grows_then_locks_out() {
        let limits = Limits {
            max_failed_logins: 3,
            failed_login_delay_ms: 100,
            lockout_secs: 60,
            ..Limits::default()
        };
        let mut l = Limiter::default();
        let ip: IpAddr = "::1".parse().unwrap();
        let t = Instant::now();
        assert_eq!(
            l.record_failure(ip, t, &limits),
            Verdict::Delay(Duration::from_millis(100))
        );
        assert_eq!(
            l.record_failure(ip, t, &limits),
            Verdict::Delay(Duration::from_millis(200))
        );
        assert!(matches!(
            l.record_failure(ip, t, &limits),
            Verdict::LockedOut(_)
        ));
        assert!(l.locked(ip, t).is_some());
        assert!(l.locked(ip, t + Duration::from_secs(61)).is_none());
        let other: IpAddr = "::2".parse().unwrap();
        assert!(l.locked(other, t).is_none());
    }

    #[test]
    fn checks_in_flight_count_as_failures_until_they_end() {
        let limits = Limits {
            max_failed_logins: 3,
            lockout_secs: 60,
            ..Limits::default()
        };
        let mut l = Limiter::default();
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        let t = Instant::now();
        let job = || -> Parked { (Token(1), 1, Box::new(|| super::super::Outcome::Nothing)) };
        // Three at once are checked; the fourth waits for one of them.
        for id in 1..=3 {
            assert_eq!(l.admit_login(ip, t, &limits), Admission::Check);
            l.begin_attempt(id, ip);
        }
        assert_eq!(l.admit_login(ip, t, &limits), Admission::Wait);
        l.park(ip, job());
        l.park(ip, job());
        assert!(l.next_waiting(ip, t, &limits).is_none());
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        assert_eq!(l.admit_login(other, t, &limits), Admission::Check);
        // One failed: still three against the address.
        assert_eq!(l.end_attempt(1), Some(ip));
        l.record_failure(ip, t, &limits);
        assert!(l.next_waiting(ip, t, &limits).is_none());
        // One succeeded: the failures are forgiven, two may go.
        l.end_attempt(2);
        l.record_success(ip);
        let (_, a) = l.next_waiting(ip, t, &limits).unwrap();
        assert_eq!(a, Admission::Check);
        l.begin_attempt(4, ip);
        assert_eq!(l.admit_login(ip, t, &limits), Admission::Check);
        // Two failures, then the third locks the address out: whoever
        // waits is refused without a check.
        l.end_attempt(3);
        l.record_failure(ip, t, &limits);
        l.end_attempt(4);
        l.record_failure(ip, t, &limits);
        l.record_failure(ip, t, &limits);
        let (_, a) = l.next_waiting(ip, t, &limits).unwrap();
        assert!(matches!(a, Admission::LockedOut(_)));
        assert!(l.next_waiting(ip, t, &limits).is_none());
        // An unknown or repeated end changes nothing.
        assert_eq!(l.end_attempt(99), None);
        assert_eq!(l.end_attempt(3), None);
        assert!(l.checking.is_empty() && l.attempts.is_empty() && l.waiting.is_empty());
    }
}
