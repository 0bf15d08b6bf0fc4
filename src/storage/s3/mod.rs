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
//! Everything here blocks: it runs on the io workers, never on the loop.

pub mod budget;
pub mod client;
pub mod download;
pub mod error;
pub mod hashstate;
pub mod keys;
mod reader;
pub mod record;
mod request;
pub mod sweep;
pub mod usage;
pub mod writer;
mod xml;

pub use client::{Client, ClientConfig};
pub use error::{S3Error, S3Result};
pub use reader::ObjectReader;

use std::time::Duration;

// The caps of the S3 backend. They move to src/limits.rs with the backend
// itself (issue 16, phase 2); until then they live beside the code they cap.

/// Smallest part S3 accepts (but for the last one): 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part S3 accepts, and the largest single CopyObject (5 GiB):
/// above it a copy is a multipart upload of UploadPartCopy parts.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;

/// Longest key S3 stores (bytes of UTF-8).
pub const MAX_KEY_LEN: usize = 1024;

/// Time to set up a TCP (and TLS) connection to the store. Loopback and LAN
/// stores answer in milliseconds; an unreachable one should fail fast.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of a call that moves no bulk data (HEAD, LIST, DELETE, Create,
/// Complete, Abort, small records). Garage answers "quorum not reached" in
/// well under this when nodes are down; a store that says nothing for this
/// long is treated as unavailable.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest pause in a body being sent or received before the call fails
/// (a stalled store or network); it restarts with every read or write.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Slowest transfer rate a part upload may have; with [`CONTROL_TIMEOUT`]
/// it sets the deadline of a part: 30 s + 1 s per MiB.
pub const MIN_RATE: u64 = 1024 * 1024;
/// Deadline of a server-side copy (CopyObject, UploadPartCopy): Garage only
/// adds references to the blocks, but AWS copies up to 5 GiB of data.
pub const COPY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
/// Largest answer read into memory (listings of 1000 keys, error bodies,
/// state records).
pub const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;
/// How long a signed request stays valid: only until it is sent, which is
/// at once, but clocks of the store and the server may differ.
pub const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);
/// Sends of a request that failed before the store could act on it
/// (connection refused or reset, a pooled connection that had closed):
/// one retry after 200 ms, then the error.
pub const SEND_ATTEMPTS: u32 = 2;
