//! The local-disk backend: a jail rooted at the home directory's handle.
//! Every path is opened relative to that handle with cap-std, which on Linux
//! resolves with openat2(RESOLVE_BENEATH): `..`, absolute symlinks and
//! symlinks that lead out are refused by the kernel at open time, so there
//! is no window between a check and a use. Files the server did not just
//! create are opened non-blocking and type-checked, so nothing planted
//! under a name (a FIFO, a device) can hold a worker.
//!
//! The parts: `tree.rs` (walks, recursive removal, `mkdir -p`),
//! `upload.rs` (partials, commits, copies), `digest.rs` (stored digests).

mod digest;
mod tree;
mod upload;

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cap_std::fs::{Dir, Metadata, MetadataExt as _, OpenOptions, OpenOptionsExt};
use sha2::{Digest, Sha256};

use super::path::{display_name, is_internal_name, partial_name, PARTIAL_MARK};
use super::{
    Backend, Delta, Entry, EntryBook, EntryKind, FsError, FsResult, PartialInfo, ReadHandle,
    Removed, Storage, UploadHandle, UploadOpts, Usage, VPath,
};
use crate::digest::HashWriter;
use crate::limits::MAX_DIR_ENTRIES;
use digest::{read_digest, stamp, stamp_of, write_digest};
use upload::open_partial;

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

/// Homes under one data directory (or wherever a users-file entry's
/// absolute `home` says).
pub struct LocalBackend {
    root: std::path::PathBuf,
}

impl LocalBackend {
    pub fn new(root: std::path::PathBuf) -> LocalBackend {
        LocalBackend { root }
    }
}

impl Backend for LocalBackend {
    fn open_home(&self, _user: &str, home: &Path) -> FsResult<Arc<dyn Storage>> {
        let path = self.root.join(home);
        LocalStorage::open(&path)
            .map(|s| Arc::new(s) as Arc<dyn Storage>)
            .map_err(|e| FsError::Io {
                path: path.display().to_string(),
                source: e,
            })
    }

    fn existing_home(&self, user: &str, home: &Path) -> FsResult<Option<Arc<dyn Storage>>> {
        if !self.root.join(home).is_dir() {
            return Ok(None);
        }
        self.open_home(user, home).map(Some)
    }

    fn describe(&self) -> String {
        format!("local directory {}", self.root.display())
    }
}

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
    /// moved, so nothing ends up deeper than `MAX_DEPTH`. Shared with the
    /// home's uploads, whose commit is such a change.
    names: Arc<Mutex<()>>,
    entries: Arc<EntryBook>,
}

impl LocalStorage {
    /// Opens (creating it if missing) the home directory at `path`.
    pub fn open(path: &Path) -> io::Result<LocalStorage> {
        create_private_dir_all(path)?;
        let home = Dir::open_ambient_dir(path, cap_std::ambient_authority())?;
        Ok(LocalStorage {
            home,
            names: Arc::new(Mutex::new(())),
            entries: Arc::new(EntryBook::default()),
        })
    }

    fn names(&self) -> std::sync::MutexGuard<'_, ()> {
        lock_names(&self.names)
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

    /// Opens a regular file for reading. Non-blocking, so a FIFO planted
    /// under the name can't hold the worker; anything but a regular file
    /// is refused.
    fn open_file(&self, path: &VPath) -> FsResult<File> {
        self.open_file_md(path).map(|(file, _)| file)
    }

    /// [`Self::open_file`] with the metadata it checked (one fstat less
    /// for callers that need it too: `tree` opens every file).
    fn open_file_md(&self, path: &VPath) -> FsResult<(File, std::fs::Metadata)> {
        let mut opts = OpenOptions::new();
        opts.read(true);
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
        Ok((file, md))
    }

    /// `set_mtime` of a directory (never through a symlink).
    fn set_dir_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()> {
        let (dir, name) = match path.name() {
            Some(_) => self.parent_of(path)?,
            None => (self.open_dir(path)?, "."),
        };
        let times = timestamps(mtime);
        let flags = rustix::fs::AtFlags::SYMLINK_NOFOLLOW;
        rustix::fs::utimensat(&dir, name, &times, flags)
            .map_err(|e| self.err(path)(io::Error::from(e)))
    }

    fn open_local(&self, path: &VPath) -> FsResult<LocalRead> {
        let (file, md) = self.open_file_md(path)?;
        let stamp = stamp_of(&md);
        let digest = read_digest(&file, &md);
        Ok(LocalRead {
            size: stamp.1,
            digest,
            stamp,
            file,
        })
    }
}

/// How the server makes directories in homes: [`DIR_MODE`].
pub(super) fn dir_builder() -> cap_std::fs::DirBuilder {
    use cap_std::fs::DirBuilderExt;
    let mut b = cap_std::fs::DirBuilder::new();
    b.mode(DIR_MODE);
    b
}

/// How the server makes new files in homes: exclusively (never through
/// whatever is already under the name), with [`FILE_MODE`].
pub(super) fn new_file() -> OpenOptions {
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

pub(super) fn lock_names(names: &Mutex<()>) -> std::sync::MutexGuard<'_, ()> {
    names.lock().unwrap_or_else(|p| p.into_inner())
}

/// Sets an open file's modification time (epoch seconds); the access time
/// is left alone.
pub(super) fn set_times(file: &File, mtime: i64) -> io::Result<()> {
    rustix::fs::futimens(file, &timestamps(mtime)).map_err(io::Error::from)
}

/// A modification time to set, the access time left as it is.
fn timestamps(mtime: i64) -> rustix::fs::Timestamps {
    use rustix::fs::{Timespec, Timestamps, UTIME_OMIT};
    Timestamps {
        last_access: Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        last_modification: Timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    }
}

pub(super) fn random_suffix() -> String {
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
        let into_dir = matches!(self.stat(to), Ok(e) if e.kind == EntryKind::Dir);
        super::move_target(from, to, into_dir)
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
        let src = self.open_local(from)?;
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

    fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()> {
        let file = match self.open_file(path) {
            Ok(f) => f,
            // A directory's time is set by name in its parent (its own
            // handle is O_PATH, which can't set times).
            Err(FsError::WrongType { .. }) => return self.set_dir_mtime(path, mtime),
            Err(e) => return Err(e),
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

    fn digest(&self, path: &VPath) -> FsResult<Option<[u8; 32]>> {
        let (file, md) = self.open_file_md(path)?;
        Ok(read_digest(&file, &md))
    }

    fn open_read(&self, path: &VPath) -> FsResult<Box<dyn ReadHandle>> {
        Ok(Box::new(self.open_local(path)?))
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

    fn begin_upload(&self, path: &VPath, opts: UploadOpts) -> FsResult<Box<dyn UploadHandle>> {
        if path.is_root() {
            return Err(FsError::WrongType {
                path: "/".into(),
                what: "is a directory",
            });
        }
        if opts.mkdirs {
            // With room for the partial too, so that a put that can't make
            // its partial doesn't make its parents either; the partial's
            // entry is taken again when it is made.
            let parent = path.parent().unwrap_or_default();
            self.make_dirs(&parent, 1)?;
            self.entries.give(1);
        }
        let mut up = self.open_upload(path, opts.offset, opts.resumable)?;
        up.mtime = opts.mtime;
        Ok(Box::new(up))
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

/// A replaced version kept by a commit for removal after the reply.
fn is_leftover(name: &OsStr) -> bool {
    name.to_str()
        .is_some_and(|n| is_internal_name(n) && n.ends_with(".old"))
}

/// A local file opened for download.
pub(super) struct LocalRead {
    file: File,
    size: u64,
    digest: Option<[u8; 32]>,
    /// Identity for the digest cache: (mtime ns, size) at open.
    stamp: (i128, u64),
}

impl ReadHandle for LocalRead {
    fn size(&self) -> u64 {
        self.size
    }

    fn digest(&self) -> Option<[u8; 32]> {
        self.digest
    }

    /// Positional, so concurrent readers never share a cursor.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    fn remember_digest(&self, digest: &[u8; 32]) {
        if stamp(&self.file).ok() == Some(self.stamp) {
            write_digest(&self.file, digest);
        }
    }

    fn as_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        Some(std::os::fd::AsFd::as_fd(&self.file))
    }

    fn version(&self) -> String {
        use std::os::unix::fs::MetadataExt;
        let (dev, ino, ctime) = self.file.metadata().map_or((0, 0, 0), |m| {
            (m.dev(), m.ino(), m.ctime_nsec() + m.ctime() * 1_000_000_000)
        });
        format!("{dev}:{ino}:{}:{}:{ctime}", self.stamp.0, self.stamp.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_DEPTH;

    fn vp(s: &str) -> VPath {
        VPath::resolve(&VPath::root(), s).unwrap()
    }

    fn setup() -> (tempfile::TempDir, LocalStorage) {
        let t = tempfile::tempdir().unwrap();
        let home = t.path().join("home");
        let s = LocalStorage::open(&home).unwrap();
        (t, s)
    }

    fn opts(offset: u64, mkdirs: bool, resumable: bool) -> UploadOpts {
        UploadOpts {
            offset,
            mkdirs,
            resumable,
            size_hint: None,
            mtime: None,
        }
    }

    fn upload(s: &LocalStorage, path: &str, data: &[u8]) {
        let mut up = s.begin_upload(&vp(path), opts(0, false, true)).unwrap();
        up.write_all(data).unwrap();
        let digest: [u8; 32] = Sha256::digest(data).into();
        up.commit(&digest, false).unwrap();
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
        assert_eq!(h.size(), 5);
        let expect: [u8; 32] = Sha256::digest(b"hello").into();
        // tmpfs and ext4 both have user xattrs; others may not.
        if let Some(d) = h.digest() {
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
        let e = s.begin_upload(&vp("rel"), opts(0, false, true));
        // The partial is written beside the link, never through it; the
        // commit then replaces the link itself.
        if let Ok(mut up) = e {
            up.write_all(b"new").unwrap();
            let d: [u8; 32] = Sha256::digest(b"new").into();
            up.commit(&d, false).unwrap();
        }
        assert_eq!(std::fs::read(t.path().join("secret")).unwrap(), b"x");
    }

    #[test]
    fn aborted_upload_keeps_old_version_and_partial_is_hidden() {
        let (_t, s) = setup();
        upload(&s, "f", b"old");
        let mut up = s.begin_upload(&vp("f"), opts(0, false, true)).unwrap();
        up.write_all(b"new con").unwrap();
        assert_eq!(up.abort(true), 7);
        assert_eq!(s.list(&VPath::root()).unwrap().len(), 1);
        let p = s.partial(&vp("f")).unwrap().unwrap();
        assert_eq!(p.size, 7);
        let mut up = s.begin_upload(&vp("f"), opts(4, false, true)).unwrap();
        let mut h = up.prefix();
        h.update(b"tent");
        up.write_all(b"tent").unwrap();
        let d: [u8; 32] = h.finalize().into();
        assert_eq!(d, <[u8; 32]>::from(Sha256::digest(b"new tent")));
        assert_eq!(up.commit(&d, false).unwrap().replaced, 3);
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
        let mut up = s.begin_upload(&vp("x/y/f"), opts(0, true, true)).unwrap();
        up.write_all(b"p").unwrap();
        assert_eq!(s.entries().get(), (6, 6));
        assert!(s.begin_upload(&vp("q"), opts(0, false, false)).is_err());
        up.abort(false);
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
