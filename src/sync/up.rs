//! `sync up`: the local tree onto the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use super::cache::DigestCache;
use super::local::{self, LocalEntry};
use super::{local_digests, pipeline, remote_path, remote_tree, Ctx};
use crate::client::transfer::{put_files, PutOpts};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::proto::{EntryKind, Request, TreeEntry};

/// One file to send.
struct Send {
    local: PathBuf,
    remote: String,
    rel: String,
    md: std::fs::Metadata,
}

#[derive(Default)]
struct Plan {
    mkdirs: Vec<(String, Request)>,
    sends: Vec<Send>,
    touches: Vec<(String, Request)>,
    deletes: Vec<(String, Request)>,
}

pub fn run(ctx: &Ctx, local_dir: &str, remote_dir: &str) -> Result<()> {
    let root = Path::new(local_dir);
    let md = std::fs::metadata(root).map_err(|e| Error::local(root, e))?;
    if !md.is_dir() {
        return Err(Error::Usage(format!("{local_dir}: not a directory")));
    }
    // The local walk runs while the server is reached and lists its side.
    let (local, remote) = std::thread::scope(|s| {
        let walker = s.spawn(|| {
            let clock = Instant::now();
            let local = local::walk(root, &ctx.filter);
            if let Ok(l) = &local {
                log::info!("local walk: {} entries in {:?}", l.len(), clock.elapsed());
            }
            (local, DigestCache::open(root, ctx.use_cache))
        });
        let remote = connect_and_list(ctx, remote_dir);
        let local = walker
            .join()
            .map_err(|_| Error::Other("the local walk failed".into()));
        (local, remote)
    });
    let (local, mut cache) = local?;
    let local = local?;
    let (mut client, remote) = remote?;
    let exists = remote.is_some();
    let remote = remote.unwrap_or_default();
    let plan = plan(ctx, &local, &remote, exists, remote_dir, &mut cache);
    let cache = Mutex::new(cache);
    let clock = Instant::now();
    run_plan(ctx, &mut client, plan, &cache)?;
    client.quit();
    log::info!("transfers in {:?}", clock.elapsed());
    let cache = cache.into_inner().unwrap_or_else(|p| p.into_inner());
    if !ctx.dry_run {
        let clock = Instant::now();
        cache.save();
        log::info!("digest cache saved in {:?}", clock.elapsed());
    }
    Ok(())
}

/// A logged-in connection and the remote tree under `remote_dir` (None
/// when it does not exist yet), by relative path.
fn connect_and_list(
    ctx: &Ctx,
    remote_dir: &str,
) -> Result<(Client, Option<BTreeMap<String, TreeEntry>>)> {
    let clock = Instant::now();
    let mut client = ctx.connect()?;
    log::info!("connected and logged in in {:?}", clock.elapsed());
    if let Some(e) = client.stat(remote_dir)? {
        if e.kind != EntryKind::Dir {
            return Err(Error::Usage(format!(
                "{remote_dir}: not a directory on the server"
            )));
        }
    }
    let clock = Instant::now();
    let remote: Option<BTreeMap<String, TreeEntry>> = remote_tree(&mut client, remote_dir)?
        .map(|t| t.into_iter().map(|e| (e.path.clone(), e)).collect());
    log::info!(
        "remote tree: {} entries in {:?}",
        remote.as_ref().map_or(0, BTreeMap::len),
        clock.elapsed()
    );
    Ok((client, remote))
}

fn plan(
    ctx: &Ctx,
    local: &BTreeMap<String, LocalEntry>,
    remote: &BTreeMap<String, TreeEntry>,
    exists: bool,
    dir: &str,
    cache: &mut DigestCache,
) -> Plan {
    let mut p = Plan::default();
    if !exists {
        let req = Request::Mkdir {
            path: dir.to_string(),
            parents: true,
        };
        p.mkdirs.push((dir.to_string(), req));
    }
    let clock = Instant::now();
    let both = local.iter().filter_map(|(rel, l)| {
        let r = remote.get(rel)?;
        (!l.is_dir() && r.kind == EntryKind::File && r.size == l.md.len())
            .then_some((rel.as_str(), l))
    });
    let mut digests = local_digests(cache, both.collect());
    log::info!("compared digests in {:?}", clock.elapsed());
    let mut summary = ctx.summary();
    for (rel, l) in local {
        let path = remote_path(dir, rel);
        let theirs = remote.get(rel);
        if l.is_dir() {
            if theirs.is_none_or(|r| r.kind != EntryKind::Dir) {
                let req = Request::Mkdir {
                    path: path.clone(),
                    parents: true,
                };
                p.mkdirs.push((rel.clone(), req));
            }
            continue;
        }
        let same = match (digests.remove(rel.as_str()), theirs) {
            (Some(Ok(ours)), Some(r)) => r
                .sha256
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(&ours)),
            (Some(Err(e)), _) => {
                summary.fail(rel, Error::local(&l.path, e));
                continue;
            }
            _ => false,
        };
        match (same, theirs) {
            (true, Some(r)) if r.mtime != l.mtime() => {
                let req = Request::SetMtime {
                    path,
                    mtime: l.mtime(),
                };
                p.touches.push((rel.clone(), req));
            }
            (true, _) => summary.unchanged += 1,
            (false, _) => p.sends.push(Send {
                local: l.path.clone(),
                remote: path,
                rel: rel.clone(),
                md: l.md.clone(),
            }),
        }
    }
    if ctx.delete {
        let mut gone: Option<String> = None;
        for rel in remote.keys() {
            if gone
                .as_ref()
                .is_some_and(|g| rel.starts_with(&format!("{g}/")))
            {
                continue; // inside a directory already on the list
            }
            if local.contains_key(rel) || ctx.filter.skips_path(rel) {
                continue;
            }
            let req = Request::Rm {
                path: remote_path(dir, rel),
                recursive: true,
                force: true,
            };
            p.deletes.push((rel.clone(), req));
            gone = Some(rel.clone());
        }
    }
    p
}

/// Runs pipelined requests, counting and reporting each.
fn steps(
    ctx: &Ctx,
    client: &mut Client,
    list: &[(String, Request)],
    verb: &str,
    count: fn(&mut super::Summary),
) -> Result<()> {
    for (rel, _) in list {
        ctx.say(|| format!("{verb} {rel}"));
    }
    if ctx.dry_run {
        let mut s = ctx.summary();
        list.iter().for_each(|_| count(&mut s));
        return Ok(());
    }
    let reqs: Vec<Request> = list.iter().map(|(_, r)| r.clone()).collect();
    let replies = pipeline(client, &reqs)?;
    let mut s = ctx.summary();
    for ((rel, _), reply) in list.iter().zip(replies) {
        if reply.is_success() {
            count(&mut s);
        } else {
            s.fail(rel, Error::remote(&reply));
        }
    }
    Ok(())
}

fn run_plan(ctx: &Ctx, client: &mut Client, plan: Plan, cache: &Mutex<DigestCache>) -> Result<()> {
    steps(ctx, client, &plan.mkdirs, "mkdir", |_| {})?;
    if ctx.dry_run {
        let mut s = ctx.summary();
        for f in &plan.sends {
            println!("send {} ({} bytes)", f.rel, f.md.len());
            s.sent += 1;
            s.bytes += f.md.len();
        }
    } else if !plan.sends.is_empty() {
        super::parallel(ctx, &plan.sends, 64, &|c, batch| {
            send_batch(ctx, c, batch, cache)
        })?;
        // This connection sat idle while the workers sent: a long run may
        // have passed the server's idle timeout. A fresh one for the rest.
        let idle = std::mem::replace(client, ctx.connect()?);
        idle.quit();
    }
    steps(ctx, client, &plan.touches, "set time", |s| s.touched += 1)?;
    steps(ctx, client, &plan.deletes, "delete", |s| s.deleted += 1)
}

/// Uploads a batch pipelined; after a lost connection, reconnects and
/// goes on (resuming the file that was cut off) up to `--retries` times.
fn send_batch(
    ctx: &Ctx,
    client: &mut Client,
    batch: &[Send],
    cache: &Mutex<DigestCache>,
) -> Result<()> {
    let opts = PutOpts {
        mkdirs: false,
        resume: true,
        keep_mtime: true,
    };
    let mut done = 0;
    let mut attempt = 0;
    loop {
        // Before any of the batch is read: the cache's racy check.
        let read_from = super::cache::now_ns();
        let rest = &batch[done..];
        let items: Vec<(PathBuf, String)> = rest
            .iter()
            .map(|f| (f.local.clone(), f.remote.clone()))
            .collect();
        let result = put_files(client, &items, opts, &mut |k, r| {
            done = done.max(batch.len() - rest.len() + k + 1);
            let f = &rest[k];
            match r {
                Ok(d) => {
                    ctx.say(|| format!("sent {} ({} bytes)", f.rel, d.size));
                    cache
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .record(&f.rel, &f.md, &d.sha256, read_from);
                    let mut s = ctx.summary();
                    s.sent += 1;
                    s.bytes += d.bytes;
                }
                Err(e) => ctx.summary().fail(&f.rel, e),
            }
        });
        match result {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < ctx.opts.retries => {
                attempt += 1;
                eprintln!(
                    "miniftp: {e}; reconnecting ({attempt}/{})",
                    ctx.opts.retries
                );
                *client = ctx.connect()?;
            }
            Err(e) => return Err(e),
        }
    }
}
