//! Logins on their way to a password check. Each check costs an argon2
//! hash, so an address may have at most as many checks queued or running
//! as it has failures left before its lockout ([`Limiter::admit_login`]): checks
//! in flight count against it as if they had failed already. Its other
//! logins wait here, in order, without costing anything, and go on as
//! checks end (all of them, if those logins succeed), or get `429` at once
//! if the address got locked out meanwhile. The auth pool serves checks
//! round-robin across addresses (`Lane::Addr`), so a flood from some
//! addresses delays a login from another by about one check per flooding
//! address, whatever the flood's size.
//!
//! [`Limiter::admit_login`]: super::limiter::Limiter::admit_login

use std::net::IpAddr;
use std::time::Instant;

use mio::Token;

use super::conn::{locked_out, State};
use super::limiter::Admission;
use super::workers::{Completion, Job, Lane};
use super::{Outcome, Server};
use crate::proto::Status;

impl Server {
    /// Sends the login job of `token` to its password check, or makes it
    /// wait for its address's turn. (The lockout was checked by the
    /// caller.)
    pub(super) fn submit_login(&mut self, token: Token, job: Job) {
        let conn = &self.conns[token.0];
        let (ip, id) = (conn.peer.ip(), conn.id);
        match self
            .limiter
            .admit_login(ip, Instant::now(), &self.shared.config.limits)
        {
            Admission::Wait => self.limiter.park(ip, (token, id, job)),
            _ => self.check(ip, token, id, job),
        }
    }

    fn check(&mut self, ip: IpAddr, token: Token, conn_id: u64, job: Job) {
        self.limiter.begin_attempt(conn_id, ip);
        self.auth_pool.submit(Lane::Addr(ip), token, conn_id, job);
    }

    /// Every finished job comes here first (then to `complete`): a login's
    /// check that ended frees a place for its address's waiting logins.
    /// A failed check whose connection hung up before its answer counts
    /// as a failure all the same: hanging up must not buy more guesses.
    pub(super) fn on_completion(&mut self, c: Completion) {
        let attempt = self.limiter.end_attempt(c.conn_id);
        if let Some(ip) = attempt {
            let gone = self.conns.get(c.token.0).is_none_or(|x| x.id != c.conn_id);
            let failed = matches!(&c.outcome, Outcome::Login(Err(r))
                if r.status() == Some(Status::AuthFailed));
            if gone && failed {
                let limits = &self.shared.config.limits;
                let _ = self.limiter.record_failure(ip, Instant::now(), limits);
            }
        }
        self.complete(c);
        if let Some(ip) = attempt {
            self.admit_waiting(ip);
        }
    }

    /// Lets the waiting logins of `ip` go on as far as its checks allow:
    /// to their check, or to a `429` if the address is locked out now.
    fn admit_waiting(&mut self, ip: IpAddr) {
        let limits = self.shared.config.limits.clone();
        while let Some(((token, id, job), admission)) =
            self.limiter.next_waiting(ip, Instant::now(), &limits)
        {
            // Gone while it waited: its job is dropped unrun.
            let Some(conn) = self.conns.get_mut(token.0).filter(|c| c.id == id) else {
                continue;
            };
            match admission {
                Admission::LockedOut(left) => {
                    conn.trying = None;
                    conn.state = State::Ready;
                    if let Some(io) = conn.io.as_mut() {
                        io.send(&locked_out(left));
                    }
                    self.drive(token);
                }
                _ => self.check(ip, token, id, job),
            }
        }
    }
}
