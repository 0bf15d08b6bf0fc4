//! `log_file = PATH`: the log goes to the file, not stderr, and SIGHUP
//! reopens it by name, as logrotate's `postrotate` needs.

use std::path::Path;
use std::time::Duration;

use crate::server_core::common::opts;
use crate::util::eventually;
use crate::util::{self, TestServer};

fn has(path: &Path, text: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t.contains(text))
}

#[test]
fn log_file_is_reopened_on_sighup() {
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("miniftp.log");
    let rotated = logs.path().join("miniftp.log.1");
    let s = TestServer::with(opts(&format!("log_file = {:?}\n", path.to_str().unwrap())));
    assert!(
        eventually(Duration::from_secs(5), || has(&path, "serving ")),
        "no start-up line in the log file"
    );
    assert!(
        !s.log().contains("serving "),
        "the log went to stderr too:\n{}",
        s.log()
    );

    // logrotate: move the file away, then SIGHUP.
    std::fs::rename(&path, &rotated).unwrap();
    util::signal(&s.child, "HUP");
    assert!(
        eventually(Duration::from_secs(5), || has(&path, "SIGHUP: reopened")),
        "no new log file after SIGHUP"
    );
    let _w = s.login("alice", "alice-pw");
    assert!(
        eventually(Duration::from_secs(5), || has(&path, "login user=alice")),
        "the login is not in the new file:\n{}",
        std::fs::read_to_string(&path).unwrap_or_default()
    );
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(
        old.contains("serving ") && !old.contains("login user=alice"),
        "{old}"
    );

    // SIGHUP never stops the server.
    let _w = s.login("alice", "alice-pw");
}

#[test]
fn without_log_file_sighup_is_harmless() {
    let s = TestServer::start();
    util::signal(&s.child, "HUP");
    assert!(
        eventually(Duration::from_secs(5), || s
            .log()
            .contains("nothing to reopen")),
        "{}",
        s.log()
    );
    let _w = s.login("alice", "alice-pw");
}

#[test]
fn unwritable_log_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("miniftp.toml");
    let bad = dir.path().join("no/such/dir/miniftp.log");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nroot = {:?}\nlog_file = {:?}\n",
            dir.path().join("data").to_str().unwrap(),
            bad.to_str().unwrap()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(util::BIN)
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_remove("MINIFTP_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains(bad.to_str().unwrap()),
        "{}",
        util::stderr(&out)
    );
}
