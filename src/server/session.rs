//! A logged-in session: who, their shared account, and where they are.

use std::sync::Arc;
use std::time::Instant;

use super::quota::Account;
use crate::storage::VPath;

pub struct Session {
    pub user: String,
    pub account: Arc<Account>,
    pub cwd: VPath,
    pub since: Instant,
}
