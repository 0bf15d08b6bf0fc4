//! `miniftp put [OPTIONS] LOCAL... REMOTE`: one-shot uploads for scripts and
//! cron. Several files and globs, directories with -r, `-` for standard
//! input, resume with -c, and an exit code per kind of failure.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::cli::PutArgs;
use crate::client::progress::Progress;
use crate::client::transfer::{put_file, put_files, put_stream, Done, PutOpts};
use crate::client::{open, with_retries, Client, ConnectOpts, Login};
use crate::error::{Error, Result};
use crate::proto::{EntryKind, Request};

pub fn run(args: PutArgs) -> Result<()> {
    crate::logging::init_client(args.opts.verbose);
    let (remote, locals) = args.paths.split_last().expect("clap requires two paths");
    let stdin = locals.iter().any(|l| l == "-");
    if stdin && locals.len() > 1 {
        return Err(Error::Usage(
            "`-` (standard input) must be the only LOCAL".into(),
        ));
    }
    let mut opts = args.connect.opts();
    opts.throttle = crate::sync::throttle(args.opts.bwlimit.as_deref())?;
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let mut client = open(&opts, &login)?;
    if stdin {
        let started = Instant::now();
        let progress = Progress::new(!args.opts.quiet, None, remote);
        let done = put_stream(
            &mut client,
            &mut std::io::stdin().lock(),
            remote,
            args.parents,
            &progress,
        );
        progress.finish();
        report(&args, "-", remote, &done?, started);
        client.quit();
        return Ok(());
    }
    let files = expand_locals(locals)?;
    let remote_is_dir = files.len() > 1
        || remote.ends_with('/')
        || files.iter().any(|f| f.is_dir())
        || matches!(client.stat(remote)?, Some(e) if e.kind == EntryKind::Dir);
    let mut plan = Vec::new();
    for local in &files {
        let name = base_name(local)?;
        let target = if remote_is_dir {
            join_remote(remote, &name)
        } else {
            remote.to_string()
        };
        if local.is_dir() {
            if !args.opts.recursive {
                return Err(Error::Usage(format!(
                    "{}: is a directory (use -r)",
                    local.display()
                )));
            }
            walk_local(local, &target, &mut plan)?;
        } else {
            plan.push(Item::File(local.clone(), target));
        }
    }
    if remote_is_dir && args.parents {
        client.call(&Request::Mkdir {
            path: remote.to_string(),
            parents: true,
        })?;
    }
    let mut first_error: Option<Error> = None;
    let mut fail = |e: Error| {
        eprintln!("miniftp: {e}");
        first_error.get_or_insert(e);
    };
    let mut i = 0;
    while i < plan.len() {
        // A run of files goes out pipelined on one connection (fresh
        // uploads only: resuming asks the server about each file first).
        let run: Vec<(PathBuf, String)> = plan[i..]
            .iter()
            .map_while(|item| match item {
                Item::File(l, t) => Some((l.clone(), t.clone())),
                Item::Dir(_) => None,
            })
            .collect();
        if run.len() > 1 && !args.opts.resume {
            let started = Instant::now();
            let mut confirmed = 0;
            let put_opts = PutOpts {
                mkdirs: args.parents,
                ..PutOpts::default()
            };
            let result = put_files(&mut client, &run, put_opts, &mut |k, r| {
                confirmed = k + 1;
                match r {
                    Ok(done) => report(
                        &args,
                        &run[k].0.display().to_string(),
                        &run[k].1,
                        &done,
                        started,
                    ),
                    Err(e) => fail(e),
                }
            });
            if let Err(e) = result {
                if !e.is_transient() || opts.retries == 0 {
                    fail(e);
                    break;
                }
                // The connection dropped mid-run: reconnect and finish the
                // rest one by one, resuming the file that was cut off.
                eprintln!("miniftp: {e}; reconnecting");
                client = match open(&opts, &login) {
                    Ok(c) => c,
                    Err(e) => {
                        fail(e);
                        break;
                    }
                };
                for (local, target) in &run[confirmed..] {
                    if let Err(e) =
                        upload_with_retry(&args, &opts, &login, &mut client, local, target, true)
                    {
                        fail(e);
                    }
                }
            }
            i += run.len();
            continue;
        }
        let result = match &plan[i] {
            Item::Dir(target) => client
                .call(&Request::Mkdir {
                    path: target.clone(),
                    parents: true,
                })
                .map(|_| ()),
            Item::File(local, target) => upload_with_retry(
                &args,
                &opts,
                &login,
                &mut client,
                local,
                target,
                args.opts.resume,
            ),
        };
        if let Err(e) = result {
            fail(e);
        }
        i += 1;
    }
    client.quit();
    Error::after_all(first_error, "some transfers failed (see above)")
}

pub(crate) enum Item {
    Dir(String),
    File(PathBuf, String),
}

fn upload_with_retry(
    args: &PutArgs,
    opts: &ConnectOpts,
    login: &Login,
    client: &mut Client,
    local: &Path,
    target: &str,
    resume: bool,
) -> Result<()> {
    with_retries(opts, login, client, resume, |client, resume| {
        let started = Instant::now();
        let size = std::fs::metadata(local).map(|m| m.len()).ok();
        let progress = Progress::new(!args.opts.quiet, size, target);
        let opts = PutOpts {
            mkdirs: args.parents,
            resume,
            keep_mtime: false,
        };
        let result = put_file(client, local, target, opts, &progress);
        progress.finish();
        let done = result?;
        report(args, &local.display().to_string(), target, &done, started);
        Ok(())
    })
}

fn report(args: &PutArgs, from: &str, to: &str, done: &Done, started: Instant) {
    if args.opts.verbose {
        eprintln!("{}", describe("put", from, to, done, started));
    }
}

/// One line about a finished transfer, for --verbose.
pub fn describe(op: &str, from: &str, to: &str, done: &Done, started: Instant) -> String {
    let secs = started.elapsed().as_secs_f64().max(1e-6);
    let resumed = if done.offset > 0 {
        format!(" (resumed at {})", crate::size::human(done.offset))
    } else {
        String::new()
    };
    format!(
        "{op} {from} -> {to}: {} in {secs:.2}s ({}/s){resumed}, sha256 {}",
        crate::size::human(done.size),
        crate::size::human((done.bytes as f64 / secs) as u64),
        done.sha256
    )
}

/// Expands globs (a pattern that matches nothing is an error, as in sh with
/// failglob); a literal existing path is taken as is.
pub(crate) fn expand_locals(locals: &[String]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for l in locals {
        let p = PathBuf::from(l);
        if p.exists() {
            out.push(p);
            continue;
        }
        if !l.contains(['*', '?', '[']) {
            return Err(Error::local(p, std::io::ErrorKind::NotFound.into()));
        }
        let matches: Vec<PathBuf> = glob::glob(l)
            .map_err(|e| Error::Usage(format!("bad pattern {l:?}: {e}")))?
            .filter_map(|r| r.ok())
            .collect();
        if matches.is_empty() {
            return Err(Error::local(p, std::io::ErrorKind::NotFound.into()));
        }
        out.extend(matches);
    }
    Ok(out)
}

pub(crate) fn base_name(p: &Path) -> Result<String> {
    let name = match p.file_name() {
        Some(n) => n.to_owned(),
        None => std::fs::canonicalize(p)
            .ok()
            .and_then(|c| c.file_name().map(|n| n.to_owned()))
            .ok_or_else(|| Error::Usage(format!("{}: no file name", p.display())))?,
    };
    name.to_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Usage(format!("{}: name is not UTF-8", p.display())))
}

pub fn join_remote(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Plans a recursive upload: directories first, then their files.
pub(crate) fn walk_local(root: &Path, target: &str, plan: &mut Vec<Item>) -> Result<()> {
    let mut stack = vec![(root.to_path_buf(), target.to_string())];
    while let Some((dir, remote)) = stack.pop() {
        plan.push(Item::Dir(remote.clone()));
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .map_err(|e| Error::local(&dir, e))?
            .filter_map(|e| e.ok())
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let path = e.path();
            let name = base_name(&path)?;
            let ft = e.file_type().map_err(|err| Error::local(&path, err))?;
            if ft.is_dir() {
                stack.push((path, join_remote(&remote, &name)));
            } else if ft.is_file() {
                plan.push(Item::File(path, join_remote(&remote, &name)));
            }
        }
    }
    Ok(())
}
