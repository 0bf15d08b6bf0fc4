//! Uploads on local disk: the hidden partial file beside its target, opened
//! afresh or continued, and renamed over the target by the commit; and the
//! server-side copy, which is written the same way.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use cap_std::fs::{Dir, MetadataExt as _};
use sha2::{Digest, Sha256};

use super::digest::write_digest;
use super::{lock_names, new_file, random_suffix, set_times, LocalRead, LocalStorage};
use crate::digest::HashWriter;
use crate::limits::DEFER_FREE_MIN;
use crate::storage::path::partial_name;
use crate::storage::{Committed, EntryBook, FsError, FsResult, UploadHandle, VPath};

/// An upload to a hidden partial file beside its target.
pub(super) struct LocalUpload {
    file: File,
    dir: Dir,
    partial: String,
    target: String,
    vpath: VPath,
    resumable: bool,
    prefix: Sha256,
    truncated: u64,
    /// The modification time the file gets before it becomes visible.
    pub(super) mtime: Option<i64>,
    /// The home's locks and books (see `LocalStorage`).
    names: Arc<Mutex<()>>,
    entries: Arc<EntryBook>,
}

impl UploadHandle for LocalUpload {
    fn path(&self) -> &VPath {
        &self.vpath
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

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.file, buf)
    }

    fn commit(self: Box<Self>, sha256: &[u8; 32], fsync: bool) -> FsResult<Committed> {
        let result = self.rename_into_place(sha256, fsync);
        if result.is_err() && self.dir.remove_file(&self.partial).is_ok() {
            self.entries.give(1);
        }
        result
    }

    fn abort(self: Box<Self>, keep: bool) -> u64 {
        if keep && self.resumable {
            return self.file.metadata().map_or(0, |m| m.len());
        }
        if self.dir.remove_file(&self.partial).is_ok() {
            self.entries.give(1);
        }
        0
    }
}

impl LocalUpload {
    fn rename_into_place(&self, sha256: &[u8; 32], fsync: bool) -> FsResult<Committed> {
        let path = &self.vpath;
        let err = |e| FsError::from_io(e, path);
        if fsync {
            self.file.sync_data().map_err(err)?;
        }
        if let Some(mtime) = self.mtime {
            // Before the rename: the file never shows another time.
            set_times(&self.file, mtime).map_err(err)?;
        }
        let names = lock_names(&self.names);
        let (replaced, gone) = match self.dir.symlink_metadata(&self.target) {
            Ok(md) if md.is_dir() => {
                return Err(FsError::WrongType {
                    path: path.to_string(),
                    what: "became a directory during the upload",
                })
            }
            Ok(md) if md.is_file() => (md.len(), 1),
            Ok(_) => (0, 1),
            Err(_) => (0, 0),
        };
        // A large old version gets a second, hidden name first: the
        // rename below then drops a link instead of freeing every page
        // while the client waits. The rename stays atomic.
        let leftover = (replaced >= DEFER_FREE_MIN)
            .then(|| format!("{}.{}.old", partial_name(&self.target), random_suffix()))
            .filter(|old| self.dir.hard_link(&self.target, &self.dir, old).is_ok());
        self.dir
            .rename(&self.partial, &self.dir, &self.target)
            .map_err(err)?;
        // The partial took the old version's place.
        self.entries.give(gone);
        drop(names);
        // After the rename, which moves ctime (see digest.rs).
        write_digest(&self.file, sha256);
        if fsync {
            // Make the rename itself durable.
            if let Ok(d) = self.dir.open(".") {
                let _ = d.sync_all();
            }
        }
        let later = match leftover {
            Some(name) => {
                let dir = self.dir.try_clone().map_err(err)?;
                Some(Box::new(move || {
                    let _ = dir.remove_file(&name);
                }) as Box<dyn FnOnce() + Send>)
            }
            None => None,
        };
        Ok(Committed { replaced, later })
    }
}

impl LocalStorage {
    /// `begin_upload` once the parents exist: opens the partial of `path`,
    /// continued from `offset`, or new.
    pub(super) fn open_upload(
        &self,
        path: &VPath,
        offset: u64,
        resumable: bool,
    ) -> FsResult<LocalUpload> {
        let target = path.name().unwrap_or_default();
        // From finding the directory to creating in it (see `names`).
        let names = self.names();
        let (dir, _) = self.parent_of(path).map_err(|e| match e {
            FsError::NotFound(_) => FsError::NotFound(format!(
                "{}: parent directory {}",
                path,
                path.parent().unwrap_or_default()
            )),
            e => e,
        })?;
        if dir.metadata(target).is_ok_and(|md| md.is_dir()) {
            return Err(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory",
            });
        }
        let partial = if resumable {
            partial_name(target)
        } else {
            format!("{}.{}", partial_name(target), random_suffix())
        };
        let mut prefix = Sha256::new();
        let (file, truncated) = if offset > 0 {
            // Nothing is created: hashing a long prefix needn't hold up
            // other sessions.
            drop(names);
            if !resumable {
                return Err(FsError::Busy(path.to_string()));
            }
            let (file, len) = self.resume_partial(&dir, &partial, offset, path)?;
            let copied = io::copy(
                &mut io::Read::take(&file, offset),
                &mut HashWriter(&mut prefix),
            )
            .map_err(self.err(path))?;
            debug_assert_eq!(copied, offset);
            io::Seek::seek(&mut &file, io::SeekFrom::Start(offset)).map_err(self.err(path))?;
            (file, len - offset)
        } else {
            self.fresh_partial(&dir, &partial, path)?
        };
        Ok(LocalUpload {
            file,
            dir,
            partial,
            target: target.to_string(),
            vpath: path.clone(),
            resumable,
            prefix,
            truncated,
            mtime: None,
            names: Arc::clone(&self.names),
            entries: Arc::clone(&self.entries),
        })
    }

    /// Makes the partial `name` in `dir` anew. Whatever was under the name
    /// goes first: an old partial (its bytes are returned, to leave the
    /// books), or anything someone else put there (a symlink, a FIFO, a
    /// hard link to another file): the name is the server's, and the new
    /// file is created exclusively, so nothing is ever opened through it.
    fn fresh_partial(&self, dir: &Dir, name: &str, path: &VPath) -> FsResult<(File, u64)> {
        let mut cut = 0;
        match dir.symlink_metadata(name) {
            Ok(md) if md.is_dir() => return Err(not_a_partial(path)),
            Ok(md) => match dir.remove_file(name) {
                Ok(()) => {
                    self.entries.give(1);
                    if md.is_file() && md.nlink() == 1 {
                        cut = md.len();
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(self.err(path)(e)),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(self.err(path)(e)),
        }
        self.entries.take(1, path)?;
        match dir.open_with(name, &new_file()) {
            Ok(f) => Ok((f.into_std(), cut)),
            Err(e) => {
                self.entries.give(1);
                Err(self.err(path)(e))
            }
        }
    }

    /// Opens the resumable partial `name` in `dir` to continue it at
    /// `offset`, cutting off what lies beyond; returns it and the length
    /// it had.
    fn resume_partial(
        &self,
        dir: &Dir,
        name: &str,
        offset: u64,
        path: &VPath,
    ) -> FsResult<(File, u64)> {
        let Some(file) = open_partial(dir, name, true, path)? else {
            return Err(FsError::Invalid {
                path: path.to_string(),
                why: "no partial upload to resume (start at offset 0)".into(),
            });
        };
        let len = file.metadata().map_err(self.err(path))?.len();
        if offset > len {
            return Err(FsError::Invalid {
                path: path.to_string(),
                why: format!("resume offset {offset} is beyond the partial upload's {len} bytes"),
            });
        }
        if len > offset {
            file.set_len(offset).map_err(self.err(path))?;
        }
        Ok((file, len))
    }
}

/// Opens the partial upload `name` in `dir`, which the server did not just
/// create: anyone who can write into the home (another local account, see
/// SECURITY.md) may have put anything under that name. Never through a
/// symlink (`O_NOFOLLOW`), never waiting for a FIFO's other end
/// (`O_NONBLOCK`), and only a regular file with a single link (not a hard
/// link to some other file). None when there is nothing under the name.
///
/// `name` is one name (partial names hold no `/`), so opening it relative
/// to `dir` can't leave the jail.
pub(super) fn open_partial(
    dir: &Dir,
    name: &str,
    write: bool,
    path: &VPath,
) -> FsResult<Option<File>> {
    use rustix::fs::{openat, Mode, OFlags};
    use rustix::io::Errno;
    let access = if write { OFlags::RDWR } else { OFlags::RDONLY };
    let flags = access | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let file = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => File::from(fd),
        Err(Errno::NOENT) => return Ok(None),
        // A symlink; a socket, or a FIFO with no reader (for writing).
        Err(Errno::LOOP | Errno::NXIO) => return Err(not_a_partial(path)),
        Err(e) => return Err(FsError::from_io(e.into(), path)),
    };
    let md = file.metadata().map_err(|e| FsError::from_io(e, path))?;
    if !md.is_file() || std::os::unix::fs::MetadataExt::nlink(&md) != 1 {
        return Err(not_a_partial(path));
    }
    Ok(Some(file))
}

/// Something other than a partial upload is under its name (see
/// [`open_partial`]).
fn not_a_partial(path: &VPath) -> FsError {
    FsError::Refused {
        path: path.to_string(),
        why: "what is under its partial upload's name on the server is not a regular \
              file of its own; upload it again from the start (offset 0)"
            .into(),
    }
}

impl LocalStorage {
    /// `copy` once checked and counted: writes `src` to a hidden temporary
    /// name beside `to` and renames it over `to`. Returns the bytes and
    /// entries of what it replaced.
    pub(super) fn copy_into(&self, src: &LocalRead, to: &VPath) -> FsResult<(u64, u64)> {
        let (to_dir, to_name, tmp, mut dst) = {
            // From finding the directory to creating in it (see `names`).
            let _names = self.names();
            let (to_dir, to_name) = self.parent_of(to)?;
            if to_dir.symlink_metadata(to_name).is_ok_and(|md| md.is_dir()) {
                return Err(FsError::WrongType {
                    path: to.to_string(),
                    what: "is a directory",
                });
            }
            let tmp = format!("{}.{}", partial_name(to_name), random_suffix());
            let dst = to_dir
                .open_with(&tmp, &new_file())
                .map_err(|e| FsError::from_io(e, to))?
                .into_std();
            (to_dir, to_name, tmp, dst)
        };
        let result = (|| -> io::Result<(u64, u64)> {
            let mut reader = &src.file;
            let copied = io::copy(&mut reader, &mut dst)?;
            if copied != src.size {
                return Err(io::Error::other("source changed during the copy"));
            }
            let _names = self.names();
            let replaced = match to_dir.symlink_metadata(to_name) {
                Ok(md) if md.is_dir() => return Err(io::ErrorKind::IsADirectory.into()),
                Ok(md) if md.is_file() => (md.len(), 1),
                Ok(_) => (0, 1),
                Err(_) => (0, 0),
            };
            to_dir.rename(&tmp, &to_dir, to_name)?;
            if let Some(d) = src.digest {
                write_digest(&dst, &d);
            }
            Ok(replaced)
        })();
        result.map_err(|e| {
            let _ = to_dir.remove_file(&tmp);
            FsError::from_io(e, to)
        })
    }
}
