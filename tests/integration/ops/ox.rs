//! Helpers of the operations tests: servers whose users have bandwidth
//! limits, scrapes with curl, `miniftp admin` runs, timed transfers.

#![allow(dead_code)]

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_core::common::useradd_ok;
use crate::util::{sha256_hex, Opts, TestServer, Wire, BIN};

pub const MIB: u64 = 1 << 20;

/// A server with `users` (name, password, rate up, rate down; quota 200M)
/// and `toml`; restarted once the rates are in the users file, so every
/// session starts with them.
pub fn rated(users: &[(&'static str, &'static str, &str, &str)], toml: &str) -> TestServer {
    let mut s = TestServer::with(Opts {
        toml: toml.to_string(),
        users: users.iter().map(|u| (u.0, u.1, "200M")).collect(),
        env: vec![],
    });
    for (name, _, up, down) in users {
        useradd_ok(
            &s.config,
            &[name, "--rate-up", up, "--rate-down", down],
            None,
        );
    }
    s.kill_and_restart();
    s
}

/// `curl -s` of `path` on the metrics listener: (HTTP status, body).
pub fn curl(s: &TestServer, path: &str, extra: &[&str]) -> (u16, String) {
    let addr = s.metrics.as_deref().expect("a [metrics] listener");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", "-w", "\n%{http_code}"])
        .args(extra)
        .arg(format!("http://{addr}{path}"))
        .stdin(Stdio::null())
        .output()
        .expect("curl (apt-get install curl)");
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let (body, code) = text.rsplit_once('\n').expect("status line");
    (code.trim().parse().expect("status"), body.to_string())
}

/// One scrape of /metrics.
pub fn scrape(s: &TestServer) -> String {
    let (code, body) = curl(s, "/metrics", &[]);
    assert_eq!(code, 200, "{body}");
    body
}

/// The value of `series` (name with labels, as exposed) in a scrape.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// `miniftp admin ARGS --config` of `s`.
pub fn admin(s: &TestServer, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("admin")
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .env_remove("MINIFTP_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run miniftp admin")
}

/// `miniftp admin ARGS` that must succeed: its standard output.
pub fn admin_ok(s: &TestServer, args: &[&str]) -> String {
    let out = admin(s, args);
    assert!(
        out.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A session of `user` on `addr`.
pub fn session(addr: &str, user: &str, pw: &str) -> Wire {
    let mut w = Wire::connect(addr);
    w.stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    assert_eq!(w.recv()["code"], 220);
    let r = w.call(json!({"op": "login", "user": user, "password": pw}));
    assert_eq!(r["code"], 230, "login {user}: {r}");
    w
}

/// Downloads `path` as `user` on a new session: the seconds it took
/// (request to trailer), after checking the bytes against `want`.
pub fn timed_get(addr: &str, user: &str, pw: &str, path: &str, want: &[u8]) -> f64 {
    let mut w = session(addr, user, pw);
    let start = Instant::now();
    let (_, body, t) = w.get(path).expect("get");
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(t["code"], 226, "{t}");
    assert!(body == want, "{user}: {path} differs");
    secs
}

/// Uploads `data` to `path` as `user` on a new session: the seconds it
/// took (request to 226).
pub fn timed_put(addr: &str, user: &str, pw: &str, path: &str, data: &[u8]) -> f64 {
    let mut w = session(addr, user, pw);
    let start = Instant::now();
    let r = w.put(path, data);
    let secs = start.elapsed().as_secs_f64();
    assert_eq!(r["code"], 226, "{r}");
    assert_eq!(r["sha256"], sha256_hex(data), "{r}");
    secs
}
