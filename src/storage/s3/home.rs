//! One user's home in the bucket, behind the storage interface
//! ([`S3Storage`]). This file holds the home's shared state and the
//! bookkeeping every change goes through; the operations are in `tree.rs`
//! (listing, directories, removal), `moves.rs` (rename, copy, times),
//! `upload.rs` (uploads, partials, the sweep) and `read.rs` (downloads).
//!
//! **The books.** The home's usage counters (bytes and entries of its
//! files and directories) live in the bucket (`state/<user>/usage`) and in
//! memory, under one lock that every change of the home's keys holds from
//! its checks to its end. A change writes the counters marked `pending`
//! first, makes its S3 calls, then writes the new totals: a server that
//! stops in between leaves the mark, and the next open counts the home by
//! listing it once (`usage::recount`). So usage is exact across restarts
//! and crashes, and opening a home is one GET, never a listing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::budget::BufferBudget;
use super::client::{Client, ObjectInfo};
use super::error::S3Error;
use super::keys::HomeKeys;
use super::usage::{self, Counters, Loaded};
use crate::storage::{
    Delta, Entry, EntryBook, EntryKind, FsError, FsResult, PartialInfo, ReadHandle, Removed,
    Storage, UploadHandle, UploadOpts, Usage, VPath,
};

/// What is under a path.
#[derive(Debug)]
pub(super) enum Kind {
    File(ObjectInfo),
    /// A marker object, or keys under the prefix (a directory another tool
    /// made without a marker: mtime 0).
    Dir {
        mtime: i64,
    },
    Missing,
}

/// The state of one home that its storage handle and its uploads share.
pub(super) struct Home {
    pub(super) client: Arc<Client>,
    pub(super) keys: HomeKeys,
    pub(super) budget: Arc<BufferBudget>,
    pub(super) user: String,
    /// The stored counters, as last written; the lock is held across every
    /// change of the home's keys (see the module doc), so two sessions
    /// replacing one name can't both count the old file.
    books: Mutex<Counters>,
    pub(super) entries: EntryBook,
    /// Staging keys of the uploads open now: the sweep leaves them alone.
    pub(super) active: Mutex<HashSet<String>>,
}

/// One user's home in the bucket.
pub struct S3Storage {
    pub(super) home: Arc<Home>,
}

impl S3Storage {
    /// Opens the home of `user`: makes its marker if missing, reads its
    /// counters (or counts it once, see the module doc).
    pub fn open(
        client: Arc<Client>,
        keys: HomeKeys,
        budget: Arc<BufferBudget>,
        user: &str,
    ) -> FsResult<S3Storage> {
        let root = VPath::root();
        let fs = |e: S3Error| e.into_fs(&root);
        match client.head(keys.root()) {
            Ok(_) => {}
            Err(e) if e.is_not_found() => {
                client.put(keys.root(), b"", None, &[]).map_err(fs)?;
            }
            Err(e) => return Err(fs(e)),
        }
        let counters = match usage::load(&client, &keys).map_err(fs)? {
            Loaded::Clean(c) => c,
            Loaded::NeedsRecount => {
                let c = usage::recount(&client, &keys).map_err(fs)?;
                usage::save(&client, &keys, &c).map_err(fs)?;
                log::info!(
                    "{user}: counted the home: {} bytes in {} entries",
                    c.bytes,
                    c.entries
                );
                c
            }
        };
        Ok(S3Storage {
            home: Arc::new(Home {
                client,
                keys,
                budget,
                user: user.to_string(),
                books: Mutex::new(counters),
                entries: EntryBook::default(),
                active: Mutex::new(HashSet::new()),
            }),
        })
    }
}

impl Home {
    /// The books, and with them the right to change the home's keys.
    pub(super) fn books(&self) -> MutexGuard<'_, Counters> {
        // Every update of the counters is whole-value: a panic can't leave
        // them torn.
        self.books.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `op`, a change of the home's keys described by `what`, between
    /// a `pending` write of the counters and a write of their new totals
    /// (which `op` sets in `books` as it goes, also when it stops partway).
    /// Nothing is done if the first write fails.
    pub(super) fn change<T>(
        &self,
        books: &mut Counters,
        what: &str,
        op: impl FnOnce(&mut Counters) -> FsResult<T>,
    ) -> FsResult<T> {
        let marked = Counters {
            pending: Some(what.to_string()),
            ..books.clone()
        };
        usage::save(&self.client, &self.keys, &marked).map_err(|e| e.into_fs(&VPath::root()))?;
        let result = op(books);
        books.pending = None;
        if let Err(e) = usage::save(&self.client, &self.keys, books) {
            log::warn!(
                "{}: usage counters left marked as changing ({e}); the next open of the \
                 home counts it",
                self.user
            );
        }
        result
    }

    pub(super) fn file_key(&self, path: &VPath) -> FsResult<String> {
        self.keys.file(path).map_err(|e| e.into_fs())
    }

    pub(super) fn dir_key(&self, path: &VPath) -> FsResult<String> {
        self.keys.dir(path).map_err(|e| e.into_fs())
    }

    /// What is under `path`, looking for a file first (one HEAD when
    /// there is one).
    pub(super) fn kind(&self, path: &VPath) -> FsResult<Kind> {
        if path.is_root() {
            return Ok(Kind::Dir { mtime: 0 });
        }
        match self.client.head(&self.file_key(path)?) {
            Ok(info) => Ok(Kind::File(info)),
            Err(e) if e.is_not_found() => self.dir_or_missing(path),
            Err(e) => Err(e.into_fs(path)),
        }
    }

    /// What is under `path`, looking for a directory first (for the
    /// parents of a path, which are mostly directories).
    pub(super) fn kind_dir_first(&self, path: &VPath) -> FsResult<Kind> {
        if path.is_root() {
            return Ok(Kind::Dir { mtime: 0 });
        }
        match self.client.head(&self.dir_key(path)?) {
            Ok(info) => return Ok(Kind::Dir { mtime: info.mtime }),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into_fs(path)),
        }
        match self.client.head(&self.file_key(path)?) {
            Ok(info) => Ok(Kind::File(info)),
            Err(e) if e.is_not_found() => self.implicit_dir(path),
            Err(e) => Err(e.into_fs(path)),
        }
    }

    /// A directory marker, or keys under the prefix, or nothing.
    fn dir_or_missing(&self, path: &VPath) -> FsResult<Kind> {
        match self.client.head(&self.dir_key(path)?) {
            Ok(info) => Ok(Kind::Dir { mtime: info.mtime }),
            Err(e) if e.is_not_found() => self.implicit_dir(path),
            Err(e) => Err(e.into_fs(path)),
        }
    }

    /// A directory with no marker: keys under its prefix.
    fn implicit_dir(&self, path: &VPath) -> FsResult<Kind> {
        let page = self
            .client
            .list(&self.dir_key(path)?, None, None, 1)
            .map_err(|e| e.into_fs(path))?;
        Ok(if page.objects.is_empty() {
            Kind::Missing
        } else {
            Kind::Dir { mtime: 0 }
        })
    }

    /// Why nothing is at `path`: a file in place of one of its parents
    /// (as a local disk says ENOTDIR), else not found.
    pub(super) fn missing(&self, path: &VPath) -> FsError {
        let mut at = path.parent();
        while let Some(p) = at.filter(|p| !p.is_root()) {
            let Ok(key) = self.file_key(&p) else { break };
            if self.client.head(&key).is_ok() {
                return FsError::WrongType {
                    path: p.to_string(),
                    what: "not a directory",
                };
            }
            at = p.parent();
        }
        FsError::NotFound(path.to_string())
    }

    /// The parent of `path` must be a directory: NotFound or WrongType.
    pub(super) fn check_parent(&self, path: &VPath) -> FsResult<()> {
        let parent = path.parent().unwrap_or_default();
        match self.kind_dir_first(&parent)? {
            Kind::Dir { .. } => Ok(()),
            Kind::File(_) => Err(FsError::WrongType {
                path: parent.to_string(),
                what: "not a directory",
            }),
            Kind::Missing => Err(FsError::NotFound(format!(
                "{path}: parent directory {parent}"
            ))),
        }
    }
}

/// A file's entry from a HEAD: its own time (`x-amz-meta-mtime`, set by
/// `set_mtime` and kept by `mv`) if it has one, else the store's.
pub(super) fn file_entry(name: &str, info: &ObjectInfo) -> Entry {
    Entry {
        name: name.to_string(),
        escaped: false,
        kind: EntryKind::File,
        size: info.size,
        mtime: stored_mtime(info).unwrap_or(info.mtime),
    }
}

/// Metadata name of a file's own modification time (seconds).
pub(super) const META_MTIME: &str = "mtime";

pub(super) fn stored_mtime(info: &ObjectInfo) -> Option<i64> {
    info.meta(META_MTIME)?.parse().ok()
}

pub(super) fn dir_entry(name: &str, mtime: i64) -> Entry {
    Entry {
        name: name.to_string(),
        escaped: false,
        kind: EntryKind::Dir,
        size: 0,
        mtime,
    }
}

impl Storage for S3Storage {
    /// A home in a bucket can't vanish under the server the way a directory
    /// can: its keys are only ever removed through this backend.
    fn is_gone(&self) -> bool {
        false
    }

    fn list(&self, dir: &VPath) -> FsResult<Vec<Entry>> {
        self.home.list(dir)
    }

    fn stat(&self, path: &VPath) -> FsResult<Entry> {
        let name = path.name().unwrap_or("/");
        match self.home.kind(path)? {
            Kind::File(info) => Ok(file_entry(name, &info)),
            Kind::Dir { mtime } => Ok(dir_entry(name, mtime)),
            Kind::Missing => Err(self.home.missing(path)),
        }
    }

    fn digest(&self, path: &VPath) -> FsResult<Option<[u8; 32]>> {
        match self.home.kind(path)? {
            Kind::File(info) => Ok(super::read::stored_digest(&info)),
            Kind::Dir { .. } => Err(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory",
            }),
            Kind::Missing => Err(FsError::NotFound(path.to_string())),
        }
    }

    fn mkdir(&self, path: &VPath, parents: bool) -> FsResult<()> {
        self.home.mkdir(path, parents)
    }

    fn rmdir(&self, path: &VPath) -> FsResult<()> {
        self.home.rmdir(path)
    }

    fn remove(&self, path: &VPath, recursive: bool) -> Removed {
        self.home.remove(path, recursive)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64> {
        self.home.rename(from, to)
    }

    fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath> {
        self.home.target_of(from, to)
    }

    fn copy(&self, from: &VPath, to: &VPath) -> FsResult<Delta> {
        self.home.copy(from, to)
    }

    fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()> {
        self.home.set_mtime(path, mtime)
    }

    fn open_read(&self, path: &VPath) -> FsResult<Box<dyn ReadHandle>> {
        super::read::open(&self.home, path)
    }

    fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>> {
        self.home.partial(path)
    }

    fn partial_len(&self, path: &VPath) -> FsResult<u64> {
        Ok(self.home.record(path)?.map_or(0, |r| r.bytes))
    }

    fn begin_upload(&self, path: &VPath, opts: UploadOpts) -> FsResult<Box<dyn UploadHandle>> {
        super::upload::begin(&self.home, path, opts)
    }

    /// The stored counters, plus the resumable uploads (their records):
    /// one GET at the open, and one LIST of the home's records here.
    fn usage(&self) -> FsResult<Usage> {
        let (bytes, entries) = {
            let b = self.home.books();
            (b.bytes, b.entries)
        };
        let records = self.home.records()?;
        Ok(Usage {
            bytes: bytes + records.iter().map(|(_, r)| r.bytes).sum::<u64>(),
            entries: entries + records.len() as u64,
        })
    }

    fn entries(&self) -> &EntryBook {
        &self.home.entries
    }

    fn sweep_partials(&self, max_age: Duration, _in_use: &dyn Fn(&VPath) -> bool) -> FsResult<u64> {
        // The uploads open now are known here by their staging keys (the
        // server's `in_use` names paths, which a staging key doesn't).
        self.home.sweep(max_age)
    }
}
