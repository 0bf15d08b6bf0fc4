//! Starting (config file, flags, no config at all) and stopping (SIGTERM,
//! SIGINT, the shutdown grace for transfers).

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{self, TestServer, Wire, BIN, CHEAP_AUTH};

/// A config file in a fresh directory: `root` under it, plus `extra`.
fn config_with(extra: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("miniftp.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nroot = \"{}\"\n{extra}",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    (dir, config)
}

fn assert_config_refused(extra: &str, key: &str) {
    let (dir, config) = config_with(extra);
    let (status, stderr) =
        serve_expecting_exit(&["--config", config.to_str().unwrap()], dir.path());
    assert_eq!(
        status.code(),
        Some(2),
        "config {extra:?}: {status}, stderr: {stderr}"
    );
    assert!(
        stderr.contains(key),
        "config {extra:?}: stderr doesn't name `{key}`: {stderr}"
    );
}

#[test]
fn serve_refuses_an_unknown_config_key_with_exit_2_naming_it() {
    assert_config_refused("[limits]\nmax_conections = 5\n", "max_conections");
    assert_config_refused("lisen = \"127.0.0.1:0\"\n", "lisen");
    assert_config_refused("[auth]\nargon2_mem = 5\n", "argon2_mem");
    assert_config_refused("[nonsense]\nx = 1\n", "nonsense");
}

#[test]
fn serve_refuses_a_bad_config_value_with_exit_2_naming_the_key() {
    assert_config_refused("[limits]\nmax_connections = \"many\"\n", "max_connections");
    assert_config_refused("[limits]\nmax_connections = 0\n", "max_connections");
    assert_config_refused("[limits]\nidle_timeout_secs = -5\n", "idle_timeout_secs");
    assert_config_refused("registration = \"sometimes\"\n", "registration");
    assert_config_refused("default_quota = \"lots\"\n", "default_quota");
    // A bad `listen` (config_with already sets one, so write the file here).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("miniftp.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"nowhere\"\nroot = \"{}\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let (status, stderr) =
        serve_expecting_exit(&["--config", config.to_str().unwrap()], dir.path());
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("listen"), "{stderr}");
}

#[test]
fn serve_refuses_a_bad_listen_flag_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let (status, stderr) = serve_expecting_exit(
        &[
            "--listen",
            "not-an-address",
            "--root",
            root.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("listen"), "{stderr}");
}

#[test]
fn serve_runs_without_any_config_file_given_listen_and_root() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("srv-data");
    // Users for a config-less server: --root (default argon2 cost and
    // password length).
    let mut add = Command::new(BIN)
        .args([
            "useradd",
            "bob",
            "--quota",
            "3M",
            "--password-stdin",
            "--root",
        ])
        .arg(&root)
        .env_remove("MINIFTP_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    add.stdin
        .take()
        .unwrap()
        .write_all(b"bob-password\n")
        .unwrap();
    assert!(add.wait().unwrap().success());
    let p = spawn_serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--root",
            root.to_str().unwrap(),
            "--plaintext",
        ],
        dir.path(),
        &dir.path().join("stderr.log"),
    )
    .expect("config-less server starts");
    assert!(p.addr.starts_with("127.0.0.1:"), "{}", p.addr);
    assert_ne!(p.addr, "127.0.0.1:0");
    let mut w = Wire::connect(&p.addr);
    assert_eq!(w.recv()["code"], 220);
    assert_eq!(w.call(login_req("bob", "bob-password"))["code"], 230);
    assert_eq!(w.call(json!({"op": "quota"}))["quota"]["total"], 3u64 << 20);
    assert_eq!(w.put("x.txt", b"hi")["code"], 226);
    assert!(root.join("home/bob/x.txt").exists());
    // The built-in default root was not used.
    assert!(!dir.path().join("miniftp-data").exists());
    // Built-in default policy: approval.
    let mut r = Wire::connect(&p.addr);
    assert_eq!(r.recv()["code"], 220);
    assert_eq!(r.call(register_req("carol", "carol-password"))["code"], 202);
}

#[test]
fn listen_and_root_flags_override_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config_root = dir.path().join("config-root");
    let flag_root = dir.path().join("flag-root");
    let config = dir.path().join("miniftp.toml");
    // The config's address is valid but not local: if --listen didn't
    // override it, the bind would fail.
    std::fs::write(
        &config,
        format!(
            "listen = \"192.0.2.1:9000\"\nroot = \"{}\"\n{CHEAP_AUTH}",
            config_root.display()
        ),
    )
    .unwrap();
    let mut add = Command::new(BIN)
        .args(["useradd", "bob", "--password-stdin", "--config"])
        .arg(&config)
        .arg("--root")
        .arg(&flag_root)
        .env_remove("MINIFTP_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    add.stdin.take().unwrap().write_all(b"bob-pw\n").unwrap();
    assert!(add.wait().unwrap().success());
    let p = spawn_serve(
        &[
            "--config",
            config.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--root",
            flag_root.to_str().unwrap(),
        ],
        dir.path(),
        &dir.path().join("stderr.log"),
    )
    .expect("server starts with the overrides");
    assert!(p.addr.starts_with("127.0.0.1:"), "{}", p.addr);
    let mut w = Wire::connect(&p.addr);
    assert_eq!(w.recv()["code"], 220);
    assert_eq!(w.call(login_req("bob", "bob-pw"))["code"], 230);
    assert!(flag_root.join("home/bob").is_dir());
    assert!(!config_root.exists(), "the config's root was used");
}

/// Sends `sig` and waits (up to `secs`) for the exit status.
fn stop(s: &mut TestServer, sig: &str, secs: u64) -> std::process::ExitStatus {
    util::signal(&s.child, sig);
    wait_timeout(&mut s.child, Duration::from_secs(secs))
        .unwrap_or_else(|| panic!("server still running {secs} s after SIG{sig}:\n{}", s.log()))
}

fn stop_idle_sessions(sig: &str) {
    let mut s = TestServer::start();
    let mut a = s.login("alice", "alice-pw");
    let mut b = s.connect();
    util::signal(&s.child, sig);
    assert_421_then_eof(&mut a, "logged-in session at shutdown");
    assert_421_then_eof(&mut b, "pre-login connection at shutdown");
    let status = wait_timeout(&mut s.child, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("server still running after SIG{sig}"));
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIG{sig}: {status}"
    );
    assert!(
        std::net::TcpStream::connect(&s.addr).is_err(),
        "still accepting"
    );
    assert!(
        log_lines_with(&s, &["session end user=alice"]).len() == 1,
        "{}",
        s.log()
    );
}

#[test]
fn sigterm_sends_421_to_idle_sessions_and_exits_0() {
    stop_idle_sessions("TERM");
}

#[test]
fn sigint_sends_421_to_idle_sessions_and_exits_0() {
    stop_idle_sessions("INT");
}

#[test]
fn sigterm_with_no_clients_exits_0_promptly() {
    let mut s = TestServer::start();
    // A round trip first: the event loop is surely running.
    let mut w = s.connect();
    assert_eq!(w.call(json!({"op": "quit"}))["code"], 221);
    assert!(w.closed());
    let t = Instant::now();
    let status = stop(&mut s, "TERM", 10);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}

/// Once the server has printed `listening on`, scripts and init systems
/// take it as started, and a SIGTERM must stop it cleanly (exit 0). The
/// handlers are installed only later (in server::run), so a SIGTERM right
/// after the line kills the process with the default action.
#[test]
fn sigterm_right_after_listening_line_exits_0() {
    for term in [true, false] {
        let mut s = TestServer::with(opts("[workers]\nio_threads = 32\nauth_threads = 32\n"));
        send_signal(&s.child, term);
        let status = wait_timeout(&mut s.child, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("server still running after the signal:\n{}", s.log()));
        assert_eq!(
            status.code(),
            Some(0),
            "SIG{} just after `listening on`: {status}",
            if term { "TERM" } else { "INT" }
        );
    }
}

#[test]
fn upload_in_progress_at_sigterm_may_finish_within_the_grace() {
    let mut s = TestServer::with(opts("[limits]\nshutdown_grace_secs = 20\n"));
    let mut w = s.login("alice", "alice-pw");
    let mut idle = s.login("alice", "alice-pw");
    let body = util::data(4 << 20, 11);
    let r = w.call(json!({"op": "put", "path": "late.bin", "size": body.len()}));
    assert_eq!(r["code"], 150, "{r}");
    w.send_raw(&body[..1 << 20]);
    util::signal(&s.child, "TERM");
    // Shutdown has begun: idle sessions are told, new connections refused.
    assert_421_then_eof(&mut idle, "idle session during shutdown");
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect(
            &s.addr
        )
        .is_err()),
        "still accepting after SIGTERM"
    );
    // The transfer goes on to the end.
    w.send_raw(&body[1 << 20..]);
    let r = w.call(json!({"op": "done", "sha256": util::sha256_hex(&body)}));
    assert_eq!(r["code"], 226, "upload cut off by the shutdown: {r}");
    assert_421_then_eof(&mut w, "session after its transfer, during shutdown");
    let status = wait_timeout(&mut s.child, Duration::from_secs(10)).expect("server exits");
    assert_eq!(status.code(), Some(0), "{status}");
    assert_eq!(
        std::fs::read(s.home("alice").join("late.bin")).unwrap(),
        body
    );
    assert!(
        !log_lines_with(&s, &["transfer op=put", "late.bin", "result=ok"]).is_empty(),
        "{}",
        s.log()
    );
}

#[test]
fn download_in_progress_at_sigterm_may_finish_within_the_grace() {
    let mut s = TestServer::with(opts("[limits]\nshutdown_grace_secs = 20\n"));
    let mut w = s.login("alice", "alice-pw");
    let body = util::data(24 << 20, 5);
    assert_eq!(w.put("big.bin", &body)["code"], 226);
    let r = w.call(json!({"op": "get", "path": "big.bin"}));
    assert_eq!(r["code"], 150, "{r}");
    // Read a little, then stop the server while the rest is pending.
    let mut got = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut w.stream, &mut got).unwrap();
    util::signal(&s.child, "TERM");
    assert!(
        eventually(Duration::from_secs(5), || std::net::TcpStream::connect(
            &s.addr
        )
        .is_err()),
        "still accepting after SIGTERM"
    );
    let mut rest = vec![0u8; body.len() - got.len()];
    std::io::Read::read_exact(&mut w.stream, &mut rest).expect("rest of the body");
    got.extend_from_slice(&rest);
    assert!(got == body, "downloaded bytes differ");
    let t = w.recv();
    assert_eq!(t["code"], 226, "{t}");
    assert_421_then_eof(&mut w, "session after its download, during shutdown");
    let status = wait_timeout(&mut s.child, Duration::from_secs(10)).expect("server exits");
    assert_eq!(status.code(), Some(0), "{status}");
}

#[test]
fn upload_still_running_when_the_grace_ends_is_aborted_and_exit_is_0() {
    let mut s = TestServer::with(opts("[limits]\nshutdown_grace_secs = 1\n"));
    let mut w = s.login("alice", "alice-pw");
    let r = w.call(json!({"op": "put", "path": "never.bin", "size": 1000}));
    assert_eq!(r["code"], 150, "{r}");
    w.send_raw(&[0u8; 100]);
    let t = Instant::now();
    let status = stop(&mut s, "TERM", 10);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(w.try_recv().is_none_or(|r| r["code"] == 421));
    assert!(!s.home("alice").join("never.bin").exists());
}
