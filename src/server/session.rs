//! A logged-in session: who, their shared account, and where they are.

use std::sync::Arc;
use std::time::Instant;

use super::cmd::Ctx;
use super::quota::Account;
use crate::storage::VPath;

pub struct Session {
    pub user: String,
    pub account: Arc<Account>,
    pub cwd: VPath,
    pub since: Instant,
}

impl Session {
    /// What a command job needs of the session.
    pub fn ctx(&self) -> Ctx {
        Ctx {
            account: Arc::clone(&self.account),
            cwd: self.cwd.clone(),
        }
    }
}
