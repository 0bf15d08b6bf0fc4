//! Downloads from the bucket: one object read through `download.rs` (a
//! streamed ranged GET pinned to the object's ETag), behind the storage
//! interface's [`ReadHandle`].
//!
//! The download pump reads a buffer, writes what the socket takes, and
//! reads the unsent tail again at its offset: the last buffer read is kept
//! here, so that re-read costs a copy rather than a new GET.

use std::io;
use std::sync::Arc;

use super::client::ObjectInfo;
use super::download::ObjectRead;
use super::home::{Home, Kind};
use super::writer::META_SHA256;
use crate::storage::{FsError, FsResult, ReadHandle, VPath};

/// The SHA-256 stored with an object (`x-amz-meta-sha256`), if valid.
pub(super) fn stored_digest(info: &ObjectInfo) -> Option<[u8; 32]> {
    let bytes = hex::decode(info.meta(META_SHA256)?).ok()?;
    bytes.try_into().ok()
}

pub(super) fn open(home: &Arc<Home>, path: &VPath) -> FsResult<Box<dyn ReadHandle>> {
    if path.is_root() {
        return Err(FsError::WrongType {
            path: "/".into(),
            what: "is a directory",
        });
    }
    let key = home.file_key(path)?;
    let object = match ObjectRead::open(Arc::clone(&home.client), key) {
        Ok(o) => o,
        Err(e) if e.is_not_found() => {
            return Err(match home.kind(path)? {
                Kind::Dir { .. } => FsError::WrongType {
                    path: path.to_string(),
                    what: "is a directory",
                },
                _ => home.missing(path),
            })
        }
        Err(e) => return Err(e.into_fs(path)),
    };
    Ok(Box::new(S3Read {
        digest: stored_digest(object.info()),
        object,
        last: Vec::new(),
        last_at: 0,
    }))
}

struct S3Read {
    object: ObjectRead,
    digest: Option<[u8; 32]>,
    /// The bytes the last read returned, and their offset.
    last: Vec<u8>,
    last_at: u64,
}

impl ReadHandle for S3Read {
    fn size(&self) -> u64 {
        self.object.size()
    }

    fn digest(&self) -> Option<[u8; 32]> {
        self.digest
    }

    /// The key and the ETag the read is pinned to: another content under
    /// the key has another ETag.
    fn version(&self) -> String {
        format!("s3 {} {}", self.object.key(), self.object.info().etag)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let end = self.last_at + self.last.len() as u64;
        if offset >= self.last_at && offset < end {
            let from = (offset - self.last_at) as usize;
            let n = buf.len().min(self.last.len() - from);
            buf[..n].copy_from_slice(&self.last[from..from + n]);
            return Ok(n);
        }
        let n = self.object.read_at(buf, offset)?;
        self.last.clear();
        self.last.extend_from_slice(&buf[..n]);
        self.last_at = offset;
        Ok(n)
    }

    /// Not stored: objects miniftp writes carry their digest from the
    /// upload, and rewriting another tool's object to add one would change
    /// the time its listing shows. Such files are hashed at each download.
    fn remember_digest(&self, _digest: &[u8; 32]) {}
}
