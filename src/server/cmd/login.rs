//! `login USER PASSWORD`, run on the auth pool. An unknown user costs the
//! same argon2 work as a known one (a dummy hash is checked), so timing
//! doesn't tell which names exist. On success the user's account is opened:
//! the home is created if missing, and its used space is walked once.

use std::time::Instant;

use crate::proto::{Password, Reply, Status};
use crate::server::quota::Account;
use crate::server::session::{Grant, Session};
use crate::server::{Outcome, Shared};
use crate::storage::VPath;
use crate::users::{home_path, verify_password, PendingDb};

/// An unknown user: the right password of a request still waiting for
/// approval hears that it waits; anything else hears what a wrong password
/// hears, after the same one argon2 check (the request's hash or the
/// dummy), so neither timing nor wording tells a guesser anything.
fn pending_or_denied(shared: &Shared, user: &str, password: &Password) -> Outcome {
    let pending = PendingDb::load(&shared.config.pending_file()).unwrap_or_default();
    let hash = pending
        .requests
        .iter()
        .find(|r| r.name == user)
        .map_or(shared.dummy_hash.as_str(), |r| r.password.as_str());
    let msg = if verify_password(&password.0, hash) && hash != shared.dummy_hash {
        "your registration request is still waiting for the operator's approval"
    } else {
        "login incorrect: unknown user or wrong password"
    };
    Outcome::Login(Err(Reply::new(Status::AuthFailed, msg)))
}

pub fn run(shared: &Shared, user: &str, password: &Password) -> Outcome {
    let denied = || {
        Outcome::Login(Err(Reply::new(
            Status::AuthFailed,
            "login incorrect: unknown user or wrong password",
        )))
    };
    // Before the users are read: see `Grant`.
    let generation = shared.users_generation();
    let db = shared.users();
    let Some(record) = db.get(user) else {
        return pending_or_denied(shared, user, password);
    };
    // Checked after the hash, so a disabled account answers like a wrong
    // password, in the same time.
    if !verify_password(&password.0, &record.password) || record.disabled {
        return denied();
    }
    let home = home_path(&shared.config.root, record);
    let grant = Grant::new(record, home.clone(), generation);
    let home_entry = record.home.clone();
    let quota = record.quota;
    let max_entries = record.entry_limit(shared.config.default_max_entries);
    let opened = shared.accounts.get_or_open(user, || {
        let storage = shared.backend.open_home(&home_entry)?;
        // One walk for both books: bytes and entries.
        let usage = storage.usage()?;
        storage.entries().reset(usage.entries, max_entries);
        Ok(Account::new(user.to_string(), storage, quota, usage.bytes))
    });
    match opened {
        Ok(account) => {
            account.set_quota(quota);
            account.storage.entries().set_limit(max_entries);
            let mut reply = Reply::new(Status::LoggedIn, format!("welcome, {user}"));
            reply.user = Some(user.to_string());
            reply.cwd = Some("/".into());
            let session = Session {
                user: user.to_string(),
                account,
                cwd: VPath::root(),
                since: Instant::now(),
                grant,
            };
            Outcome::Login(Ok((Box::new(session), reply)))
        }
        Err(e) => {
            log::error!("login of {user}: cannot open home {}: {e}", home.display());
            Outcome::Login(Err(Reply::new(
                Status::LocalError,
                "your home directory can't be opened; tell the operator",
            )))
        }
    }
}
