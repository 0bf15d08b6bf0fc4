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
    Committed, Delta, FsError, FsResult, Leftover, PartialInfo, ReadHandle, Storage, UploadHandle,
    VPath,
};
use crate::digest::HashWriter;
use crate::limits::{MAX_DIR_ENTRIES, MAX_WALK_DEPTH};
use crate::proto::{Entry, EntryKind};

const DIGEST_XATTR: &str = "user.miniftp.sha256";

/// Replaced files at least this big are freed after the commit's reply.
const DEFER_FREE_MIN: u64 = 8 << 20;

/// One user's home on local disk.
pub struct LocalStorage {
    home: Dir,
    /// Held while a change of names also decides the bytes it frees (the
    /// size of a file about to be replaced or removed): two sessions
    /// replacing one name at once must not both count the same old file.
    names: std::sync::Mutex<()>,
}

impl LocalStorage {
    /// Opens (creating it if missing) the home directory at `path`.
    pub fn open(path: &Path) -> io::Result<LocalStorage> {
        std::fs::create_dir_all(path)?;
        let home = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(LocalStorage {
            home,
            names: std::sync::Mutex::new(()),
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

    /// Visits every non-directory entry below `start` without following
    /// symlinks: `visit` gets the entry's directory handle, its name, its
    /// display path and its metadata. Iterative, depth-capped, and opened
    /// by handle, so names that are not UTF-8 are walked like any other.
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
                    if depth + 1 < MAX_WALK_DEPTH {
                        pending.push((Arc::clone(&dir), Some(os_name), child, depth + 1));
                    } else {
                        log::warn!("walk: {child} is deeper than {MAX_WALK_DEPTH}; skipped");
                    }
                    continue;
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
    /// depth first with one open handle per level; returns the bytes of
    /// regular files removed.
    fn remove_tree(&self, parent: Dir, name: &str, path: &VPath) -> FsResult<u64> {
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
        let mut freed = 0u64;
        let mut stack = vec![open(&parent, OsStr::new(name), path)?];
        loop {
            let depth = stack.len();
            let Some(top) = stack.last_mut() else {
                break;
            };
            match top.entries.next() {
                Some(entry) => {
                    let entry = entry.map_err(self.err(&top.path))?;
                    let os_name = entry.file_name();
                    let child = top.path.join(&display_name(&os_name).0);
                    let md = entry.metadata().map_err(self.err(&child))?;
                    if md.is_dir() {
                        if depth >= MAX_WALK_DEPTH {
                            return Err(FsError::Invalid {
                                path: child.to_string(),
                                why: format!("deeper than {MAX_WALK_DEPTH} levels"),
                            });
                        }
                        let level = open(&top.dir, &os_name, &child)?;
                        stack.push(level);
                    } else {
                        top.dir.remove_file(&os_name).map_err(self.err(&child))?;
                        if md.is_file() {
                            freed += md.len();
                        }
                    }
                }
                None => {
                    let done = stack.pop().expect("non-empty");
                    let parent_dir = stack.last().map_or(&parent, |l| &l.dir);
                    parent_dir
                        .remove_dir(&done.name)
                        .map_err(self.err(&done.path))?;
                }
            }
        }
        Ok(freed)
    }
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

/// Sets an open file's modification time (epoch seconds); the access time
/// is left alone.
fn set_times(file: &File, mtime: i64) -> io::Result<()> {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    };
    rustix::fs::futimens(file, &times).map_err(io::Error::from)
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
        let made = if parents {
            self.home.create_dir_all(path.rel())
        } else {
            self.home.create_dir(path.rel())
        };
        match made {
            // "Exists" may be a symlink that leads out, or a file in the
            // way: say which, rather than a bare "already exists".
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let exists = FsError::Exists(path.to_string());
                for n in 1..=path.components().len() {
                    let prefix = VPath::from_components(&path.components()[..n]);
                    match self.home.metadata(prefix.rel()) {
                        Ok(md) if md.is_dir() => {}
                        Ok(_) if n < path.components().len() => {
                            return Err(FsError::WrongType {
                                path: prefix.to_string(),
                                what: "not a directory",
                            })
                        }
                        Ok(_) => return Err(exists),
                        Err(e) => return Err(self.err(&prefix)(e)),
                    }
                }
                if parents {
                    Ok(())
                } else {
                    Err(exists)
                }
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
    }

    fn remove(&self, path: &VPath, recursive: bool) -> FsResult<u64> {
        let _names = self.names();
        let (dir, name) = self.parent_of(path)?;
        let md = dir.symlink_metadata(name).map_err(self.err(path))?;
        if !md.is_dir() {
            let size = if md.is_file() { md.len() } else { 0 };
            dir.remove_file(name).map_err(self.err(path))?;
            return Ok(size);
        }
        if !recursive {
            return Err(FsError::WrongType {
                path: path.to_string(),
                what: "is a directory (remove it recursively, or use rmdir)",
            });
        }
        self.remove_tree(dir, name, path)
    }

    fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath> {
        match self.stat(to) {
            Ok(e) if e.kind == EntryKind::Dir => {
                let name = from.name().ok_or_else(|| FsError::Invalid {
                    path: "/".into(),
                    why: "the home directory itself can't be moved".into(),
                })?;
                Ok(to.join(name))
            }
            _ => Ok(to.clone()),
        }
    }

    fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64> {
        let to = self.target_of(from, to)?;
        let (from_dir, from_name) = self.parent_of(from)?;
        let (to_dir, to_name) = self.parent_of(&to)?;
        let _names = self.names();
        let src = from_dir
            .symlink_metadata(from_name)
            .map_err(self.err(from))?;
        let replaced = match to_dir.symlink_metadata(to_name) {
            // Onto itself (or another link to the same file): rename(2)
            // does nothing, and nothing is freed.
            Ok(md) if md.dev() == src.dev() && md.ino() == src.ino() => 0,
            Ok(md) if md.is_file() => md.len(),
            _ => 0,
        };
        from_dir
            .rename(from_name, &to_dir, to_name)
            .map_err(self.err(&to))?;
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
        let (to_dir, to_name) = self.parent_of(&to)?;
        if to_dir.symlink_metadata(to_name).is_ok_and(|md| md.is_dir()) {
            return Err(FsError::WrongType {
                path: to.to_string(),
                what: "is a directory",
            });
        }
        let tmp = format!("{}.{}", partial_name(to_name), random_suffix());
        let mut replaced = 0;
        let result = (|| -> io::Result<()> {
            let mut dst = to_dir
                .open_with(&tmp, OpenOptions::new().write(true).create_new(true))?
                .into_std();
            let mut reader = &src.file;
            let copied = io::copy(&mut reader, &mut dst)?;
            if copied != src.size {
                return Err(io::Error::other("source changed during the copy"));
            }
            let _names = self.names();
            replaced = match to_dir.symlink_metadata(to_name) {
                Ok(md) if md.is_dir() => return Err(io::ErrorKind::IsADirectory.into()),
                Ok(md) if md.is_file() => md.len(),
                _ => 0,
            };
            to_dir.rename(&tmp, &to_dir, to_name)?;
            if let Some(d) = src.digest {
                write_digest(&dst, &d);
            }
            Ok(())
        })();
        if let Err(e) = result {
            let _ = to_dir.remove_file(&tmp);
            return Err(FsError::from_io(e, &to));
        }
        Ok(Delta {
            added: src.size,
            freed: replaced,
        })
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

    fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()> {
        let mut opts = OpenOptions::new();
        opts.read(true);
        // A FIFO must not block the opening thread.
        opts.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
        let file = if path.is_root() {
            self.home.open(".").map_err(self.err(path))?.into_std()
        } else {
            let f = self.home.open_with(path.rel(), &opts);
            match f {
                Ok(f) => f.into_std(),
                // A directory opens as one.
                Err(_) => self
                    .home
                    .open_dir(path.rel())
                    .map_err(self.err(path))?
                    .into_std_file(),
            }
        };
        let md = file.metadata().map_err(self.err(path))?;
        // Read before the change, which moves ctime and would void it.
        let digest = md.is_file().then(|| read_digest(&file, &md)).flatten();
        set_times(&file, mtime).map_err(self.err(path))?;
        if let Some(d) = digest {
            write_digest(&file, &d);
        }
        Ok(())
    }

    fn remember_digest(&self, handle: &ReadHandle, digest: &[u8; 32]) {
        if stamp(&handle.file).ok() == Some(handle.stamp) {
            write_digest(&handle.file, digest);
        }
    }

    fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>> {
        let (dir, name) = self.parent_of(path)?;
        let file = match dir.open(partial_name(name)) {
            Ok(f) => f.into_std(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.err(path)(e)),
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
            Ok(md) if md.is_file() => Ok(md.len()),
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
        let target = path.name().ok_or_else(|| FsError::WrongType {
            path: "/".into(),
            what: "is a directory",
        })?;
        if mkdirs {
            if let Some(parent) = path.parent() {
                self.mkdir(&parent, true)?;
            }
        }
        let (dir, _) = self.parent_of(path).map_err(|e| match e {
            FsError::NotFound(_) => FsError::NotFound(format!(
                "{}: parent directory {}",
                path,
                path.parent().unwrap_or_default()
            )),
            e => e,
        })?;
        if let Ok(md) = dir.metadata(target) {
            if md.is_dir() {
                return Err(FsError::WrongType {
                    path: path.to_string(),
                    what: "is a directory",
                });
            }
        }
        let partial = if resumable {
            partial_name(target)
        } else {
            format!("{}.{}", partial_name(target), random_suffix())
        };
        let mut prefix = Sha256::new();
        let mut truncated = 0;
        let file = if offset > 0 {
            if !resumable {
                return Err(FsError::Busy(path.to_string()));
            }
            let file = match dir.open_with(&partial, OpenOptions::new().read(true).write(true)) {
                Ok(f) => f.into_std(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(FsError::Invalid {
                        path: path.to_string(),
                        why: "no partial upload to resume (start at offset 0)".into(),
                    })
                }
                Err(e) => return Err(self.err(path)(e)),
            };
            let len = file.metadata().map_err(self.err(path))?.len();
            if offset > len {
                return Err(FsError::Invalid {
                    path: path.to_string(),
                    why: format!(
                        "resume offset {offset} is beyond the partial upload's {len} bytes"
                    ),
                });
            }
            if len > offset {
                file.set_len(offset).map_err(self.err(path))?;
                truncated = len - offset;
            }
            let copied = io::copy(
                &mut io::Read::take(&file, offset),
                &mut HashWriter(&mut prefix),
            )
            .map_err(self.err(path))?;
            debug_assert_eq!(copied, offset);
            io::Seek::seek(&mut &file, io::SeekFrom::Start(offset)).map_err(self.err(path))?;
            file
        } else {
            if let Ok(md) = dir.symlink_metadata(&partial) {
                truncated = md.len();
            }
            dir.open_with(
                &partial,
                OpenOptions::new().write(true).create(true).truncate(true),
            )
            .map_err(self.err(path))?
            .into_std()
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
            mtime: None,
        })
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
            if let Some(mtime) = up.mtime {
                // Before the rename: the file never shows another time.
                set_times(&up.file, mtime).map_err(self.err(&path))?;
            }
            let names = self.names();
            let replaced = match up.dir.symlink_metadata(&up.target) {
                Ok(md) if md.is_dir() => {
                    return Err(FsError::WrongType {
                        path: path.to_string(),
                        what: "became a directory during the upload",
                    })
                }
                Ok(md) if md.is_file() => md.len(),
                _ => 0,
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
        if result.is_err() {
            let _ = up.dir.remove_file(&up.partial);
        }
        result
    }

    fn abort_upload(&self, up: UploadHandle, keep: bool) -> u64 {
        if keep && up.resumable {
            return up.file.metadata().map_or(0, |m| m.len());
        }
        let _ = up.dir.remove_file(&up.partial);
        0
    }

    fn usage(&self) -> FsResult<u64> {
        let mut total = 0u64;
        self.walk(&VPath::root(), &mut |_, name, _, md| {
            // A replaced version awaiting removal was already taken off
            // the books when it was replaced.
            if md.is_file() && !is_leftover(name) {
                total += md.len();
            }
            Ok(())
        })?;
        Ok(total)
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
        assert_eq!(s.usage().unwrap(), 8);
    }

    #[test]
    fn recursive_remove_counts_bytes() {
        let (_t, s) = setup();
        s.mkdir(&vp("d/e/f"), true).unwrap();
        upload(&s, "d/x", b"12345");
        upload(&s, "d/e/f/y", b"123");
        assert!(matches!(
            s.remove(&vp("d"), false),
            Err(FsError::WrongType { .. })
        ));
        assert_eq!(s.remove(&vp("d"), true).unwrap(), 8);
        assert!(s.list(&VPath::root()).unwrap().is_empty());
    }
}
