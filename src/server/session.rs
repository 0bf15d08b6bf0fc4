//! A logged-in session: who, their shared account, and where they are; and
//! the end of a session whose account was taken back on the server (the
//! user removed or disabled, or given a new password or home by `miniftp
//! useradd` while logged in): a login grants nothing beyond what the
//! users file still says.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use mio::Token;

use super::conn::State;
use super::quota::Account;
use super::{Server, Shared};
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

/// What a login was granted on: the account's password hash and home at
/// that moment, and the users database they were last checked against.
pub struct Grant {
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
            password: user.password.clone(),
            home,
            checked: generation,
        }
    }
}

/// Why `session` may no longer act, if it may not: its user was removed
/// or disabled, or given a new password or home, since it logged in. One
/// atomic load while the users file has not changed.
pub fn revoked(shared: &Shared, session: &mut Session) -> Option<&'static str> {
    let generation = shared.users_generation();
    if generation == session.grant.checked {
        return None;
    }
    let db = shared.users();
    let why = match db.get(&session.user) {
        None => Some("account removed"),
        Some(u) if u.disabled => Some("account disabled"),
        Some(u) if u.password != session.grant.password => Some("password changed"),
        Some(u) if home_path(&shared.config.root, u) != session.grant.home => {
            Some("home directory changed")
        }
        Some(_) => None,
    };
    if why.is_none() {
        session.grant.checked = generation;
    }
    why
}

impl Server {
    /// Ends the session of `token` if its account was taken back (see
    /// [`revoked`]): its request is not carried out but answered `421`,
    /// the connection closes, and an upload waiting for its `done` is
    /// abandoned (kept resumable, as when a connection is lost). Logged
    /// once, as the connection ends. True if it ended it.
    pub(super) fn end_revoked(&mut self, token: Token) -> bool {
        let shared = Arc::clone(&self.shared);
        let conn = &mut self.conns[token.0];
        let Some(session) = conn.session.as_mut() else {
            return false;
        };
        let Some(why) = revoked(&shared, session) else {
            return false;
        };
        log::warn!(
            "session revoked user={} peer={} ({why} on the server): closing",
            session.user,
            conn.peer
        );
        if matches!(conn.state, State::Trailer(_)) {
            if let State::Trailer(mut up) = std::mem::replace(&mut conn.state, State::Ready) {
                self.submit_orphan(move || up.abandon());
            }
        }
        let conn = &mut self.conns[token.0];
        if let Some(io) = conn.io.as_mut() {
            io.send(&Reply::new(
                Status::Unavailable,
                format!("{why} on the server: this session is over, closing"),
            ));
        }
        conn.closing = true;
        conn.why = "account changed on the server";
        true
    }
}
