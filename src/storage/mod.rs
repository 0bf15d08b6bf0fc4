//! Storage: the only code that touches users' files. Commands see the narrow
//! [`Storage`] interface over virtual paths ([`VPath`]); what crosses it is
//! metadata, bytes and errors, never a file or a directory handle, so a
//! backend may keep homes on a local disk ([`local`]) or anywhere else.
//!
//! Every method may block (disk, network): callers run them on the worker
//! pool, never on the event loop.
//!
//! # What a backend must provide
//! - **Atomic uploads.** `begin_upload` opens a *partial* that no listing,
//!   `stat` or download sees; only [`UploadHandle::commit`] makes the bytes
//!   visible under their name, all at once, replacing any older version.
//!   A partial kept by [`UploadHandle::abort`] (`keep`) can be continued by a
//!   later `begin_upload` with an offset up to [`Storage::partial_len`], and
//!   [`UploadHandle::prefix`] then gives the SHA-256 state over the bytes
//!   before that offset (an object store keeps it in its own record). A
//!   backend that can only resume at some offsets (an object store: where
//!   its last whole part ended) makes `partial_len` return one of them and
//!   refuses others with [`FsError::Invalid`].
//! - **Outages are not failures of the upload.** A store that can't be
//!   reached for now ([`FsError::Unavailable`], e.g. a cluster that lost
//!   its quorum) fails the call with status 451 and loses nothing: an
//!   upload's partial is kept for a resume, whether the outage hit a write
//!   ([`StoreUnavailable`] inside the `io::Error`) or the commit
//!   ([`NotCommitted::kept`]).
//! - **The jail.** A [`VPath`] is already lexically inside the home; the
//!   backend must make sure nothing it resolves (symlinks, crafted keys)
//!   reaches outside it.
//! - **Digests.** [`ReadHandle::digest`] and [`Storage::digest`] return the
//!   stored SHA-256 of a file's content only while it is still right, so a
//!   download may skip hashing; backends that keep none return `None` and
//!   downloads hash as they send.
//! - **Usage.** [`Storage::usage`] is exact at login and across restarts;
//!   the server keeps it up to date in memory from the deltas the methods
//!   return (bytes freed, bytes added).
//! - **Name changes that free bytes are serialised per home**: two sessions
//!   replacing one name at once must not both count the same old file.

pub mod entries;
pub mod local;
pub mod path;
pub mod s3;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sha2::Sha256;

pub use entries::EntryBook;
pub use path::VPath;

/// A storage failure, with the virtual path it concerns, worded for users.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    #[error("{0}: no such file or directory")]
    NotFound(String),
    #[error("{path}: {what}")]
    WrongType { path: String, what: &'static str },
    #[error("{path}: {why}")]
    Refused { path: String, why: String },
    #[error("{0}: already exists")]
    Exists(String),
    #[error("{0}: directory not empty (remove it recursively)")]
    NotEmpty(String),
    #[error("{0}: permission denied")]
    Permission(String),
    #[error("{0}: the server's disk is full")]
    DiskFull(String),
    #[error("{0}: is being uploaded by another transfer")]
    Busy(String),
    #[error("{path}: {why}")]
    Invalid { path: String, why: String },
    #[error("{path}: server I/O error: {source}")]
    Io { path: String, source: io::Error },
    #[error(
        "{path}: too many files and directories: {count} of {limit} \
         (remove some to make room)"
    )]
    TooManyEntries {
        path: String,
        count: u64,
        limit: u64,
    },
    /// The storage can't be reached for now (an object store that lost its
    /// quorum, a network outage): nothing was changed, and an upload's
    /// partial is kept.
    #[error(
        "{path}: the storage is unavailable for now ({why}); nothing was lost: \
         try again later (an interrupted upload resumes where it stopped)"
    )]
    Unavailable { path: String, why: String },
    /// A directory that holds files can't be renamed: the backend has no
    /// atomic rename of a tree (an object store), and a crash in the middle
    /// of moving key after key would leave the tree split between two names.
    #[error(
        "{0}: a directory that holds files can't be renamed on this server's storage \
         (an object store has no atomic rename of a tree); make the new directory \
         and move the files into it"
    )]
    TreeRename(String),
}

/// The payload of an `io::Error` from a handle's `write_all` or `read_at`
/// when the storage can't be reached for now: [`FsError::from_io`] turns it
/// into [`FsError::Unavailable`], so the server keeps the partial.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreUnavailable(pub String);

impl StoreUnavailable {
    pub fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, self)
    }
}

impl FsError {
    /// Maps an OS error on `path` to what the user should hear.
    pub fn from_io(e: io::Error, path: &VPath) -> FsError {
        use rustix::io::Errno;
        let p = path.to_string();
        if let Some(u) = e
            .get_ref()
            .and_then(|r| r.downcast_ref::<StoreUnavailable>())
        {
            return FsError::Unavailable {
                path: p,
                why: u.0.clone(),
            };
        }
        let errno = e.raw_os_error().map(Errno::from_raw_os_error);
        match (e.kind(), errno) {
            (_, Some(Errno::NOENT)) | (io::ErrorKind::NotFound, _) => FsError::NotFound(p),
            (_, Some(Errno::EXIST)) | (io::ErrorKind::AlreadyExists, _) => FsError::Exists(p),
            (_, Some(Errno::NOTDIR)) => FsError::WrongType {
                path: p,
                what: "not a directory",
            },
            (_, Some(Errno::ISDIR)) => FsError::WrongType {
                path: p,
                what: "is a directory",
            },
            (_, Some(Errno::NOTEMPTY)) => FsError::NotEmpty(p),
            (_, Some(Errno::NOSPC)) | (_, Some(Errno::DQUOT)) => FsError::DiskFull(p),
            (_, Some(Errno::ACCESS)) | (_, Some(Errno::PERM)) | (_, Some(Errno::ROFS)) => {
                FsError::Permission(p)
            }
            (_, Some(Errno::LOOP)) => FsError::Refused {
                path: p,
                why: "too many levels of symbolic links".into(),
            },
            (_, Some(Errno::XDEV)) => FsError::Refused {
                path: p,
                why: "leads outside your home directory".into(),
            },
            // Opening a socket (or a FIFO or device that can't be opened
            // without waiting): not something a file command works on.
            (_, Some(Errno::NXIO)) => FsError::Refused {
                path: p,
                why: "not a regular file (device, FIFO or socket)".into(),
            },
            (_, Some(Errno::NAMETOOLONG)) => FsError::Refused {
                path: p,
                why: "name too long".into(),
            },
            (_, Some(Errno::INVAL)) => FsError::Invalid {
                path: p,
                why: "invalid operation (e.g. moving a directory into itself)".into(),
            },
            // cap-std's own escape check reports PermissionDenied with no
            // OS error behind it: a symlink or path that leads out of home.
            (io::ErrorKind::PermissionDenied, None) => FsError::Refused {
                path: p,
                why: "leads outside your home directory".into(),
            },
            _ => FsError::Io { path: p, source: e },
        }
    }
}

pub type FsResult<T> = Result<T, FsError>;

/// The type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One name's metadata, as a backend knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The name; one that is not valid UTF-8 in the backend is shown with
    /// each bad byte as `\xNN`, and `escaped` is true.
    pub name: String,
    pub escaped: bool,
    pub kind: EntryKind,
    /// Bytes of a file (0 for a directory).
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
}

/// A file opened for download.
pub trait ReadHandle: Send {
    /// The size at open time: a download sends exactly this many bytes.
    fn size(&self) -> u64;
    /// The SHA-256 of the content, when the backend has it stored and it is
    /// still right (then the download need not hash).
    fn digest(&self) -> Option<[u8; 32]>;
    /// Reads up to `buf.len()` bytes at `offset` (0 at the end). Downloads
    /// read sequentially: a streaming backend may rely on it.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize>;
    /// Stores the digest a download computed, if the content has not
    /// changed since the open.
    fn remember_digest(&self, digest: &[u8; 32]);
    /// A token that names this version of the content: any change of the
    /// content gives another (local: device, inode, size and times; an
    /// object store: the key and its ETag). Unique across the backend.
    fn version(&self) -> String;
    /// The zero-copy fast path a backend may offer: a file descriptor the
    /// server can `sendfile` from. `None` (the default): read through
    /// [`ReadHandle::read_at`].
    fn as_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        None
    }
}

/// How an upload is to be opened.
#[derive(Clone, Debug, Default)]
pub struct UploadOpts {
    /// 0 starts afresh; more continues the resumable partial at that byte.
    pub offset: u64,
    /// Create missing parent directories.
    pub mkdirs: bool,
    /// Write the one partial a later upload may resume (only one transfer
    /// at a time holds it); false: a private partial of this transfer.
    pub resumable: bool,
    /// The whole file's announced size, when known (lets a backend pick
    /// how to store it).
    pub size_hint: Option<u64>,
    /// Modification time (epoch seconds) the file gets at commit, before it
    /// becomes visible.
    pub mtime: Option<i64>,
}

/// An upload in progress: bytes go to a partial no one else sees.
pub trait UploadHandle: Send {
    fn path(&self) -> &VPath;
    /// Whether this is the partial a later upload may resume.
    fn resumable(&self) -> bool;
    /// SHA-256 state over the bytes before the resume offset.
    fn prefix(&self) -> Sha256;
    /// Bytes of an older partial that opening this one dropped.
    fn truncated(&self) -> u64;
    /// Appends body bytes to the partial.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Makes the upload visible under its name, replacing any older
    /// version in one step. `sha256` is the verified digest of the whole
    /// content; the backend stores it. On error the partial is gone,
    /// unless the storage was unavailable: then a resumable partial is
    /// kept, and [`NotCommitted::kept`] says how many bytes it holds.
    fn commit(self: Box<Self>, sha256: &[u8; 32], fsync: bool) -> Result<Committed, NotCommitted>;
    /// Ends an upload that won't complete. With `keep`, a resumable
    /// partial stays for a later resume; returns the bytes it holds.
    fn abort(self: Box<Self>, keep: bool) -> u64;
}

/// A committed upload: the bytes of the version it replaced, and work the
/// backend left for after the client's reply (freeing a large old file).
pub struct Committed {
    pub replaced: u64,
    pub later: Option<Box<dyn FnOnce() + Send>>,
}

/// A commit that failed: why, and the bytes of the partial still kept for a
/// resume (0: it is gone).
#[derive(Debug)]
pub struct NotCommitted {
    pub error: FsError,
    pub kept: u64,
}

impl From<FsError> for NotCommitted {
    fn from(error: FsError) -> NotCommitted {
        NotCommitted { error, kept: 0 }
    }
}

/// Size and SHA-256 of a resumable partial upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialInfo {
    pub size: u64,
    pub sha256: String,
}

/// What a walk of a home found: bytes of regular files (partial uploads
/// included) and entries of every kind (see [`EntryBook`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub entries: u64,
}

/// What a removal freed, and what stopped it partway, if anything: bytes
/// freed before an error are gone from the disk all the same, and must
/// leave the books.
#[derive(Debug, Default)]
pub struct Removed {
    pub freed: u64,
    pub error: Option<FsError>,
}

/// What a file operation freed or added, for the quota's books.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub added: u64,
    pub freed: u64,
}

/// One user's home: the narrow interface every command goes through.
pub trait Storage: Send + Sync + 'static {
    /// Whether the home itself was removed behind the server's back (its
    /// sessions then get errors; the next login opens it afresh).
    fn is_gone(&self) -> bool;
    /// Entries of a directory sorted by name; internal names hidden.
    fn list(&self, dir: &VPath) -> FsResult<Vec<Entry>>;
    /// Metadata of one path (symlinks followed, within the jail).
    fn stat(&self, path: &VPath) -> FsResult<Entry>;
    /// The stored SHA-256 of a file, if the backend has one that is still
    /// right; never computed here.
    fn digest(&self, path: &VPath) -> FsResult<Option<[u8; 32]>>;
    /// Creates a directory; `parents` also creates missing parents and
    /// accepts an existing directory.
    fn mkdir(&self, path: &VPath, parents: bool) -> FsResult<()>;
    fn rmdir(&self, path: &VPath) -> FsResult<()>;
    /// Removes a file, or with `recursive` a whole tree; returns the bytes
    /// freed, also when an error stopped it partway.
    fn remove(&self, path: &VPath, recursive: bool) -> Removed;
    /// Renames; into `to` when it is a directory. Returns bytes freed by a
    /// file it replaced.
    fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64>;
    /// Where a copy or rename of `from` to `to` would land (`to/name` when
    /// `to` is a directory).
    fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath>;
    /// Copies a regular file atomically (the copy appears whole or not).
    fn copy(&self, from: &VPath, to: &VPath) -> FsResult<Delta>;
    /// Sets the modification time (epoch seconds) of a file or directory;
    /// a stored digest stays valid.
    fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()>;
    fn open_read(&self, path: &VPath) -> FsResult<Box<dyn ReadHandle>>;
    /// Size and SHA-256 of the resumable partial of `path`, if any.
    fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>>;
    /// Where a resume of `path` may continue (0 if there is no partial),
    /// cheaply.
    fn partial_len(&self, path: &VPath) -> FsResult<u64>;
    /// Opens the partial for `path` (see [`UploadOpts`]).
    fn begin_upload(&self, path: &VPath, opts: UploadOpts) -> FsResult<Box<dyn UploadHandle>>;
    /// Bytes used (files, partial uploads included) and entries.
    fn usage(&self) -> FsResult<Usage>;
    /// The home's entry count and limit, moved by every creation and
    /// removal; a creation past the limit fails with `TooManyEntries`.
    fn entries(&self) -> &EntryBook;
    /// Removes partial uploads older than `max_age` for which `in_use` is
    /// false; returns bytes freed.
    fn sweep_partials(&self, max_age: Duration, in_use: &dyn Fn(&VPath) -> bool) -> FsResult<u64>;
}

/// Where homes live: made once at start from the config, then asked for
/// one user's home at each login (and by `useradd`). A home is named by
/// its user and the users-file entry's `home`: the local backend uses the
/// path, an object store the name (keys under `homes/<user>/`).
pub trait Backend: Send + Sync + 'static {
    /// Opens (creating it if missing) the home of `user`.
    fn open_home(&self, user: &str, home: &Path) -> FsResult<Arc<dyn Storage>>;
    /// Opens an existing home; `None` when there is none (nothing created).
    fn existing_home(&self, user: &str, home: &Path) -> FsResult<Option<Arc<dyn Storage>>>;
    /// Where homes are, for logs and messages.
    fn describe(&self) -> String;
}

/// Why the configured storage can't be used; said at start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{path}: cannot prepare the data directory: {source}")]
    Local { path: String, source: io::Error },
    /// The `[storage]` settings are incomplete or wrong (exit code 2).
    #[error("[storage] {0}")]
    Config(String),
    /// The store named in the settings can't be used (exit code 1): what
    /// was tried and what it answered.
    #[error("object store: {0}")]
    Store(String),
}

/// The backend the config names; an object store is checked at once (a
/// HEAD of its bucket), so a wrong setting fails at start, not at the
/// first login.
/// Where a copy or rename of `from` to `to` lands, for every backend:
/// `to/name` when `to` is a directory (`into_dir`), else `to`; refused when
/// that is deeper than `MAX_DEPTH`, so nothing is stored below what the
/// walks and the books reach.
pub fn move_target(from: &VPath, to: &VPath, into_dir: bool) -> FsResult<VPath> {
    let target = if into_dir {
        let name = from.name().ok_or_else(|| FsError::Invalid {
            path: "/".into(),
            why: "the home directory itself can't be moved".into(),
        })?;
        to.join(name)
    } else {
        to.clone()
    };
    // Into a directory at the deepest level: one too deep.
    let max = crate::limits::MAX_DEPTH;
    if target.components().len() > max {
        return Err(FsError::Refused {
            path: target.to_string(),
            why: format!("deeper than {max} levels (the server's limit)"),
        });
    }
    Ok(target)
}

pub fn open(config: &crate::config::Config) -> Result<Arc<dyn Backend>, SetupError> {
    use crate::config::BackendKind;
    match config.storage.backend {
        BackendKind::Local => {
            let homes = config.root.clone();
            std::fs::create_dir_all(config.homes_dir()).map_err(|e| SetupError::Local {
                path: config.homes_dir().display().to_string(),
                source: e,
            })?;
            Ok(Arc::new(local::LocalBackend::new(homes)))
        }
        BackendKind::S3 => Ok(Arc::new(s3::S3Backend::connect(&config.storage)?)),
    }
}
