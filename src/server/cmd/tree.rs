//! `tree [PATH] [recursive] [after]`: the entries below a directory with
//! the SHA-256 of every regular file, a page at a time: the bulk listing
//! that `sync`, `sum` and `ls --json` use instead of a request per file.
//!
//! Order is depth first, each directory's entries sorted by name, a
//! directory before its contents; `after` continues the walk after that
//! relative path (re-listing only the directories on the way to it, so a
//! tree changed between pages is still walked once, in order). A digest
//! the storage has stored costs nothing; a file without one is hashed
//! here, at most `MAX_TREE_HASH_BYTES` per request: the page ends before
//! the file that would pass it, and a file larger than that is hashed over
//! several requests (its hash state kept in a small table in between).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use sha2::{Digest, Sha256};

use super::wire_entry;
use super::{fs_reply, try_reply, Ctx};
use crate::limits::{
    MAX_DEPTH, MAX_HASHING_STATES, MAX_TREE_HASH_BYTES, MAX_TREE_PAGE, MAX_TREE_PAGE_BYTES,
};
use crate::proto::{Reply, Status, TreeEntry};
use crate::server::workers::with_scratch;
use crate::storage::{Entry, EntryKind, FsResult, ReadHandle, Storage, VPath};

pub fn run(ctx: &Ctx, path: Option<&str>, recursive: bool, after: Option<&str>) -> Reply {
    let root = match path {
        Some(p) => try_reply!(ctx.resolve(p)),
        None => ctx.cwd.clone(),
    };
    let storage = &*ctx.account.storage;
    let top = try_reply!(storage.stat(&root).map_err(fs_reply));
    let mut page = Page::new();
    if top.kind != EntryKind::Dir {
        // One file: its entry, named by its last component.
        let name = root.name().unwrap_or("/").to_string();
        let done = try_reply!(page.add(storage, &root, &name, &top).map_err(fs_reply));
        return page.reply(&root, (!done).then(String::new));
    }
    let mut walk = try_reply!(Walk::start(storage, &root, recursive, after).map_err(fs_reply));
    let more = try_reply!(walk.fill(storage, &mut page).map_err(fs_reply));
    page.reply(&root, more)
}

/// The entries of one reply, and what they may still cost.
struct Page {
    entries: Vec<TreeEntry>,
    bytes: usize,
    hash_budget: u64,
}

impl Page {
    fn new() -> Page {
        Page {
            entries: Vec::new(),
            bytes: 0,
            hash_budget: MAX_TREE_HASH_BYTES,
        }
    }

    fn full(&self) -> bool {
        self.entries.len() >= MAX_TREE_PAGE || self.bytes >= MAX_TREE_PAGE_BYTES
    }

    /// Adds `entry` as `rel`; false when its digest is not ready within
    /// this request's budget (nothing is added then).
    fn add(
        &mut self,
        storage: &dyn Storage,
        path: &VPath,
        rel: &str,
        entry: &Entry,
    ) -> FsResult<bool> {
        let sha256 = if entry.kind == EntryKind::File && !entry.escaped {
            match digest_of(storage, path, &mut self.hash_budget)? {
                Some(d) => Some(hex::encode(d)),
                None => return Ok(false),
            }
        } else {
            None
        };
        self.bytes += rel.len() + 120;
        self.entries.push(TreeEntry {
            path: rel.to_string(),
            kind: wire_entry(entry.clone()).kind,
            size: entry.size,
            mtime: entry.mtime,
            sha256,
            escaped: entry.escaped,
        });
        Ok(true)
    }

    /// `more`: where the next request continues (`""`: from the start).
    fn reply(self, root: &VPath, more: Option<String>) -> Reply {
        let mut r = Reply::new(
            Status::Ok,
            format!(
                "{} entries of {root}{}",
                self.entries.len(),
                if more.is_some() { ", more follow" } else { "" }
            ),
        );
        r.tree = Some(self.entries);
        r.after = more;
        r
    }
}

/// One directory being walked: its sorted entries and the next to visit.
struct Frame {
    dir: VPath,
    /// Its path relative to the walk's root ("" for the root).
    rel: String,
    entries: Vec<Entry>,
    next: usize,
}

struct Walk {
    stack: Vec<Frame>,
    recursive: bool,
    /// The last entry added, for the next request's `after`.
    last: Option<String>,
}

fn join(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_string()
    } else {
        format!("{rel}/{name}")
    }
}

fn frame(storage: &dyn Storage, dir: VPath, rel: String) -> FsResult<Frame> {
    let mut entries = storage.list(&dir)?;
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Frame {
        dir,
        rel,
        entries,
        next: 0,
    })
}

impl Walk {
    /// Positions the walk just after `after` (or at the start).
    fn start(
        storage: &dyn Storage,
        root: &VPath,
        recursive: bool,
        after: Option<&str>,
    ) -> FsResult<Walk> {
        let mut walk = Walk {
            stack: vec![frame(storage, root.clone(), String::new())?],
            recursive,
            last: after.filter(|a| !a.is_empty()).map(str::to_string),
        };
        let Some(after) = walk.last.clone() else {
            return Ok(walk);
        };
        let parts: Vec<&str> = after.split('/').collect();
        for (i, part) in parts.iter().enumerate() {
            let top = walk.stack.last_mut().expect("the root frame");
            let idx = top.entries.partition_point(|e| e.name.as_str() < *part);
            top.next = idx;
            let Some(e) = top.entries.get(idx).filter(|e| e.name == *part) else {
                break; // gone since: continue with the next name
            };
            top.next = idx + 1;
            if e.kind != EntryKind::Dir || e.escaped || !recursive {
                break;
            }
            let (dir, rel) = (top.dir.join(&e.name), join(&top.rel, &e.name));
            if walk.stack.len() >= MAX_DEPTH {
                break;
            }
            match frame(storage, dir, rel) {
                Ok(f) => walk.stack.push(f),
                Err(_) if i + 1 < parts.len() => break,
                Err(e) => return Err(e),
            }
        }
        Ok(walk)
    }

    /// Adds entries until the walk ends (None) or the page is full (where
    /// to continue).
    fn fill(&mut self, storage: &dyn Storage, page: &mut Page) -> FsResult<Option<String>> {
        while let Some(top) = self.stack.last_mut() {
            let Some(entry) = top.entries.get(top.next).cloned() else {
                self.stack.pop();
                continue;
            };
            if page.full() {
                return Ok(Some(self.last.clone().unwrap_or_default()));
            }
            let path = top.dir.join(&entry.name);
            let rel = join(&top.rel, &entry.name);
            if !page.add(storage, &path, &rel, &entry)? {
                return Ok(Some(self.last.clone().unwrap_or_default()));
            }
            top.next += 1;
            self.last = Some(rel.clone());
            let descend = entry.kind == EntryKind::Dir && !entry.escaped && self.recursive;
            if descend && self.stack.len() < MAX_DEPTH {
                match frame(storage, path, rel) {
                    Ok(f) => self.stack.push(f),
                    // Removed since it was listed: nothing below it.
                    Err(crate::storage::FsError::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(None)
    }
}

/// What identifies a file's content while it is hashed over several
/// requests: the storage's version token ([`ReadHandle::version`]), which
/// any change of the content changes.
type Key = String;

/// Hash states of files whose hashing is under way.
fn hashing() -> std::sync::MutexGuard<'static, HashMap<Key, (Sha256, u64)>> {
    static STATES: OnceLock<Mutex<HashMap<Key, (Sha256, u64)>>> = OnceLock::new();
    STATES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// The SHA-256 of the file at `path`: the stored one, or hashed now within
/// `budget` (None when the budget ran out first; the work done is kept).
fn digest_of(storage: &dyn Storage, path: &VPath, budget: &mut u64) -> FsResult<Option<[u8; 32]>> {
    let mut handle = storage.open_read(path)?;
    if let Some(d) = handle.digest() {
        return Ok(Some(d));
    }
    let size = handle.size();
    let key: Key = handle.version();
    let (mut hasher, mut pos) = hashing().remove(&key).unwrap_or_default();
    let left = size - pos;
    if left > *budget && *budget < MAX_TREE_HASH_BYTES {
        // Not in this page: the next request starts with it, budget whole.
        hashing_keep(key, hasher, pos);
        *budget = 0;
        return Ok(None);
    }
    let take = left.min(*budget);
    let from = pos;
    pos = hash_range(handle.as_mut(), &mut hasher, from, from + take)
        .map_err(|e| crate::storage::FsError::from_io(e, path))?;
    *budget -= take;
    if pos < size {
        // A file larger than a request's budget (or one that shrank, whose
        // key no longer matches next time): continued by the next request.
        hashing_keep(key, hasher, pos);
        *budget = 0;
        return Ok(None);
    }
    let digest: [u8; 32] = hasher.finalize().into();
    handle.remember_digest(&digest);
    Ok(Some(digest))
}

fn hashing_keep(key: Key, hasher: Sha256, pos: u64) {
    let mut states = hashing();
    if states.len() >= MAX_HASHING_STATES {
        states.clear();
    }
    states.insert(key, (hasher, pos));
}

/// Hashes bytes `from..to` of the file; returns where it stopped (the end,
/// or earlier if the file shrank).
fn hash_range(
    handle: &mut dyn ReadHandle,
    hasher: &mut Sha256,
    from: u64,
    to: u64,
) -> std::io::Result<u64> {
    with_scratch(|buf| {
        let mut pos = from;
        while pos < to {
            let want = buf.len().min((to - pos) as usize);
            let n = handle.read_at(&mut buf[..want], pos)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
        Ok(pos)
    })
}
