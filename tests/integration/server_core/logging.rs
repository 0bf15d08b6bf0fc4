//! What the server logs: session start and end, transfers, never a
//! password.

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{self, Opts, TestServer};

#[test]
fn session_start_and_end_are_logged() {
    let s = TestServer::start();
    let mut w = s.login("alice", "alice-pw");
    let port = w.stream.local_addr().unwrap().port();
    let peer = format!("peer=127.0.0.1:{port}");
    assert!(
        wait_for_log(&s, &["login user=alice", &peer]),
        "no session-start line for {peer}:\n{}",
        s.log()
    );
    assert!(log_lines_with(&s, &["session end user=alice", &peer]).is_empty());
    assert_eq!(w.call(json!({"op": "quit"}))["code"], 221);
    assert!(
        wait_for_log(&s, &["session end user=alice", &peer]),
        "no session-end line after quit:\n{}",
        s.log()
    );
    // A session that just drops its connection is logged as ended too.
    let w = s.login("alice", "alice-pw");
    let port = w.stream.local_addr().unwrap().port();
    drop(w);
    let peer = format!("peer=127.0.0.1:{port}");
    assert!(
        wait_for_log(&s, &["session end user=alice", &peer]),
        "no session-end line after a dropped connection:\n{}",
        s.log()
    );
}

#[test]
fn transfers_are_logged_with_op_user_path_bytes_and_result() {
    let s = TestServer::start();
    let mut w = s.login("alice", "alice-pw");
    let body = util::data(12345, 1);
    assert_eq!(w.put("logged-upload.bin", &body)["code"], 226);
    assert!(
        wait_for_log(
            &s,
            &[
                "transfer op=put",
                "user=alice",
                "logged-upload.bin",
                "bytes=12345",
                "result=ok"
            ]
        ),
        "no put line:\n{}",
        s.log()
    );
    let (_, got, t) = w.get("logged-upload.bin").expect("get");
    assert_eq!(got, body);
    assert_eq!(t["code"], 226, "{t}");
    assert!(
        wait_for_log(
            &s,
            &[
                "transfer op=get",
                "user=alice",
                "logged-upload.bin",
                "bytes=12345",
                "result=ok"
            ]
        ),
        "no get line:\n{}",
        s.log()
    );
    // A failed upload (wrong digest) is logged, not as ok.
    let r = w.call(json!({"op": "put", "path": "bad-digest.bin", "size": 3}));
    assert_eq!(r["code"], 150, "{r}");
    w.send_raw(b"abc");
    let r = w.call(json!({"op": "done", "sha256": util::sha256_hex(b"xyz")}));
    assert_eq!(r["code"], 554, "{r}");
    assert!(
        wait_for_log(&s, &["transfer op=put", "bad-digest.bin"]),
        "{}",
        s.log()
    );
    assert!(log_lines_with(&s, &["bad-digest.bin", "result=ok"]).is_empty());
}

#[test]
fn passwords_never_appear_in_the_log() {
    let s = TestServer::with(Opts {
        toml: "registration = \"approval\"\n\
               [limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 3\n"
            .into(),
        users: vec![("alice", "Alpha-Pass-Q1", "100M")],
        env: vec![],
    });
    let secrets = [
        "Alpha-Pass-Q1",
        "Wrong-Pass-Q2",
        "Unknown-Pass-Q3",
        "Register-Pass-Q4",
        "Locked-Pass-Q5",
        "Passwd-Pass-Q6",
        "Bad-Field-Pass-Q7",
    ];
    let mut w = s.login("alice", "Alpha-Pass-Q1");
    w.call(json!({"op": "quit"}));
    let mut w = s.connect();
    assert_eq!(w.call(login_req("alice", "Wrong-Pass-Q2"))["code"], 530);
    assert_eq!(w.call(login_req("nobody", "Unknown-Pass-Q3"))["code"], 530);
    assert_eq!(
        w.call(register_req("newbie", "Register-Pass-Q4"))["code"],
        202
    );
    // Third failure: lockout, then a refused attempt.
    w.call(login_req("alice", "Wrong-Pass-Q2"));
    assert_eq!(w.call(login_req("alice", "Locked-Pass-Q5"))["code"], 429);
    // Malformed requests carrying a password.
    let r = w.call(json!({"op": "login", "user": ["alice"], "password": "Bad-Field-Pass-Q7"}));
    assert_eq!(r["code"], 501, "{r}");
    useradd_ok(
        &s.config,
        &["alice", "--passwd", "--password-stdin"],
        Some("Passwd-Pass-Q6\n"),
    );
    assert!(wait_for_log(&s, &["reloaded"]), "{}", s.log());
    assert!(wait_for_log(&s, &["failed login", "nobody"]), "{}", s.log());
    let log = s.log();
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "password {secret} in the log:\n{log}"
        );
    }
}

#[test]
fn user_names_cannot_forge_log_lines() {
    let s = TestServer::with(Opts {
        toml: "registration = \"open\"\n[limits]\nfailed_login_delay_ms = 0\nmax_failed_logins = 100\n"
            .into(),
        ..Opts::default()
    });
    let mut w = s.connect();
    let forged =
        "x\n[2026-01-01T00:00:00.000Z INFO  miniftp::server::conn] login user=root peer=forged";
    assert_eq!(w.call(login_req(forged, "pw"))["code"], 530);
    assert_eq!(w.call(register_req(forged, "pw"))["code"], 501);
    assert!(wait_for_log(&s, &["failed login"]), "{}", s.log());
    let log = s.log();
    assert!(
        !log.lines()
            .any(|l| l.contains("login user=root") && !l.contains("failed login")),
        "a client forged a log line:\n{log}"
    );
}

#[test]
fn interrupted_upload_is_logged_as_not_ok() {
    let s = TestServer::start();
    let mut w = s.login("alice", "alice-pw");
    let r = w.call(json!({"op": "put", "path": "cut.bin", "size": 100_000}));
    assert_eq!(r["code"], 150, "{r}");
    w.send_raw(&[5u8; 40_000]);
    drop(w);
    assert!(
        wait_for_log(&s, &["transfer op=put", "user=alice", "cut.bin"]),
        "no transfer line for an interrupted upload:\n{}",
        s.log()
    );
    assert!(
        log_lines_with(&s, &["cut.bin", "result=ok"]).is_empty(),
        "{}",
        s.log()
    );
    assert!(wait_for_log(&s, &["session end user=alice"]), "{}", s.log());
}
