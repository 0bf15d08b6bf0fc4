//! `sync down`: the server's tree into a local directory. Each file lands
//! under a hidden partial name, is verified, gets its time, and is then
//! renamed into place; a stopped run leaves the partial to resume.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::cache::DigestCache;
use super::local::{self, LocalEntry};
use super::{local_digests, remote_path, remote_tree, Ctx};
use crate::client::progress::Progress;
use crate::client::transfer::{get_file, system_time};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::proto::{EntryKind, TreeEntry};

struct Fetch {
    remote: String,
    local: PathBuf,
    rel: String,
    size: u64,
    mtime: i64,
}

#[derive(Default)]
struct Plan {
    mkdirs: Vec<(String, PathBuf)>,
    fetches: Vec<Fetch>,
    touches: Vec<(String, PathBuf, i64)>,
    deletes: Vec<(String, PathBuf)>,
}

pub fn run(ctx: &Ctx, remote_dir: &str, local_dir: &str) -> Result<()> {
    let root = Path::new(local_dir);
    if root.exists() && !root.is_dir() {
        return Err(Error::Usage(format!("{local_dir}: not a directory")));
    }
    let mut client = ctx.connect()?;
    match client.stat(remote_dir)? {
        Some(e) if e.kind == EntryKind::Dir => {}
        Some(_) => {
            return Err(Error::Usage(format!(
                "{remote_dir}: not a directory on the server"
            )))
        }
        None => {
            return Err(Error::Remote {
                code: crate::proto::Status::NotFound.code(),
                msg: format!("{remote_dir}: no such directory"),
            })
        }
    }
    let remote: Vec<TreeEntry> = remote_tree(&mut client, remote_dir)?.unwrap_or_default();
    client.quit();
    let local = local::walk(root, &ctx.filter)?;
    let mut cache = DigestCache::open(root, ctx.use_cache);
    let plan = plan(ctx, root, &local, &remote, remote_dir, &mut cache);
    if ctx.dry_run {
        return report_dry(ctx, &plan);
    }
    if !plan.mkdirs.is_empty() || !root.exists() {
        std::fs::create_dir_all(root).map_err(|e| Error::local(root, e))?;
    }
    let cache = Mutex::new(cache);
    apply(ctx, plan, &cache);
    let cache = cache.into_inner().unwrap_or_else(|p| p.into_inner());
    cache.save();
    Ok(())
}

fn plan(
    ctx: &Ctx,
    root: &Path,
    local: &BTreeMap<String, LocalEntry>,
    remote: &[TreeEntry],
    dir: &str,
    cache: &mut DigestCache,
) -> Plan {
    let mut p = Plan::default();
    let both = remote.iter().filter_map(|r| {
        let l = local.get(&r.path)?;
        (r.kind == EntryKind::File && !r.escaped && !l.is_dir() && l.md.len() == r.size)
            .then_some((r.path.as_str(), l))
    });
    let mut digests = local_digests(cache, both.collect());
    let mut summary = ctx.summary();
    for r in remote {
        if r.escaped || ctx.filter.skips_path(&r.path) {
            continue;
        }
        let target = root.join(&r.path);
        let ours = local.get(&r.path);
        match r.kind {
            EntryKind::Dir => {
                if ours.is_none_or(|l| !l.is_dir()) {
                    p.mkdirs.push((r.path.clone(), target));
                }
                continue;
            }
            EntryKind::File => {}
            _ => continue,
        }
        let same = match digests.remove(r.path.as_str()) {
            Some(Ok(d)) => r
                .sha256
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&d)),
            Some(Err(e)) => {
                let path = ours.map_or(target, |l| l.path.clone());
                summary.fail(&r.path, Error::local(&path, e));
                continue;
            }
            None => false,
        };
        match (same, ours) {
            (true, Some(l)) if l.mtime() != r.mtime => {
                p.touches.push((r.path.clone(), target, r.mtime));
            }
            (true, _) => summary.unchanged += 1,
            (false, _) => p.fetches.push(Fetch {
                remote: remote_path(dir, &r.path),
                local: target,
                rel: r.path.clone(),
                size: r.size,
                mtime: r.mtime,
            }),
        }
    }
    if ctx.delete {
        let keep: std::collections::HashSet<&str> =
            remote.iter().map(|r| r.path.as_str()).collect();
        let mut gone: Option<String> = None;
        for (rel, l) in local {
            if gone
                .as_ref()
                .is_some_and(|g| rel.starts_with(&format!("{g}/")))
            {
                continue;
            }
            if keep.contains(rel.as_str()) || ctx.filter.skips_path(rel) {
                continue;
            }
            p.deletes.push((rel.clone(), l.path.clone()));
            gone = Some(rel.clone());
        }
    }
    p
}

fn report_dry(ctx: &Ctx, p: &Plan) -> Result<()> {
    let mut s = ctx.summary();
    for (rel, _) in &p.mkdirs {
        println!("mkdir {rel}");
    }
    for f in &p.fetches {
        println!("receive {} ({} bytes)", f.rel, f.size);
        s.sent += 1;
        s.bytes += f.size;
    }
    for (rel, _, _) in &p.touches {
        println!("set time {rel}");
        s.touched += 1;
    }
    for (rel, _) in &p.deletes {
        println!("delete {rel}");
        s.deleted += 1;
    }
    Ok(())
}

fn apply(ctx: &Ctx, plan: Plan, cache: &Mutex<DigestCache>) {
    for (rel, path) in &plan.mkdirs {
        if let Err(e) = std::fs::create_dir_all(path) {
            ctx.summary().fail(rel, Error::local(path, e));
        }
    }
    let fetched = super::parallel(ctx, &plan.fetches, 16, &|c, batch| {
        fetch_batch(ctx, c, batch, cache)
    });
    if let Err(e) = fetched {
        ctx.summary().fail("download", e);
    }
    for (rel, path, mtime) in &plan.touches {
        let result = std::fs::File::options()
            .write(true)
            .open(path)
            .and_then(|f| f.set_modified(system_time(*mtime)));
        match result {
            Ok(()) => {
                ctx.say(|| format!("set time {rel}"));
                ctx.summary().touched += 1;
                let mut c = cache.lock().unwrap_or_else(|p| p.into_inner());
                c.forget(rel);
            }
            Err(e) => ctx.summary().fail(rel, Error::local(path, e)),
        }
    }
    for (rel, path) in &plan.deletes {
        let md = std::fs::symlink_metadata(path);
        let result = match md {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
            _ => std::fs::remove_file(path),
        };
        match result {
            Ok(()) => {
                ctx.say(|| format!("delete {rel}"));
                ctx.summary().deleted += 1;
            }
            Err(e) => ctx.summary().fail(rel, Error::local(path, e)),
        }
    }
}

fn fetch_batch(
    ctx: &Ctx,
    client: &mut Client,
    batch: &[Fetch],
    cache: &Mutex<DigestCache>,
) -> Result<()> {
    for f in batch {
        let mut attempt = 0;
        loop {
            let got = get_file(
                client,
                &f.remote,
                &f.local,
                true,
                Some(f.mtime),
                &Progress::hidden(),
            );
            match got {
                Ok(d) => {
                    ctx.say(|| format!("received {} ({} bytes)", f.rel, d.size));
                    // Its ctime is now: racy by the cache's rule, so it
                    // is hashed on the next run, not taken on trust.
                    cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .forget(&f.rel);
                    let mut s = ctx.summary();
                    s.sent += 1;
                    s.bytes += d.bytes;
                    break;
                }
                Err(e) if e.is_transient() && attempt < ctx.opts.retries => {
                    attempt += 1;
                    eprintln!(
                        "miniftp: {e}; reconnecting ({attempt}/{})",
                        ctx.opts.retries
                    );
                    *client = ctx.connect()?;
                }
                Err(e) if e.ends_connection() => return Err(e),
                Err(e) => {
                    ctx.summary().fail(&f.rel, e);
                    break;
                }
            }
        }
    }
    Ok(())
}
