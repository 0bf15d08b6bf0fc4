//! The count of entries (files, directories, symlinks, partial uploads) in
//! one home, against the user's limit: the quota bounds bytes, this bounds
//! inodes, which empty files and directories otherwise cost for free.
//!
//! Kept like the byte count: set once from the walk that measures usage
//! when the account opens, then moved by every creation and removal, so a
//! creation never walks the tree. A creation takes its entries *before* it
//! touches the disk and gives back what it did not make, so sessions of
//! one user racing each other can't pass the limit together.

use std::sync::Mutex;

use super::{FsError, FsResult, VPath};

#[derive(Debug)]
struct Counts {
    count: u64,
    limit: u64,
}

/// One home's entry count and limit.
#[derive(Debug)]
pub struct EntryBook {
    counts: Mutex<Counts>,
}

impl Default for EntryBook {
    /// No limit: a storage opened outside a session (the sweep, `useradd
    /// --list`) creates nothing for anyone.
    fn default() -> Self {
        EntryBook::new(0, u64::MAX)
    }
}

impl EntryBook {
    pub fn new(count: u64, limit: u64) -> EntryBook {
        EntryBook {
            counts: Mutex::new(Counts { count, limit }),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        // Every update is one assignment: a panic can't leave them torn.
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes `n` entries for something about to be created at `path`, or
    /// refuses (552) saying how many there are.
    pub fn take(&self, n: u64, path: &VPath) -> FsResult<()> {
        let mut c = self.counts();
        if c.count.saturating_add(n) > c.limit {
            return Err(FsError::TooManyEntries {
                path: path.to_string(),
                count: c.count,
                limit: c.limit,
            });
        }
        c.count += n;
        Ok(())
    }

    /// Gives back `n` entries: removed, or taken and not made after all.
    pub fn give(&self, n: u64) {
        let mut c = self.counts();
        c.count = c.count.saturating_sub(n);
    }

    /// Starts the books at `count` (from the walk) with `limit`.
    pub fn reset(&self, count: u64, limit: u64) {
        *self.counts() = Counts { count, limit };
    }

    /// A new limit (users file reloaded); a lower one removes nothing.
    pub fn set_limit(&self, limit: u64) {
        self.counts().limit = limit;
    }

    /// (entries, limit).
    pub fn get(&self) -> (u64, u64) {
        let c = self.counts();
        (c.count, c.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_up_to_the_limit_and_gives_back() {
        let b = EntryBook::new(8, 10);
        let p = VPath::root();
        b.take(2, &p).unwrap();
        let e = b.take(1, &p).unwrap_err();
        assert!(matches!(
            e,
            FsError::TooManyEntries {
                count: 10,
                limit: 10,
                ..
            }
        ));
        assert!(e.to_string().contains("10 of 10"), "{e}");
        b.give(3);
        assert_eq!(b.get(), (7, 10));
        b.set_limit(5);
        assert!(b.take(1, &p).is_err());
        b.give(100);
        assert_eq!(b.get(), (0, 5));
        assert!(EntryBook::default().take(u64::MAX, &p).is_ok());
    }
}
