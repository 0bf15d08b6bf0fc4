//! State shared by the loop and the workers: the config, the users file as
//! last loaded, the live accounts, the storage backend and TLS.

use std::sync::{Arc, RwLock};

use super::quota::Accounts;
use crate::config::Config;
use crate::storage::Backend;
use crate::users::UserDb;

pub struct Shared {
    pub config: Config,
    users: RwLock<Arc<UserDb>>,
    pub accounts: Accounts,
    /// Where homes live.
    pub backend: Arc<dyn Backend>,
    /// A hash with the configured cost, checked for unknown users so that a
    /// wrong name costs as long as a wrong password.
    pub dummy_hash: String,
    /// TLS for every connection, unless the operator turned it off.
    pub tls: Option<Arc<rustls::ServerConfig>>,
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
            accounts: Accounts::default(),
            backend,
            dummy_hash,
            tls,
        }
    }

    pub fn users(&self) -> Arc<UserDb> {
        Arc::clone(&self.users.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Installs a new users database; live accounts take their new quota.
    pub fn set_users(&self, db: Arc<UserDb>) {
        for account in self.accounts.all_live() {
            if let Some(u) = db.get(&account.name) {
                account.set_quota(u.quota);
            }
        }
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = db;
    }
}
