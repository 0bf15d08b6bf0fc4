//! Helpers of this test binary, on top of the shared harness in
//! tests/integration/util.rs .

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use crate::util::eventually;
use serde_json::{json, Value};

pub use crate::util::tcp_from;
use crate::util::{Opts, TestServer, Wire, BIN};

/// Options with extra TOML and the default user (alice / alice-pw, 100M).
pub fn opts(toml: &str) -> Opts {
    Opts {
        toml: toml.to_string(),
        ..Opts::default()
    }
}

/// Waits for a process to exit, at most `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            return Some(s);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw connection from `src`, greeting not read.
pub fn wire_from(src: Ipv4Addr, addr: &str) -> Wire {
    Wire {
        stream: tcp_from(src, addr).expect("connect from alternate address"),
    }
}

pub fn login_req(user: &str, pw: &str) -> Value {
    json!({"op": "login", "user": user, "password": pw})
}

pub fn register_req(user: &str, pw: &str) -> Value {
    json!({"op": "register", "user": user, "password": pw})
}

/// The code of a reply.
pub fn code(v: &Value) -> u64 {
    v["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("reply without code: {v}"))
}

/// One login attempt on a fresh connection; the reply.
pub fn try_login(s: &TestServer, user: &str, pw: &str) -> Value {
    let mut w = s.connect();
    w.call(login_req(user, pw))
}

/// Asserts a logged-in connection still gets answers: `pwd` and `noop`.
pub fn assert_served(w: &mut Wire, when: &str) {
    let r = w.call(json!({"op": "pwd"}));
    assert_eq!(r["code"], 200, "pwd {when}: {r}");
    assert_eq!(r["cwd"], "/", "pwd {when}: {r}");
    let r = w.call(json!({"op": "noop"}));
    assert_eq!(r["code"], 200, "noop {when}: {r}");
}

/// Asserts the next thing on `w` is a 421 frame, then EOF.
pub fn assert_421_then_eof(w: &mut Wire, what: &str) {
    match w.try_recv() {
        Some(r) => assert_eq!(r["code"], 421, "{what}: expected 421, got {r}"),
        None => panic!("{what}: connection closed without a 421 frame"),
    }
    assert!(w.closed(), "{what}: connection not closed after the 421");
}

/// A frame header announcing `len` bytes.
pub fn header(len: u64) -> [u8; 8] {
    len.to_be_bytes()
}

/// Runs `miniftp useradd ARGS --config CONFIG`, with `stdin` if given.
pub fn useradd(config: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("useradd")
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("MINIFTP_CONFIG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn useradd");
    if let Some(text) = stdin {
        // useradd may exit before reading (a refused name): ignore EPIPE.
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    child.wait_with_output().expect("useradd output")
}

/// `useradd` that must succeed; its stdout.
pub fn useradd_ok(config: &Path, args: &[&str], stdin: Option<&str>) -> String {
    let out = useradd(config, args, stdin);
    assert!(
        out.status.success(),
        "useradd {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The log lines of `s` containing every one of `parts`.
pub fn log_lines_with(s: &TestServer, parts: &[&str]) -> Vec<String> {
    s.log()
        .lines()
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .map(str::to_owned)
        .collect()
}

/// Waits (up to 5 s) for a log line containing every one of `parts`.
pub fn wait_for_log(s: &TestServer, parts: &[&str]) -> bool {
    eventually(Duration::from_secs(5), || {
        !log_lines_with(s, parts).is_empty()
    })
}

/// A server started by hand (for command lines the harness doesn't make):
/// killed on drop.
pub struct Proc {
    pub child: Child,
    pub addr: String,
    pub stderr: PathBuf,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

/// Starts `miniftp serve ARGS` in `cwd` with stderr to `stderr`, and
/// waits (up to 20 s) for its `listening on` line. Err(exit status) if it
/// exits first.
pub fn spawn_serve(args: &[&str], cwd: &Path, stderr: &Path) -> Result<Proc, ExitStatus> {
    spawn_serve_then(args, cwd, stderr, || {})
}

/// [`spawn_serve`], running `meanwhile` after the process is started and
/// before waiting for its `listening on` line.
pub fn spawn_serve_then(
    args: &[&str],
    cwd: &Path,
    stderr: &Path,
    meanwhile: impl FnOnce(),
) -> Result<Proc, ExitStatus> {
    let log = std::fs::File::create(stderr).unwrap();
    let mut child = Command::new(BIN)
        .arg("serve")
        .args(args)
        .current_dir(cwd)
        .env_remove("MINIFTP_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("spawn server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(None);
                    return;
                }
                Ok(_) => {
                    if let Some(i) = line.find("listening on ") {
                        let addr = line[i + "listening on ".len()..].trim().to_string();
                        let _ = tx.send(Some(addr));
                        let mut sink = Vec::new();
                        let _ = reader.read_to_end(&mut sink);
                        return;
                    }
                }
            }
        }
    });
    meanwhile();
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(Some(addr)) => Ok(Proc {
            child,
            addr,
            stderr: stderr.to_owned(),
        }),
        Ok(None) => Err(wait_timeout(&mut child, Duration::from_secs(10)).expect("server exit")),
        Err(_) => {
            let _ = child.kill();
            panic!("server printed no `listening on` line within 20 s");
        }
    }
}

/// Runs `miniftp serve ARGS` expecting it to exit by itself (bad config):
/// (exit status, stderr). Panics if it starts serving instead.
pub fn serve_expecting_exit(args: &[&str], cwd: &Path) -> (ExitStatus, String) {
    let stderr = cwd.join("serve-stderr.log");
    match spawn_serve(args, cwd, &stderr) {
        Ok(p) => panic!(
            "server started (listening on {}) instead of refusing {args:?}",
            p.addr
        ),
        Err(status) => (status, std::fs::read_to_string(&stderr).unwrap_or_default()),
    }
}

/// Waits until the server's housekeeping thread (users-file watcher and
/// partial-upload sweeper) is running: a stale, empty partial upload
/// planted in alice's home gets swept. The server needs
/// `[limits] partial_max_age_secs = 2` (a sweep every second).
///
/// Why: the watcher takes its reference fingerprint of users.toml when the
/// thread first runs, so an edit made in the first milliseconds after
/// `listening on` can go unnoticed (see
/// useradd::users_file_changed_while_the_server_starts_is_picked_up).
/// Tests about something else wait for this first.
pub fn wait_housekeeping(s: &TestServer) {
    let home = s.home("alice");
    std::fs::create_dir_all(&home).unwrap();
    let probe = home.join(".housekeeping-probe.miniftp-part");
    let f = std::fs::File::create(&probe).unwrap();
    f.set_modified(std::time::SystemTime::now() - Duration::from_secs(86400))
        .unwrap();
    drop(f);
    assert!(
        eventually(Duration::from_secs(5), || !probe.exists()),
        "housekeeping never swept {}: is partial_max_age_secs small?\n{}",
        probe.display(),
        s.log()
    );
}

/// Sends SIGTERM (`term`) or SIGINT directly (no `kill` process in
/// between, so it arrives within microseconds).
pub fn send_signal(child: &Child, term: bool) {
    use rustix::process::{kill_process, Pid, Signal};
    let sig = if term { Signal::TERM } else { Signal::INT };
    kill_process(Pid::from_child(child), sig).expect("kill");
}
