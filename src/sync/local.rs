//! The local side of a sync: the tree under a directory, walked
//! iteratively in name order, left-out paths and our own partial
//! downloads skipped, symlinks and special files skipped with a warning.

use std::collections::BTreeMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};

use super::filter::Filter;
use crate::error::{Error, Result};
use crate::limits::MAX_DEPTH;
use crate::partial::PARTIAL_MARK;

pub struct LocalEntry {
    pub path: PathBuf,
    pub md: Metadata,
}

impl LocalEntry {
    pub fn is_dir(&self) -> bool {
        self.md.is_dir()
    }
    pub fn mtime(&self) -> i64 {
        std::os::unix::fs::MetadataExt::mtime(&self.md)
    }
}

/// Every file and directory under `root` by relative path (`a/b.txt`).
/// A missing root is an empty tree.
pub fn walk(root: &Path, filter: &Filter) -> Result<BTreeMap<String, LocalEntry>> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return Ok(out);
    }
    let mut stack = vec![(root.to_path_buf(), String::new(), 0usize)];
    while let Some((dir, rel, depth)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::local(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::local(&dir, e))?;
            let path = entry.path();
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                eprintln!("miniftp: skipping {} (name is not UTF-8)", path.display());
                continue;
            };
            if name.starts_with('.') && name.contains(PARTIAL_MARK) {
                continue; // a download in progress, ours
            }
            let child = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if filter.skips(&child) {
                continue;
            }
            let md = std::fs::symlink_metadata(&path).map_err(|e| Error::local(&path, e))?;
            if md.is_dir() {
                if depth + 1 >= MAX_DEPTH {
                    eprintln!(
                        "miniftp: skipping {} (deeper than {MAX_DEPTH})",
                        path.display()
                    );
                    continue;
                }
                stack.push((path.clone(), child.clone(), depth + 1));
            } else if !md.is_file() {
                eprintln!("miniftp: skipping {} (not a regular file)", path.display());
                continue;
            }
            out.insert(child, LocalEntry { path, md });
        }
    }
    Ok(out)
}
