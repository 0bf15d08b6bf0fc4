//! A user's usage, kept in the bucket (`state/<user>/usage`) so that opening
//! a home never lists it, and exact across restarts.
//!
//! Under the home's lock, every change that adds or frees bytes writes the
//! counters with `pending` set (what is about to happen), makes its S3
//! calls, then writes the new totals without `pending`. A server that stops
//! in between leaves `pending` behind; the next open sees it and counts the
//! home once by listing ([`recount`]). A missing counter (a new home, or a
//! bucket filled by another tool) is counted the same way.

use serde::{Deserialize, Serialize};

use super::client::Client;
use super::error::{S3Error, S3Result};
use super::keys::HomeKeys;
use crate::limits::s3::MAX_RECOUNT_KEYS;

/// Version of the counters' format.
pub const USAGE_VERSION: u32 = 1;

/// The stored counters of one home (committed files only: resumable
/// uploads are added from their records when the home is opened).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub v: u32,
    /// Bytes of files.
    pub bytes: u64,
    /// Files and directories.
    pub entries: u64,
    /// A change that was under way when these were written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<String>,
}

/// What reading the counters found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded {
    /// Exact counters.
    Clean(Counters),
    /// None stored, or stored with a change under way: count by listing.
    NeedsRecount,
}

/// Reads the counters of a home.
pub fn load(client: &Client, home: &HomeKeys) -> S3Result<Loaded> {
    let bytes = match client.get_small(&home.usage()) {
        Ok(b) => b,
        Err(e) if e.is_not_found() => return Ok(Loaded::NeedsRecount),
        Err(e) => return Err(e),
    };
    match serde_json::from_slice::<Counters>(&bytes) {
        Ok(c) if c.v == USAGE_VERSION && c.pending.is_none() => Ok(Loaded::Clean(c)),
        Ok(c) => {
            log::warn!(
                "{}: usage counters say a change was under way ({}): counting the home",
                home.usage(),
                c.pending.as_deref().unwrap_or("unknown version")
            );
            Ok(Loaded::NeedsRecount)
        }
        Err(e) => {
            log::warn!(
                "{}: unreadable usage counters ({e}): counting the home",
                home.usage()
            );
            Ok(Loaded::NeedsRecount)
        }
    }
}

/// Writes the counters (with or without `pending`).
pub fn save(client: &Client, home: &HomeKeys, counters: &Counters) -> S3Result<()> {
    let c = Counters {
        v: USAGE_VERSION,
        ..counters.clone()
    };
    let json = serde_json::to_vec(&c).expect("counters always serialise");
    client.put(&home.usage(), &json, None, &[]).map(drop)
}

/// Counts a home by listing every key under it: bytes of files, and files
/// plus directory markers (the home's own marker not counted).
pub fn recount(client: &Client, home: &HomeKeys) -> S3Result<Counters> {
    let mut counters = Counters {
        v: USAGE_VERSION,
        ..Counters::default()
    };
    let mut token = None;
    let mut seen = 0usize;
    loop {
        let page = client.list(home.root(), None, token.as_deref(), 1000)?;
        seen += page.objects.len();
        if seen > MAX_RECOUNT_KEYS {
            return Err(S3Error::Rejected {
                op: format!("count {}", home.root()),
                status: 0,
                code: "TooManyKeys".into(),
                message: format!("more than {MAX_RECOUNT_KEYS} keys"),
            });
        }
        for o in page.objects {
            if o.key == home.root() {
                continue;
            }
            counters.entries += 1;
            if !o.key.ends_with('/') {
                counters.bytes += o.size;
            }
        }
        token = page.next;
        if token.is_none() {
            return Ok(counters);
        }
    }
}
