//! The S3 backend: users' homes as objects in one bucket of an S3-compatible
//! store (Garage, Ceph RGW, MinIO, AWS). docs/STORAGE.md says how each
//! storage operation maps to S3 and what is and isn't atomic.
//!
//! Layers, bottom up:
//! - [`client`]: typed, blocking S3 calls, each with a deadline, and
//!   [`S3Error`]s that say whether to retry;
//! - [`keys`]: the key layout, and the jail (no key outside a user's prefix);
//! - [`hashstate`]: the SHA-256 state saved after each uploaded part, so a
//!   resumed upload continues the whole-file digest;
//! - [`record`]: the state record of a resumable upload, and part sizes;
//! - [`budget`]: the memory all part buffers together may hold;
//! - [`writer`]: one upload, bytes in, parts out, then complete and copy;
//! - [`usage`]: a home's usage counters, kept in the bucket;
//! - [`sweep`]: abandoned uploads of a home;
//! - [`download`]: one object read for a download, streamed and pinned to
//!   its version.
//!
//! and on top, the storage interface: [`backend`] ([`S3Backend`]: the
//! bucket, checked at start; homes by user name), `home` ([`S3Storage`]:
//! one home, its books), `tree` (listings, directories, removal), `moves`
//! (rename, copy, times), `upload` (uploads, partials, the sweep) and
//! `read` (downloads).
//!
//! Everything here blocks: it runs on the io workers, never on the loop.

pub mod backend;
pub mod budget;
pub mod client;
pub mod download;
pub mod error;
pub mod hashstate;
mod home;
pub mod keys;
mod moves;
mod read;
mod reader;
pub mod record;
mod request;
pub mod sweep;
mod tree;
mod upload;
pub mod usage;
pub mod writer;
mod xml;

pub use backend::S3Backend;
pub use client::{Client, ClientConfig};
pub use error::{S3Error, S3Result};
pub use home::S3Storage;
pub use reader::ObjectReader;

/// S3's rule for bucket names (3 to 63 lowercase letters, digits, dots and
/// hyphens, a letter or digit at each end), checked with the config so a
/// typo is named at start.
pub fn check_bucket_name(name: &str) -> Result<(), String> {
    let ok_chars = name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
    let ends = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !(3..=63).contains(&name.len())
        || !ok_chars
        || !ends(name.as_bytes().first())
        || !ends(name.as_bytes().last())
    {
        return Err(format!(
            "{name:?} is not a bucket name: 3 to 63 lowercase letters, digits, dots and \
             hyphens, beginning and ending with a letter or digit"
        ));
    }
    Ok(())
}
