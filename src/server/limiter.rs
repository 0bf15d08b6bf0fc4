//! Per-address limits kept on the loop: open connections per IP, and failed
//! logins per IP with a growing delay and then a lockout (vsftpd's
//! `delay_failed_login`, unFTP's failed-logins policy). The tables are
//! bounded: connections by `max_connections`, failures by
//! `MAX_FAILED_LOGIN_ENTRIES` (the oldest entry is evicted), logins
//! waiting for a password check by the connections (see `logins.rs`).
//!
//! The lockout rule lives here and nowhere else: [`Limiter::gate`] before
//! a registration is tried, [`Limiter::admit_login`] before a login's
//! password is checked (a check in flight counts against its address, so
//! an address can't buy more hashes than the limit by sending its logins
//! all at once), [`Limiter::judge`] when a login's result is in, and
//! [`Limiter::job_done`] / [`Limiter::next_turn`] when a check ends.

mod logins;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::Limits;
use crate::limits::MAX_FAILED_LOGIN_ENTRIES;
use crate::proto::{Reply, Status};
pub use logins::Admission;

struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// What to do with a failed login.
#[derive(Debug, PartialEq, Eq)]
pub enum Penalty {
    /// Answer after this delay.
    Delay(Duration),
    /// The address is now locked out for this long.
    LockedOut(Duration),
}

/// What to answer a login, once its password was checked.
#[derive(Debug)]
pub enum Judgement {
    /// Logged in.
    Pass,
    /// Answer this now (not a wrong password, or locked out meanwhile).
    Answer(Reply),
    /// A wrong password: answer `reply` at `until`, not before.
    Hold { reply: Reply, until: Instant },
    /// A wrong password that locked the address out for `secs`.
    LockOut { reply: Reply, secs: u64 },
}

#[derive(Default)]
pub struct Limiter {
    open: HashMap<IpAddr, usize>,
    total: usize,
    failures: HashMap<IpAddr, Failures>,
    /// Password checks in flight and logins waiting for one.
    logins: logins::Logins,
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

    pub fn record_failure(&mut self, ip: IpAddr, now: Instant, limits: &Limits) -> Penalty {
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
            return Penalty::LockedOut(lockout);
        }
        let factor = 1u64 << (f.count - 1).min(16);
        Penalty::Delay(Duration::from_millis(
            limits.failed_login_delay_ms.saturating_mul(factor),
        ))
    }

    pub fn record_success(&mut self, ip: IpAddr) {
        self.failures.remove(&ip);
    }

    /// May `ip` try a registration now? Else the reply that says how long
    /// it is locked out. (A login asks [`Limiter::admit_login`].)
    pub fn gate(&mut self, ip: IpAddr, now: Instant) -> Result<(), Reply> {
        match self.locked(ip, now) {
            Some(left) => Err(locked_out(left)),
            None => Ok(()),
        }
    }

    /// Decides what a checked login gets, and counts it.
    pub fn judge<T>(
        &mut self,
        ip: IpAddr,
        now: Instant,
        limits: &Limits,
        result: &Result<T, Reply>,
    ) -> Judgement {
        match result {
            // Other logins from this address failed while this one was
            // hashing, and locked it out: it loses too.
            Ok(_) => match self.locked(ip, now) {
                Some(left) => Judgement::Answer(locked_out(left)),
                None => {
                    self.record_success(ip);
                    Judgement::Pass
                }
            },
            Err(reply) if reply.status() != Some(Status::AuthFailed) => {
                Judgement::Answer(reply.clone())
            }
            Err(reply) => match self.record_failure(ip, now, limits) {
                Penalty::Delay(d) => Judgement::Hold {
                    reply: reply.clone(),
                    until: now + d,
                },
                Penalty::LockedOut(d) => Judgement::LockOut {
                    reply: locked_out(d),
                    secs: d.as_secs(),
                },
            },
        }
    }
}

/// The reply to a locked-out address: how long to wait, rounded up (a
/// client that waits exactly this long is let in).
pub fn locked_out(left: Duration) -> Reply {
    let secs = left.as_millis().div_ceil(1000).max(1) as u64;
    let mut r = Reply::new(
        Status::TooManyFailures,
        format!("too many failed logins from your address; try again in {secs}s"),
    );
    r.retry_after = Some(secs);
    r
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
            Penalty::Delay(Duration::from_millis(100))
        );
        assert_eq!(
            l.record_failure(ip, t, &limits),
            Penalty::Delay(Duration::from_millis(200))
        );
        assert!(matches!(
            l.record_failure(ip, t, &limits),
            Penalty::LockedOut(_)
        ));
        assert!(l.locked(ip, t).is_some());
        assert!(l.locked(ip, t + Duration::from_secs(61)).is_none());
        let other: IpAddr = "::2".parse().unwrap();
        assert!(l.locked(other, t).is_none());
    }
}
