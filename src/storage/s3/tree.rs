//! Directories in the bucket: listings by delimiter, `mkdir` (`-p`) as
//! marker objects, `rmdir`, and removal of files and whole trees. A file
//! `x` and a directory `x/` never both exist: every creation checks for the
//! other under the home's books lock (one server per prefix; several
//! servers: docs/STORAGE.md).

use super::home::{dir_entry, Home, Kind};
use super::keys::HomeKeys;
use super::usage::Counters;
use crate::limits::s3::LIST_DIR_TIMES;
use crate::limits::MAX_DIR_ENTRIES;
use crate::storage::{Entry, FsError, FsResult, Removed, VPath};

impl Home {
    /// The entries of `dir`: files from one ListObjectsV2 with delimiter
    /// `/` (pages of 1000), subdirectories from its common prefixes. Files
    /// show the store's time of their last write (a listing carries no
    /// metadata); directories the time of their marker, read for the first
    /// [`LIST_DIR_TIMES`] of them.
    pub(super) fn list(&self, dir: &VPath) -> FsResult<Vec<Entry>> {
        let prefix = self.dir_key(dir)?;
        let mut files = Vec::new();
        let mut dirs = Vec::new();
        let mut token = None;
        loop {
            let page = self
                .client
                .list(&prefix, Some("/"), token.as_deref(), 1000)
                .map_err(|e| e.into_fs(dir))?;
            for o in page.objects {
                if let Some(name) = child_name(&self.keys, &o.key, dir) {
                    files.push(Entry {
                        name,
                        escaped: false,
                        kind: crate::storage::EntryKind::File,
                        size: o.size,
                        mtime: o.mtime,
                    });
                }
            }
            dirs.extend(page.prefixes);
            if files.len() + dirs.len() > MAX_DIR_ENTRIES {
                return Err(FsError::Io {
                    path: dir.to_string(),
                    source: std::io::Error::other(format!(
                        "directory has more than {MAX_DIR_ENTRIES} entries, \
                         too many to list; list a subdirectory"
                    )),
                });
            }
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        if files.is_empty() && dirs.is_empty() && !dir.is_root() {
            // An empty directory, or none: which one.
            match self.kind(dir)? {
                Kind::Dir { .. } => {}
                Kind::File(_) => {
                    return Err(FsError::WrongType {
                        path: dir.to_string(),
                        what: "not a directory",
                    })
                }
                Kind::Missing => return Err(self.missing(dir)),
            }
        }
        for (i, p) in dirs.iter().enumerate() {
            let Some(name) = child_name(&self.keys, p, dir) else {
                continue;
            };
            let mtime = if i < LIST_DIR_TIMES {
                self.client.head(p).map_or(0, |info| info.mtime)
            } else {
                0
            };
            files.push(dir_entry(&name, mtime));
        }
        files.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(files)
    }

    pub(super) fn mkdir(&self, path: &VPath, parents: bool) -> FsResult<()> {
        if path.is_root() {
            return if parents {
                Ok(())
            } else {
                Err(FsError::Exists("/".into()))
            };
        }
        if parents {
            return self.make_dirs(path, 0);
        }
        let marker = self.dir_key(path)?;
        self.entries.take(1, path)?;
        let made = (|| {
            let mut books = self.books();
            self.check_parent(path).map_err(|e| match e {
                FsError::NotFound(_) => FsError::NotFound(path.to_string()),
                e => e,
            })?;
            match self.kind(path)? {
                Kind::Missing => {}
                _ => return Err(FsError::Exists(path.to_string())),
            }
            self.change(&mut books, &format!("mkdir {path}"), |b| {
                self.client
                    .put(&marker, b"", None, &[])
                    .map_err(|e| e.into_fs(path))?;
                b.entries += 1;
                Ok(())
            })
        })();
        if made.is_err() {
            self.entries.give(1);
        }
        made
    }

    /// Creates the missing directories of `path` (like `mkdir -p`), taking
    /// their entries first, plus `extra` more that stay taken on success
    /// for what the caller creates in it. Nothing is made when the entry
    /// limit would be passed.
    pub(super) fn make_dirs(&self, path: &VPath, extra: u64) -> FsResult<()> {
        let comps = path.components();
        let prefix = |n: usize| VPath::from_components(&comps[..n]);
        let mut books = self.books();
        // The deepest existing level, from the bottom: one or two HEADs
        // when the directory is there already.
        let mut first_missing = comps.len() + 1;
        for n in (1..=comps.len()).rev() {
            match self.kind_dir_first(&prefix(n))? {
                Kind::Dir { .. } => break,
                Kind::File(_) => return Err(not_a_dir(path, n)),
                Kind::Missing => first_missing = n,
            }
        }
        if first_missing > comps.len() {
            return self.entries.take(extra, path);
        }
        let missing = (comps.len() + 1 - first_missing) as u64;
        self.entries.take(missing + extra, path)?;
        let mut made = 0;
        let result = self.change(&mut books, &format!("mkdir -p {path}"), |b| {
            for n in first_missing..=comps.len() {
                let at = prefix(n);
                let marker = self.dir_key(&at)?;
                self.client
                    .put(&marker, b"", None, &[])
                    .map_err(|e| e.into_fs(&at))?;
                made += 1;
                b.entries += 1;
            }
            Ok(())
        });
        match result {
            Ok(()) => Ok(()),
            Err(e) => {
                self.entries.give(missing + extra - made);
                Err(e)
            }
        }
    }

    pub(super) fn rmdir(&self, path: &VPath) -> FsResult<()> {
        if path.is_root() {
            return Err(FsError::Invalid {
                path: "/".into(),
                why: "the home directory itself can't be used here".into(),
            });
        }
        let marker = self.dir_key(path)?;
        let mut books = self.books();
        match self.kind(path)? {
            Kind::Dir { .. } => {}
            Kind::File(_) => {
                return Err(FsError::WrongType {
                    path: path.to_string(),
                    what: "not a directory",
                })
            }
            Kind::Missing => return Err(self.missing(path)),
        }
        let page = self
            .client
            .list(&marker, None, None, 2)
            .map_err(|e| e.into_fs(path))?;
        if page.objects.iter().any(|o| o.key != marker) {
            return Err(FsError::NotEmpty(path.to_string()));
        }
        // As on a local disk, where its partial file is in it: removing the
        // directory would lose the upload without its bytes leaving the books.
        if self.has_uploads_under(path)? {
            return Err(FsError::Invalid {
                path: path.to_string(),
                why: "holds only interrupted uploads; remove it with a recursive rm".into(),
            });
        }
        let had_marker = !page.objects.is_empty();
        self.change(&mut books, &format!("rmdir {path}"), |b| {
            self.client.delete(&marker).map_err(|e| e.into_fs(path))?;
            if had_marker {
                b.entries = b.entries.saturating_sub(1);
            }
            Ok(())
        })?;
        if had_marker {
            self.entries.give(1);
        }
        Ok(())
    }

    pub(super) fn remove(&self, path: &VPath, recursive: bool) -> Removed {
        let failed = |error| Removed {
            freed: 0,
            error: Some(error),
        };
        let mut books = self.books();
        let kind = match self.kind(path) {
            Ok(k) => k,
            Err(e) => return failed(e),
        };
        match kind {
            Kind::Missing => failed(self.missing(path)),
            Kind::File(info) => {
                let key = match self.file_key(path) {
                    Ok(k) => k,
                    Err(e) => return failed(e),
                };
                let done = self.change(&mut books, &format!("rm {path}"), |b| {
                    self.client.delete(&key).map_err(|e| e.into_fs(path))?;
                    b.bytes = b.bytes.saturating_sub(info.size);
                    b.entries = b.entries.saturating_sub(1);
                    Ok(())
                });
                match done {
                    Ok(()) => {
                        self.entries.give(1);
                        Removed {
                            freed: info.size,
                            error: None,
                        }
                    }
                    Err(e) => failed(e),
                }
            }
            Kind::Dir { .. } if !recursive => failed(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory (remove it recursively, or use rmdir)",
            }),
            Kind::Dir { .. } => self.remove_tree(&mut books, path),
        }
    }

    /// Removes every key under the directory `path` (files first, then the
    /// markers, deepest first) and the resumable uploads into it. Returns
    /// the bytes freed, also when an error stops it partway: they are gone
    /// all the same, and leave the books.
    fn remove_tree(&self, books: &mut Counters, path: &VPath) -> Removed {
        let mut freed = 0u64;
        let mut gone = 0u64;
        let result = self.change(books, &format!("rm -r {path}"), |b| {
            let prefix = self.dir_key(path)?;
            let mut markers = Vec::new();
            let mut token = None;
            loop {
                let page = self
                    .client
                    .list(&prefix, None, token.as_deref(), 1000)
                    .map_err(|e| e.into_fs(path))?;
                for o in page.objects {
                    if o.key.ends_with('/') {
                        markers.push(o.key);
                        continue;
                    }
                    self.client.delete(&o.key).map_err(|e| e.into_fs(path))?;
                    freed += o.size;
                    gone += 1;
                    b.bytes = b.bytes.saturating_sub(o.size);
                    b.entries = b.entries.saturating_sub(1);
                }
                token = page.next;
                if token.is_none() {
                    break;
                }
            }
            markers.sort_by_key(|m| std::cmp::Reverse(m.len()));
            for m in markers {
                self.client.delete(&m).map_err(|e| e.into_fs(path))?;
                gone += 1;
                b.entries = b.entries.saturating_sub(1);
            }
            Ok(())
        });
        self.entries.give(gone);
        // Resumable uploads into the tree go with it, as partial files in
        // a local directory would (their bytes are counted apart from the
        // stored counters, see `usage`).
        let (partials, error) = match result {
            Ok(()) => match self.drop_uploads_under(path) {
                Ok(n) => (n, None),
                Err(e) => (0, Some(e)),
            },
            Err(e) => (0, Some(e)),
        };
        Removed {
            freed: freed + partials,
            error,
        }
    }
}

/// The name of `key`'s entry directly in `dir`, or None for the marker of
/// `dir` itself and keys no client path could name (never shown).
fn child_name(keys: &HomeKeys, key: &str, dir: &VPath) -> Option<String> {
    let path = keys.path_of(key)?;
    if path.parent().as_ref() != Some(dir) {
        return None;
    }
    path.name().map(str::to_string)
}

/// Level `n` of `path` exists and is not a directory: which error.
fn not_a_dir(path: &VPath, n: usize) -> FsError {
    let at = VPath::from_components(&path.components()[..n]);
    if n < path.components().len() {
        FsError::WrongType {
            path: at.to_string(),
            what: "not a directory",
        }
    } else {
        FsError::Exists(at.to_string())
    }
}
