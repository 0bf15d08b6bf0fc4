//! Storage: the only code that touches users' files. Commands see the narrow
//! [`Storage`] interface over virtual paths ([`VPath`]); the local backend
//! ([`local::LocalStorage`]) implements it as a jail rooted at a directory
//! handle. An object-store backend would implement the same trait.
//!
//! Every method may block (disk, later network): callers run them on the
//! worker pool, never on the event loop.

pub mod local;
pub mod path;

use std::io;
use std::time::Duration;

use sha2::Sha256;

use crate::proto::{Entry, Status};
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
}

impl FsError {
    pub fn status(&self) -> Status {
        match self {
            FsError::NotFound(_) => Status::NotFound,
            FsError::WrongType { .. } => Status::WrongType,
            FsError::Refused { .. } => Status::PathRefused,
            FsError::Exists(_) => Status::AlreadyExists,
            FsError::NotEmpty(_) => Status::NotEmpty,
            FsError::Permission(_) => Status::PermissionDenied,
            FsError::DiskFull(_) => Status::DiskFull,
            FsError::Busy(_) => Status::Busy,
            FsError::Invalid { .. } => Status::BadArguments,
            FsError::Io { .. } => Status::LocalError,
        }
    }

    /// Maps an OS error on `path` to what the user should hear.
    pub fn from_io(e: io::Error, path: &VPath) -> FsError {
        use rustix::io::Errno;
        let p = path.to_string();
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

/// A file opened for download: its size at open time and, when the storage
/// remembers it, the SHA-256 of its content (so a download needn't re-hash).
pub struct ReadHandle {
    pub(crate) file: std::fs::File,
    pub size: u64,
    pub digest: Option<[u8; 32]>,
    /// Identity for the digest cache: (mtime ns, size) at open.
    pub(crate) stamp: (i128, u64),
}

impl ReadHandle {
    /// Positional read, so concurrent readers never share a cursor.
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(&self.file, buf, offset)
    }

    /// The open file, for zero-copy sending.
    pub fn file(&self) -> &std::fs::File {
        &self.file
    }
}

/// An upload in progress: content goes to a hidden partial file beside the
/// target and is renamed over it only by [`Storage::commit_upload`].
pub struct UploadHandle {
    pub(crate) file: std::fs::File,
    pub(crate) dir: cap_std::fs::Dir,
    pub(crate) partial: String,
    pub(crate) target: String,
    pub(crate) vpath: VPath,
    /// Whether the partial is the one a later `put` may resume.
    pub resumable: bool,
    /// SHA-256 state over the first `offset` bytes.
    pub prefix: Sha256,
    /// Bytes of an older partial that `begin_upload` truncated away.
    pub truncated: u64,
    /// Modification time (epoch seconds) the file gets at commit.
    pub mtime: Option<i64>,
}

impl UploadHandle {
    pub fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        io::Write::write_all(&mut self.file, buf)
    }
}

/// A committed upload: the bytes of the version it replaced, and that old
/// version itself when freeing it was left for later.
pub struct Committed {
    pub replaced: u64,
    pub leftover: Option<Leftover>,
}

/// A replaced file kept under a hidden name so the commit (and the client's
/// reply) need not wait for the filesystem to free a large file; remove it
/// off the critical path. If the server dies first, the partial-upload sweep
/// removes it.
pub struct Leftover {
    pub(crate) dir: cap_std::fs::Dir,
    pub(crate) name: String,
}

impl Leftover {
    pub fn remove(self) {
        let _ = self.dir.remove_file(&self.name);
    }
}

/// Size and SHA-256 of a resumable partial upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartialInfo {
    pub size: u64,
    pub sha256: String,
}

/// What a file operation freed or added, for the quota's books.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub added: u64,
    pub freed: u64,
}

/// The narrow storage interface every command goes through.
pub trait Storage: Send + Sync + 'static {
    /// Whether the home itself was removed behind the server's back (its
    /// sessions then get errors; the next login opens it afresh).
    fn is_gone(&self) -> bool;
    /// Entries of a directory sorted by name; internal files hidden.
    fn list(&self, dir: &VPath) -> FsResult<Vec<Entry>>;
    /// Metadata of one path (symlinks followed, within the jail).
    fn stat(&self, path: &VPath) -> FsResult<Entry>;
    /// Creates a directory; `parents` also creates missing parents and
    /// accepts an existing directory.
    fn mkdir(&self, path: &VPath, parents: bool) -> FsResult<()>;
    fn rmdir(&self, path: &VPath) -> FsResult<()>;
    /// Removes a file, or with `recursive` a whole tree; returns bytes freed.
    fn remove(&self, path: &VPath, recursive: bool) -> FsResult<u64>;
    /// Renames; into `to` when it is a directory. Returns bytes freed by a
    /// file it replaced.
    fn rename(&self, from: &VPath, to: &VPath) -> FsResult<u64>;
    /// Where a copy or rename of `from` to `to` would land (`to/name` when
    /// `to` is a directory).
    fn target_of(&self, from: &VPath, to: &VPath) -> FsResult<VPath>;
    /// Copies a regular file atomically (temporary, then rename).
    fn copy(&self, from: &VPath, to: &VPath) -> FsResult<Delta>;
    fn open_read(&self, path: &VPath) -> FsResult<ReadHandle>;
    /// Sets the modification time (epoch seconds) of a file or directory;
    /// a stored digest stays valid.
    fn set_mtime(&self, path: &VPath, mtime: i64) -> FsResult<()>;
    /// Stores the digest of a file hashed during a download, if unchanged.
    fn remember_digest(&self, handle: &ReadHandle, digest: &[u8; 32]);
    fn partial(&self, path: &VPath) -> FsResult<Option<PartialInfo>>;
    /// Size of the resumable partial upload of `path` (0 if none), cheaply.
    fn partial_len(&self, path: &VPath) -> FsResult<u64>;
    /// Opens the partial for `path`. `offset` > 0 continues the resumable
    /// partial from that byte (truncating anything after it); 0 starts over.
    fn begin_upload(
        &self,
        path: &VPath,
        offset: u64,
        mkdirs: bool,
        resumable: bool,
    ) -> FsResult<UploadHandle>;
    /// Makes a verified upload visible under its name; returns bytes freed
    /// by the version it replaced.
    fn commit_upload(
        &self,
        upload: UploadHandle,
        sha256: &[u8; 32],
        fsync: bool,
    ) -> FsResult<Committed>;
    /// Ends an upload that won't complete. With `keep` a resumable partial
    /// stays for a later resume; returns the bytes left on disk.
    fn abort_upload(&self, upload: UploadHandle, keep: bool) -> u64;
    /// Bytes used: regular files, partial uploads included.
    fn usage(&self) -> FsResult<u64>;
    /// Removes partial uploads older than `max_age` for which `in_use` is
    /// false; returns bytes freed.
    fn sweep_partials(&self, max_age: Duration, in_use: &dyn Fn(&VPath) -> bool) -> FsResult<u64>;
}
