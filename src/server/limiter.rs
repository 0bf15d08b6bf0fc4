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
//! all at once), [`Limiter::judge`] when a login's result is in (through
//! [`Limiter::record_failure`], which also keeps the addresses of
//! `limits.lockout_exempt` from ever being locked out), and
//! [`Limiter::job_done`] / [`Limiter::next_turn`] when a check ends. The
//! operator lists and lifts lockouts with [`Limiter::lockouts`] and
//! [`Limiter::unlock`] (`miniftp admin`).

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
    /// Attempts refused during the current lockout (only the first is
    /// logged: a locked-out guesser must not flood the log).
    refused: u32,
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
            refused: 0,
        });
        // A failure long after the previous one starts a new count.
        if now.duration_since(f.last) > lockout {
            f.count = 0;
        }
        f.count += 1;
        f.last = now;
        // An exempt address is answered late like any other, but never
        // locked out: someone else's wrong passwords on a shared host
        // must not shut out the cron job that runs there.
        if f.count >= limits.max_failed_logins && !lockout_exempt(ip, limits) {
            f.locked_until = Some(now + lockout);
            return Penalty::LockedOut(lockout);
        }
        // Only an exempt address gets past max_failed_logins: its delay
        // stays at the last one before a lockout.
        let doublings = (f.count - 1).min(limits.max_failed_logins - 1).min(16);
        let factor = 1u64 << doublings;
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
            Some(left) => {
                self.refused(ip);
                Err(locked_out(left))
            }
            None => Ok(()),
        }
    }

    /// Counts an attempt refused by a lockout; true for the first of this
    /// lockout (the one worth a log line).
    fn refused(&mut self, ip: IpAddr) -> bool {
        self.failures.get_mut(&ip).is_some_and(|f| {
            f.refused += 1;
            f.refused == 1
        })
    }

    /// Whether the refusal just counted for `ip` was the first of its
    /// lockout.
    pub fn first_refusal(&self, ip: IpAddr) -> bool {
        self.failures.get(&ip).is_some_and(|f| f.refused == 1)
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
                Some(left) => {
                    self.refused(ip);
                    Judgement::Answer(locked_out(left))
                }
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

    /// Addresses locked out at `now`: (address, failures, time left), for
    /// `miniftp admin lockouts`.
    pub fn lockouts(&self, now: Instant) -> Vec<(IpAddr, u32, Duration)> {
        let mut out: Vec<_> = self
            .failures
            .iter()
            .filter_map(|(ip, f)| {
                let until = f.locked_until.filter(|u| *u > now)?;
                Some((*ip, f.count, until - now))
            })
            .collect();
        out.sort_by_key(|(ip, _, _)| *ip);
        out
    }

    /// `miniftp admin unlock ADDR`: forgets the address's failures and
    /// lockout. True if it had any.
    pub fn unlock(&mut self, ip: IpAddr) -> bool {
        self.failures.remove(&ip.to_canonical()).is_some()
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

/// Whether `ip` is in `limits.lockout_exempt`: its failed logins are still
/// answered late, but never lock it out (so five wrong passwords typed on
/// a host don't shut out the cron job that runs there). An IPv4 address
/// seen as IPv6 (`::ffff:a.b.c.d`) matches IPv4 ranges.
pub fn lockout_exempt(ip: IpAddr, limits: &Limits) -> bool {
    let ip = ip.to_canonical();
    limits.lockout_exempt.iter().any(|net| net.contains(&ip))
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
    fn exempt_ranges_match_v4_v6_and_mapped() {
        let limits = crate::config::Config::parse(
            "[limits]\nlockout_exempt = [\"10.0.0.0/8\", \"2001:db8::1\"]\n",
        )
        .unwrap()
        .limits;
        for (ip, exempt) in [
            ("10.200.3.4", true),
            ("::ffff:10.0.0.9", true),
            ("11.0.0.1", false),
            ("2001:db8::1", true),
            ("2001:db8::2", false),
            ("127.0.0.1", false),
        ] {
            assert_eq!(lockout_exempt(ip.parse().unwrap(), &limits), exempt, "{ip}");
        }
        assert!(!lockout_exempt(
            "10.0.0.1".parse().unwrap(),
            &Limits::default()
        ));
    }

    #[test]
    fn an_exempt_address_is_delayed_but_never_locked_out() {
        let limits = crate::config::Config::parse(
            "[limits]\nmax_failed_logins = 2\nfailed_login_delay_ms = 100\n\
             lockout_exempt = [\"10.0.0.0/8\"]\n",
        )
        .unwrap()
        .limits;
        let mut l = Limiter::default();
        let t = Instant::now();
        let cron: IpAddr = "10.1.2.3".parse().unwrap();
        for want in [100, 200, 200, 200] {
            assert_eq!(
                l.record_failure(cron, t, &limits),
                Penalty::Delay(Duration::from_millis(want))
            );
        }
        assert!(l.gate(cron, t).is_ok());
        let other: IpAddr = "192.0.2.1".parse().unwrap();
        l.record_failure(other, t, &limits);
        assert!(matches!(
            l.record_failure(other, t, &limits),
            Penalty::LockedOut(_)
        ));
        assert!(l.gate(other, t).is_err());
    }

    #[test]
    fn lockouts_are_listed_and_lifted() {
        let limits = Limits {
            max_failed_logins: 2,
            lockout_secs: 60,
            ..Limits::default()
        };
        let mut l = Limiter::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        l.record_failure(a, t, &limits);
        l.record_failure(a, t, &limits);
        l.record_failure(b, t, &limits);
        let later = t + Duration::from_secs(10);
        assert_eq!(l.lockouts(later), vec![(a, 2, Duration::from_secs(50))]);
        // Only the first refusal of a lockout is worth a log line.
        assert!(l.gate(a, later).is_err());
        assert!(l.first_refusal(a));
        assert!(l.gate(a, later).is_err());
        assert!(!l.first_refusal(a));
        assert!(l.unlock("::ffff:192.0.2.1".parse().unwrap()));
        assert!(l.locked(a, later).is_none());
        assert!(l.lockouts(later).is_empty());
        assert!(!l.unlock(a));
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
