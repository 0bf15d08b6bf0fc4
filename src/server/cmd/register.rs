//! `register USER PASSWORD`, run on the auth pool (it hashes). The policy
//! decides: `closed` is refused on the loop before we get here; `open`
//! creates the account at once; `approval` files a request, password
//! already hashed, for `miniftp useradd --approve`.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::RegistrationPolicy;
use crate::proto::{Password, Reply, Status};
use crate::server::{Outcome, Shared};
use crate::users::{
    default_home, default_home_taken, hash_password, now_secs, validate_name, validate_password,
    PendingDb, PendingRequest, User, UserDb, UsersLock,
};

pub fn run(shared: &Shared, user: &str, password: &Password, peer: SocketAddr) -> Outcome {
    Outcome::Reply(register(shared, user, password, peer))
}

fn register(shared: &Shared, user: &str, password: &Password, peer: SocketAddr) -> Reply {
    if let Err(m) = validate_name(user).and_then(|_| validate_password(&password.0)) {
        return Reply::new(Status::BadArguments, m);
    }
    let config = &shared.config;
    let hash = hash_password(&password.0, &config.auth);
    let internal = |e: crate::users::UsersError| {
        log::error!("registration of {user}: {e}");
        Reply::new(Status::LocalError, "the account database can't be updated")
    };
    let _lock = match UsersLock::acquire(&config.root) {
        Ok(l) => l,
        Err(e) => return internal(e),
    };
    let mut users = match UserDb::load(&config.users_file()) {
        Ok(u) => u,
        Err(e) => return internal(e),
    };
    let mut pending = match PendingDb::load(&config.pending_file()) {
        Ok(p) => p,
        Err(e) => return internal(e),
    };
    if users.get(user).is_some() || pending.requests.iter().any(|r| r.name == user) {
        return Reply::new(
            Status::RegistrationRefused,
            format!("the name {user:?} is taken"),
        );
    }
    // A name used before keeps its old home until the operator deals with
    // it: registering it would hand that user's files to a stranger.
    if let Some(home) = default_home_taken(&config.root, &users, user) {
        log::warn!(
            "registration of {user} from {peer} refused: {} is still on disk",
            home.display()
        );
        return Reply::new(
            Status::RegistrationRefused,
            format!("the name {user:?} was used before and is not free; choose another name"),
        );
    }
    match config.registration {
        RegistrationPolicy::Closed => Reply::new(
            Status::RegistrationRefused,
            "registration is closed on this server; ask the operator for an account",
        ),
        RegistrationPolicy::Open => {
            users.users.push(User {
                name: user.to_string(),
                password: hash,
                quota: config.default_quota,
                home: default_home(user),
                max_entries: None,
                disabled: false,
            });
            if let Err(e) = users.save(&config.users_file()) {
                return internal(e);
            }
            // Log in works at once, without waiting for the file watcher.
            shared.set_users(Arc::new(users));
            log::info!("registered user {user} from {peer} (open registration)");
            Reply::new(
                Status::Registered,
                format!("account {user:?} created; you can log in now"),
            )
        }
        RegistrationPolicy::Approval => {
            if pending.requests.len() >= config.limits.max_pending_registrations {
                return Reply::new(
                    Status::RegistrationRefused,
                    "too many registration requests are waiting; try again later",
                );
            }
            pending.requests.push(PendingRequest {
                name: user.to_string(),
                password: hash,
                requested_at: now_secs(),
                peer: peer.ip().to_string(),
            });
            if let Err(e) = pending.save(&config.pending_file()) {
                return internal(e);
            }
            log::info!("registration request for {user} from {peer} awaits approval");
            Reply::new(
                Status::RegistrationPending,
                format!(
                    "request for {user:?} filed; the operator must approve it before you can log in"
                ),
            )
        }
    }
}
