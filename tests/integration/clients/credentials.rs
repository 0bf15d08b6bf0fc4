//! Where the clients get the user name and password: MINIFTP_PASSWORD,
//! --password-file, ~/.netrc (and NETRC), MINIFTP_USER, --user, $USER; no
//! source and no terminal is exit 4; the password never shows in the
//! server's log or the client's output.

use std::process::Output;

use crate::clients::fx::*;
use crate::util::*;

fn two_users() -> TestServer {
    TestServer::with(Opts {
        users: vec![("alice", "alice-pw", "100M"), ("bob", "bob-pw", "100M")],
        ..Opts::default()
    })
}

/// `put LOCAL NAME` with exactly this environment for credentials
/// (MINIFTP_USER, MINIFTP_PASSWORD, USER, LOGNAME, NETRC cleared first).
fn put_as(srv: &TestServer, extra: &[&str], name: &str, env: &[(&str, &str)]) -> Output {
    let f = write(&srv.dir.path().join("l").join(name), name.as_bytes());
    let mut cmd = client(srv);
    cmd.arg("put")
        .args(extra)
        .arg(&f)
        .arg(name)
        .env_remove("USER")
        .env_remove("LOGNAME")
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[track_caller]
fn stored(srv: &TestServer, user: &str, name: &str) {
    assert_eq!(
        read(&srv.home(user).join(name)),
        name.as_bytes(),
        "{name} not in {user}'s home"
    );
}

#[test]
fn password_from_the_environment() {
    let srv = TestServer::start();
    let o = put_as(
        &srv,
        &[],
        "e1",
        &[("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", PW)],
    );
    exit_is(&o, 0);
    stored(&srv, "alice", "e1");
    let o = put_as(
        &srv,
        &[],
        "e2",
        &[("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", "not-it")],
    );
    exit_is(&o, 4);
    assert!(!srv.home("alice").join("e2").exists());
}

#[test]
fn password_file() {
    let srv = TestServer::start();
    let dir = local(&srv, "secrets");
    let good = write(&dir.join("pw"), b"alice-pw\n");
    let crlf = write(&dir.join("pw-crlf"), b"alice-pw\r\nsecond line\n");
    let bare = write(&dir.join("pw-bare"), b"alice-pw");
    let bad = write(&dir.join("pw-bad"), b"alice-pw \n");
    let user = [("MINIFTP_USER", "alice")];
    for (i, f) in [&good, &crlf, &bare].iter().enumerate() {
        let name = format!("f{i}");
        let o = put_as(&srv, &["--password-file", s(f)], &name, &user);
        exit_is(&o, 0);
        stored(&srv, "alice", &name);
    }
    exit_is(&put_as(&srv, &["--password-file", s(&bad)], "f3", &user), 4);

    // MINIFTP_PASSWORD takes precedence over --password-file.
    let env = [("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", PW)];
    exit_is(&put_as(&srv, &["--password-file", s(&bad)], "f4", &env), 0);
    let env = [("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", "wrong")];
    exit_is(&put_as(&srv, &["--password-file", s(&good)], "f5", &env), 4);
}

#[test]
fn netrc_gives_user_and_password() {
    let srv = two_users();
    let home = srv.dir.path();
    let netrc = home.join(".netrc");
    // `machine HOST login NAME password PW`: both the user and the password.
    write(
        &netrc,
        b"machine other.example login bob password bob-pw\n\
          machine 127.0.0.1 login alice password alice-pw\n",
    );
    exit_is(&put_as(&srv, &[], "n1", &[]), 0);
    stored(&srv, "alice", "n1");
    // The multi-line layout.
    write(
        &netrc,
        b"machine 127.0.0.1\n  login bob\n  password bob-pw\n",
    );
    exit_is(&put_as(&srv, &[], "n2", &[]), 0);
    stored(&srv, "bob", "n2");
    // A `default` entry.
    write(
        &netrc,
        b"machine elsewhere login x password y\ndefault login alice password alice-pw\n",
    );
    exit_is(&put_as(&srv, &[], "n3", &[]), 0);
    stored(&srv, "alice", "n3");
    // The password is used only for its own login (or when it has none).
    write(&netrc, b"machine 127.0.0.1 login alice password alice-pw\n");
    let o = put_as(&srv, &["--user", "bob"], "n4", &[]);
    exit_is(&o, 4);
    write(&netrc, b"machine 127.0.0.1 password bob-pw\n");
    exit_is(&put_as(&srv, &["--user", "bob"], "n5", &[]), 0);
    stored(&srv, "bob", "n5");
    // NETRC names another file.
    std::fs::remove_file(&netrc).unwrap();
    let other = write(
        &home.join("elsewhere/netrc"),
        b"machine 127.0.0.1 login alice password alice-pw\n",
    );
    exit_is(&put_as(&srv, &[], "n6", &[("NETRC", s(&other))]), 0);
    stored(&srv, "alice", "n6");
}

#[test]
fn user_from_flag_environment_and_user_variable() {
    let srv = two_users();
    let env = [("MINIFTP_USER", "bob"), ("MINIFTP_PASSWORD", "bob-pw")];
    exit_is(&put_as(&srv, &[], "u1", &env), 0);
    stored(&srv, "bob", "u1");
    // --user (and -u) override MINIFTP_USER.
    let env = [("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", "bob-pw")];
    exit_is(&put_as(&srv, &["--user", "bob"], "u2", &env), 0);
    stored(&srv, "bob", "u2");
    exit_is(&put_as(&srv, &["-u", "bob"], "u3", &env), 0);
    stored(&srv, "bob", "u3");
    // Else $USER, else $LOGNAME.
    let env = [("USER", "bob"), ("MINIFTP_PASSWORD", "bob-pw")];
    exit_is(&put_as(&srv, &[], "u4", &env), 0);
    stored(&srv, "bob", "u4");
    let env = [("LOGNAME", "bob"), ("MINIFTP_PASSWORD", "bob-pw")];
    exit_is(&put_as(&srv, &[], "u5", &env), 0);
    stored(&srv, "bob", "u5");
}

#[test]
fn no_password_and_no_terminal_exits_4() {
    let srv = TestServer::start();
    seed(&srv, &[("f", b"f")]);
    let user = [("MINIFTP_USER", "alice")];
    let o = put_as(&srv, &[], "p1", &user);
    exit_is(&o, 4);
    let err = stderr(&o);
    for hint in [
        "no password",
        "MINIFTP_PASSWORD",
        "--password-file",
        ".netrc",
    ] {
        assert!(err.contains(hint), "message lacks {hint:?}: {err}");
    }
    assert_eq!(stdout(&o), "");
    let out = srv.dir.path().join("got");
    let o = srv.cli_env(&["get", "f", s(&out)], &user, None);
    exit_is(&o, 4);
    assert!(stderr(&o).contains("no password"), "{}", stderr(&o));
    assert!(!out.exists());
    let o = srv.cli_env(&["shell"], &user, Some(b"mkdir x\n"));
    exit_is(&o, 4);
    assert!(stderr(&o).contains("no password"), "{}", stderr(&o));
    assert!(!srv.home("alice").join("x").exists());
}

#[test]
fn the_password_is_never_logged_nor_printed() {
    const SECRET: &str = "Tr0ub4dor-Zq9x";
    const WRONG: &str = "Wr0ng-Guess-Kp4";
    let srv = TestServer::with(Opts {
        users: vec![("dave", SECRET, "100M")],
        env: vec![("RUST_LOG", "trace".into())],
        ..Opts::default()
    });
    let dir = local(&srv, "l");
    let f = write(&dir.join("f"), &data(100_000, 40));
    let pwfile = write(&dir.join("pw"), format!("{SECRET}\n").as_bytes());
    let ok = [
        ("MINIFTP_USER", "dave"),
        ("MINIFTP_PASSWORD", SECRET),
        ("RUST_LOG", "trace"),
    ];
    let bad = [
        ("MINIFTP_USER", "dave"),
        ("MINIFTP_PASSWORD", WRONG),
        ("RUST_LOG", "trace"),
    ];
    let mut outs = vec![
        srv.cli_env(&["put", "-v", s(&f), "f"], &ok, None),
        srv.cli_env(&["get", "-v", "f", s(&dir.join("back"))], &ok, None),
        srv.cli_env(&["get", "-v", "f", "-"], &ok, None),
        srv.cli_env(
            &["put", "-v", "--password-file", s(&pwfile), s(&f), "g"],
            &[("MINIFTP_USER", "dave"), ("RUST_LOG", "trace")],
            None,
        ),
        srv.cli_env(&["shell"], &ok, Some(b"ls -l\nquota\npwd\n")),
    ];
    for o in &outs {
        exit_is(o, 0);
    }
    outs.push(srv.cli_env(&["put", "-v", s(&f), "h"], &bad, None));
    outs.push(srv.cli_env(&["shell"], &bad, Some(b"ls\n")));
    for o in &outs[5..] {
        exit_is(o, 4);
    }
    for o in &outs {
        for pw in [SECRET, WRONG] {
            assert!(
                !stderr(o).contains(pw) && !String::from_utf8_lossy(&o.stdout).contains(pw),
                "the client printed the password:\n{}{}",
                stdout(o),
                stderr(o)
            );
        }
    }
    let log = srv.log();
    assert!(log.contains("dave"), "the server logged no session: {log}");
    for pw in [SECRET, WRONG] {
        assert!(!log.contains(pw), "the server logged the password:\n{log}");
    }
}

/// A MINIFTP_* variable set to the empty string counts as unset
/// (miniftp(1), ENVIRONMENT): the next source is used.
#[test]
fn empty_environment_variables_count_as_unset() {
    let srv = two_users();
    // MINIFTP_USER= → $USER.
    let env = [
        ("MINIFTP_USER", ""),
        ("USER", "bob"),
        ("MINIFTP_PASSWORD", "bob-pw"),
    ];
    exit_is(&put_as(&srv, &[], "v1", &env), 0);
    stored(&srv, "bob", "v1");
    // MINIFTP_PASSWORD= → --password-file.
    let pw = write(&local(&srv, "secrets").join("pw"), b"alice-pw\n");
    let env = [("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", "")];
    exit_is(&put_as(&srv, &["--password-file", s(&pw)], "v2", &env), 0);
    stored(&srv, "alice", "v2");
    // MINIFTP_CA_FILE= → as if absent.
    let env = [
        ("MINIFTP_USER", "alice"),
        ("MINIFTP_PASSWORD", PW),
        ("MINIFTP_CA_FILE", ""),
    ];
    exit_is(&put_as(&srv, &[], "v3", &env), 0);
    stored(&srv, "alice", "v3");
    // MINIFTP_SERVER= → the default address, not "" (a usage error).
    let f = write(&local(&srv, "l").join("v4"), b"v4");
    let o = client(&srv)
        .args(["put", "--retries", "0", s(&f), "v4"])
        .env("MINIFTP_SERVER", "")
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .output()
        .unwrap();
    assert_ne!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(!stderr(&o).contains("bad server address"), "{}", stderr(&o));
    // MINIFTP_CONFIG= → as if absent (useradd with --root alone).
    let root = srv.dir.path().join("other-root");
    let o = std::process::Command::new(BIN)
        .args(["useradd", "--list", "--root"])
        .arg(&root)
        .env("MINIFTP_CONFIG", "")
        .output()
        .unwrap();
    exit_is(&o, 0);
}
