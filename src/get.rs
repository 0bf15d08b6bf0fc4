//! `miniftp get [OPTIONS] REMOTE... LOCAL`: one-shot downloads. Several
//! files and globs (matched on the server's listing), directories with -r,
//! `-` for standard output, resume with -c. Every file is verified against
//! the server's SHA-256 before it appears under its name.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::GetArgs;
use crate::client::progress::Progress;
use crate::client::transfer::{get_file, get_stream};
use crate::client::{open, with_retries, Client, ConnectOpts, Login};
use crate::error::{Error, Result};
use crate::proto::EntryKind;
use crate::put::{describe, join_remote};

pub fn run(args: GetArgs) -> Result<()> {
    crate::logging::init_client(args.opts.verbose);
    let (local, remotes) = args.paths.split_last().expect("clap requires two paths");
    let mut opts = args.connect.opts();
    opts.throttle = crate::sync::throttle(args.opts.bwlimit.as_deref())?;
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let mut client = open(&opts, &login)?;
    let mut sources = Vec::new();
    for r in remotes {
        sources.extend(expand_remote(&mut client, r)?);
    }
    if local == "-" {
        let [(remote, kind)] = sources.as_slice() else {
            return Err(Error::Usage(
                "`-` (standard output) takes exactly one remote file".into(),
            ));
        };
        if *kind == EntryKind::Dir {
            return Err(Error::Usage(format!("{remote}: is a directory")));
        }
        let started = Instant::now();
        let done = get_stream(
            &mut client,
            remote,
            &mut std::io::stdout(),
            Path::new("standard output"),
            &Progress::hidden(),
        )?;
        if args.opts.verbose {
            eprintln!("{}", describe("get", remote, "-", &done, started));
        }
        client.quit();
        return Ok(());
    }
    let local = PathBuf::from(local);
    let local_is_dir = sources.len() > 1
        || local.is_dir()
        || local.to_string_lossy().ends_with('/')
        || sources.iter().any(|(_, k)| *k == EntryKind::Dir);
    let mut plan = Vec::new();
    for (remote, kind) in &sources {
        let name = remote
            .rsplit('/')
            .find(|s| !s.is_empty())
            .unwrap_or("download");
        let target = if local_is_dir {
            local.join(name)
        } else {
            local.clone()
        };
        if *kind == EntryKind::Dir {
            if !args.opts.recursive {
                return Err(Error::Usage(format!("{remote}: is a directory (use -r)")));
            }
            walk_remote(&mut client, remote, &target, &mut plan)?;
        } else {
            plan.push((remote.clone(), Some(target)));
        }
    }
    if local_is_dir {
        std::fs::create_dir_all(&local).map_err(|e| Error::local(&local, e))?;
    }
    let mut first_error: Option<Error> = None;
    for (remote, target) in plan {
        let result = match target {
            None => Ok(()),
            Some(t) if remote.is_empty() => {
                std::fs::create_dir_all(&t).map_err(|e| Error::local(&t, e))
            }
            Some(t) => download_with_retry(&args, &opts, &login, &mut client, &remote, &t),
        };
        if let Err(e) = result {
            eprintln!("miniftp: {e}");
            first_error.get_or_insert(e);
        }
    }
    client.quit();
    Error::after_all(first_error, "some transfers failed (see above)")
}

fn download_with_retry(
    args: &GetArgs,
    opts: &ConnectOpts,
    login: &Login,
    client: &mut Client,
    remote: &str,
    local: &Path,
) -> Result<()> {
    with_retries(opts, login, client, args.opts.resume, |client, resume| {
        let started = Instant::now();
        let size = client.stat(remote)?.map(|e| e.size);
        let progress = Progress::new(!args.opts.quiet, size, remote);
        let result = get_file(client, remote, local, resume, None, &progress);
        progress.finish();
        let done = result?;
        if args.opts.verbose {
            eprintln!(
                "{}",
                describe("get", remote, &local.display().to_string(), &done, started)
            );
        }
        Ok(())
    })
}

/// A remote argument as (path, type) pairs: a glob is matched against its
/// directory's listing; a plain path must exist.
pub fn expand_remote(client: &mut Client, pattern: &str) -> Result<Vec<(String, EntryKind)>> {
    if !pattern.contains(['*', '?', '[']) {
        return match client.stat(pattern)? {
            Some(e) => Ok(vec![(pattern.to_string(), e.kind)]),
            None => Err(Error::Remote {
                code: crate::proto::Status::NotFound.code(),
                msg: format!("{pattern}: no such file or directory"),
            }),
        };
    }
    let (dir, name_pattern) = match pattern.rfind('/') {
        Some(i) => (&pattern[..i.max(1)], &pattern[i + 1..]),
        None => (".", pattern),
    };
    let matcher = glob::Pattern::new(name_pattern)
        .map_err(|e| Error::Usage(format!("bad pattern {pattern:?}: {e}")))?;
    let mut out: Vec<(String, EntryKind)> = client
        .list(Some(dir))?
        .into_iter()
        .filter(|e| {
            let usable = !e.escaped && plain_name(&e.name);
            if !usable && matcher.matches(&e.name) {
                eprintln!(
                    "miniftp: skipping {dir}/{:?} (not a plain UTF-8 file name)",
                    e.name
                );
            }
            usable && matcher.matches(&e.name)
        })
        .map(|e| {
            let path = if dir == "." {
                e.name.clone()
            } else {
                join_remote(dir, &e.name)
            };
            (path, e.kind)
        })
        .collect();
    if out.is_empty() {
        return Err(Error::Remote {
            code: crate::proto::Status::NotFound.code(),
            msg: format!("{pattern}: no match"),
        });
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Plans a recursive download: ("", dir) entries create local
/// directories, (remote, file) entries download.
pub(crate) fn walk_remote(
    client: &mut Client,
    remote: &str,
    local: &Path,
    plan: &mut Vec<(String, Option<PathBuf>)>,
) -> Result<()> {
    let mut stack = vec![(remote.to_string(), local.to_path_buf())];
    while let Some((dir, target)) = stack.pop() {
        plan.push((String::new(), Some(target.clone())));
        for e in client.list(Some(&dir))? {
            if e.escaped {
                eprintln!("miniftp: skipping {dir}/{} (name is not UTF-8)", e.name);
                continue;
            }
            if !plain_name(&e.name) {
                // A name a server should never send: never let it steer a
                // local path out of the destination.
                eprintln!(
                    "miniftp: skipping {dir}/{:?} (not a plain file name)",
                    e.name
                );
                continue;
            }
            let child = join_remote(&dir, &e.name);
            match e.kind {
                EntryKind::Dir => stack.push((child, target.join(&e.name))),
                EntryKind::File => plan.push((child, Some(target.join(&e.name)))),
                _ => {}
            }
        }
    }
    Ok(())
}

/// A single path component: safe to join onto a local directory.
fn plain_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\0'])
}
