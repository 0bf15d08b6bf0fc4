//! `miniftp sync up LOCAL_DIR REMOTE_DIR` and `sync down REMOTE_DIR
//! LOCAL_DIR`: make the destination's files those of the source, moving
//! only files whose SHA-256 differs. The server's digests come in bulk
//! (`tree`); local digests come from the digest cache (`cache.rs`) or are
//! computed; modification times are kept both ways. Uploads stay atomic
//! and verified (each file is replaced whole or not at all), so a sync
//! stopped at any point leaves every file old or new, never torn, and the
//! next run finishes the job (large files resume).

mod cache;
mod down;
mod filter;
mod local;
mod up;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::cli::{Direction, SyncArgs};
use crate::client::throttle::Throttle;
use crate::client::{open, Client, ConnectOpts, Login};
use crate::error::{Error, Result};
use crate::proto::{Reply, Request, TreeEntry};
use crate::size::human;

pub use filter::Filter;

/// The local digests of `files` (relative path and entry), by path: from
/// the digest cache or hashed now, in parallel. Only files both sides
/// have at the same size are asked for: any other differs without a
/// digest.
pub fn local_digests<'a>(
    cache: &mut cache::DigestCache,
    files: Vec<(&'a str, &'a local::LocalEntry)>,
) -> HashMap<&'a str, std::io::Result<String>> {
    let got = cache.digests(&files);
    let c = cache.counts;
    log::info!(
        "local digests: {} from the cache, {} hashed ({})",
        c.reused,
        c.hashed,
        human(c.hashed_bytes)
    );
    files.into_iter().map(|(rel, _)| rel).zip(got).collect()
}

/// What a run did (or, with --dry-run, would do).
#[derive(Default)]
pub struct Summary {
    pub sent: u64,
    pub bytes: u64,
    pub unchanged: u64,
    pub touched: u64,
    pub deleted: u64,
    pub failed: u64,
    /// The first failure, for the exit code.
    pub first_error: Option<Error>,
}

impl Summary {
    /// Reports a failure on one path and carries on.
    pub fn fail(&mut self, what: &str, e: Error) {
        eprintln!("miniftp: {what}: {e}");
        self.failed += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn line(&self, dir: &str, dry: bool) -> String {
        let verb = if dir == "up" { "sent" } else { "received" };
        let mut s = format!(
            "sync {dir}: {} files {verb} ({}), {} unchanged, {} times set, {} deleted",
            self.sent,
            human(self.bytes),
            self.unchanged,
            self.touched,
            self.deleted
        );
        if self.failed > 0 {
            s.push_str(&format!(", {} failed", self.failed));
        }
        if self.sent == 0 && self.touched == 0 && self.deleted == 0 && self.failed == 0 {
            s.push_str(": nothing to do");
        }
        if dry {
            s.push_str(" (dry run: nothing was changed)");
        }
        s
    }
}

/// What every part of a run needs.
pub struct Ctx {
    pub opts: ConnectOpts,
    pub login: Login,
    pub jobs: usize,
    pub dry_run: bool,
    pub delete: bool,
    pub verbose: bool,
    /// False with --no-cache: every local file is hashed.
    pub use_cache: bool,
    pub filter: Filter,
    pub summary: Mutex<Summary>,
}

impl Ctx {
    /// A new logged-in connection with the run's throttle.
    pub fn connect(&self) -> Result<Client> {
        open(&self.opts, &self.login)
    }

    pub fn summary(&self) -> std::sync::MutexGuard<'_, Summary> {
        self.summary.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A line about one planned or done step: with --dry-run always (it is
    /// the output), else with -v.
    pub fn say(&self, line: impl FnOnce() -> String) {
        if self.dry_run || self.verbose {
            println!("{}", line());
        }
    }
}

pub fn run(args: SyncArgs) -> Result<()> {
    crate::logging::init_client(args.verbose);
    let mut opts = args.connect.opts();
    opts.throttle = throttle(args.bwlimit.as_deref())?;
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let ctx = Ctx {
        opts,
        login,
        jobs: args.jobs.clamp(1, 64),
        dry_run: args.dry_run,
        delete: args.delete,
        verbose: args.verbose,
        use_cache: !args.no_cache,
        filter: Filter::new(&args.exclude, &args.include)?,
        summary: Mutex::new(Summary::default()),
    };
    let (word, result) = match args.direction {
        Direction::Up => ("up", up::run(&ctx, &args.source, &args.dest)),
        Direction::Down => ("down", down::run(&ctx, &args.source, &args.dest)),
    };
    let mut summary = ctx.summary.into_inner().unwrap_or_else(|p| p.into_inner());
    if let Err(e) = result {
        return Err(match summary.first_error.take() {
            Some(first) => {
                eprintln!("miniftp: {e}");
                first
            }
            None => e,
        });
    }
    if !args.quiet {
        println!("{}", summary.line(word, args.dry_run));
    }
    Error::after_all(
        summary.first_error.take(),
        "some files were not synced (see above)",
    )
}

/// The throttle for `--bwlimit RATE`, if given.
pub fn throttle(rate: Option<&str>) -> Result<Option<Arc<Throttle>>> {
    rate.map(|r| parse_rate(r).map(|n| Arc::new(Throttle::new(n))))
        .transpose()
}

/// `--bwlimit 5M`: bytes per second, with the sizes' suffixes.
pub fn parse_rate(text: &str) -> Result<u64> {
    let rate = crate::size::parse_size(text.trim_end_matches("/s"))
        .map_err(|e| Error::Usage(format!("--bwlimit: {e}")))?;
    if rate == 0 {
        return Err(Error::Usage(
            "--bwlimit: the rate must be more than 0".into(),
        ));
    }
    Ok(rate)
}

/// The remote tree under `dir`, by relative path; None when `dir` does
/// not exist.
pub fn remote_tree(client: &mut Client, dir: &str) -> Result<Option<Vec<TreeEntry>>> {
    match client.tree(dir, true) {
        Ok(t) => Ok(Some(t)),
        Err(Error::Remote { code, .. }) if code == crate::proto::Status::NotFound.code() => {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Sends `reqs` pipelined (a window at a time) and returns the replies in
/// order: one round trip per window, not per request.
pub fn pipeline(client: &mut Client, reqs: &[Request]) -> Result<Vec<Reply>> {
    const WINDOW: usize = 128;
    let mut out = Vec::with_capacity(reqs.len());
    for chunk in reqs.chunks(WINDOW) {
        for r in chunk {
            client.send(r)?;
        }
        for _ in chunk {
            out.push(client.recv()?);
        }
    }
    Ok(out)
}

/// The remote path of `rel` under `dir`.
pub fn remote_path(dir: &str, rel: &str) -> String {
    crate::put::join_remote(dir, rel)
}

/// Splits `items` over `jobs` worker threads, each with its own
/// connection, taking work from one queue in order.
pub fn parallel<T: Sync>(
    ctx: &Ctx,
    items: &[T],
    batch: usize,
    work: &(dyn Fn(&mut Client, &[T]) -> Result<()> + Sync),
) -> Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let next = Mutex::new(0usize);
    let jobs = ctx.jobs.min(items.len().div_ceil(batch)).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    let mut client = ctx.connect()?;
                    loop {
                        let start = {
                            let mut n = next.lock().unwrap_or_else(|p| p.into_inner());
                            let start = *n;
                            *n = (start + batch).min(items.len());
                            start
                        };
                        if start >= items.len() {
                            client.quit();
                            return Ok(());
                        }
                        let end = (start + batch).min(items.len());
                        work(&mut client, &items[start..end])?;
                    }
                })
            })
            .collect();
        let mut first = Ok(());
        for w in workers {
            let r = w
                .join()
                .unwrap_or_else(|_| Err(Error::Other("a sync worker failed".into())));
            if first.is_ok() {
                first = r;
            }
        }
        first
    })
}
