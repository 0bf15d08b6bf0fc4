//! The local digest cache: the SHA-256 of each local file of a synced
//! directory, with the file's size, mtime, ctime, inode and device when it
//! was hashed (like git's index). A digest is reused only while all five
//! are unchanged; any write moves ctime, which nobody can set back (only
//! the clock can), so a changed file is always hashed again. This is what
//! lets a sync with nothing changed skip hashing the whole tree.
//!
//! One file per synced directory under $XDG_CACHE_HOME/miniftp/sync (or
//! ~/.cache/...): a header line with the format version and the SHA-256 of
//! the rest, then JSON. A file that is corrupt, of another version, or
//! for another directory is ignored whole; losing it costs one rehash,
//! never a wrong answer. Written atomically (a temporary file renamed),
//! bounded in entries and in files (the least recently written go first).
//!
//! Racy entries: a file's ctime only moves when the clock has ticked
//! since its last change, so a write in the same tick as the stamp we
//! took leaves the stamp as it was. A digest is therefore kept only for a
//! file whose ctime is more than `CACHE_RACY_NS` older than the moment
//! its content was read; a younger one is hashed again next time.

use std::collections::HashMap;
use std::fs::Metadata;
use std::io::{self, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::local::LocalEntry;
use crate::digest::{hash_reader, to_hex};
use crate::limits::{
    CACHE_RACY_NS, MAX_HASH_THREADS, MAX_SYNC_CACHES, MAX_SYNC_CACHE_BYTES, MAX_SYNC_CACHE_ENTRIES,
};

/// The first line's start; the format version and the body's SHA-256
/// follow. A new layout gets a new version, and older files are ignored.
const MAGIC: &str = "miniftp-sync-cache";
const VERSION: u32 = 2;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
    ino: u64,
    dev: u64,
}

fn ns(s: i64, n: i64) -> i128 {
    s as i128 * 1_000_000_000 + n as i128
}

fn stamp(md: &Metadata) -> Stamp {
    Stamp {
        size: md.len(),
        mtime_ns: ns(md.mtime(), md.mtime_nsec()),
        ctime_ns: ns(md.ctime(), md.ctime_nsec()),
        ino: md.ino(),
        dev: md.dev(),
    }
}

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> i128 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    ns(d.as_secs() as i64, d.subsec_nanos() as i64)
}

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    /// The synced directory, as canonicalized: a file named for another
    /// directory (a clash of the name's hash) is not used.
    root: String,
    files: HashMap<String, (Stamp, String)>,
}

/// What a run took from the cache and what it hashed, for `-v`.
#[derive(Default, Clone, Copy)]
pub struct Counts {
    pub reused: u64,
    pub hashed: u64,
    pub hashed_bytes: u64,
}

pub struct DigestCache {
    file: Option<PathBuf>,
    root: String,
    old: Stored,
    new: Stored,
    pub counts: Counts,
}

/// Where the cache for the local directory `root` lives, and the name it
/// is stored under.
fn cache_file(root: &Path) -> Option<(PathBuf, String)> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
    let abs = std::fs::canonicalize(root).ok()?;
    let key = hex::encode(Sha256::digest(abs.as_os_str().as_encoded_bytes()));
    let file = base
        .join("miniftp/sync")
        .join(format!("{}.json", &key[..32]));
    Some((file, abs.to_string_lossy().into_owned()))
}

/// The stored cache in `bytes`, if it is whole, of this version and for
/// `root`.
fn parse(bytes: &[u8], root: &str) -> Option<Stored> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..nl]).ok()?;
    let body = &bytes[nl + 1..];
    let mut it = header.split(' ');
    if it.next()? != MAGIC || it.next()? != VERSION.to_string() {
        return None;
    }
    if it.next()? != hex::encode(Sha256::digest(body)) {
        return None;
    }
    let stored: Stored = serde_json::from_slice(body).ok()?;
    (stored.root == root).then_some(stored)
}

/// Reads at most `MAX_SYNC_CACHE_BYTES` of `file`: a larger one is not
/// ours to trust (and not worth the memory).
fn read_bounded(file: &Path) -> Option<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(file).ok()?;
    let mut out = Vec::new();
    f.take(MAX_SYNC_CACHE_BYTES + 1)
        .read_to_end(&mut out)
        .ok()?;
    (out.len() as u64 <= MAX_SYNC_CACHE_BYTES).then_some(out)
}

impl DigestCache {
    /// The cache of `root`: its stored digests when `trust` (else none:
    /// `--no-cache`), and an empty one when it is missing or unusable.
    pub fn open(root: &Path, trust: bool) -> DigestCache {
        let (file, name) = cache_file(root).unzip();
        let name = name.unwrap_or_default();
        let old = match &file {
            Some(f) if trust => read_bounded(f)
                .and_then(|b| parse(&b, &name))
                .unwrap_or_default(),
            _ => Stored::default(),
        };
        DigestCache {
            file,
            root: name.clone(),
            old,
            new: Stored {
                root: name,
                files: HashMap::new(),
            },
            counts: Counts::default(),
        }
    }

    /// The digests of `files` (relative path and entry): from the cache
    /// for a file whose stamp is unchanged, the others hashed now on up to
    /// `MAX_HASH_THREADS` threads. In the order given.
    pub fn digests(&mut self, files: &[(&str, &LocalEntry)]) -> Vec<io::Result<String>> {
        let mut out: Vec<Option<io::Result<String>>> = Vec::with_capacity(files.len());
        let mut todo = Vec::new();
        for (i, (rel, l)) in files.iter().enumerate() {
            match self.old.files.get(*rel) {
                Some((s, d)) if *s == stamp(&l.md) => {
                    self.new
                        .files
                        .insert(rel.to_string(), (s.clone(), d.clone()));
                    self.counts.reused += 1;
                    out.push(Some(Ok(d.clone())));
                }
                _ => {
                    todo.push(i);
                    out.push(None);
                }
            }
        }
        for (i, result) in hash_all(files, &todo) {
            if let Ok((d, from)) = &result {
                let (rel, l) = files[i];
                self.counts.hashed += 1;
                self.counts.hashed_bytes += l.md.len();
                self.record(rel, &l.md, d, *from);
            }
            out[i] = Some(result.map(|(d, _)| d));
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(io::Error::other("not hashed"))))
            .collect()
    }

    /// Records `sha256` for `rel`, whose metadata was `md` before its
    /// content was read from `read_from` (ns since the epoch) on: an
    /// upload (the content sent) or a download (stamped after it landed,
    /// read from when it was written). Not kept when racy (see the top).
    pub fn record(&mut self, rel: &str, md: &Metadata, sha256: &str, read_from: i128) {
        let st = stamp(md);
        if st.ctime_ns > read_from - CACHE_RACY_NS {
            self.new.files.remove(rel);
            return;
        }
        self.new
            .files
            .insert(rel.to_string(), (st, sha256.to_ascii_lowercase()));
    }

    /// Forgets `rel` after this run changed its time: its ctime is now,
    /// racy by definition, so it is hashed again next time.
    pub fn forget(&mut self, rel: &str) {
        self.new.files.remove(rel);
    }

    /// Writes the cache atomically (best effort: a cache that can't be
    /// written costs a rehash next time), at most `MAX_SYNC_CACHE_ENTRIES`
    /// of it, then drops the least recently written caches beyond
    /// `MAX_SYNC_CACHES`.
    pub fn save(mut self) {
        let Some(file) = self.file.take() else {
            return;
        };
        let Some(dir) = file.parent() else {
            return;
        };
        if self.new.files.len() > MAX_SYNC_CACHE_ENTRIES {
            let extra: Vec<String> = self
                .new
                .files
                .keys()
                .skip(MAX_SYNC_CACHE_ENTRIES)
                .cloned()
                .collect();
            for k in extra {
                self.new.files.remove(&k);
            }
        }
        self.new.root = std::mem::take(&mut self.root);
        let Ok(body) = serde_json::to_vec(&self.new) else {
            return;
        };
        let header = format!("{MAGIC} {VERSION} {}\n", hex::encode(Sha256::digest(&body)));
        if write_atomic(dir, &file, header.as_bytes(), &body).is_ok() {
            prune(dir);
        }
    }
}

fn write_atomic(dir: &Path, file: &Path, header: &[u8], body: &[u8]) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(header)?;
    tmp.write_all(body)?;
    tmp.persist(file).map_err(|e| e.error)?;
    Ok(())
}

/// Removes the least recently written cache files beyond
/// `MAX_SYNC_CACHES` (directories synced long ago).
fn prune(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<(SystemTime, PathBuf)> = entries
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if files.len() <= MAX_SYNC_CACHES {
        return;
    }
    files.sort();
    let extra = files.len() - MAX_SYNC_CACHES;
    for (_, path) in files.into_iter().take(extra) {
        let _ = std::fs::remove_file(path);
    }
}

/// A digest and the moment (ns) before its content was read.
type Hashed = io::Result<(String, i128)>;

/// Hashes `files[i]` for each `i` in `todo`, on up to
/// `MAX_HASH_THREADS` threads (as many as there are cores).
fn hash_all(files: &[(&str, &LocalEntry)], todo: &[usize]) -> Vec<(usize, Hashed)> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(MAX_HASH_THREADS).min(todo.len());
    if threads <= 1 {
        return todo.iter().map(|&i| (i, hash_file(files[i].1))).collect();
    }
    let next = AtomicUsize::new(0);
    let out = Mutex::new(Vec::with_capacity(todo.len()));
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = todo.get(k) else {
                    return;
                };
                let r = hash_file(files[i].1);
                out.lock().unwrap_or_else(|p| p.into_inner()).push((i, r));
            });
        }
    });
    out.into_inner().unwrap_or_else(|p| p.into_inner())
}

fn hash_file(l: &LocalEntry) -> Hashed {
    let from = now_ns();
    let mut f = std::fs::File::open(&l.path)?;
    let (d, _) = hash_reader(&mut f)?;
    Ok((to_hex(&d), from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(root: &str) -> Vec<u8> {
        let mut s = Stored {
            root: root.into(),
            files: HashMap::new(),
        };
        let st = Stamp {
            size: 1,
            mtime_ns: 2,
            ctime_ns: 3,
            ino: 4,
            dev: 5,
        };
        s.files.insert("a".into(), (st, "ab".repeat(32)));
        let body = serde_json::to_vec(&s).unwrap();
        let mut out =
            format!("{MAGIC} {VERSION} {}\n", hex::encode(Sha256::digest(&body))).into_bytes();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn whole_file_of_this_version_and_root_is_read() {
        let b = stored("/r");
        assert_eq!(parse(&b, "/r").unwrap().files.len(), 1);
        assert!(parse(&b, "/other").is_none(), "another directory's cache");
    }

    #[test]
    fn corrupt_truncated_or_other_version_is_ignored() {
        let b = stored("/r");
        let mut flipped = b.clone();
        let last = flipped.len() - 5;
        flipped[last] ^= 1;
        assert!(parse(&flipped, "/r").is_none(), "a flipped bit");
        assert!(parse(&b[..b.len() - 1], "/r").is_none(), "truncated");
        let other = String::from_utf8(b.clone()).unwrap().replacen(
            &format!("{MAGIC} {VERSION} "),
            &format!("{MAGIC} 1 "),
            1,
        );
        assert!(parse(other.as_bytes(), "/r").is_none(), "another version");
        assert!(parse(b"", "/r").is_none());
        assert!(parse(b"{\"files\":{}}", "/r").is_none(), "the old format");
    }
}
