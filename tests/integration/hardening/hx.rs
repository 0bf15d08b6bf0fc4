//! Helpers of the hardening tests, on top of the shared harness in
//! tests/integration/util.rs : the scale switch
//! (`STRESS=1`), process limits, the server's memory and descriptors, client
//! sockets bound to other loopback addresses, and the *bystander*: a
//! logged-in client doing put/get/ls round trips in a loop on its own
//! thread, which must never see a failure while a test attacks the server.

#![allow(dead_code)]

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::util::eventually;
use serde_json::{json, Value};

pub use crate::util::tcp_from;
use crate::util::{data, sha256_hex, Opts, TestServer, Wire};
pub use crate::util::{disk_usage, partials_on_disk};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;

/// True when the long versions run (`STRESS=1`, set by `make stress`).
pub fn stress() -> bool {
    std::env::var("STRESS").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `normal` in the default run, `heavy` under `STRESS=1`.
pub fn scaled(normal: usize, heavy: usize) -> usize {
    if stress() {
        heavy
    } else {
        normal
    }
}

/// A server with alice (the test's user) and bob (the bystander's), both
/// with 100M, and `toml` added to the config.
pub fn server(toml: &str) -> TestServer {
    TestServer::with(Opts {
        toml: toml.to_string(),
        users: vec![("alice", "alice-pw", "100M"), ("bob", "bob-pw", "100M")],
        env: vec![],
    })
}

/// Raises this process's open-files limit to at least `want` (the soft
/// limit up to the hard one; as root the hard one too). Servers started
/// afterwards inherit it and raise their own soft limit to it.
pub fn raise_nofile(want: u64) {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let cur = lim.current.unwrap_or(u64::MAX);
    let max = lim.maximum.unwrap_or(u64::MAX);
    if cur >= want {
        return;
    }
    let new_max = max.max(want);
    let ok = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(want),
            maximum: Some(new_max),
        },
    );
    if ok.is_err() {
        // Not root: as far as the hard limit allows.
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(max),
                maximum: Some(max),
            },
        );
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    assert!(
        now >= want,
        "open-files limit is {now}, this test needs {want} (raise it with ulimit -n)"
    );
}

/// Resident memory of process `pid` in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS")
}

/// Open file descriptors of process `pid`.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// What the descriptors of process `pid` point to.
pub fn fd_list(pid: u32) -> String {
    let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .map(|e| {
                    let target = std::fs::read_link(e.path())
                        .map(|t| t.display().to_string())
                        .unwrap_or_default();
                    format!("{}->{target}", e.file_name().to_string_lossy())
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v.join(" ")
}

/// Waits (up to `timeout`) until the server holds at most `max` open
/// descriptors; returns the last count.
pub fn wait_fds_at_most(s: &TestServer, max: usize, timeout: Duration) -> usize {
    let end = Instant::now() + timeout;
    loop {
        let n = fd_count(s.child.id());
        if n <= max || Instant::now() >= end {
            return n;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Asserts the server process is still running.
#[track_caller]
pub fn assert_alive(s: &mut TestServer) {
    if let Some(st) = s.child.try_wait().expect("try_wait") {
        panic!("the server exited ({st}); its log:\n{}", tail(&s.log(), 60));
    }
}

/// The last `n` lines of a log.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Asserts the server's log has no panic message.
#[track_caller]
pub fn assert_no_panic_in_log(s: &TestServer) {
    let log = s.log();
    let bad: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("panicked") || l.contains("internal error"))
        .collect();
    assert!(
        bad.is_empty(),
        "the server log shows panics:\n{}",
        bad.join("\n")
    );
}

/// 127.a.b.c
pub fn ip(a: u8, b: u8, c: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, a, b, c)
}

/// The `i`-th of many distinct loopback addresses in 127.`net`.x.y
/// (never .0 or .255 in the last byte).
pub fn nth_ip(net: u8, i: usize) -> Ipv4Addr {
    let hi = (i / 250) as u8;
    let lo = (i % 250) as u8 + 1;
    Ipv4Addr::new(127, net, hi, lo)
}

/// A raw connection from `src`, greeting not read.
pub fn wire_from(src: Ipv4Addr, addr: &str) -> Wire {
    Wire {
        stream: tcp_from(src, addr).unwrap_or_else(|e| panic!("connect from {src}: {e}")),
    }
}

/// A connection from `src` whose greeting was 220.
#[track_caller]
pub fn connect_from(src: Ipv4Addr, addr: &str) -> Wire {
    let mut w = wire_from(src, addr);
    let g = w.try_recv().expect("greeting");
    assert_eq!(g["code"], 220, "greeting to {src}: {g}");
    w
}

/// A session from `src`.
#[track_caller]
pub fn login_from(src: Ipv4Addr, addr: &str, user: &str, pw: &str) -> Wire {
    let mut w = connect_from(src, addr);
    let r = w.call(login_req(user, pw));
    assert_eq!(r["code"], 230, "login of {user} from {src}: {r}");
    w
}

pub fn login_req(user: &str, pw: &str) -> Value {
    json!({"op": "login", "user": user, "password": pw})
}

/// A frame header announcing `len` bytes.
pub fn header(len: u64) -> [u8; 8] {
    len.to_be_bytes()
}

/// Header and payload of one frame.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = header(payload.len() as u64).to_vec();
    v.extend_from_slice(payload);
    v
}

/// The code of a reply.
#[track_caller]
pub fn code(v: &Value) -> u64 {
    v["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("reply without code: {v}"))
}

/// Asserts a reply's code, showing the reply otherwise.
#[track_caller]
pub fn want(r: &Value, c: u64) {
    assert_eq!(r["code"].as_u64(), Some(c), "expected {c}, got {r}");
}

/// Asserts the next thing on `w` is a 421 frame, then EOF.
#[track_caller]
pub fn assert_421_then_eof(w: &mut Wire, what: &str) {
    match w.try_recv() {
        Some(r) => assert_eq!(r["code"], 421, "{what}: expected 421, got {r}"),
        None => panic!("{what}: connection closed without a 421 frame"),
    }
    assert!(w.closed(), "{what}: connection not closed after the 421");
}

/// Reads until EOF (or `limit` bytes, or a read error such as the
/// timeout): (bytes read, whether EOF was seen).
pub fn drain_to_eof(w: &mut Wire, limit: u64) -> (u64, bool) {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        match w.stream.read(&mut buf) {
            Ok(0) => return (total, true),
            Ok(n) => {
                total += n as u64;
                if total > limit {
                    return (total, false);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // ECONNRESET is a close too.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (total, true),
            Err(_) => return (total, false),
        }
    }
}

pub fn sha(d: &[u8]) -> String {
    sha256_hex(d)
}

/// (used, total, free) of the session's user.
#[track_caller]
pub fn quota(w: &mut Wire) -> (u64, u64, u64) {
    let r = w.call(json!({"op": "quota"}));
    want(&r, 200);
    let q = &r["quota"];
    (
        q["used"].as_u64().unwrap(),
        q["total"].as_u64().unwrap(),
        q["free"].as_u64().unwrap(),
    )
}

/// Waits until the quota's used figure equals the bytes in `home` and no
/// bytes are reserved (free = total − used); asserts it. Work after a
/// dropped connection runs in the background, hence the wait.
#[track_caller]
pub fn assert_books_balance(w: &mut Wire, home: &Path) {
    let mut last = (0, 0, 0, 0);
    let ok = eventually(Duration::from_secs(10), || {
        let (used, total, free) = quota(w);
        last = (used, disk_usage(home), total, free);
        last.0 == last.1 && last.3 == last.2.saturating_sub(last.0)
    });
    assert!(
        ok,
        "quota says used {} free {} of {}, the home holds {} bytes",
        last.0, last.3, last.2, last.1
    );
}

/// Quits `w` (a session of `user`) and waits until the server has ended
/// it: the next login of a user with no other session then opens the
/// account afresh, walking the home (a session lingers briefly after its
/// `221`, holding the account).
#[track_caller]
pub fn quit_and_wait(s: &crate::util::TestServer, mut w: Wire, user: &str) {
    let ended = |s: &crate::util::TestServer| {
        s.log()
            .matches(&format!("session end user={user} "))
            .count()
    };
    let before = ended(s);
    want(&w.call(json!({"op": "quit"})), 221);
    assert!(w.closed());
    drop(w);
    assert!(
        eventually(Duration::from_secs(10), || ended(s) > before),
        "the session of {user} did not end"
    );
}

/// `partial PATH`, retried while a finishing transfer still holds it (450).
pub fn partial_settled(w: &mut Wire, path: &str) -> Value {
    let mut r = Value::Null;
    eventually(Duration::from_secs(10), || {
        r = w.call(json!({"op": "partial", "path": path}));
        r["code"] != 450
    });
    r
}

/// Names in an `ls` reply.
#[track_caller]
pub fn names(r: &Value) -> Vec<String> {
    r["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {r}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

/// One chunk of a chunked body.
pub fn chunk(bytes: &[u8]) -> Vec<u8> {
    frame(bytes)
}

/// Downloads `path` and checks the trailer's digest: the content.
#[track_caller]
pub fn fetch(w: &mut Wire, path: &str) -> Vec<u8> {
    let (r, body, t) = w.get(path).unwrap_or_else(|r| panic!("get {path}: {r}"));
    want(&t, 226);
    assert_eq!(t["sha256"].as_str(), Some(sha(&body).as_str()), "{path}");
    if let Some(d) = r["sha256"].as_str() {
        assert_eq!(d, sha(&body), "digest in the 150 of {path}");
    }
    body
}

/// A small deterministic PRNG (xorshift64*), for reproducible garbage.
#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// 0..n
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// A logged-in client that keeps doing put / get / ls round trips on its
/// own thread, verifying every byte, until stopped. Any failure (error
/// reply, wrong bytes, EOF, a 20 s silence) is recorded and ends it.
pub struct Bystander {
    stop: Arc<AtomicBool>,
    /// Set by `quiet`: the bystander waits between rounds.
    paused: Arc<AtomicBool>,
    /// Set by the bystander while it waits.
    idle: Arc<AtomicBool>,
    rounds: Arc<AtomicU64>,
    failure: Arc<Mutex<Option<String>>>,
    handle: Option<JoinHandle<()>>,
    pub slowest: Arc<Mutex<Duration>>,
}

impl Bystander {
    /// bob from 127.0.0.1.
    pub fn start(s: &TestServer) -> Bystander {
        Bystander::start_as(&s.addr, Ipv4Addr::LOCALHOST, "bob", "bob-pw")
    }

    /// `user` from `src`; logged in before this returns.
    pub fn start_as(addr: &str, src: Ipv4Addr, user: &str, pw: &str) -> Bystander {
        let mut w = login_from(src, addr, user, pw);
        let stop = Arc::new(AtomicBool::new(false));
        let paused = Arc::new(AtomicBool::new(false));
        let idle = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let failure = Arc::new(Mutex::new(None));
        let slowest = Arc::new(Mutex::new(Duration::ZERO));
        let handle = {
            let (stop, rounds, failure, slowest) = (
                Arc::clone(&stop),
                Arc::clone(&rounds),
                Arc::clone(&failure),
                Arc::clone(&slowest),
            );
            let (paused, idle) = (Arc::clone(&paused), Arc::clone(&idle));
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    while paused.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        idle.store(true, Ordering::Relaxed);
                        std::thread::sleep(Duration::from_millis(200));
                        // Stay out of the idle timeout without opening a file.
                        if w.call(json!({"op": "noop"}))["code"] != 200 {
                            *failure.lock().unwrap() = Some("noop while quiet failed".into());
                            return;
                        }
                    }
                    idle.store(false, Ordering::Relaxed);
                    let t = Instant::now();
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        bystander_round(&mut w, i)
                    }));
                    let err = match result {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(p) => Some(
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panic".into()),
                        ),
                    };
                    if let Some(e) = err {
                        *failure.lock().unwrap() = Some(format!("round {i}: {e}"));
                        return;
                    }
                    let took = t.elapsed();
                    let mut sl = slowest.lock().unwrap();
                    *sl = (*sl).max(took);
                    drop(sl);
                    rounds.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
                let _ = w.call(json!({"op": "quit"}));
            })
        };
        Bystander {
            stop,
            paused,
            idle,
            rounds,
            failure,
            handle: Some(handle),
            slowest,
        }
    }

    /// Runs `f` while the bystander rests between rounds: for measuring
    /// the server's descriptors without its transient files.
    pub fn quiet<R>(&self, f: impl FnOnce() -> R) -> R {
        self.paused.store(true, Ordering::Relaxed);
        eventually(Duration::from_secs(20), || {
            self.idle.load(Ordering::Relaxed) || self.failure.lock().unwrap().is_some()
        });
        let r = f();
        self.paused.store(false, Ordering::Relaxed);
        r
    }

    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Asserts no failure so far and that `k` more rounds complete within
    /// `timeout` (the server keeps serving others right now).
    #[track_caller]
    pub fn progress(&self, k: u64, timeout: Duration, when: &str) {
        let start = self.rounds();
        let ok = eventually(timeout, || {
            self.failure.lock().unwrap().is_some() || self.rounds() >= start + k
        });
        if let Some(f) = self.failure.lock().unwrap().as_ref() {
            panic!("bystander failed {when}: {f}");
        }
        assert!(
            ok,
            "bystander made {} of {k} round trips in {timeout:?} {when}",
            self.rounds() - start
        );
    }

    /// Stops it; asserts it never failed and made at least one round trip.
    #[track_caller]
    pub fn finish(mut self) -> u64 {
        // A quick test may end before the first round did.
        eventually(Duration::from_secs(20), || {
            self.rounds() > 0 || self.failure.lock().unwrap().is_some()
        });
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().expect("bystander thread");
        }
        if let Some(f) = self.failure.lock().unwrap().as_ref() {
            panic!("bystander failed: {f}");
        }
        let n = self.rounds();
        assert!(n > 0, "bystander never completed a round trip");
        eprintln!(
            "bystander: {n} round trips, slowest {:?}",
            *self.slowest.lock().unwrap()
        );
        n
    }
}

impl Drop for Bystander {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// One bystander round: put a small file, get it back, list, noop.
fn bystander_round(w: &mut Wire, i: u64) -> Result<(), String> {
    let body = data(4096 + (i as usize % 7) * 1000, i);
    let name = format!("by-{}.bin", i % 3);
    let r = w.put(&name, &body);
    if r["code"] != 226 || r["sha256"] != sha(&body) {
        return Err(format!("put {name}: {r}"));
    }
    match w.get(&name) {
        Ok((_, got, t)) => {
            if got != body || t["code"] != 226 || t["sha256"] != sha(&body) {
                return Err(format!("get {name}: wrong bytes or trailer {t}"));
            }
        }
        Err(r) => return Err(format!("get {name}: {r}")),
    }
    let r = w.call(json!({"op": "ls", "path": "/"}));
    if r["code"] != 200
        || !r["entries"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["name"] == name.as_str()))
    {
        return Err(format!("ls: {r}"));
    }
    let r = w.call(json!({"op": "noop"}));
    if r["code"] != 200 {
        return Err(format!("noop: {r}"));
    }
    Ok(())
}
