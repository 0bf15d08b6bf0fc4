//! Digests of stored files, kept in the extended attribute
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
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::sync::{Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::limits::{CTIME_SLACK_NS, MAX_STORED_CTIMES};

const DIGEST_XATTR: &str = "user.miniftp.sha256";

/// (mtime in ns, size): the identity a cached digest is for.
pub(super) fn stamp_of(md: &std::fs::Metadata) -> (i128, u64) {
    (ns(md.mtime(), md.mtime_nsec()), md.size())
}

/// The stamp of an open file as it is now.
pub(super) fn stamp(file: &File) -> io::Result<(i128, u64)> {
    file.metadata().map(|md| stamp_of(&md))
}

/// Nanoseconds since the epoch.
fn ns(secs: i64, nsec: i64) -> i128 {
    secs as i128 * 1_000_000_000 + nsec as i128
}

/// The digest stored for `file`, whose metadata is `md`, if it is still
/// the digest of its content.
pub(super) fn read_digest(file: &File, md: &std::fs::Metadata) -> Option<[u8; 32]> {
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
pub(super) fn write_digest(file: &File, digest: &[u8; 32]) {
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

fn remember_ctime(dev: u64, ino: u64, ctime: i128) {
    let mut map = stored_ctimes();
    if map.len() >= MAX_STORED_CTIMES {
        map.clear();
    }
    map.insert((dev, ino), ctime);
}
