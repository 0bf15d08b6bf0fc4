//! What a user reads: plain words, no Rust or library internals (`-v`
//! adds the cause), the failing option named, the server resolved before
//! credentials are needed.

use crate::clients::fx::*;
use crate::util::*;

/// Asserts that nothing internal leaks into `text`.
#[track_caller]
fn plain(text: &str) {
    for leak in [
        "os error",
        "entity not found",
        "docs.rs",
        "Kind(",
        "Custom {",
    ] {
        assert!(!text.contains(leak), "{leak:?} in {text:?}");
    }
}

#[test]
fn a_missing_password_file_names_the_option_and_is_exit_4() {
    let srv = TestServer::start();
    let f = write(&srv.dir.path().join("x.txt"), b"x");
    let o = srv.cli_env(
        &[
            "put",
            "--password-file",
            "/nonexistent/pw",
            "--user",
            "alice",
            s(&f),
            "x.txt",
        ],
        &[],
        None,
    );
    exit_is(&o, 4);
    let err = stderr(&o);
    assert!(
        err.contains("--password-file /nonexistent/pw: no such file or directory"),
        "{err}"
    );
    plain(&err);
}

#[test]
fn refused_connections_and_missing_files_in_plain_words() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let srv = TestServer::start();
    let addr = format!("127.0.0.1:{port}");
    let o = run(&srv, &["ls", "--retries", "0", "-s", &addr]);
    exit_is(&o, 3);
    assert!(stderr(&o).contains("connection refused"), "{}", stderr(&o));
    plain(&stderr(&o));
    // -v shows the cause.
    let f = write(&srv.dir.path().join("y.txt"), b"y");
    let o = run(
        &srv,
        &["put", "-v", "--retries", "0", "-s", &addr, s(&f), "y"],
    );
    exit_is(&o, 3);
    assert!(stderr(&o).contains("miniftp: cause: "), "{}", stderr(&o));
    // A local file that is not there.
    let o = run(&srv, &["put", "/nonexistent/file.txt", "z"]);
    exit_is(&o, 5);
    assert!(
        stderr(&o).contains("/nonexistent/file.txt: no such file or directory"),
        "{}",
        stderr(&o)
    );
    plain(&stderr(&o));
}

#[test]
fn an_unresolvable_server_is_exit_3_before_any_password_is_needed() {
    let srv = TestServer::start();
    let o = srv.cli_env(
        &["ls", "-s", "no-such-host.invalid:9000", "--user", "alice"],
        &[],
        None,
    );
    exit_is(&o, 3);
    let err = stderr(&o);
    assert!(err.contains("does not resolve"), "{err}");
    plain(&err);
}

#[test]
fn a_pending_request_hears_that_it_waits_and_short_passwords_are_refused() {
    let srv = TestServer::with(Opts {
        toml: "registration = \"approval\"\n[auth]\nmin_password_len = 12\n".into(),
        users: vec![],
        ..Opts::default()
    });
    let mut w = srv.connect();
    let r = w.call(serde_json::json!({"op": "register", "user": "dora", "password": "short-pw"}));
    assert_eq!(r["code"], 501, "{r}");
    assert!(r["msg"].as_str().unwrap().contains("too short"), "{r}");
    let r = w.call(
        serde_json::json!({"op": "register", "user": "dora", "password": "a-long-enough-pw"}),
    );
    assert_eq!(r["code"], 202, "{r}");
    let mut w = srv.connect();
    let r =
        w.call(serde_json::json!({"op": "login", "user": "dora", "password": "wrong-password!"}));
    assert_eq!(r["code"], 530);
    assert!(
        !r["msg"].as_str().unwrap().contains("approval"),
        "told a wrong password: {r}"
    );
    let mut w = srv.connect();
    let r =
        w.call(serde_json::json!({"op": "login", "user": "dora", "password": "a-long-enough-pw"}));
    assert_eq!(r["code"], 530);
    assert!(
        r["msg"]
            .as_str()
            .unwrap()
            .contains("waiting for the operator's approval"),
        "{r}"
    );
    // useradd applies the same rule.
    let mut child = std::process::Command::new(BIN)
        .args(["useradd", "erin", "--password-stdin", "--config"])
        .arg(&srv.config)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"tiny\n").unwrap();
    let o = child.wait_with_output().unwrap();
    exit_is(&o, 2);
    assert!(stderr(&o).contains("too short"), "{}", stderr(&o));
}

#[test]
fn netrc_with_quoted_tokens_and_a_warning_when_others_can_read_it() {
    use std::os::unix::fs::PermissionsExt;
    let srv = TestServer::with(Opts {
        users: vec![("alice", "pw with \"quotes\"", "10M")],
        ..Opts::default()
    });
    let netrc = srv.dir.path().join(".netrc");
    std::fs::write(
        &netrc,
        "machine 127.0.0.1 login alice password \"pw with \\\"quotes\\\"\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = write(&srv.dir.path().join("n.txt"), b"n");
    let o = srv.cli_env(&["put", s(&f), "n.txt"], &[], None);
    exit_is(&o, 0);
    assert!(
        stderr(&o).contains("can be read by other users"),
        "{}",
        stderr(&o)
    );
    std::fs::set_permissions(&netrc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = srv.cli_env(&["put", s(&f), "n2.txt"], &[], None);
    exit_is(&o, 0);
    assert_eq!(stderr(&o), "");
    assert!(srv.home("alice").join("n2.txt").exists());
}
