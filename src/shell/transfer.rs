//! The shell's transfers: `put LOCAL [REMOTE]` and `mput LOCAL...` with
//! local globs, `get REMOTE [LOCAL]` and `mget REMOTE...` with remote
//! globs, `-r` for directories, `-c` to resume. A file that fails is
//! reported and the next one goes on; Ctrl-C stops the running file (its
//! partial is kept for `-c`) and the rest.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::commands::Shell;
use super::flags::Parsed;
use crate::client::progress::Progress;
use crate::client::transfer::{get_file, put_file, PutOpts};
use crate::error::{Error, Result};
use crate::proto::{EntryKind, Request};
use crate::put::{base_name, describe, expand_locals, join_remote, walk_local, Item};

/// Runs every step, reporting failures one by one; the first failure (or
/// an interruption, which stops the rest) is returned at the end.
fn run_all<T>(items: &[T], mut step: impl FnMut(&T) -> Result<()>) -> Result<()> {
    let mut first = None;
    for item in items {
        match step(item) {
            Ok(()) => {}
            Err(e) if e.ends_connection() => return Err(e),
            Err(e) => {
                println!("error: {e}");
                first.get_or_insert(e);
            }
        }
    }
    match first {
        Some(e) => Err(Error::Failed {
            exit: e.exit(),
            msg: "some files failed (see above)".into(),
        }),
        None => Ok(()),
    }
}

pub(crate) fn put(shell: &mut Shell, p: &Parsed, many: bool) -> Result<()> {
    let (locals, remote) = match (many, p.args.as_slice()) {
        (_, []) => return Err(Error::Usage("put: missing LOCAL (see `help put`)".into())),
        (true, all) => (all.to_vec(), None),
        (false, [l]) => (vec![l.clone()], None),
        (false, [l, r]) => (vec![l.clone()], Some(r.clone())),
        (false, _) => {
            return Err(Error::Usage(
                "put: one LOCAL (a glob is fine) and at most one REMOTE; mput sends several".into(),
            ))
        }
    };
    let files = expand_locals(&locals)?;
    let mut client = shell.client()?;
    let into_dir = match &remote {
        None => true,
        Some(r) => {
            files.len() > 1
                || r.ends_with('/')
                || files.iter().any(|f| f.is_dir())
                || matches!(client.stat(r)?, Some(e) if e.kind == EntryKind::Dir)
        }
    };
    let mut plan = Vec::new();
    for local in &files {
        let name = base_name(local)?;
        let target = match (&remote, into_dir) {
            (None, _) => name,
            (Some(r), true) => join_remote(r, &name),
            (Some(r), false) => r.clone(),
        };
        if local.is_dir() {
            if !p.has("recursive") {
                return Err(Error::Usage(format!(
                    "{}: is a directory (use put -r)",
                    local.display()
                )));
            }
            walk_local(local, &target, &mut plan)?;
        } else {
            plan.push(Item::File(local.clone(), target));
        }
    }
    let opts = PutOpts {
        resume: p.has("continue"),
        ..PutOpts::default()
    };
    run_all(&plan, |item| match item {
        Item::Dir(t) => client
            .call(&Request::Mkdir {
                path: t.clone(),
                parents: true,
            })
            .map(|_| ()),
        Item::File(local, target) => {
            let started = Instant::now();
            let size = std::fs::metadata(local).map(|m| m.len()).ok();
            let progress = Progress::new(true, size, target);
            let done = put_file(&mut client, local, target, opts, &progress);
            progress.finish();
            let shown = local.display().to_string();
            println!("{}", describe("put", &shown, target, &done?, started));
            Ok(())
        }
    })
}

pub(crate) fn get(shell: &mut Shell, p: &Parsed, many: bool) -> Result<()> {
    let (remotes, local) = match (many, p.args.as_slice()) {
        (_, []) => return Err(Error::Usage("get: missing REMOTE (see `help get`)".into())),
        (true, all) => (all.to_vec(), None),
        (false, [r]) => (vec![r.clone()], None),
        (false, [r, l]) => (vec![r.clone()], Some(PathBuf::from(l))),
        (false, _) => {
            return Err(Error::Usage(
                "get: one REMOTE (a glob is fine) and at most one LOCAL; mget fetches several"
                    .into(),
            ))
        }
    };
    let mut client = shell.client()?;
    let mut sources = Vec::new();
    for r in &remotes {
        sources.extend(crate::get::expand_remote(&mut client, r)?);
    }
    let into_dir = match &local {
        None => true,
        Some(l) => {
            sources.len() > 1 || l.is_dir() || sources.iter().any(|(_, k)| *k == EntryKind::Dir)
        }
    };
    let mut plan: Vec<(String, Option<PathBuf>)> = Vec::new();
    for (remote, kind) in &sources {
        let name = remote
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("download");
        let target = match (&local, into_dir) {
            (None, _) => PathBuf::from(name),
            (Some(l), true) => l.join(name),
            (Some(l), false) => l.clone(),
        };
        if *kind == EntryKind::Dir {
            if !p.has("recursive") {
                return Err(Error::Usage(format!(
                    "{remote}: is a directory (use get -r)"
                )));
            }
            crate::get::walk_remote(&mut client, remote, &target, &mut plan)?;
        } else {
            plan.push((remote.clone(), Some(target)));
        }
    }
    let resume = p.has("continue");
    run_all(&plan, |(remote, target)| {
        let Some(t) = target else { return Ok(()) };
        if remote.is_empty() {
            return std::fs::create_dir_all(t).map_err(|e| Error::local(t, e));
        }
        let started = Instant::now();
        let size = client.stat(remote)?.map(|e| e.size);
        let progress = Progress::new(true, size, remote);
        let done = get_file(&mut client, remote, Path::new(t), resume, None, &progress);
        progress.finish();
        println!(
            "{}",
            describe("get", remote, &t.display().to_string(), &done?, started)
        );
        Ok(())
    })
}
