//! Names of files in the bucket: `mv` (CopyObject, then DELETE of the old
//! key), `cp` (CopyObject; UploadPartCopy above 5 GiB) and the setting of a
//! file's time (a copy onto itself with new metadata). The copy appears
//! whole under its new name or not at all; a crash between the copy and the
//! delete of a `mv` leaves both names (nothing lost; the books are marked
//! and recounted at the next open). A directory that holds anything is
//! never renamed (see `FsError::TreeRename`).

use super::home::{stored_mtime, Home, Kind, META_MTIME};
use super::writer::{copy_object, META_SHA256};
use crate::storage::{Delta, FsError, FsResult, VPath};

impl Home {
    /// Where a copy or rename of `from` to `to` lands: into `to` when it is
    /// a directory.
    pub(super) fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath> {
        let into_dir = matches!(self.kind_dir_first(to)?, Kind::Dir { .. });
        crate::storage::move_target(from, to, into_dir)
    }

    /// Renames; returns the bytes of a file it replaced.
    pub(super) fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64> {
        let to = self.target_of(from, to)?;
        if &to == from {
            return Ok(0);
        }
        let mut books = self.books();
        match self.kind(from)? {
            Kind::Missing => Err(FsError::NotFound(from.to_string())),
            Kind::Dir { .. } => {
                self.rename_dir(&mut books, from, &to)?;
                Ok(0)
            }
            Kind::File(src) => {
                let (replaced, gone) = self.replaceable(&to)?;
                let from_key = self.file_key(from)?;
                let to_key = self.file_key(&to)?;
                // The file keeps its own time (a copy gets a new one).
                let mtime = stored_mtime(&src).unwrap_or(src.mtime).to_string();
                let mut meta = vec![(META_MTIME, mtime.as_str())];
                if let Some(d) = src.meta(META_SHA256) {
                    meta.push((META_SHA256, d));
                }
                self.change(&mut books, &format!("mv {from} {to}"), |b| {
                    self.copy_pinned(&from_key, &to_key, src.size, &meta, &src.etag)
                        .map_err(|e| e.into_fs(&to))?;
                    b.bytes = b.bytes.saturating_sub(replaced);
                    b.entries = b.entries.saturating_sub(gone);
                    self.client.delete(&from_key).map_err(|e| e.into_fs(from))?;
                    Ok(())
                })?;
                self.entries.give(gone);
                Ok(replaced)
            }
        }
    }

    /// An empty directory is one marker: a new marker, then the old one
    /// deleted. One that holds anything is refused.
    fn rename_dir(
        &self,
        books: &mut super::usage::Counters,
        from: &VPath,
        to: &VPath,
    ) -> FsResult<()> {
        if to.components().starts_with(from.components()) {
            return Err(FsError::Invalid {
                path: to.to_string(),
                why: "invalid operation (e.g. moving a directory into itself)".into(),
            });
        }
        let from_marker = self.dir_key(from)?;
        let to_marker = self.dir_key(to)?;
        let page = self
            .client
            .list(&from_marker, None, None, 2)
            .map_err(|e| e.into_fs(from))?;
        if page.objects.iter().any(|o| o.key != from_marker) {
            return Err(FsError::TreeRename(from.to_string()));
        }
        self.check_parent(to)?;
        let gone = match self.kind(to)? {
            Kind::Missing => 0,
            Kind::File(_) => {
                return Err(FsError::WrongType {
                    path: to.to_string(),
                    what: "not a directory",
                })
            }
            Kind::Dir { .. } => {
                let inside = self
                    .client
                    .list(&to_marker, None, None, 2)
                    .map_err(|e| e.into_fs(to))?;
                if inside.objects.iter().any(|o| o.key != to_marker) {
                    return Err(FsError::NotEmpty(to.to_string()));
                }
                1
            }
        };
        self.change(books, &format!("mv {from} {to}"), |b| {
            self.client
                .put(&to_marker, b"", None, &[])
                .map_err(|e| e.into_fs(to))?;
            b.entries = b.entries.saturating_sub(gone);
            self.client
                .delete(&from_marker)
                .map_err(|e| e.into_fs(from))?;
            Ok(())
        })?;
        self.entries.give(gone);
        Ok(())
    }

    /// What writing a file at `to` replaces: (bytes, entries). Its parent
    /// must be a directory, and it must not be one.
    fn replaceable(&self, to: &VPath) -> FsResult<(u64, u64)> {
        match self.kind(to)? {
            Kind::File(old) => Ok((old.size, 1)),
            Kind::Dir { .. } => Err(FsError::WrongType {
                path: to.to_string(),
                what: "is a directory",
            }),
            Kind::Missing => {
                self.check_parent(to)?;
                Ok((0, 0))
            }
        }
    }

    /// A copy of the version of `src` that was checked (its ETag): one
    /// CopyObject up to 5 GiB, above it UploadPartCopy ranges.
    fn copy_pinned(
        &self,
        src: &str,
        dst: &str,
        size: u64,
        meta: &[(&str, &str)],
        etag: &str,
    ) -> Result<(), super::S3Error> {
        if size <= crate::limits::s3::MAX_PART_SIZE {
            return self
                .client
                .copy_if(src, dst, Some(meta), Some(etag))
                .map(drop);
        }
        copy_object(&self.client, src, dst, size, meta)
    }

    /// Copies a file; the copy appears whole or not at all.
    pub(super) fn copy(&self, from: &VPath, to: &VPath) -> FsResult<Delta> {
        let to = self.target_of(from, to)?;
        if &to == from {
            return Err(FsError::Invalid {
                path: to.to_string(),
                why: "source and target are the same file".into(),
            });
        }
        let src = match self.kind(from)? {
            Kind::File(info) => info,
            Kind::Dir { .. } => {
                return Err(FsError::WrongType {
                    path: from.to_string(),
                    what: "is a directory",
                })
            }
            Kind::Missing => return Err(FsError::NotFound(from.to_string())),
        };
        let from_key = self.file_key(from)?;
        let to_key = self.file_key(&to)?;
        // The copy is one more entry until it replaces the target.
        self.entries.take(1, &to)?;
        let copied = (|| {
            let mut books = self.books();
            let (replaced, gone) = self.replaceable(&to)?;
            let meta: Vec<(&str, &str)> = src
                .meta(META_SHA256)
                .map(|d| (META_SHA256, d))
                .into_iter()
                .collect();
            self.change(&mut books, &format!("cp {from} {to}"), |b| {
                self.copy_pinned(&from_key, &to_key, src.size, &meta, &src.etag)
                    .map_err(|e| e.into_fs(&to))?;
                b.bytes = b.bytes.saturating_sub(replaced) + src.size;
                b.entries = b.entries.saturating_sub(gone) + 1;
                Ok((replaced, gone))
            })
        })();
        match copied {
            Ok((replaced, gone)) => {
                self.entries.give(gone);
                Ok(Delta {
                    added: src.size,
                    freed: replaced,
                })
            }
            Err(e) => {
                self.entries.give(1);
                Err(e)
            }
        }
    }

    /// Sets a file's time: a copy of the object onto itself with the time
    /// in its metadata (its digest kept), pinned to the version looked at.
    /// A directory's time is its marker's, which the store sets: refused.
    pub(super) fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()> {
        let info = match self.kind(path)? {
            Kind::File(info) => info,
            Kind::Dir { .. } => {
                return Err(FsError::WrongType {
                    path: path.to_string(),
                    what: "is a directory, and an object store keeps no settable time for one",
                })
            }
            Kind::Missing => return Err(FsError::NotFound(path.to_string())),
        };
        let key = self.file_key(path)?;
        let mtime = mtime.to_string();
        let mut meta = vec![(META_MTIME, mtime.as_str())];
        if let Some(d) = info.meta(META_SHA256) {
            meta.push((META_SHA256, d));
        }
        self.copy_pinned(&key, &key, info.size, &meta, &info.etag)
            .map_err(|e| e.into_fs(path))
    }
}
