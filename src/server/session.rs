//! A logged-in session: who, their shared account, and where they are; and
//! the end of a session whose account was taken back on the server (the
//! user removed or disabled, or given a new password or home by `miniftp
//! useradd` while logged in): a login grants nothing beyond what the
//! users file still says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use super::cmd::Ctx;
use super::quota::Account;
use super::Shared;
use crate::proto::{Reply, Status};
use crate::storage::VPath;
use crate::users::{home_path, User};

pub struct Session {
    pub user: String,
    pub account: Arc<Account>,
    pub cwd: VPath,
    pub since: Instant,
    pub grant: Grant,
}

/// What a login was granted on: the account's name, password hash and
/// home at that moment, and the users database they were last checked
/// against. Cloned into transfer jobs, which check it again before they
/// commit.
#[derive(Clone)]
pub struct Grant {
    user: String,
    password: String,
    home: PathBuf,
    /// `Shared::users_generation` when last checked; it must be read
    /// before the users it describes, so a change in between is never
    /// taken as checked.
    checked: u64,
}

impl Grant {
    pub fn new(user: &User, home: PathBuf, generation: u64) -> Grant {
        Grant {
            user: user.name.clone(),
            password: user.password.clone(),
            home,
            checked: generation,
        }
    }

    /// Why the session may no longer act, if it may not: its user was
    /// removed or disabled, or given a new password or home, since it
    /// logged in. One atomic load while the users file has not changed.
    pub fn revoked(&mut self, shared: &Shared) -> Option<&'static str> {
        let generation = shared.users_generation();
        if generation == self.checked {
            return None;
        }
        let db = shared.users();
        let why = match db.get(&self.user) {
            None => Some("account removed"),
            Some(u) if u.disabled => Some("account disabled"),
            Some(u) if u.password != self.password => Some("password changed"),
            Some(u) if home_path(&shared.config.root, u) != self.home => {
                Some("home directory changed")
            }
            Some(_) => None,
        };
        if why.is_none() {
            self.checked = generation;
        }
        why
    }
}

impl Session {
    /// What a command job needs of the session, on a connection from
    /// `peer`.
    pub fn ctx(&self, peer: std::net::SocketAddr) -> Ctx {
        Ctx {
            account: Arc::clone(&self.account),
            cwd: self.cwd.clone(),
            peer,
        }
    }
}

impl Session {
    /// A gate for work this session hands to a job (see [`Gate`]).
    pub fn gate(&self, shared: &Arc<Shared>, peer: std::net::SocketAddr) -> Gate {
        Gate {
            shared: Arc::clone(shared),
            grant: self.grant.clone(),
            peer,
        }
    }

    /// The end of a session whose grant was revoked: logged, and the
    /// reply it gets; None while the grant holds.
    pub fn check(&mut self, shared: &Shared, peer: std::net::SocketAddr) -> Option<Reply> {
        let why = self.grant.revoked(shared)?;
        Some(revoked_reply(&self.user, peer, why))
    }
}

/// A session's grant as a transfer job carries it: checked again right
/// before an upload is committed, so an account taken back while its body
/// was on the way stores nothing.
pub struct Gate {
    shared: Arc<Shared>,
    grant: Grant,
    peer: std::net::SocketAddr,
}

impl Gate {
    /// None while the grant holds; else the reply that ends the session
    /// (and its log line).
    pub fn check(&mut self) -> Option<Reply> {
        let why = self.grant.revoked(&self.shared)?;
        Some(revoked_reply(&self.grant.user, self.peer, why))
    }
}

/// Why the connection of a revoked session closes (the session-end log).
pub const REVOKED: &str = "account changed on the server";

/// The log line and the reply for a session whose grant was revoked.
fn revoked_reply(user: &str, peer: std::net::SocketAddr, why: &str) -> Reply {
    log::warn!("session revoked user={user} peer={peer} ({why} on the server): closing");
    Reply::new(
        Status::Unavailable,
        format!("{why} on the server: this session is over, closing"),
    )
}
