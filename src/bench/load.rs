//! The load generator behind `make bench`: many clients at once over the
//! shared protocol module, each on its own thread, released together by a
//! barrier. While they run, a separate logged-in "probe" client times `pwd`
//! round trips, so the table can show what a bystander feels.
//!
//! Prints one JSON object with the results on stdout.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::client::progress::Progress;
use crate::client::transfer::{get_stream, put_file};
use crate::client::{Client, Timeouts};
use crate::error::{Error, Result};
use crate::proto::{Password, Request};
use crate::tls::client::Trust;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Connect and log in, then quit.
    Logins,
    /// Each client downloads `--path` (hashed, verified, discarded).
    Get,
    /// Each client uploads `--file` to `load/cN` (verified).
    Put,
    /// Open connections (logged in with --login) and hold them until
    /// standard input closes.
    Idle,
}

#[derive(Args, Debug, Clone)]
pub struct LoadArgs {
    #[arg(value_enum)]
    pub mode: Mode,
    #[arg(long)]
    pub server: String,
    #[arg(long)]
    pub user: String,
    /// Password, read from this environment variable.
    #[arg(long, default_value = "MINIFTP_PASSWORD")]
    pub password_env: String,
    #[arg(long, default_value_t = 200)]
    pub clients: usize,
    /// Remote file for `get`.
    #[arg(long)]
    pub path: Option<String>,
    /// Local file for `put`.
    #[arg(long)]
    pub file: Option<std::path::PathBuf>,
    /// `idle`: log the connections in.
    #[arg(long)]
    pub login: bool,
    /// Run a `pwd` latency probe during the load.
    #[arg(long)]
    pub probe: bool,
    /// Speak TLS, trusting this fingerprint (plain TCP without it).
    #[arg(long)]
    pub fingerprint: Option<String>,
}

impl LoadArgs {
    fn trust(&self) -> Result<Option<Trust>> {
        let Some(f) = &self.fingerprint else {
            return Ok(None);
        };
        let pin = crate::tls::parse_fingerprint(f)
            .ok_or_else(|| Error::Usage(format!("bad fingerprint {f:?}")))?;
        Ok(Some(Trust {
            pin: Some(pin),
            ca_file: None,
            known: std::path::PathBuf::new(),
        }))
    }
}

#[derive(Serialize, Default)]
pub struct LoadResult {
    pub ok: usize,
    pub failed: usize,
    pub wall_secs: f64,
    pub probe_samples: usize,
    pub probe_p50_ms: f64,
    pub probe_p99_ms: f64,
    pub probe_max_ms: f64,
    pub first_error: Option<String>,
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(30),
        io: Duration::from_secs(120),
    }
}

pub fn run(args: LoadArgs) -> Result<()> {
    raise_fd_limit();
    crate::client::transfer::INLINE_HASHING.store(true, std::sync::atomic::Ordering::Relaxed);
    let password = Password(
        std::env::var(&args.password_env)
            .map_err(|_| Error::Usage(format!("set {} to the password", args.password_env)))?,
    );
    let trust = args.trust()?;
    if let Mode::Idle = args.mode {
        return idle(&args, &password, trust.as_ref());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let samples = Arc::new(Mutex::new(Vec::<f64>::new()));
    let probe = if args.probe {
        Some(probe(&args, &password, trust.as_ref(), &stop, &samples)?)
    } else {
        None
    };
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let handles: Vec<_> = (0..args.clients)
        .map(|i| {
            let one = OneClient {
                i,
                args: args.clone(),
                password: password.clone(),
                trust: trust.clone(),
            };
            let (barrier, errors) = (Arc::clone(&barrier), Arc::clone(&errors));
            std::thread::spawn(move || one.run(&barrier, &errors))
        })
        .collect();
    barrier.wait();
    let start = Instant::now();
    for h in handles {
        let _ = h.join();
    }
    let wall = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    if let Some(p) = probe {
        let _ = p.join();
    }
    let errors = errors.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let samples = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
    summarise(&args, &errors, samples, wall)
}

/// The idle client that measures `pwd` round trips while the load runs.
fn probe(
    args: &LoadArgs,
    password: &Password,
    trust: Option<&Trust>,
    stop: &Arc<AtomicBool>,
    samples: &Arc<Mutex<Vec<f64>>>,
) -> Result<std::thread::JoinHandle<()>> {
    let mut c = Client::connect(&args.server, timeouts(), trust)?;
    c.login(&args.user, password)?;
    let (stop, samples) = (Arc::clone(stop), Arc::clone(samples));
    Ok(std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            if c.call(&Request::Pwd).is_err() {
                break;
            }
            samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(t.elapsed().as_secs_f64() * 1000.0);
            std::thread::sleep(Duration::from_millis(2));
        }
        c.quit();
    }))
}

/// One of the load's clients, on its own thread.
struct OneClient {
    i: usize,
    args: LoadArgs,
    password: Password,
    trust: Option<Trust>,
}

impl OneClient {
    fn run(self, barrier: &Barrier, errors: &Mutex<Vec<String>>) {
        let note = |e: Error| {
            errors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e.to_string())
        };
        // Transfers connect and log in before the barrier, so the timed
        // part is the transfer; `logins` times the login itself.
        let mut pre = None;
        if !matches!(self.args.mode, Mode::Logins) {
            match self.connect() {
                Ok(c) => pre = Some(c),
                Err(e) => note(e),
            }
        }
        barrier.wait();
        if let Err(e) = self.work(pre) {
            note(e);
        }
    }

    fn connect(&self) -> Result<Client> {
        let mut c = Client::connect(&self.args.server, timeouts(), self.trust.as_ref())?;
        c.login(&self.args.user, &self.password)?;
        Ok(c)
    }

    /// The timed part.
    fn work(&self, pre: Option<Client>) -> Result<()> {
        let connected = || pre.ok_or_else(|| Error::Other("no connection".into()));
        match self.args.mode {
            Mode::Logins => self.connect()?.quit(),
            Mode::Get => {
                let mut c = connected()?;
                let path = self.args.path.as_deref().unwrap_or("load.bin");
                let sink = std::path::Path::new("sink");
                get_stream(
                    &mut c,
                    path,
                    &mut std::io::sink(),
                    sink,
                    &Progress::hidden(),
                )?;
                c.quit();
            }
            Mode::Put => {
                let mut c = connected()?;
                let file = self.args.file.as_deref();
                let file = file.ok_or_else(|| Error::Usage("--file".into()))?;
                let opts = crate::client::transfer::PutOpts {
                    mkdirs: true,
                    ..Default::default()
                };
                let target = format!("load/c{}", self.i);
                put_file(&mut c, file, &target, opts, &Progress::hidden())?;
                c.quit();
            }
            Mode::Idle => {}
        }
        Ok(())
    }
}

/// Prints the result line; an error if any client failed.
fn summarise(args: &LoadArgs, errors: &[String], mut s: Vec<f64>, wall: f64) -> Result<()> {
    s.sort_by(|a, b| a.total_cmp(b));
    let pct = |q: f64| {
        if s.is_empty() {
            0.0
        } else {
            s[((s.len() - 1) as f64 * q).round() as usize]
        }
    };
    let result = LoadResult {
        ok: args.clients - errors.len(),
        failed: errors.len(),
        wall_secs: wall,
        probe_samples: s.len(),
        probe_p50_ms: pct(0.5),
        probe_p99_ms: pct(0.99),
        probe_max_ms: s.last().copied().unwrap_or(0.0),
        first_error: errors.first().cloned(),
    };
    println!(
        "{}",
        serde_json::to_string(&result).expect("results serialize")
    );
    if result.failed > 0 {
        return Err(Error::Other(format!(
            "{} of {} clients failed; first: {}",
            result.failed,
            args.clients,
            result.first_error.unwrap_or_default()
        )));
    }
    Ok(())
}

/// Opens the connections one after another (no thread per connection, so
/// 10,000 are cheap here), says `ready N`, and holds them until stdin closes.
fn idle(args: &LoadArgs, password: &Password, trust: Option<&Trust>) -> Result<()> {
    let mut conns = Vec::with_capacity(args.clients);
    for _ in 0..args.clients {
        let mut c = Client::connect(&args.server, timeouts(), trust)?;
        if args.login {
            c.login(&args.user, password)?;
        }
        conns.push(c);
    }
    println!("ready {}", conns.len());
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let mut sink = String::new();
    while std::io::stdin().read_line(&mut sink).is_ok_and(|n| n > 0) {
        sink.clear();
    }
    drop(conns);
    Ok(())
}

pub fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        let _ = setrlimit(Resource::Nofile, lim);
    }
}
