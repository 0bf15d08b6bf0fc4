//! The local-disk backend: a jail rooted at the home directory's handle.
//! Every path is opened relative to that handle with cap-std, which on Linux
//! resolves with openat2(RESOLVE_BENEATH): `..`, absolute symlinks and
//! symlinks that lead out are refused by the kernel at open time, so there
//! is no window between a check and a use.
//!
//! Digests of stored files are kept in the extended attribute
//! `user.miniftp.sha256` together with the size and mtime they were computed
//! for and the moment they were stored. The inode's ctime, which no one can
//! set back, must not have moved since: a write, a `touch -d` that restores
//! the old mtime, a chmod or a rename all move it, so a changed file never
//! serves a stale digest (it is hashed again on its next download). While
//! the server runs it remembers the exact ctime each store left; after a
//! restart, ctime must be within a few milliseconds of the stored moment.
//! Where the filesystem has no user xattrs, downloads simply hash as they
//! send.

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, Metadata, MetadataExt as _, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};

use super::path::{display_name, is_internal_name, partial_name, PARTIAL_MARK};
use super::{
    Committed, Delta, EntryBook, FsError, FsResult, Leftover, PartialInfo, ReadHandle, Removed,
    Storage, UploadHandle, Usage, VPath,
};
use crate::limits::{MAX_DEPTH, MAX_DIR_ENTRIES};
use crate::proto::{Entry, EntryKind};

const DIGEST_XATTR: &str = "user.miniftp.sha256";

/// Mode of every directory the server makes (the data directory, homes,
/// directories in homes) and of every file (uploads, copies, partials),
/// whatever the umask: users' files are the server's user's alone, not
/// readable by other local accounts.
pub const DIR_MODE: u32 = 0o700;
pub const FILE_MODE: u32 = 0o600;

/// Creates `path` and its missing parents with [`DIR_MODE`].
pub fn create_private_dir_all(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Replaced files at least this big are freed after the commit's reply.
const DEFER_FREE_MIN: u64 = 8 << 20;

/// One user's home on local disk.
pub struct LocalStorage {
    home: Dir,
    /// Held while a change of names also decides the bytes it frees (the
    /// size of a file about to be replaced or removed): two sessions
    /// replacing one name at once must not both count the same old file.
    ///
    /// Also held from the lookup of a directory to the creation of a new
    /// name in it, and by a move that carries a tree deeper over its depth
    /// check: nothing can be created in a tree while it is checked and
    /// moved, so nothing ends up deeper than `MAX_DEPTH`.
    names: std::sync::Mutex<()>,
    entries: EntryBook,
}

impl LocalStorage {
    /// Opens (creating it if missing) the home directory at `path`.
    pub fn open(path: &Path) -> io::Result<LocalStorage> {
        create_private_dir_all(path)?;
        let home = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(LocalStorage {
            home,
            names: std::sync::Mutex::new(()),
            entries: EntryBook::default(),
        })
    }

    fn names(&self) -> std::sync::MutexGuard<'_, ()> {
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn err(&self, path: &VPath) -> impl Fn(io::Error) -> FsError + '_ {
        let path = path.clone();
        move |e| {
            // "No such file" inside a home that was itself removed is the
            // operator's doing, not the user's: say so (451).
            if e.kind() == io::ErrorKind::NotFound && self.is_gone() {
                return FsError::Io {
                    path: "/".into(),
                    source: io::Error::other(
                        "your home directory no longer exists on the server; tell the operator",
                    ),
                };
            }
            FsError::from_io(e, &path)
        }
    }

    /// The directory handle of `path`'s parent and `path`'s last name.
    fn parent_of<'a>(&self, path: &'a VPath) -> FsResult<(Dir, &'a str)> {
        let name = path.name().ok_or_else(|| FsError::Invalid {
            path: "/".into(),
            why: "the home directory itself can't be used here".into(),
        })?;
        let parent = path.parent().unwrap_or_default();
        let dir = self.open_dir(&parent)?;
        Ok((dir, name))
    }

    fn open_dir(&self, path: &VPath) -> FsResult<Dir> {
        if path.is_root() {
            return self.home.try_clone().map_err(self.err(path));
        }
        self.home.open_dir(path.rel()).map_err(self.err(path))
    }

    /// Visits every entry below `start` (directories too) without following
    /// symlinks: `visit` gets the entry's directory handle, its name, its
    /// display path and its metadata. Iterative, and opened by handle, so
    /// names that are not UTF-8 are walked like any other. It goes
    /// `MAX_DEPTH` levels below `start`, as deep as anything can be made;
    /// a deeper directory (made behind the server's back) is skipped with
    /// a warning.
    ///
    /// Pending subdirectories wait as (parent handle, name) and are opened
    /// when their turn comes, so the open descriptors stay proportional to
    /// the depth, not to the width of the tree.
    fn walk(
        &self,
        start: &VPath,
        visit: &mut dyn FnMut(&Dir, &OsStr, &VPath, &Metadata) -> FsResult<()>,
    ) -> FsResult<()> {
        let root = match self.open_dir(start) {
            Ok(d) => Arc::new(d),
            // Removed under us: nothing to visit.
            Err(FsError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut pending: Vec<(Arc<Dir>, Option<OsString>, VPath, usize)> =
            vec![(root, None, start.clone(), 0)];
        while let Some((parent, name, dir_path, depth)) = pending.pop() {
            let dir = match name {
                None => parent,
                Some(name) => match parent.open_dir(&name) {
                    Ok(d) => Arc::new(d),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.err(&dir_path)(e)),
                },
            };
            for entry in dir.entries().map_err(self.err(&dir_path))? {
                let entry = entry.map_err(self.err(&dir_path))?;
                let os_name = entry.file_name();
                let child = dir_path.join(&display_name(&os_name).0);
                let ft = match entry.file_type() {
                    Ok(ft) => ft,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.err(&child)(e)),
                };
                if ft.is_dir() {
                    if depth + 1 > MAX_DEPTH {
                        log::warn!("walk: {child} is deeper than {MAX_DEPTH} levels; skipped");
                        continue;
                    }
                    pending.push((
                        Arc::clone(&dir),
                        Some(os_name.clone()),
                        child.clone(),
                        depth + 1,
                    ));
                }
                match entry.metadata() {
                    Ok(md) => visit(&dir, &os_name, &child, &md)?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.err(&child)(e)),
                }
            }
        }
        Ok(())
    }

    /// Removes the directory `name` in `parent` and everything below it,
    /// depth first with one open handle per level. Returns the bytes of
    /// regular files removed, also when an error (a tree deeper than any
    /// the server makes, a permission) stops it partway: they are gone all
    /// the same. The entries removed leave the entry book.
    fn remove_tree(&self, parent: Dir, name: &str, path: &VPath) -> Removed {
        struct Level {
            dir: Dir,
            entries: cap_std::fs::ReadDir,
            name: OsString,
            path: VPath,
        }
        let open = |parent: &Dir, name: &OsStr, path: &VPath| -> FsResult<Level> {
            let dir = parent
                .open_dir(name)
                .map_err(|e| FsError::from_io(e, path))?;
            let entries = dir.entries().map_err(|e| FsError::from_io(e, path))?;
            Ok(Level {
                dir,
                entries,
                name: name.to_owned(),
                path: path.clone(),
            })
        };
        let (mut freed, mut gone) = (0u64, 0u64);
        let mut run = || -> FsResult<()> {
            let mut stack = vec![open(&parent, OsStr::new(name), path)?];
            loop {
                let depth = stack.len();
                let Some(top) = stack.last_mut() else {
                    return Ok(());
                };
                let Some(entry) = top.entries.next() else {
                    let done = stack.pop().expect("non-empty");
                    let parent_dir = stack.last().map_or(&parent, |l| &l.dir);
                    parent_dir
                        .remove_dir(&done.name)
                        .map_err(self.err(&done.path))?;
                    gone += 1;
                    continue;
                };
                let entry = entry.map_err(self.err(&top.path))?;
                let os_name = entry.file_name();
                let child = top.path.join(&display_name(&os_name).0);
                let md = entry.metadata().map_err(self.err(&child))?;
                if md.is_dir() {
                    if depth >= MAX_DEPTH {
                        return Err(FsError::Invalid {
                            path: child.to_string(),
                            why: format!("deeper than {MAX_DEPTH} levels"),
                        });
                    }
                    let level = open(&top.dir, &os_name, &child)?;
                    stack.push(level);
                } else {
                    top.dir.remove_file(&os_name).map_err(self.err(&child))?;
                    gone += 1;
                    if md.is_file() {
                        freed += md.len();
                    }
                }
            }
        };
        let error = run().err();
        self.entries.give(gone);
        Removed { freed, error }
    }

    /// Refuses to move the directory `from` to `to` when that would put
    /// anything in its tree deeper than `MAX_DEPTH` (the walks could not
    /// count or remove it). Walks the tree: call it with `names` held,
    /// and only for moves that go deeper.
    fn fits_at(&self, from: &VPath, to: &VPath) -> FsResult<()> {
        let too_deep = || FsError::Refused {
            path: to.to_string(),
            why: format!("moving it there would put its contents deeper than {MAX_DEPTH} levels"),
        };
        let room = MAX_DEPTH
            .checked_sub(to.components().len())
            .ok_or_else(too_deep)?;
        let base = from.components().len();
        self.walk(from, &mut |_, _, child, _| {
            if child.components().len() - base > room {
                return Err(too_deep());
            }
            Ok(())
        })
    }

    /// Creates the missing directories of `path` (like `mkdir -p`), taking
    /// their entries first, plus `extra` more that stay taken on success
    /// for what the caller creates in it. Nothing is made when the entry
    /// limit would be passed.
    fn make_dirs(&self, path: &VPath, extra: u64) -> FsResult<()> {
        let comps = path.components();
        let prefix = |n: usize| VPath::from_components(&comps[..n]);
        let _names = self.names();
        // The first missing level, from the top.
        let mut first_missing = None;
        for n in 1..=comps.len() {
            match self.home.metadata(prefix(n).rel()) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => return Err(self.not_a_dir(path, n)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    first_missing = Some(n);
                    break;
                }
                Err(e) => return Err(self.err(&prefix(n))(e)),
            }
        }
        let Some(first) = first_missing else {
            return self.entries.take(extra, path);
        };
        let missing = (comps.len() + 1 - first) as u64;
        self.entries.take(missing + extra, path)?;
        let mut made = 0;
        for n in first..=comps.len() {
            let at = prefix(n);
            match self.home.create_dir_with(at.rel(), &dir_builder()) {
                Ok(()) => made += 1,
                // Made by someone else meanwhile: fine if a directory.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !self.home.metadata(at.rel()).is_ok_and(|m| m.is_dir()) {
                        self.entries.give(missing + extra - made);
                        return Err(self.not_a_dir(path, n));
                    }
                }
                Err(e) => {
                    self.entries.give(missing + extra - made);
                    return Err(self.err(&at)(e));
                }
            }
        }
        self.entries.give(missing - made);
        Ok(())
    }

    /// Level `n` of `path` exists and is not a directory: which error.
    fn not_a_dir(&self, path: &VPath, n: usize) -> FsError {
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
}

impl LocalStorage {
    /// `copy` once checked and counted: writes `src` to a hidden temporary
    /// name beside `to` and renames it over `to`. Returns the bytes and
    /// entries of what it replaced.
    fn copy_into(&self, src: &ReadHandle, to: &VPath) -> FsResult<(u64, u64)> {
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

impl LocalStorage {
    /// `begin_upload` once the parents exist: opens the partial of `path`,
    /// continued from `offset`, or new.
    fn open_upload(&self, path: &VPath, offset: u64, resumable: bool) -> FsResult<UploadHandle> {
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
        Ok(UploadHandle {
            file,
            dir,
            partial,
            target: target.to_string(),
            vpath: path.clone(),
            resumable,
            prefix,
            truncated,
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
fn open_partial(dir: &Dir, name: &str, write: bool, path: &VPath) -> FsResult<Option<File>> {
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
    if !md.is_file() || md.nlink() != 1 {
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

/// How the server makes directories in homes: [`DIR_MODE`].
fn dir_builder() -> cap_std::fs::DirBuilder {
    use cap_std::fs::DirBuilderExt;
    let mut b = cap_std::fs::DirBuilder::new();
    b.mode(DIR_MODE);
    b
}

/// How the server makes new files in homes: exclusively (never through
/// whatever is already under the name), with [`FILE_MODE`].
fn new_file() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.write(true).create_new(true).mode(FILE_MODE);
    o
}

fn mtime_secs(md: &Metadata) -> i64 {
    md.modified()
        .ok()
        .map(|t| t.into_std())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64)
}

fn entry_from(name: String, escaped: bool, md: &Metadata) -> Entry {
    let ft = md.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_symlink() {
        EntryKind::Symlink
    } else {
        EntryKind::Other
    };
    Entry {
        name,
        kind,
        size: if kind == EntryKind::Dir { 0 } else { md.len() },
        mtime: mtime_secs(md),
        escaped,
    }
}

/// (mtime in ns, size): the identity a cached digest is for.
fn stamp_of(md: &std::fs::Metadata) -> (i128, u64) {
    (ns(md.mtime(), md.mtime_nsec()), md.size())
}

/// The stamp of an open file as it is now.
fn stamp(file: &File) -> io::Result<(i128, u64)> {
    file.metadata().map(|md| stamp_of(&md))
}

/// How much later than the moment a digest was stored the inode's ctime
/// may be and the digest still trusted: storing the attribute itself moves
/// ctime, a few microseconds after we read the clock (on filesystems with
/// coarse timestamps ctime may even lag it by a tick). A change within this
/// window after a digest is stored that keeps both size and mtime goes
/// unnoticed; a store that took longer (preempted) only costs one rehash at
/// the next download.
const CTIME_SLACK_NS: i128 = 2_000_000;

/// Nanoseconds since the epoch.
fn ns(secs: i64, nsec: i64) -> i128 {
    secs as i128 * 1_000_000_000 + nsec as i128
}

/// The digest stored for `file`, whose metadata is `md`, if it is still
/// the digest of its content.
fn read_digest(file: &File, md: &std::fs::Metadata) -> Option<[u8; 32]> {
    let mut buf = [0u8; 128];
    let n = rustix::fs::fgetxattr(file, DIGEST_XATTR, &mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    let mut it = text.split(' ');
    let hex_digest = it.next()?;
    let size: u64 = it.next()?.parse().ok()?;
    let mtime: i128 = it.next()?.parse().ok()?;
    let stored_at: i128 = it.next()?.parse().ok()?;
    if (mtime, size) != stamp_of(md) {
        return None;
    }
    let ctime = ns(md.ctime(), md.ctime_nsec());
    let fresh = match stored_ctimes().get(&(md.dev(), md.ino())) {
        // Stored by this process: the exact ctime it left.
        Some(&left) => ctime == left,
        None => ctime <= stored_at + CTIME_SLACK_NS,
    };
    if !fresh {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_digest, &mut out).ok()?;
    Some(out)
}

/// Stores `digest` for the file's current content. Call it after any
/// rename of the file, which moves ctime and would void it.
fn write_digest(file: &File, digest: &[u8; 32]) {
    let Ok((mtime, size)) = stamp(file) else {
        return;
    };
    // Twice at most: if the store itself landed outside the slack (the
    // thread was preempted between the clock and the syscall), once more.
    for _ in 0..2 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let stored_at = ns(now.as_secs() as i64, now.subsec_nanos() as i64);
        let value = format!("{} {size} {mtime} {stored_at}", hex::encode(digest));
        // Best effort: without xattr support, downloads hash as they go.
        if rustix::fs::fsetxattr(
            file,
            DIGEST_XATTR,
            value.as_bytes(),
            rustix::fs::XattrFlags::empty(),
        )
        .is_err()
        {
            return;
        }
        let Ok(md) = file.metadata() else {
            return;
        };
        let left = ns(md.ctime(), md.ctime_nsec());
        remember_ctime(md.dev(), md.ino(), left);
        if left <= stored_at + CTIME_SLACK_NS {
            return;
        }
    }
}

/// The ctime each digest this process stored left on its inode, by
/// (device, inode): while the server runs, a digest is trusted only if the
/// ctime is still exactly that, with no window at all. Bounded: cleared
/// when full (the slack rule then applies until a digest is stored again).
fn stored_ctimes() -> std::sync::MutexGuard<'static, HashMap<(u64, u64), i128>> {
    static STORED: OnceLock<Mutex<HashMap<(u64, u64), i128>>> = OnceLock::new();
    STORED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// At most this many inodes' ctimes are remembered (~40 bytes each, under
/// 1 MiB in all).
const MAX_STORED_CTIMES: usize = 16_384;

fn remember_ctime(dev: u64, ino: u64, ctime: i128) {
    let mut map = stored_ctimes();
    if map.len() >= MAX_STORED_CTIMES {
        map.clear();
    }
    map.insert((dev, ino), ctime);
}

fn random_suffix() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl Storage for LocalStorage {
    fn is_gone(&self) -> bool {
        // A removed directory keeps working as a handle, with no links.
        self.home.dir_metadata().is_ok_and(|m| m.nlink() == 0)
    }

    fn list(&self, dir_path: &VPath) -> FsResult<Vec<Entry>> {
        let dir = self.open_dir(dir_path)?;
        let mut out = Vec::new();
        for entry in dir.entries().map_err(self.err(dir_path))? {
            let entry = entry.map_err(self.err(dir_path))?;
            let os_name = entry.file_name();
            let (name, escaped) = display_name(&os_name);
            if is_internal_name(&name) {
                continue;
            }
            let md = match entry.metadata() {
                Ok(md) => md,
                // Removed between readdir and stat: skip it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(self.err(dir_path)(e)),
            };
            out.push(entry_from(name, escaped, &md));
            if out.len() > MAX_DIR_ENTRIES {
                return Err(FsError::Io {
                    path: dir_path.to_string(),
                    source: io::Error::other(format!(
                        "directory has more than {MAX_DIR_ENTRIES} entries, \
                         too many to list; list a subdirectory"
                    )),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn stat(&self, path: &VPath) -> FsResult<Entry> {
        let md = if path.is_root() {
            self.home.dir_metadata()
        } else {
            self.home.metadata(path.rel())
        }
        .map_err(self.err(path))?;
        Ok(entry_from(
            path.name().unwrap_or("/").to_string(),
            false,
            &md,
        ))
    }

    fn mkdir(&self, path: &VPath, parents: bool) -> FsResult<()> {
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
        self.entries.take(1, path)?;
        let made = {
            let _names = self.names();
            self.home.create_dir_with(path.rel(), &dir_builder())
        };
        if made.is_err() {
            self.entries.give(1);
        }
        match made {
            // "Exists" may be a symlink that leads out, or a file in the
            // way: say which, rather than a bare "already exists".
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                for n in 1..=path.components().len() {
                    let prefix = VPath::from_components(&path.components()[..n]);
                    match self.home.metadata(prefix.rel()) {
                        Ok(md) if md.is_dir() => {}
                        Ok(_) => return Err(self.not_a_dir(path, n)),
                        Err(e) => return Err(self.err(&prefix)(e)),
                    }
                }
                Err(FsError::Exists(path.to_string()))
            }
            other => other.map_err(self.err(path)),
        }
    }

    fn rmdir(&self, path: &VPath) -> FsResult<()> {
        let (dir, name) = self.parent_of(path)?;
        let md = dir.symlink_metadata(name).map_err(self.err(path))?;
        if !md.is_dir() {
            return Err(FsError::WrongType {
                path: path.to_string(),
                what: "not a directory",
            });
        }
        match dir.remove_dir(name) {
            // A directory holding only partial uploads looks empty to the
            // user but isn't: say so rather than a bare ENOTEMPTY.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error()) => {
                let visible = self.list(path).map(|l| l.len()).unwrap_or(1);
                if visible == 0 {
                    return Err(FsError::Invalid {
                        path: path.to_string(),
                        why: "holds only interrupted uploads; remove it with a recursive rm".into(),
                    });
                }
                Err(FsError::NotEmpty(path.to_string()))
            }
            other => other.map_err(self.err(path)),
        }
        .inspect(|()| self.entries.give(1))
    }

    fn remove(&self, path: &VPath, recursive: bool) -> Removed {
        let failed = |error| Removed {
            freed: 0,
            error: Some(error),
        };
        let _names = self.names();
        let (dir, name) = match self.parent_of(path) {
            Ok(x) => x,
            Err(e) => return failed(e),
        };
        let md = match dir.symlink_metadata(name) {
            Ok(md) => md,
            Err(e) => return failed(self.err(path)(e)),
        };
        if !md.is_dir() {
            if let Err(e) = dir.remove_file(name) {
                return failed(self.err(path)(e));
            }
            self.entries.give(1);
            let freed = if md.is_file() { md.len() } else { 0 };
            return Removed { freed, error: None };
        }
        if !recursive {
            return failed(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory (remove it recursively, or use rmdir)",
            });
        }
        self.remove_tree(dir, name, path)
    }

    fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath> {
        let target = match self.stat(to) {
            Ok(e) if e.kind == EntryKind::Dir => {
                let name = from.name().ok_or_else(|| FsError::Invalid {
                    path: "/".into(),
                    why: "the home directory itself can't be moved".into(),
                })?;
                to.join(name)
            }
            _ => to.clone(),
        };
        // Into a directory at the deepest level: one too deep.
        if target.components().len() > MAX_DEPTH {
            return Err(FsError::Refused {
                path: target.to_string(),
                why: format!("deeper than {MAX_DEPTH} levels (the server's limit)"),
            });
        }
        Ok(target)
    }

    fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64> {
        let to = self.target_of(from, to)?;
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(&to)?;
        let _names = self.names();
        let src = from_dir
            .symlink_metadata(from_name)
            .map_err(self.err(from))?;
        if src.is_dir() && to.components().len() > from.components().len() {
            self.fits_at(from, &to)?;
        }
        let (replaced, gone) = match to_dir.symlink_metadata(to_name) {
            // Onto itself (or another link to the same file): rename(2)
            // does nothing, and nothing is freed.
            Ok(md) if md.dev() == src.dev() && md.ino() == src.ino() => (0, 0),
            Ok(md) if md.is_file() => (md.len(), 1),
            // A symlink, or an empty directory, replaced.
            Ok(_) => (0, 1),
            Err(_) => (0, 0),
        };
        from_dir
            .rename(from_name, &to_dir, to_name)
            .map_err(self.err(&to))?;
        self.entries.give(gone);
        Ok(replaced)
    }

    fn copy(&self, from: &VPath, to: &VPath) -> FsResult<Delta> {
        let to = self.target_of(from, to)?;
        if &to == from {
            return Err(FsError::Invalid {
                path: to.to_string(),
                why: "source and target are the same file".into(),
            });
        }
        let src = self.open_read(from)?;
        // The copy is one more entry until it replaces the target.
        self.entries.take(1, &to)?;
        match self.copy_into(&src, &to) {
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

    fn open_read(&self, path: &VPath) -> FsResult<ReadHandle> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        // A FIFO must not block the opening thread.
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let file = self
            .home
            .open_with(path.rel(), &opts)
            .map_err(self.err(path))?
            .into_std();
        let md = file.metadata().map_err(self.err(path))?;
        if md.is_dir() {
            return Err(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory",
            });
        }
        if !md.is_file() {
            return Err(FsError::Refused {
                path: path.to_string(),
                why: "not a regular file (device, FIFO or socket)".into(),
            });
        }
        let stamp = stamp_of(&md);
        let digest = read_digest(&file, &md);
        Ok(ReadHandle {
            size: stamp.1,
            digest,
            stamp,
            file,
        })
    }

    fn remember_digest(&self, handle: &ReadHandle, digest: &[u8; 32]) {
        if stamp(&handle.file).ok() == Some(handle.stamp) {
            write_digest(&handle.file, digest);
        }
    }

    fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>> {
        let (dir, name) = self.parent_of(path)?;
        let Some(file) = open_partial(&dir, &partial_name(name), false, path)? else {
            return Ok(None);
        };
        let mut hasher = Sha256::new();
        let size = io::copy(&mut &file, &mut HashWriter(&mut hasher)).map_err(self.err(path))?;
        Ok(Some(PartialInfo {
            size,
            sha256: hex::encode(hasher.finalize()),
        }))
    }

    fn partial_len(&self, path: &VPath) -> FsResult<u64> {
        let (dir, name) = self.parent_of(path)?;
        match dir.symlink_metadata(partial_name(name)) {
            // What `begin_upload` takes off the books when it starts over.
            Ok(md) if md.is_file() && md.nlink() == 1 => Ok(md.len()),
            Ok(_) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(self.err(path)(e)),
        }
    }

    fn begin_upload(
        &self,
        path: &VPath,
        offset: u64,
        mkdirs: bool,
        resumable: bool,
    ) -> FsResult<UploadHandle> {
        if path.is_root() {
            return Err(FsError::WrongType {
                path: "/".into(),
                what: "is a directory",
            });
        }
        if mkdirs {
            // With room for the partial too, so that a put that can't make
            // its partial doesn't make its parents either; the partial's
            // entry is taken again when it is made.
            let parent = path.parent().unwrap_or_default();
            self.make_dirs(&parent, 1)?;
            self.entries.give(1);
        }
        self.open_upload(path, offset, resumable)
    }

    fn commit_upload(
        &self,
        up: UploadHandle,
        sha256: &[u8; 32],
        fsync: bool,
    ) -> FsResult<Committed> {
        let path = up.vpath.clone();
        let result = (|| -> FsResult<Committed> {
            if fsync {
                up.file.sync_data().map_err(self.err(&path))?;
            }
            let names = self.names();
            let (replaced, gone) = match up.dir.symlink_metadata(&up.target) {
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
                .then(|| format!("{}.{}.old", partial_name(&up.target), random_suffix()))
                .filter(|old| up.dir.hard_link(&up.target, &up.dir, old).is_ok());
            up.dir
                .rename(&up.partial, &up.dir, &up.target)
                .map_err(self.err(&path))?;
            // The partial took the old version's place.
            self.entries.give(gone);
            drop(names);
            // After the rename, which moves ctime (see read_digest).
            write_digest(&up.file, sha256);
            if fsync {
                // Make the rename itself durable.
                if let Ok(d) = up.dir.open(".") {
                    let _ = d.sync_all();
                }
            }
            let leftover = match leftover {
                Some(name) => Some(Leftover {
                    dir: up.dir.try_clone().map_err(self.err(&path))?,
                    name,
                }),
                None => None,
            };
            Ok(Committed { replaced, leftover })
        })();
        if result.is_err() && up.dir.remove_file(&up.partial).is_ok() {
            self.entries.give(1);
        }
        result
    }

    fn abort_upload(&self, up: UploadHandle, keep: bool) -> u64 {
        if keep && up.resumable {
            return up.file.metadata().map_or(0, |m| m.len());
        }
        if up.dir.remove_file(&up.partial).is_ok() {
            self.entries.give(1);
        }
        0
    }

    fn usage(&self) -> FsResult<Usage> {
        let mut usage = Usage::default();
        self.walk(&VPath::root(), &mut |_, name, _, md| {
            // A replaced version awaiting removal was already taken off
            // the books when it was replaced.
            if is_leftover(name) {
                return Ok(());
            }
            usage.entries += 1;
            if md.is_file() {
                usage.bytes += md.len();
            }
            Ok(())
        })?;
        Ok(usage)
    }

    fn entries(&self) -> &EntryBook {
        &self.entries
    }

    fn sweep_partials(&self, max_age: Duration, in_use: &dyn Fn(&VPath) -> bool) -> FsResult<u64> {
        let now = SystemTime::now();
        let mut freed = 0;
        self.walk(&VPath::root(), &mut |dir, os_name, child, md| {
            let Some(name) = os_name.to_str() else {
                return Ok(());
            };
            if !md.is_file() || !is_internal_name(name) {
                return Ok(());
            }
            let age = md
                .modified()
                .ok()
                .and_then(|t| now.duration_since(t.into_std()).ok())
                .unwrap_or_default();
            // `.NAME.miniftp-part[.suffix]` belongs to `NAME`.
            let target = name[1..]
                .split(PARTIAL_MARK)
                .next()
                .map(|t| child.parent().unwrap_or_default().join(t));
            // A replaced version left by a commit (`….old`) is removed
            // right after its reply; one that is still here is from a
            // server that died in between.
            let leftover = is_leftover(os_name);
            let stale = leftover || (age > max_age && !target.is_some_and(|t| in_use(&t)));
            if stale && dir.remove_file(name).is_ok() {
                log::info!("removed stale partial upload {child} ({} bytes)", md.len());
                // Leftovers are not in the books (see `usage`).
                if !leftover {
                    freed += md.len();
                    self.entries.give(1);
                }
            }
            Ok(())
        })?;
        Ok(freed)
    }
}

/// A replaced version kept by `commit_upload` for removal after the reply.
fn is_leftover(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| is_internal_name(n) && n.ends_with(".old"))
}

/// Feeds `io::copy` into a hasher.
pub struct HashWriter<'a>(pub &'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vp(s: &str) -> VPath {
        VPath::resolve(&VPath::root(), s).unwrap()
    }

    fn setup() -> (tempfile::TempDir, LocalStorage) {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let s = LocalStorage::open(&home).unwrap();
        (t, s)
    }

    fn upload(s: &LocalStorage, path: &str, data: &[u8]) {
        let mut up = s.begin_upload(&vp(path), 0, false, true).unwrap();
        up.write_all(data).unwrap();
        let digest: [u8; 32] = Sha256::digest(data).into();
        s.commit_upload(up, &digest, false).unwrap();
    }

    #[test]
    fn upload_list_stat_and_digest_cache() {
        let (_t, s) = setup();
        upload(&s, "a b.txt", b"hello");
        let list = s.list(&VPath::root()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].name, "a b.txt");
        assert_eq!(list[0].size, 5);
        let h = s.open_read(&vp("a b.txt")).unwrap();
        assert_eq!(h.size, 5);
        let expect: [u8; 32] = Sha256::digest(b"hello").into();
        // tmpfs and ext4 both have user xattrs; others may not.
        if let Some(d) = h.digest {
            assert_eq!(d, expect);
        }
    }

    #[test]
    fn symlink_out_of_home_is_refused() {
        let (t, s) = setup();
        std::fs::write(t.path().join("secret"), b"x").unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), t.path().join("home/abs")).unwrap();
        std::os::unix::fs::symlink("../secret", t.path().join("home/rel")).unwrap();
        for name in ["abs", "rel"] {
            let e = s.open_read(&vp(name)).err().expect("must fail");
            assert!(matches!(e, FsError::Refused { .. }), "{name}: {e:?}");
        }
        let e = s.begin_upload(&vp("rel"), 0, false, true);
        // The partial is written beside the link, never through it; the
        // commit then replaces the link itself.
        if let Ok(mut up) = e {
            up.write_all(b"new").unwrap();
            let d: [u8; 32] = Sha256::digest(b"new").into();
            s.commit_upload(up, &d, false).unwrap();
        }
        assert_eq!(std::fs::read(t.path().join("secret")).unwrap(), b"x");
    }

    #[test]
    fn aborted_upload_keeps_old_version_and_partial_is_hidden() {
        let (_t, s) = setup();
        upload(&s, "f", b"old");
        let mut up = s.begin_upload(&vp("f"), 0, false, true).unwrap();
        up.write_all(b"new con").unwrap();
        assert_eq!(s.abort_upload(up, true), 7);
        assert_eq!(s.list(&VPath::root()).unwrap().len(), 1);
        let p = s.partial(&vp("f")).unwrap().unwrap();
        assert_eq!(p.size, 7);
        let mut up = s.begin_upload(&vp("f"), 4, false, true).unwrap();
        let mut h = up.prefix.clone();
        h.update(b"tent");
        up.write_all(b"tent").unwrap();
        let d: [u8; 32] = h.finalize().into();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(b"new tent")));
        assert_eq!(s.commit_upload(up, &d, false).unwrap().replaced, 3);
        assert_eq!(
            s.usage().unwrap(),
            Usage {
                bytes: 8,
                entries: 1
            }
        );
    }

    #[test]
    fn recursive_remove_counts_bytes() {
        let (_t, s) = setup();
        s.mkdir(&vp("d/e/f"), true).unwrap();
        upload(&s, "d/x", b"12345");
        upload(&s, "d/e/f/y", b"123");
        assert!(matches!(
            s.remove(&vp("d"), false).error,
            Some(FsError::WrongType { .. })
        ));
        let r = s.remove(&vp("d"), true);
        assert!(r.error.is_none());
        assert_eq!(r.freed, 8);
        assert!(s.list(&VPath::root()).unwrap().is_empty());
    }

    #[test]
    fn entries_follow_creations_and_removals() {
        let (_t, s) = setup();
        s.entries().reset(0, 6);
        s.mkdir(&vp("a/b"), true).unwrap();
        upload(&s, "a/f", b"1");
        upload(&s, "a/f", b"22");
        s.copy(&vp("a/f"), &vp("g")).unwrap();
        s.copy(&vp("a/f"), &vp("g")).unwrap();
        assert_eq!(s.entries().get(), (4, 6));
        s.rename(&vp("g"), &vp("a/f")).unwrap();
        assert_eq!(s.entries().get(), (3, 6));
        // mkdir -p of four levels doesn't fit in the 3 left: nothing is made.
        assert!(matches!(
            s.mkdir(&vp("x/y/z/w"), true),
            Err(FsError::TooManyEntries { .. })
        ));
        assert!(s.stat(&vp("x")).is_err());
        let mut up = s.begin_upload(&vp("x/y/f"), 0, true, true).unwrap();
        up.write_all(b"p").unwrap();
        assert_eq!(s.entries().get(), (6, 6));
        assert!(s.begin_upload(&vp("q"), 0, false, false).is_err());
        s.abort_upload(up, false);
        assert_eq!(s.entries().get(), (5, 6));
        assert_eq!(s.remove(&vp("x"), true).freed, 0);
        s.rmdir(&vp("a/b")).unwrap();
        assert_eq!(s.entries().get(), (2, 6));
        assert_eq!(s.usage().unwrap().entries, 2);
    }

    #[test]
    fn nothing_goes_deeper_than_the_walks_reach() {
        let (_t, s) = setup();
        let deep = |n: usize| vp(&vec!["d"; n].join("/"));
        s.mkdir(&deep(MAX_DEPTH), true).unwrap();
        upload(&s, &format!("{}/f", deep(MAX_DEPTH - 1)), b"12345");
        assert_eq!(s.usage().unwrap().bytes, 5);
        s.mkdir(&vp("box"), false).unwrap();
        // `d` holds 255 levels below it: one level down is one too many.
        let e = s.rename(&vp("d"), &vp("box")).unwrap_err();
        assert!(matches!(e, FsError::Refused { .. }), "{e:?}");
        s.rename(&vp("d"), &vp("e")).unwrap();
        let r = s.remove(&vp("e"), true);
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(r.freed, 5);
    }
}
