//! Accounts: each logged-in user's storage, quota and used space, shared by
//! all of that user's sessions. Used space is derived from the home
//! directory (a walk, on a worker) at the first login, then kept exact in
//! memory. Every write path reserves its bytes *before* writing, so several
//! sessions of one user can never pass the quota together.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::proto::QuotaInfo;
use crate::size::human;
use crate::storage::{FsError, Storage, VPath};

/// Bytes counted for one user.
#[derive(Debug, Default)]
struct Usage {
    /// Bytes on disk: files and partial uploads.
    used: u64,
    /// Bytes promised to writes in progress.
    reserved: u64,
}

/// One user's shared state.
pub struct Account {
    pub name: String,
    pub storage: Arc<dyn Storage>,
    quota: AtomicU64,
    usage: Mutex<Usage>,
    /// Paths whose resumable partial a transfer is writing right now.
    uploads: Mutex<HashSet<VPath>>,
    /// Uploads in progress per target path (resumable or not).
    active: Mutex<HashMap<VPath, usize>>,
}

/// Refusal: the write would pass the quota.
#[derive(Debug, thiserror::Error)]
#[error("quota exceeded: {needed} needed, {free} free of {total}", needed = human(*.needed), free = human(*.free), total = human(*.total))]
pub struct QuotaExceeded {
    pub needed: u64,
    pub free: u64,
    pub total: u64,
}

impl Account {
    pub fn new(name: String, storage: Arc<dyn Storage>, quota: u64, used: u64) -> Account {
        Account {
            name,
            storage,
            quota: AtomicU64::new(quota),
            usage: Mutex::new(Usage { used, reserved: 0 }),
            uploads: Mutex::new(HashSet::new()),
            active: Mutex::new(HashMap::new()),
        }
    }

    fn usage(&self) -> std::sync::MutexGuard<'_, Usage> {
        // A panic while holding this lock can't leave the numbers torn
        // (every update is a single assignment), so poisoning is ignored.
        self.usage.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set_quota(&self, quota: u64) {
        self.quota.store(quota, Ordering::Relaxed);
    }

    pub fn info(&self) -> QuotaInfo {
        let total = self.quota.load(Ordering::Relaxed);
        let (entries, max_entries) = self.storage.entries().get();
        let u = self.usage();
        QuotaInfo {
            used: u.used,
            total,
            free: total.saturating_sub(u.used + u.reserved),
            entries: Some(entries),
            max_entries: Some(max_entries),
        }
    }

    /// Reserves `bytes` or refuses, saying how much is free.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, QuotaExceeded> {
        self.reserve_with_credit(bytes, 0)
    }

    /// Reserves `bytes`, counting `credit` used bytes as free because the
    /// caller is about to delete them (an old partial it will truncate).
    pub fn reserve_with_credit(
        self: &Arc<Self>,
        bytes: u64,
        credit: u64,
    ) -> Result<Reservation, QuotaExceeded> {
        self.take(bytes, credit)?;
        Ok(Reservation {
            account: Arc::clone(self),
            bytes,
        })
    }

    /// Adds `bytes` to the reserved total if they fit.
    fn take(&self, bytes: u64, credit: u64) -> Result<(), QuotaExceeded> {
        let total = self.quota.load(Ordering::Relaxed);
        let mut u = self.usage();
        let free = total.saturating_sub((u.used.saturating_sub(credit)) + u.reserved);
        if bytes > free {
            return Err(QuotaExceeded {
                needed: bytes,
                free,
                total,
            });
        }
        u.reserved += bytes;
        Ok(())
    }

    /// Records bytes that appeared on disk (outside a reservation's commit).
    pub fn add_used(&self, bytes: u64) {
        self.usage().used += bytes;
    }

    /// Records bytes that left the disk.
    pub fn sub_used(&self, bytes: u64) {
        let mut u = self.usage();
        u.used = u.used.saturating_sub(bytes);
    }

    /// Claims the resumable partial of `path` for one transfer; false if
    /// another transfer of this user holds it.
    pub fn claim_upload(&self, path: &VPath) -> bool {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(path.clone())
    }

    pub fn release_upload(&self, path: &VPath) {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(path);
    }

    /// Records an upload in progress to `path` (until `upload_ended`).
    pub fn upload_started(&self, path: &VPath) {
        *self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(path.clone())
            .or_default() += 1;
    }

    pub fn upload_ended(&self, path: &VPath) {
        let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = active.get_mut(path) {
            *n -= 1;
            if *n == 0 {
                active.remove(path);
            }
        }
    }

    /// Is an upload in progress at `path` or anywhere below it?
    pub fn upload_under(&self, path: &VPath) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .any(|p| p.components().starts_with(path.components()))
    }

    /// Is a transfer writing the resumable partial of `path`?
    pub fn partial_busy(&self, path: &VPath) -> bool {
        self.uploads
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(path)
    }

    /// Is any upload to `path` in progress (resumable or not)?
    pub fn upload_in_progress(&self, path: &VPath) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(path)
    }
}

/// Bytes promised to one write. Dropping it releases whatever was not
/// committed, on every exit path.
pub struct Reservation {
    account: Arc<Account>,
    bytes: u64,
}

impl Reservation {
    /// Grows the reservation (bodies of unknown length).
    pub fn grow(&mut self, more: u64) -> Result<(), QuotaExceeded> {
        self.account.take(more, 0)?;
        self.bytes += more;
        Ok(())
    }

    /// Turns `written` of the reserved bytes into used space and releases
    /// the rest.
    pub fn commit(mut self, written: u64) {
        let mut u = self.account.usage();
        u.used += written;
        u.reserved = u.reserved.saturating_sub(self.bytes);
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.bytes > 0 {
            let mut u = self.account.usage();
            u.reserved = u.reserved.saturating_sub(self.bytes);
        }
    }
}

/// All live accounts, by user name. An account lives while a session or a
/// transfer holds it; the next login after that walks the home again.
#[derive(Default)]
pub struct Accounts {
    slots: Mutex<HashMap<String, Arc<Mutex<Weak<Account>>>>>,
}

impl Accounts {
    /// The live account of `name`, or a new one made by `open` (which walks
    /// the home; it runs once even if many sessions log in at once).
    pub fn get_or_open(
        &self,
        name: &str,
        open: impl FnOnce() -> Result<Account, FsError>,
    ) -> Result<Arc<Account>, FsError> {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(slots.entry(name.to_string()).or_default())
        };
        let mut weak = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(acct) = weak.upgrade() {
            // A home removed under live sessions is opened (or refused)
            // anew, as at a first login; those sessions keep the old one.
            if !acct.storage.is_gone() {
                return Ok(acct);
            }
        }
        let acct = Arc::new(open()?);
        *weak = Arc::downgrade(&acct);
        Ok(acct)
    }

    /// Runs `f` with the live account of `name` (None if nobody is logged
    /// in), while no login can open it: a home swept when no session holds
    /// it can't be walked half-swept by a login at the same moment.
    pub fn with_account<R>(&self, name: &str, f: impl FnOnce(Option<Arc<Account>>) -> R) -> R {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            Arc::clone(slots.entry(name.to_string()).or_default())
        };
        let weak = slot.lock().unwrap_or_else(|p| p.into_inner());
        f(weak.upgrade())
    }

    /// Every live account (for quota updates after a users-file reload).
    pub fn all_live(&self) -> Vec<Arc<Account>> {
        let slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .values()
            .filter_map(|s| s.lock().unwrap_or_else(|p| p.into_inner()).upgrade())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::local::LocalStorage;

    fn account(quota: u64) -> (tempfile::TempDir, Arc<Account>) {
        let t = tempfile::tempdir().unwrap();
        let s = LocalStorage::open(t.path()).unwrap();
        (t, Arc::new(Account::new("u".into(), Arc::new(s), quota, 0)))
    }

    #[test]
    fn reservations_add_up_across_holders() {
        let (_t, a) = account(100);
        let r1 = a.reserve(60).unwrap();
        let e = a.reserve(50).err().unwrap();
        assert_eq!(e.free, 40);
        let r2 = a.reserve(40).unwrap();
        drop(r1);
        assert_eq!(a.info().free, 60);
        r2.commit(30);
        assert_eq!(
            a.info(),
            QuotaInfo {
                used: 30,
                total: 100,
                free: 70,
                entries: Some(0),
                max_entries: Some(u64::MAX),
            }
        );
    }

    #[test]
    fn grow_respects_the_quota() {
        let (_t, a) = account(10);
        let mut r = a.reserve(4).unwrap();
        r.grow(6).unwrap();
        assert!(r.grow(1).is_err());
        drop(r);
        assert_eq!(a.info().free, 10);
    }
}
