//! Logins on their way to a password check. Each check costs an argon2
//! hash, so an address may have at most as many checks queued or running
//! as it has failures left before its lockout: a check in flight counts
//! against its address as if it had failed already, from the moment it is
//! queued until its job ends. Its address's other logins wait here, in
//! order and without costing anything (the connection keeps its job, in
//! `State::LoginWait`); as checks end, the loop asks [`Limiter::next_turn`]
//! which of them may try again (`Event::Turn`): they are checked, or get
//! `429` at once if the address got locked out meanwhile. A failed check
//! whose client hung up before its answer counts all the same: hanging up
//! must not buy more guesses.
//!
//! The auth pool serves checks round-robin across addresses
//! (`workers::Lane::Addr`), so a flood from some addresses delays a login
//! from another by about one check per flooding address, whatever the
//! flood's size.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{locked_out, lockout_exempt, Limiter};
use crate::config::Limits;
use crate::proto::{Reply, Status};
use crate::server::Outcome;

/// A connection as the loop addresses it: its slot and its id (the id
/// tells a reused slot apart).
pub type Waiter = (usize, u64);

#[derive(Default)]
pub(super) struct Logins {
    /// Password checks queued or running, per address...
    checking: HashMap<IpAddr, u32>,
    /// ...and the address of each, by connection id (a connection has at
    /// most one job in flight).
    checks: HashMap<u64, IpAddr>,
    /// Logins waiting for their address to have a check to spare, in the
    /// order they asked; at most one per connection, and a connection
    /// leaves when it is removed ([`Limiter::forget_login`]).
    waiting: HashMap<IpAddr, VecDeque<Waiter>>,
    /// Addresses whose checks ended since the loop last asked
    /// [`Limiter::next_turn`]: only theirs can have a turn to give.
    freed: Vec<IpAddr>,
}

/// What a login gets when it asks for its password check.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Check it now; it counts against its address until its job ends.
    Check,
    /// Its address has as many checks in flight as failures left: wait
    /// for `Event::Turn`.
    Wait,
    /// The address is locked out: answer this.
    Refused(Reply),
}

impl Limiter {
    /// Whether the login of `conn` from `ip` may have its password checked
    /// now. Checks in flight count against the address as if they had
    /// failed already, so however many logins it sends at once, it never
    /// gets more checks than failures it has left before a lockout.
    pub fn admit_login(
        &mut self,
        ip: IpAddr,
        conn: Waiter,
        now: Instant,
        limits: &Limits,
    ) -> Admission {
        if let Some(left) = self.locked(ip, now) {
            self.refused(ip);
            return Admission::Refused(locked_out(left));
        }
        if !self.has_room(ip, now, limits) {
            let queue = self.logins.waiting.entry(ip).or_default();
            if !queue.contains(&conn) {
                queue.push_back(conn);
            }
            return Admission::Wait;
        }
        *self.logins.checking.entry(ip).or_default() += 1;
        self.logins.checks.insert(conn.1, ip);
        Admission::Check
    }

    /// Recent failures plus checks in flight leave `ip` another check.
    fn has_room(&self, ip: IpAddr, now: Instant, limits: &Limits) -> bool {
        let lockout = Duration::from_secs(limits.lockout_secs);
        // An exempt address is never locked out, so its failures leave
        // its checks in flight alone (else its logins would wait for a
        // turn that never comes); only the checks in flight are capped.
        let failed = self
            .failures
            .get(&ip)
            .filter(|f| now.duration_since(f.last) <= lockout && !lockout_exempt(ip, limits))
            .map_or(0, |f| f.count);
        let checking = self.logins.checking.get(&ip).copied().unwrap_or(0);
        failed.saturating_add(checking) < limits.max_failed_logins
    }

    /// A job of connection `conn_id` finished (`alive`: the connection is
    /// still there to hear it). If it was a password check, it no longer
    /// counts against its address, whose waiting logins may now have a
    /// turn ([`Limiter::next_turn`]); if it failed and its client is gone,
    /// it counts as a failure (a live connection's result is judged by
    /// [`Limiter::judge`]).
    pub fn job_done(
        &mut self,
        conn_id: u64,
        alive: bool,
        outcome: &Outcome,
        now: Instant,
        limits: &Limits,
    ) {
        let Some(ip) = self.logins.checks.remove(&conn_id) else {
            return;
        };
        if let Some(n) = self.logins.checking.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.logins.checking.remove(&ip);
            }
        }
        self.logins.freed.push(ip);
        let failed = matches!(outcome, Outcome::Login(Err(r))
            if r.status() == Some(Status::AuthFailed));
        if failed && !alive {
            let _ = self.record_failure(ip, now, limits);
        }
    }

    /// The next waiting login whose turn has come: its address has a check
    /// to spare, or is locked out (so it is answered at once). The loop
    /// sends it `Event::Turn`, and it asks [`Limiter::admit_login`] again;
    /// call until None.
    pub fn next_turn(&mut self, now: Instant, limits: &Limits) -> Option<Waiter> {
        while let Some(&ip) = self.logins.freed.last() {
            if self.locked(ip, now).is_some() || self.has_room(ip, now, limits) {
                if let Some(conn) = self.logins.pop_waiting(ip) {
                    return Some(conn);
                }
            }
            self.logins.freed.pop();
        }
        None
    }

    /// Connection `conn_id` from `ip` is gone: it no longer waits. (A check
    /// it has running still counts until its job ends.)
    pub fn forget_login(&mut self, ip: IpAddr, conn_id: u64) {
        if let Some(queue) = self.logins.waiting.get_mut(&ip) {
            queue.retain(|&(_, id)| id != conn_id);
            if queue.is_empty() {
                self.logins.waiting.remove(&ip);
            }
        }
    }
}

impl Logins {
    fn pop_waiting(&mut self, ip: IpAddr) -> Option<Waiter> {
        let queue = self.waiting.get_mut(&ip)?;
        let conn = queue.pop_front();
        if queue.is_empty() {
            self.waiting.remove(&ip);
        }
        conn
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed() -> Outcome {
        Outcome::Login(Err(Reply::new(Status::AuthFailed, "no")))
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
        // Three at once are checked; the next two wait for them.
        for id in 1..=3 {
            assert_eq!(
                l.admit_login(ip, (id as usize, id), t, &limits),
                Admission::Check
            );
        }
        assert_eq!(l.admit_login(ip, (4, 4), t, &limits), Admission::Wait);
        assert_eq!(l.admit_login(ip, (5, 5), t, &limits), Admission::Wait);
        assert_eq!(l.next_turn(t, &limits), None);
        let other: IpAddr = "10.0.0.10".parse().unwrap();
        assert_eq!(l.admit_login(other, (6, 6), t, &limits), Admission::Check);
        // One failed: still three against the address.
        l.job_done(1, true, &failed(), t, &limits);
        l.record_failure(ip, t, &limits);
        assert_eq!(l.next_turn(t, &limits), None);
        // One succeeded: the failures are forgiven, both may try again.
        l.job_done(2, true, &Outcome::Nothing, t, &limits);
        l.record_success(ip);
        assert_eq!(l.next_turn(t, &limits), Some((4, 4)));
        assert_eq!(l.admit_login(ip, (4, 4), t, &limits), Admission::Check);
        assert_eq!(l.next_turn(t, &limits), Some((5, 5)));
        assert_eq!(l.admit_login(ip, (5, 5), t, &limits), Admission::Check);
        assert_eq!(l.next_turn(t, &limits), None);
        // Two of those fail, and one whose client hung up: locked out,
        // and whoever waits is refused without a check.
        assert_eq!(l.admit_login(ip, (7, 7), t, &limits), Admission::Wait);
        l.job_done(3, true, &failed(), t, &limits);
        l.record_failure(ip, t, &limits);
        l.job_done(4, true, &failed(), t, &limits);
        l.record_failure(ip, t, &limits);
        l.job_done(5, false, &failed(), t, &limits);
        assert!(l.locked(ip, t).is_some());
        assert_eq!(l.next_turn(t, &limits), Some((7, 7)));
        assert!(matches!(
            l.admit_login(ip, (7, 7), t, &limits),
            Admission::Refused(_)
        ));
        assert_eq!(l.next_turn(t, &limits), None);
        // An unknown or repeated end changes nothing.
        l.job_done(99, false, &failed(), t, &limits);
        l.job_done(3, false, &failed(), t, &limits);
        l.job_done(6, true, &Outcome::Nothing, t, &limits);
        assert_eq!(l.next_turn(t, &limits), None);
        let x = &l.logins;
        assert!(x.checking.is_empty() && x.checks.is_empty() && x.waiting.is_empty());
    }

    #[test]
    fn a_connection_that_leaves_no_longer_waits() {
        let limits = Limits {
            max_failed_logins: 1,
            ..Limits::default()
        };
        let mut l = Limiter::default();
        let ip: IpAddr = "10.0.0.11".parse().unwrap();
        let t = Instant::now();
        assert_eq!(l.admit_login(ip, (1, 1), t, &limits), Admission::Check);
        assert_eq!(l.admit_login(ip, (2, 2), t, &limits), Admission::Wait);
        assert_eq!(l.admit_login(ip, (2, 2), t, &limits), Admission::Wait);
        assert_eq!(l.admit_login(ip, (3, 3), t, &limits), Admission::Wait);
        l.forget_login(ip, 2);
        // The check of a connection that is gone still counts until it ends.
        l.forget_login(ip, 1);
        assert_eq!(l.next_turn(t, &limits), None);
        l.job_done(1, false, &Outcome::Nothing, t, &limits);
        assert_eq!(l.next_turn(t, &limits), Some((3, 3)));
        assert_eq!(l.next_turn(t, &limits), None);
    }
}
