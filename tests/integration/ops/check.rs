//! `serve --check` (the upgrade procedure's dry start, docs/OPERATIONS.md):
//! it checks what a start checks and changes nothing, even beside the
//! running server; and a second full server on the same data directory is
//! refused before it prints a fingerprint or sweeps anything.

use std::process::{Command, Stdio};

use crate::util::*;

fn serve(config: &std::path::Path, extra: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .args(extra)
        .env_remove("MINIFTP_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("run miniftp serve")
}

#[test]
fn check_beside_a_running_server_changes_nothing() {
    let s = TestServer::with(Opts {
        users: vec![("alice", "alice-pw", "10M")],
        ..Opts::default()
    });
    // A leftover partial, as a start's sweep would remove (the home is
    // made at the first login).
    s.login("alice", "alice-pw");
    let leftover = s.home("alice").join(".f.miniftp-part.abcd.old");
    std::fs::write(&leftover, b"not yours to sweep").unwrap();

    let out = serve(&s.config, &["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(stdout.contains("configuration OK: 1 users"), "{stdout}");
    assert!(leftover.exists(), "--check swept a partial");

    // A second server on the same data directory: refused (exit 1) before
    // its fingerprint line and before its sweep.
    let out = serve(&s.config, &["--listen", "127.0.0.1:0"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(!stdout.contains("fingerprint"), "{stdout}");
    assert!(leftover.exists(), "a refused second server swept a partial");

    // A misspelt key: exit 2 naming it, as a real start.
    let bad = s.dir.path().join("bad.toml");
    let toml = std::fs::read_to_string(&s.config).unwrap();
    std::fs::write(&bad, format!("idle_timout_secs = 5\n{toml}")).unwrap();
    let out = serve(&bad, &["--check"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("idle_timout_secs"),
        "{out:?}"
    );
    // The running server was never disturbed.
    s.login("alice", "alice-pw");
}
