//! Whole trees of a home: the walk (usage at login, the partial sweep, the
//! depth check of a move), recursive removal, and `mkdir -p`. All of them
//! go `MAX_DEPTH` levels deep and no deeper, and creation never goes
//! deeper, so whatever the server made is always counted and removable.

use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::Arc;

use cap_std::fs::{Dir, Metadata};

use super::{dir_builder, LocalStorage};
use crate::limits::MAX_DEPTH;
use crate::storage::path::display_name;
use crate::storage::{FsError, FsResult, Removed, VPath};

impl LocalStorage {
    /// Visits every entry below `start` (directories too) without following
    /// symlinks: `visit` gets the entry's directory handle, its name, its
    /// display path and its metadata. Iterative, and opened by handle, so
    /// names that are not UTF-8 are walked like any other. It goes
    /// `MAX_DEPTH` levels below `start`, as deep as anything can be made;
    /// a deeper directory (made behind the server's back) is skipped with
    /// a warning.
    ///
    /// Pending subdirectories wait as (parent handle, name) and are opened
    /// when their turn comes, so the open descriptors stay proportional to
    /// the depth, not to the width of the tree.
    pub(super) fn walk(
        &self,
        start: &VPath,
        visit: &mut dyn FnMut(&Dir, &OsStr, &VPath, &Metadata) -> FsResult<()>,
    ) -> FsResult<()> {
        let root = match self.open_dir(start) {
            Ok(d) => Arc::new(d),
            // Removed under us: nothing to visit.
            Err(FsError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        let mut pending: Vec<(Arc<Dir>, Option<OsString>, VPath, usize)> =
            vec![(root, None, start.clone(), 0)];
        while let Some((parent, name, dir_path, depth)) = pending.pop() {
            let dir = match name {
                None => parent,
                Some(name) => match parent.open_dir(&name) {
                    Ok(d) => Arc::new(d),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.err(&dir_path)(e)),
                },
            };
            for entry in dir.entries().map_err(self.err(&dir_path))? {
                let entry = entry.map_err(self.err(&dir_path))?;
                let os_name = entry.file_name();
                let child = dir_path.join(&display_name(&os_name).0);
                let ft = match entry.file_type() {
                    Ok(ft) => ft,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(self.err(&child)(e)),
                };
                if ft.is_dir() {
                    if depth + 1 > MAX_DEPTH {
                        log::warn!("walk: {child} is deeper than {MAX_DEPTH} levels; skipped");
                        continue;
                    }
                    pending.push((
                        Arc::clone(&dir),
                        Some(os_name.clone()),
                        child.clone(),
                        depth + 1,
                    ));
                }
                match entry.metadata() {
                    Ok(md) => visit(&dir, &os_name, &child, &md)?,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(self.err(&child)(e)),
                }
            }
        }
        Ok(())
    }

    /// Removes the directory `name` in `parent` and everything below it,
    /// depth first with one open handle per level. Returns the bytes of
    /// regular files removed, also when an error (a tree deeper than any
    /// the server makes, a permission) stops it partway: they are gone all
    /// the same. The entries removed leave the entry book.
    pub(super) fn remove_tree(&self, parent: Dir, name: &str, path: &VPath) -> Removed {
        struct Level {
            dir: Dir,
            entries: cap_std::fs::ReadDir,
            name: OsString,
            path: VPath,
        }
        let open = |parent: &Dir, name: &OsStr, path: &VPath| -> FsResult<Level> {
            let dir = parent
                .open_dir(name)
                .map_err(|e| FsError::from_io(e, path))?;
            let entries = dir.entries().map_err(|e| FsError::from_io(e, path))?;
            Ok(Level {
                dir,
                entries,
                name: name.to_owned(),
                path: path.clone(),
            })
        };
        let (mut freed, mut gone) = (0u64, 0u64);
        let mut run = || -> FsResult<()> {
            let mut stack = vec![open(&parent, OsStr::new(name), path)?];
            loop {
                let depth = stack.len();
                let Some(top) = stack.last_mut() else {
                    return Ok(());
                };
                let Some(entry) = top.entries.next() else {
                    let done = stack.pop().expect("non-empty");
                    let parent_dir = stack.last().map_or(&parent, |l| &l.dir);
                    parent_dir
                        .remove_dir(&done.name)
                        .map_err(self.err(&done.path))?;
                    gone += 1;
                    continue;
                };
                let entry = entry.map_err(self.err(&top.path))?;
                let os_name = entry.file_name();
                let child = top.path.join(&display_name(&os_name).0);
                let md = entry.metadata().map_err(self.err(&child))?;
                if md.is_dir() {
                    if depth >= MAX_DEPTH {
                        return Err(FsError::Invalid {
                            path: child.to_string(),
                            why: format!("deeper than {MAX_DEPTH} levels"),
                        });
                    }
                    let level = open(&top.dir, &os_name, &child)?;
                    stack.push(level);
                } else {
                    top.dir.remove_file(&os_name).map_err(self.err(&child))?;
                    gone += 1;
                    if md.is_file() {
                        freed += md.len();
                    }
                }
            }
        };
        let error = run().err();
        self.entries.give(gone);
        Removed { freed, error }
    }

    /// Refuses to move the directory `from` to `to` when that would put
    /// anything in its tree deeper than `MAX_DEPTH` (the walks could not
    /// count or remove it). Walks the tree: call it with `names` held,
    /// and only for moves that go deeper.
    pub(super) fn fits_at(&self, from: &VPath, to: &VPath) -> FsResult<()> {
        let too_deep = || FsError::Refused {
            path: to.to_string(),
            why: format!("moving it there would put its contents deeper than {MAX_DEPTH} levels"),
        };
        let room = MAX_DEPTH
            .checked_sub(to.components().len())
            .ok_or_else(too_deep)?;
        let base = from.components().len();
        self.walk(from, &mut |_, _, child, _| {
            if child.components().len() - base > room {
                return Err(too_deep());
            }
            Ok(())
        })
    }

    /// Creates the missing directories of `path` (like `mkdir -p`), taking
    /// their entries first, plus `extra` more that stay taken on success
    /// for what the caller creates in it. Nothing is made when the entry
    /// limit would be passed.
    pub(super) fn make_dirs(&self, path: &VPath, extra: u64) -> FsResult<()> {
        let comps = path.components();
        let prefix = |n: usize| VPath::from_components(&comps[..n]);
        let _names = self.names();
        // The first missing level, from the top.
        let mut first_missing = None;
        for n in 1..=comps.len() {
            match self.home.metadata(prefix(n).rel()) {
                Ok(md) if md.is_dir() => {}
                Ok(_) => return Err(self.not_a_dir(path, n)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    first_missing = Some(n);
                    break;
                }
                Err(e) => return Err(self.err(&prefix(n))(e)),
            }
        }
        let Some(first) = first_missing else {
            return self.entries.take(extra, path);
        };
        let missing = (comps.len() + 1 - first) as u64;
        self.entries.take(missing + extra, path)?;
        let mut made = 0;
        for n in first..=comps.len() {
            let at = prefix(n);
            match self.home.create_dir_with(at.rel(), &dir_builder()) {
                Ok(()) => made += 1,
                // Made by someone else meanwhile: fine if a directory.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    if !self.home.metadata(at.rel()).is_ok_and(|m| m.is_dir()) {
                        self.entries.give(missing + extra - made);
                        return Err(self.not_a_dir(path, n));
                    }
                }
                Err(e) => {
                    self.entries.give(missing + extra - made);
                    return Err(self.err(&at)(e));
                }
            }
        }
        self.entries.give(missing - made);
        Ok(())
    }

    /// Level `n` of `path` exists and is not a directory: which error.
    pub(super) fn not_a_dir(&self, path: &VPath, n: usize) -> FsError {
        let at = VPath::from_components(&path.components()[..n]);
        if n < path.components().len() {
            FsError::WrongType {
                path: at.to_string(),
                what: "not a directory",
            }
        } else {
            FsError::Exists(at.to_string())
        }
    }
}
