//! State shared by the loop and the workers: the config, the users file as
//! last loaded, the live accounts, the storage backend and TLS.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use super::quota::Accounts;
use crate::config::Config;
use crate::storage::Backend;
use crate::users::UserDb;

pub struct Shared {
    pub config: Config,
    users: RwLock<Arc<UserDb>>,
    /// Bumped at every new users database, so sessions notice cheaply
    /// when to check their account again (see `session::Grant::revoked`).
    users_generation: AtomicU64,
    pub accounts: Accounts,
    /// Where homes live.
    pub backend: Arc<dyn Backend>,
    /// A hash with the configured cost, checked for unknown users so that a
    /// wrong name costs as long as a wrong password.
    pub dummy_hash: String,
    /// TLS for every connection, unless the operator turned it off.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The FTP listeners' TLS and passive ports, when `[ftp]` is on (set
    /// by `serve` once the listeners are bound).
    pub ftp: Option<super::front::ftp::FtpShared>,
}

impl Shared {
    pub fn new(
        config: Config,
        users: UserDb,
        backend: Arc<dyn Backend>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Shared {
        let dummy_hash =
            crate::users::hash_password(&format!("{:x}", rand::random::<u128>()), &config.auth);
        Shared {
            config,
            users: RwLock::new(Arc::new(users)),
            users_generation: AtomicU64::new(0),
            accounts: Accounts::default(),
            backend,
            dummy_hash,
            tls,
            ftp: None,
        }
    }

    pub fn users(&self) -> Arc<UserDb> {
        Arc::clone(&self.users.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Installs a new users database; live accounts take their new quota
    /// and entry limit.
    pub fn set_users(&self, db: Arc<UserDb>) {
        for account in self.accounts.all_live() {
            if let Some(u) = db.get(&account.name) {
                account.set_quota(u.quota);
                let limit = u.entry_limit(self.config.default_max_entries);
                account.storage.entries().set_limit(limit);
            }
        }
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = db;
        // After the new users are in place: whoever sees the new number
        // reads them.
        self.users_generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Which users database is in place (read it before `users()`).
    pub fn users_generation(&self) -> u64 {
        self.users_generation.load(Ordering::SeqCst)
    }
}
