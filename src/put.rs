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
    let client = open(&opts, &login)?;
    let mut run = Run {
        args: &args,
        opts: &opts,
        login: &login,
        client,
        first_error: None,
    };
    if stdin {
        return run.upload_stdin(remote);
    }
    let plan = run.plan(locals, remote)?;
    run.upload(&plan);
    run.client.quit();
    Error::after_all(run.first_error, "some transfers failed (see above)")
}

/// One `miniftp put`: its connection, and the first failure (later ones
/// are printed, and the run goes on).
struct Run<'a> {
    args: &'a PutArgs,
    opts: &'a ConnectOpts,
    login: &'a Login,
    client: Client,
    first_error: Option<Error>,
}

impl Run<'_> {
    fn fail(&mut self, e: Error) {
        eprintln!("miniftp: {e}");
        self.first_error.get_or_insert(e);
    }

    /// `put - REMOTE`: standard input to one file.
    fn upload_stdin(mut self, remote: &str) -> Result<()> {
        let started = Instant::now();
        let progress = Progress::new(!self.args.opts.quiet, None, remote);
        let stdin = &mut std::io::stdin().lock();
        let done = put_stream(
            &mut self.client,
            stdin,
            remote,
            self.args.parents,
            &progress,
        );
        progress.finish();
        report(self.args, "-", remote, &done?, started);
        self.client.quit();
        Ok(())
    }

    /// What to upload where: directories (to make) and files, in order.
    fn plan(&mut self, locals: &[String], remote: &str) -> Result<Vec<Item>> {
        let files = expand_locals(locals)?;
        let remote_is_dir = files.len() > 1
            || remote.ends_with('/')
            || files.iter().any(|f| f.is_dir())
            || matches!(self.client.stat(remote)?, Some(e) if e.kind == EntryKind::Dir);
        let mut plan = Vec::new();
        for local in &files {
            let name = base_name(local)?;
            let target = if remote_is_dir {
                join_remote(remote, &name)
            } else {
                remote.to_string()
            };
            if !local.is_dir() {
                plan.push(Item::File(local.clone(), target));
            } else if self.args.opts.recursive {
                walk_local(local, &target, &mut plan)?;
            } else {
                let shown = local.display();
                return Err(Error::Usage(format!("{shown}: is a directory (use -r)")));
            }
        }
        if remote_is_dir && self.args.parents {
            self.client.call(&Request::Mkdir {
                path: remote.to_string(),
                parents: true,
            })?;
        }
        Ok(plan)
    }

    /// Carries out the plan: runs of plain files pipelined on one
    /// connection, the rest one at a time.
    fn upload(&mut self, plan: &[Item]) {
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
            if run.len() > 1 && !self.args.opts.resume {
                if !self.pipelined(&run) {
                    return;
                }
                i += run.len();
                continue;
            }
            let result = match &plan[i] {
                Item::Dir(target) => self
                    .client
                    .call(&Request::Mkdir {
                        path: target.clone(),
                        parents: true,
                    })
                    .map(|_| ()),
                Item::File(local, target) => self.one(local, target, self.args.opts.resume),
            };
            if let Err(e) = result {
                self.fail(e);
            }
            i += 1;
        }
    }

    /// A run of fresh uploads, pipelined; false when the run must stop.
    fn pipelined(&mut self, run: &[(PathBuf, String)]) -> bool {
        let started = Instant::now();
        let mut confirmed = 0;
        let put_opts = PutOpts {
            mkdirs: self.args.parents,
            ..PutOpts::default()
        };
        let args = self.args;
        let mut errors = Vec::new();
        let result = put_files(&mut self.client, run, put_opts, &mut |k, r| {
            confirmed = k + 1;
            match r {
                Ok(done) => {
                    let from = run[k].0.display().to_string();
                    report(args, &from, &run[k].1, &done, started)
                }
                Err(e) => errors.push(e),
            }
        });
        for e in errors {
            self.fail(e);
        }
        let Err(e) = result else {
            return true;
        };
        if !e.is_transient() || self.opts.retries == 0 {
            self.fail(e);
            return false;
        }
        // The connection dropped mid-run: reconnect and finish the rest one
        // by one, resuming the file that was cut off.
        eprintln!("miniftp: {e}; reconnecting");
        self.client = match open(self.opts, self.login) {
            Ok(c) => c,
            Err(e) => {
                self.fail(e);
                return false;
            }
        };
        for (local, target) in &run[confirmed..] {
            if let Err(e) = self.one(local, target, true) {
                self.fail(e);
            }
        }
        true
    }

    fn one(&mut self, local: &Path, target: &str, resume: bool) -> Result<()> {
        upload_with_retry(
            self.args,
            self.opts,
            self.login,
            &mut self.client,
            local,
            target,
            resume,
        )
    }
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
