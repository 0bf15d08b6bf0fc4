//! Uploads to the bucket behind the storage interface: `begin_upload` (a
//! fresh upload, or one continued from its state record), the handle that
//! feeds `writer.rs` and commits, the partials' size and digest (from the
//! records), and the sweep of abandoned ones.
//!
//! Entries follow the local backend's partial files: an upload takes one
//! when it begins, and gives it back when it is aborted, or when its commit
//! replaces a file; a kept one keeps it (the next open counts its record).

use std::sync::Arc;
use std::time::Duration;

use sha2::Sha256;

use super::home::{Home, Kind};
use super::record::{part_size, UploadRecord};
use super::writer::{record_digest, PartWriter, Target, UploadError};
use crate::storage::{
    Committed, FsError, FsResult, NotCommitted, PartialInfo, UploadHandle, UploadOpts, VPath,
};

/// `begin_upload`: checks the target and its parent, then opens the
/// upload (see the module doc).
pub(super) fn begin(
    home: &Arc<Home>,
    path: &VPath,
    opts: UploadOpts,
) -> FsResult<Box<dyn UploadHandle>> {
    if path.is_root() {
        return Err(FsError::WrongType {
            path: "/".into(),
            what: "is a directory",
        });
    }
    let key = home.file_key(path)?;
    let part = part_size(opts.size_hint).ok_or_else(|| FsError::Invalid {
        path: path.to_string(),
        why: format!(
            "too large for the object store (at most {} bytes)",
            crate::limits::s3::PART_TARGET * crate::limits::s3::MAX_PART_BUFFER
        ),
    })?;
    if opts.mkdirs {
        // With room for the upload's own entry, taken again below.
        home.make_dirs(&path.parent().unwrap_or_default(), 1)?;
        home.entries.give(1);
    } else {
        home.check_parent(path)?;
    }
    if let Kind::Dir { .. } = home.kind_dir_first(path)? {
        return Err(FsError::WrongType {
            path: path.to_string(),
            what: "is a directory",
        });
    }
    let mut up = if opts.resumable {
        open_resumable(home, path, key, part, &opts)?
    } else {
        if opts.offset > 0 {
            return Err(FsError::Busy(path.to_string()));
        }
        home.entries.take(1, path)?;
        let nonce = format!("{:016x}", rand::random::<u64>());
        let target = Target {
            path: path.to_string(),
            staging: home.keys.staging(path, &nonce),
            record: None,
        };
        S3Upload::fresh(home, path, key, target, part, opts.size_hint, 0)
    };
    up.writer.set_mtime(opts.mtime);
    Ok(Box::new(up))
}

/// The one upload of `path` a later one may resume: continued from its
/// record at `offset`, or started anew (an older one aborted first).
fn open_resumable(
    home: &Arc<Home>,
    path: &VPath,
    key: String,
    part: u64,
    opts: &UploadOpts,
) -> FsResult<S3Upload> {
    let record_key = home.keys.upload_record(path);
    // Under the books, so the sweep can't take the upload between the
    // look at its record and the mark that it is in use.
    let _books = home.books();
    let old = home.record(path)?;
    if opts.offset > 0 {
        let Some(record) = old else {
            return Err(FsError::Invalid {
                path: path.to_string(),
                why: "no partial upload to resume (start at offset 0)".into(),
            });
        };
        if record.bytes != opts.offset {
            return Err(FsError::Invalid {
                path: path.to_string(),
                why: format!(
                    "resume offset {} is not where the partial upload can go on: on this \
                     server's object store it resumes at byte {} (the end of its last whole \
                     part), or starts over at 0",
                    opts.offset, record.bytes
                ),
            });
        }
        let target = Target {
            path: path.to_string(),
            staging: record.staging.clone(),
            record: Some(record_key),
        };
        home.mark_active(&record.staging);
        let writer = PartWriter::resume(
            Arc::clone(&home.client),
            Arc::clone(&home.budget),
            target,
            &record,
        );
        return match writer {
            Ok(writer) => Ok(S3Upload::new(home, path, key, writer, true, 0)),
            Err(e) => {
                home.unmark_active(&record.staging);
                Err(upload_fs(e, path))
            }
        };
    }
    let truncated = match &old {
        Some(r) => {
            home.drop_upload(r, path)?;
            home.entries.give(1);
            r.bytes
        }
        None => 0,
    };
    home.entries.take(1, path)?;
    let nonce = format!("{:016x}", rand::random::<u64>());
    let target = Target {
        path: path.to_string(),
        staging: home.keys.staging(path, &nonce),
        record: Some(record_key),
    };
    Ok(S3Upload::fresh(
        home,
        path,
        key,
        target,
        part,
        opts.size_hint,
        truncated,
    ))
}

/// An upload in progress: bytes go to part buffers and parts no listing
/// shows; the commit makes them the file.
struct S3Upload {
    home: Arc<Home>,
    path: VPath,
    key: String,
    writer: PartWriter,
    resumable: bool,
    prefix: Sha256,
    truncated: u64,
    staging: String,
}

impl S3Upload {
    fn fresh(
        home: &Arc<Home>,
        path: &VPath,
        key: String,
        target: Target,
        part: u64,
        size_hint: Option<u64>,
        truncated: u64,
    ) -> S3Upload {
        home.mark_active(&target.staging);
        let resumable = target.record.is_some();
        let writer = PartWriter::new(
            Arc::clone(&home.client),
            Arc::clone(&home.budget),
            target,
            part,
            size_hint,
        );
        S3Upload::new(home, path, key, writer, resumable, truncated)
    }

    fn new(
        home: &Arc<Home>,
        path: &VPath,
        key: String,
        writer: PartWriter,
        resumable: bool,
        truncated: u64,
    ) -> S3Upload {
        S3Upload {
            home: Arc::clone(home),
            path: path.clone(),
            key,
            prefix: writer.stored_hasher().clone(),
            staging: writer.staging().to_string(),
            writer,
            resumable,
            truncated,
        }
    }

    /// Ends the upload: kept for a resume (returns the bytes kept) or
    /// aborted; the upload's entry goes when nothing is kept.
    fn end(&mut self, keep: bool) -> u64 {
        let kept = self.writer.abandon(keep && self.resumable);
        if kept == 0 {
            self.home.entries.give(1);
        }
        kept
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        self.home.unmark_active(&self.staging);
    }
}

impl UploadHandle for S3Upload {
    fn path(&self) -> &VPath {
        &self.path
    }

    fn resumable(&self) -> bool {
        self.resumable
    }

    fn prefix(&self) -> Sha256 {
        self.prefix.clone()
    }

    fn truncated(&self) -> u64 {
        self.truncated
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer.write(buf).map_err(|e| upload_io(e, &self.path))
    }

    /// Under the books: the target checked (not a directory; the bytes of
    /// the file it replaces), then the counters' change around the
    /// writer's finish (last part, Complete, copy to the file's key).
    fn commit(
        mut self: Box<Self>,
        sha256: &[u8; 32],
        _fsync: bool,
    ) -> Result<Committed, NotCommitted> {
        let home = Arc::clone(&self.home);
        let mut books = home.books();
        let replaced = match home.kind(&self.path) {
            Ok(Kind::File(old)) => Ok((old.size, 1)),
            Ok(Kind::Missing) => Ok((0, 0)),
            Ok(Kind::Dir { .. }) => Err(FsError::WrongType {
                path: self.path.to_string(),
                what: "became a directory during the upload",
            }),
            Err(e) => Err(e),
        };
        let result = replaced.and_then(|(old, gone)| {
            let what = format!("put {}", self.path);
            let path = self.path.clone();
            let key = self.key.clone();
            home.change(&mut books, &what, |b| {
                let done = self
                    .writer
                    .finish(&key, sha256)
                    .map_err(|e| upload_fs(e, &path))?;
                b.bytes = b.bytes.saturating_sub(old) + done.size;
                b.entries = b.entries.saturating_sub(gone) + 1;
                Ok((old, gone))
            })
        });
        drop(books);
        match result {
            Ok((old, gone)) => {
                home.entries.give(gone);
                Ok(Committed {
                    replaced: old,
                    later: None,
                })
            }
            Err(error) => {
                let keep = matches!(error, FsError::Unavailable { .. });
                let kept = self.end(keep);
                Err(NotCommitted { error, kept })
            }
        }
    }

    fn abort(mut self: Box<Self>, keep: bool) -> u64 {
        self.end(keep)
    }
}

/// What the user hears about a failed upload step.
fn upload_fs(e: UploadError, path: &VPath) -> FsError {
    match e {
        UploadError::Store(e) => e.into_fs(path),
        UploadError::NoRoom(e) => FsError::Unavailable {
            path: path.to_string(),
            why: e.to_string(),
        },
        UploadError::Gone(why) => FsError::Refused {
            path: path.to_string(),
            why: format!(
                "the partial upload is gone from the object store ({why}); \
                 upload it again from the start (offset 0)"
            ),
        },
        UploadError::TooLarge { .. } => FsError::Invalid {
            path: path.to_string(),
            why: e.to_string(),
        },
        other => FsError::Io {
            path: path.to_string(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

/// As an io::Error for `write_all` (an unavailable store stays
/// recognisable, see `StoreUnavailable`).
fn upload_io(e: UploadError, path: &VPath) -> std::io::Error {
    match upload_fs(e, path) {
        FsError::Unavailable { why, .. } => crate::storage::StoreUnavailable(why).into_io(),
        other => std::io::Error::other(other.to_string()),
    }
}

impl Home {
    pub(super) fn mark_active(&self, staging: &str) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(staging.to_string());
    }

    pub(super) fn unmark_active(&self, staging: &str) {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(staging);
    }

    fn is_active(&self, staging: &str) -> bool {
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(staging)
    }

    /// The state record of the resumable upload of `path`, if any (one
    /// that can't be read is left to the sweep, and not used).
    pub(super) fn record(&self, path: &VPath) -> FsResult<Option<UploadRecord>> {
        match self.client.get_small(&self.keys.upload_record(path)) {
            Ok(bytes) => match UploadRecord::from_json(&bytes) {
                Ok(r) => Ok(Some(r)),
                Err(e) => {
                    log::warn!("{}: {path}: {e}; not resumable", self.user);
                    Ok(None)
                }
            },
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into_fs(path)),
        }
    }

    /// Every readable record of this home, with its key.
    pub(super) fn records(&self) -> FsResult<Vec<(String, UploadRecord)>> {
        let root = VPath::root();
        let mut out = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list(&self.keys.upload_records(), None, token.as_deref(), 1000)
                .map_err(|e| e.into_fs(&root))?;
            for o in page.objects {
                match self.client.get_small(&o.key) {
                    Ok(bytes) => match UploadRecord::from_json(&bytes) {
                        Ok(r) => out.push((o.key, r)),
                        Err(e) => log::warn!("{}: {}: {e}", self.user, o.key),
                    },
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e.into_fs(&root)),
                }
            }
            token = page.next;
            if token.is_none() {
                return Ok(out);
            }
        }
    }

    /// Size and digest of the resumable upload of `path`, from its record.
    pub(super) fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>> {
        let Some(record) = self.record(path)? else {
            return Ok(None);
        };
        let digest = record_digest(&record).map_err(|e| FsError::Io {
            path: path.to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        Ok(Some(PartialInfo {
            size: record.bytes,
            sha256: hex::encode(digest),
        }))
    }

    /// Aborts the upload a record describes and deletes the record.
    fn drop_upload(&self, record: &UploadRecord, path: &VPath) -> FsResult<()> {
        match self.client.abort_upload(&record.staging, &record.upload_id) {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into_fs(path)),
        }
        self.client
            .delete(&self.keys.upload_record(path))
            .map_err(|e| e.into_fs(path))
    }

    /// Whether a resumable upload waits for a path below `dir`.
    pub(super) fn has_uploads_under(&self, dir: &VPath) -> FsResult<bool> {
        Ok(self.records()?.iter().any(|(_, r)| {
            VPath::resolve(&VPath::root(), &r.path)
                .is_ok_and(|p| p.components().starts_with(dir.components()))
        }))
    }

    /// Drops the resumable uploads to paths below `dir` (a tree being
    /// removed); returns their bytes. Call with the books held.
    pub(super) fn drop_uploads_under(&self, dir: &VPath) -> FsResult<u64> {
        let mut freed = 0;
        for (_, record) in self.records()? {
            let Ok(path) = VPath::resolve(&VPath::root(), &record.path) else {
                continue;
            };
            if !path.components().starts_with(dir.components()) || self.is_active(&record.staging) {
                continue;
            }
            self.drop_upload(&record, &path)?;
            self.entries.give(1);
            freed += record.bytes;
        }
        Ok(freed)
    }

    /// Removes uploads untouched for `max_age` that no transfer is using
    /// (see `sweep.rs`); returns the bytes their records held (the bytes
    /// the server counted for them).
    pub(super) fn sweep(&self, max_age: Duration) -> FsResult<u64> {
        let older_than = jiff::Timestamp::now().as_second() - max_age.as_secs() as i64;
        let _books = self.books();
        let swept = super::sweep::sweep(&self.client, &self.keys, older_than, &|staging| {
            self.is_active(staging)
        })
        .map_err(|e| e.into_fs(&VPath::root()))?;
        if swept.uploads + swept.objects > 0 {
            log::info!(
                "{}: swept {} abandoned uploads and {} leftover objects ({} bytes)",
                self.user,
                swept.uploads,
                swept.objects,
                swept.freed
            );
        }
        self.entries.give(swept.records);
        Ok(swept.counted)
    }
}
