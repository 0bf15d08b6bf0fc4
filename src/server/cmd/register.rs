//! `register USER PASSWORD`, run on the auth pool (it hashes). The policy
//! decides: `closed` is refused on the loop before we get here; `open`
//! creates the account at once; `approval` files a request, password
//! already hashed, for `miniftp useradd --approve`, and starts the
//! operator's `registration.notify_command` (server::notify).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::RegistrationPolicy;
use crate::proto::{Password, Reply, Status};
use crate::server::{notify, Outcome, Shared};
use crate::users::{
    check_password_len, default_home, default_home_taken, hash_password, now_secs,
    validate_new_name, validate_password, PendingDb, PendingRequest, User, UserDb, UsersError,
    UsersLock,
};

pub fn run(shared: &Shared, user: &str, password: &Password, peer: SocketAddr) -> Outcome {
    Outcome::Reply(register(shared, user, password, peer))
}

fn register(shared: &Shared, user: &str, password: &Password, peer: SocketAddr) -> Reply {
    if let Err(m) = validate_new_name(user)
        .and_then(|_| validate_password(&password.0))
        .and_then(|_| check_password_len(&password.0, &shared.config.auth))
    {
        return Reply::new(Status::BadArguments, m);
    }
    let hash = hash_password(&password.0, &shared.config.auth);
    record(shared, user, hash, peer).unwrap_or_else(|e| {
        log::error!("registration of {user}: {e}");
        Reply::new(Status::LocalError, "the account database can't be updated")
    })
}

/// Under the users lock: refuses a name that is taken or was used before,
/// else creates the account or files the request, as the policy says.
fn record(
    shared: &Shared,
    user: &str,
    hash: String,
    peer: SocketAddr,
) -> Result<Reply, UsersError> {
    let config = &shared.config;
    let _lock = UsersLock::acquire(&config.root)?;
    let users = UserDb::load(&config.users_file())?;
    let pending = PendingDb::load(&config.pending_file())?;
    if users.get(user).is_some() || pending.requests.iter().any(|r| r.name == user) {
        return Ok(Reply::new(
            Status::RegistrationRefused,
            format!("the name {user:?} is taken"),
        ));
    }
    // A name used before keeps its old home until the operator deals with
    // it: registering it would hand that user's files to a stranger.
    if let Some(home) = default_home_taken(&config.root, &users, user) {
        log::warn!(
            "registration of {user} from {peer} refused: {} is still on disk",
            home.display()
        );
        return Ok(Reply::new(
            Status::RegistrationRefused,
            format!("the name {user:?} was used before and is not free; choose another name"),
        ));
    }
    match config.registration.policy {
        RegistrationPolicy::Closed => Ok(Reply::new(
            Status::RegistrationRefused,
            "registration is closed on this server; ask the operator for an account",
        )),
        RegistrationPolicy::Open => create(shared, users, user, hash, peer),
        RegistrationPolicy::Approval => file_request(shared, pending, user, hash, peer),
    }
}

/// `open`: the account exists at once.
fn create(
    shared: &Shared,
    mut users: UserDb,
    user: &str,
    hash: String,
    peer: SocketAddr,
) -> Result<Reply, UsersError> {
    let config = &shared.config;
    users.users.push(User {
        name: user.to_string(),
        password: hash,
        quota: config.default_quota,
        home: default_home(user),
        rate_up: 0,
        rate_down: 0,
        max_entries: None,
        disabled: false,
    });
    users.save(&config.users_file())?;
    // Log in works at once, without waiting for the file watcher.
    shared.set_users(Arc::new(users));
    log::info!("registered user {user} from {peer} (open registration)");
    Ok(Reply::new(
        Status::Registered,
        format!("account {user:?} created; you can log in now"),
    ))
}

/// `approval`: a request for `miniftp useradd --approve`, unless too many
/// wait already; the operator is told (the notification, the metrics).
fn file_request(
    shared: &Shared,
    mut pending: PendingDb,
    user: &str,
    hash: String,
    peer: SocketAddr,
) -> Result<Reply, UsersError> {
    let config = &shared.config;
    if pending.requests.len() >= config.limits.max_pending_registrations {
        return Ok(Reply::new(
            Status::RegistrationRefused,
            "too many registration requests are waiting; try again later",
        ));
    }
    pending.requests.push(PendingRequest {
        name: user.to_string(),
        password: hash,
        requested_at: now_secs(),
        peer: peer.ip().to_string(),
    });
    pending.save(&config.pending_file())?;
    log::info!("registration request for {user} from {peer} awaits approval");
    crate::server::metrics::global().set_pending_registrations(pending.requests.len());
    if let Some(command) = &config.registration.notify_command {
        let filed = notify::Filed {
            user,
            peer,
            pending: pending.requests.len(),
        };
        let timeout = Duration::from_secs(config.registration.notify_timeout_secs);
        notify::spawn(command, timeout, &filed);
    }
    Ok(Reply::new(
        Status::RegistrationPending,
        format!("request for {user:?} filed; the operator must approve it before you can log in"),
    ))
}
