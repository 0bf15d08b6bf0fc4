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

#[derive(Args, Debug)]
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
        let mut c = Client::connect(&args.server, timeouts(), trust.as_ref())?;
        c.login(&args.user, &password)?;
        let stop = Arc::clone(&stop);
        let samples = Arc::clone(&samples);
        Some(std::thread::spawn(move || {
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
    } else {
        None
    };
    let barrier = Arc::new(Barrier::new(args.clients + 1));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let mut handles = Vec::new();
    for i in 0..args.clients {
        let barrier = Arc::clone(&barrier);
        let errors = Arc::clone(&errors);
        let server = args.server.clone();
        let user = args.user.clone();
        let password = password.clone();
        let mode = args.mode;
        let path = args.path.clone();
        let file = args.file.clone();
        let trust = trust.clone();
        handles.push(std::thread::spawn(move || {
            // Transfers connect and log in before the barrier, so the
            // timed part is the transfer; `logins` times the login itself.
            let mut pre = None;
            if !matches!(mode, Mode::Logins) {
                match Client::connect(&server, timeouts(), trust.as_ref()).and_then(|mut c| {
                    c.login(&user, &password)?;
                    Ok(c)
                }) {
                    Ok(c) => pre = Some(c),
                    Err(e) => errors
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(e.to_string()),
                }
            }
            barrier.wait();
            let result = (|| -> Result<()> {
                match mode {
                    Mode::Logins => {
                        let mut c = Client::connect(&server, timeouts(), trust.as_ref())?;
                        c.login(&user, &password)?;
                        c.quit();
                    }
                    Mode::Get => {
                        let mut c = pre
                            .take()
                            .ok_or_else(|| Error::Other("no connection".into()))?;
                        let path = path.as_deref().unwrap_or("load.bin");
                        get_stream(
                            &mut c,
                            path,
                            &mut std::io::sink(),
                            std::path::Path::new("sink"),
                            &Progress::hidden(),
                        )?;
                        c.quit();
                    }
                    Mode::Put => {
                        let mut c = pre
                            .take()
                            .ok_or_else(|| Error::Other("no connection".into()))?;
                        let file = file
                            .as_deref()
                            .ok_or_else(|| Error::Usage("--file".into()))?;
                        put_file(
                            &mut c,
                            file,
                            &format!("load/c{i}"),
                            crate::client::transfer::PutOpts {
                                mkdirs: true,
                                ..Default::default()
                            },
                            &Progress::hidden(),
                        )?;
                        c.quit();
                    }
                    Mode::Idle => {}
                }
                Ok(())
            })();
            if let Err(e) = result {
                errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e.to_string());
            }
        }));
    }
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
    let errors = errors.lock().unwrap_or_else(|p| p.into_inner());
    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner()).clone();
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
