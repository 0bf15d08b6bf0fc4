//! The local digest cache: the SHA-256 of each local file of a synced
//! directory, with the file's size, mtime, ctime and inode when it was
//! hashed. A digest is reused only while all four are unchanged; any write
//! moves ctime, which nobody can set back (only the clock can), so a
//! changed file is always hashed again. This is what lets a sync with
//! nothing changed skip hashing the whole tree. One JSON file per synced
//! directory under $XDG_CACHE_HOME/miniftp/sync (or ~/.cache/...); losing
//! it costs one rehash, never a wrong answer.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::digest::{hash_reader, to_hex};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
}

fn stamp(md: &Metadata) -> Stamp {
    let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
    Stamp {
        size: md.len(),
        mtime_ns: ns(md.mtime(), md.mtime_nsec()),
        ctime_ns: ns(md.ctime(), md.ctime_nsec()),
        ino: md.ino(),
    }
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    files: HashMap<String, (Stamp, String)>,
}

pub struct DigestCache {
    root: PathBuf,
    old: Stored,
    new: Stored,
}

/// Where the cache for the local directory `root` lives.
fn cache_file(root: &Path) -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    let abs = std::fs::canonicalize(root).ok()?;
    let key = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    Some(
        base.join("miniftp/sync")
            .join(format!("{}.json", &key[..32])),
    )
}

impl DigestCache {
    /// The cache of `root` (empty when there is none or it is unreadable).
    pub fn open(root: &Path) -> DigestCache {
        let old = cache_file(root)
            .and_then(|f| std::fs::read(f).ok())
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        DigestCache {
            root: root.to_path_buf(),
            old,
            new: Stored::default(),
        }
    }

    /// The digest of `path` (`rel` in the tree), from the cache when the
    /// file is unchanged, else hashed now.
    pub fn digest(&mut self, rel: &str, path: &Path, md: &Metadata) -> std::io::Result<String> {
        let st = stamp(md);
        if let Some((s, d)) = self.old.files.get(rel) {
            if *s == st {
                self.new.files.insert(rel.to_string(), (st, d.clone()));
                return Ok(d.clone());
            }
        }
        let mut f = std::fs::File::open(path)?;
        let (d, _) = hash_reader(&mut f)?;
        let d = to_hex(&d);
        // Stamped as before hashing: a change meanwhile voids the entry.
        self.new.files.insert(rel.to_string(), (st, d.clone()));
        Ok(d)
    }

    /// Records `sha256` for `rel`, whose metadata before the transfer was
    /// `md` (an upload: the content sent) or which is now `path` (a
    /// download, stamped after it landed).
    pub fn record(&mut self, rel: &str, md: &Metadata, sha256: &str) {
        self.new
            .files
            .insert(rel.to_string(), (stamp(md), sha256.to_ascii_lowercase()));
    }

    /// Re-stamps `rel` after a change of its time only (its digest
    /// stays).
    pub fn refresh(&mut self, rel: &str, md: &Metadata) {
        if let Some((_, d)) = self.new.files.remove(rel) {
            self.new.files.insert(rel.to_string(), (stamp(md), d));
        }
    }

    /// Keeps the digests of files this run did not look at (left out, or
    /// not reached), then writes the cache atomically (best effort: a
    /// cache that can't be written costs a rehash next time).
    pub fn save(mut self, keep_unseen: bool) {
        let Some(file) = cache_file(&self.root) else {
            return;
        };
        if keep_unseen {
            for (k, v) in self.old.files.drain() {
                self.new.files.entry(k).or_insert(v);
            }
        }
        let Some(dir) = file.parent() else {
            return;
        };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let Ok(mut tmp) = tempfile::NamedTempFile::new_in(dir) else {
            return;
        };
        if serde_json::to_writer(&mut tmp, &self.new).is_ok() {
            let _ = tmp.persist(&file);
        }
    }
}
