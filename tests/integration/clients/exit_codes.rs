//! Every exit code of the documented table (README "Exit codes", miniftp(1)
//! EXIT STATUS, src/error.rs `Exit`), provoked through the real client.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Stdio;

use serde_json::json;

use crate::clients::fx::*;
use crate::util::*;

/// A port with nothing listening on it.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

const NET: [&str; 4] = ["--retries", "0", "--connect-timeout", "2"];

#[test]
fn exit_0_success_and_1_other_failure() {
    let srv = TestServer::start();
    seed(&srv, &[("d/f", b"x")]);
    let o = run_in(&srv, &["shell"], Some(b"mkdir e\n"));
    exit_is(&o, 0);
    // 555 (already exists) is "any other failure".
    let o = run_in(&srv, &["shell"], Some(b"mkdir d\n"));
    exit_is(&o, 1);
    assert!(stderr(&o).contains("line 1: mkdir d:"), "{}", stderr(&o));
}

#[test]
fn exit_2_usage() {
    let srv = TestServer::start();
    let f = write(&local(&srv, "l").join("f"), b"f");
    let cases: Vec<Vec<&str>> = vec![
        vec!["put", "--bogus", s(&f), "x"],
        vec!["get", "--frobnicate", "x", "y"],
        vec!["shell", "--bogus"],
        vec!["put", s(&f)],
        vec!["get"],
        vec!["put", "--retries", "many", s(&f), "x"],
        vec!["put", "-q", "-v", s(&f), "x"],
        vec!["frobnicate"],
        vec![],
    ];
    for args in cases {
        let o = run(&srv, &args);
        exit_is(&o, 2);
        assert!(!stderr(&o).is_empty(), "{args:?}: no message");
        assert_eq!(stdout(&o), "", "{args:?}");
    }
    // `-` with several files.
    let o = run_in(&srv, &["put", "-", s(&f), "x"], Some(b"data"));
    exit_is(&o, 2);
    assert!(stderr(&o).contains("only LOCAL"), "{}", stderr(&o));
    seed(&srv, &[("a", b"a"), ("b", b"b")]);
    let o = run(&srv, &["get", "a", "b", "-"]);
    exit_is(&o, 2);
    assert_eq!(o.stdout, b"");
    // A server address that is not HOST:PORT.
    let o = srv.cli_env(
        &["put", "--server", "no-port-here", s(&f), "x"],
        &[("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", PW)],
        None,
    );
    exit_is(&o, 2);
    // Nothing was stored by any of these.
    let mut w = srv.login("alice", PW);
    assert_eq!(op(&mut w, "stat", "x")["code"], 550);
}

#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn exit_3_connection() {
    let srv = TestServer::start();
    let f = write(&local(&srv, "l").join("f"), b"f");
    let addr = format!("127.0.0.1:{}", closed_port());
    let mut args = vec!["--server", addr.as_str()];
    args.extend(NET);
    for cmd in [
        [&["put"][..], &args, &[s(&f), "f"]].concat(),
        [&["get"][..], &args, &["f", "out"]].concat(),
        [&["shell"][..], &args].concat(),
    ] {
        let o = run_in(&srv, &cmd, Some(b"pwd\n"));
        exit_is(&o, 3);
        let err = stderr(&o);
        assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    }

    // A server speaking another protocol version.
    let addr = fake_server(1, |mut c| {
        frame(
            &mut c,
            json!({"code": 220, "msg": "miniftp 9.0 ready", "protocol": 2, "server": "miniftp/9.0"}),
        );
        let _ = read_frame(&mut c);
    });
    let o = run(
        &srv,
        &[&["put", "--server", &addr][..], &NET, &[s(&f), "f"]].concat(),
    );
    exit_is(&o, 3);
    assert!(stderr(&o).contains("protocol"), "{}", stderr(&o));

    // Something that is not a miniftp server at all.
    let addr = fake_server(1, |mut c| {
        let _ = c.write_all(b"SSH-2.0-OpenSSH_9.6\r\n");
        let _ = read_frame(&mut c);
    });
    let o = run(
        &srv,
        &[&["get", "--server", &addr][..], &NET, &["f", "-"]].concat(),
    );
    exit_is(&o, 3);
    assert_eq!(o.stdout, b"");

    // The connection lost after the login.
    let addr = fake_server(1, |mut c| {
        frame(
            &mut c,
            json!({"code": 220, "msg": "ready", "protocol": 1, "server": "miniftp/0.1.0"}),
        );
        let _ = read_frame(&mut c);
        frame(
            &mut c,
            json!({"code": 230, "msg": "welcome", "user": "alice", "cwd": "/"}),
        );
        let _ = read_frame(&mut c);
    });
    let o = run(
        &srv,
        &[&["get", "--server", &addr][..], &NET, &["f", "-"]].concat(),
    );
    exit_is(&o, 3);
    assert_eq!(o.stdout, b"");

    // A server that stops answering: --timeout gives up (a connection
    // error too).
    let addr = fake_server(1, |mut c| {
        frame(
            &mut c,
            json!({"code": 220, "msg": "ready", "protocol": 1, "server": "miniftp/0.1.0"}),
        );
        let _ = read_frame(&mut c);
        frame(
            &mut c,
            json!({"code": 230, "msg": "welcome", "user": "alice", "cwd": "/"}),
        );
        // Reads the next request and never answers it.
        let _ = read_frame(&mut c);
        let _ = read_frame(&mut c);
    });
    let started = std::time::Instant::now();
    let o = run(
        &srv,
        &[
            &["get", "--server", &addr, "--timeout", "1"][..],
            &NET,
            &["f", "-"],
        ]
        .concat(),
    );
    exit_is(&o, 3);
    assert!(
        started.elapsed().as_secs_f64() < 8.0,
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn exit_4_authentication() {
    let srv = TestServer::with(Opts {
        toml: "[limits]\nmax_failed_logins = 2\nfailed_login_delay_ms = 1\n".into(),
        ..Opts::default()
    });
    seed(&srv, &[("f", b"f")]);
    let f = write(&local(&srv, "l").join("f"), b"f");
    let bad = [("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", "wrong")];
    let o = srv.cli_env(&["put", s(&f), "g"], &bad, None);
    exit_is(&o, 4);
    assert!(stderr(&o).contains("login incorrect"), "{}", stderr(&o));
    let o = srv.cli_env(&["get", "f", "-"], &bad, None);
    exit_is(&o, 4);
    assert_eq!(o.stdout, b"");
    // Locked out now (429): even the right password gets 4.
    let o = run(&srv, &["get", "f", "-"]);
    exit_is(&o, 4);
    assert!(
        stderr(&o).contains("too many failed logins"),
        "{}",
        stderr(&o)
    );
    assert!(!srv.home("alice").join("g").exists());
}

#[test]
fn exit_5_not_found() {
    let srv = TestServer::start();
    seed(&srv, &[("d/f", b"f")]);
    let dir = local(&srv, "l");
    let o = run(&srv, &["get", "nope.txt", s(&dir.join("x"))]);
    exit_is(&o, 5);
    assert!(stderr(&o).contains("nope.txt"), "{}", stderr(&o));
    exit_is(&run(&srv, &["get", "-r", "nodir", s(&dir)]), 5);
    exit_is(&run(&srv, &["get", "d/nope", "-"]), 5);
    let o = run(&srv, &["put", s(&dir.join("missing.bin")), "x"]);
    exit_is(&o, 5);
    assert!(stderr(&o).contains("missing.bin"), "{}", stderr(&o));
    let f = write(&dir.join("f"), b"f");
    exit_is(&run(&srv, &["put", s(&f), "no/such/dir/f"]), 5);
    assert_eq!(names(&dir), ["f"]);
}

#[test]
fn exit_6_refused_by_the_jail() {
    let srv = TestServer::start();
    seed(&srv, &[("f", b"f")]);
    let dir = local(&srv, "l");
    let f = write(&dir.join("f"), b"f");
    std::fs::write(srv.root().join("outside.txt"), b"secret").unwrap();
    for remote in ["../outside.txt", "/../outside.txt", "a/../../outside.txt"] {
        let o = run(&srv, &["get", remote, s(&dir.join("x"))]);
        exit_is(&o, 6);
        let o = run(&srv, &["put", s(&f), remote]);
        exit_is(&o, 6);
    }
    exit_is(&run(&srv, &["get", "../../users.toml", "-"]), 6);
    exit_is(&run(&srv, &["put", "-p", s(&f), "../x/y"]), 6);
    // A symlink that leads out of the home.
    std::os::unix::fs::symlink(srv.root(), srv.home("alice").join("out")).unwrap();
    let o = run(&srv, &["get", "out/outside.txt", "-"]);
    exit_is(&o, 6);
    assert_eq!(o.stdout, b"");
    exit_is(&run(&srv, &["put", s(&f), "out/planted"]), 6);
    assert_eq!(names(&dir), ["f"]);
    assert_eq!(read(&srv.root().join("outside.txt")), b"secret");
    assert!(!srv.root().join("planted").exists());
    assert!(!srv.root().join("x").exists());
}

#[test]
fn exit_7_quota() {
    let srv = TestServer::with(Opts {
        users: vec![("alice", "alice-pw", "1M")],
        ..Opts::default()
    });
    let dir = local(&srv, "l");
    let big = write(&dir.join("big"), &data(2 << 20, 50));
    let small1 = write(&dir.join("small1"), &data(1000, 51));
    let small2 = write(&dir.join("small2"), &data(2000, 52));
    let home = srv.home("alice");
    let o = run(&srv, &["put", s(&big), "big"]);
    exit_is(&o, 7);
    assert!(stderr(&o).contains("quota"), "{}", stderr(&o));
    assert!(!home.join("big").exists());
    // Standard input has no size: refused during the body.
    let o = run_in(&srv, &["put", "-", "stream"], Some(&data(2 << 20, 53)));
    exit_is(&o, 7);
    assert!(!home.join("stream").exists());
    // When one file fails the next is tried; the status is the first
    // failure's.
    let o = run(&srv, &["put", s(&small1), s(&big), s(&small2), "/"]);
    exit_is(&o, 7);
    same(&home.join("small1"), &read(&small1));
    same(&home.join("small2"), &read(&small2));
    assert!(!home.join("big").exists());
    assert!(partials(&home).is_empty(), "{:?}", partials(&home));
}

/// Rewrites the digest cached in the `user.miniftp.sha256` xattr of `path`
/// ("HEX SIZE MTIME_NS STORED_AT_NS") with a wrong one, keeping size and
/// mtime and claiming it was stored now (plus a second, so that the ctime
/// this rewrite leaves is inside the window a stored digest allows): a
/// server that did not store it itself (a restart) trusts it. This stands
/// for a cache gone bad, which only the client's own check can catch.
fn make_cached_digest_lie(path: &std::path::Path) {
    let mut buf = [0u8; 256];
    let n = rustix::fs::getxattr(path, "user.miniftp.sha256", &mut buf)
        .expect("the server caches the digest in user.miniftp.sha256");
    let value = std::str::from_utf8(&buf[..n]).unwrap().to_string();
    let fields: Vec<&str> = value.split(' ').collect();
    assert_eq!(fields.len(), 4, "{value}");
    assert_eq!(fields[0].len(), 64, "{value}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
        + 1_000_000_000;
    let lie = format!(
        "{} {} {} {now}",
        sha256_hex(b"something else"),
        fields[1],
        fields[2]
    );
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    rustix::fs::setxattr(
        path,
        "user.miniftp.sha256",
        lie.as_bytes(),
        rustix::fs::XattrFlags::REPLACE,
    )
    .unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), mtime);
}

#[test]
fn exit_8_integrity() {
    let mut srv = TestServer::start();
    let body = data(3_000_000, 60);
    seed(&srv, &[("f.bin", &body), ("g.bin", b"small file")]);
    // A running server knows the exact state each digest it stored left,
    // so the lie must meet a fresh one.
    srv.kill_and_restart();
    make_cached_digest_lie(&srv.home("alice").join("f.bin"));
    make_cached_digest_lie(&srv.home("alice").join("g.bin"));
    let dir = local(&srv, "l");
    let o = run(&srv, &["get", "f.bin", s(&dir.join("f.bin"))]);
    exit_is(&o, 8);
    assert!(stderr(&o).contains("SHA-256"), "{}", stderr(&o));
    // Nothing under the real name, and no partial kept.
    assert_eq!(names(&dir), Vec::<String>::new());
    // An existing local file is left alone.
    write(&dir.join("g.bin"), b"previous");
    let o = run(&srv, &["get", "g.bin", s(&dir)]);
    exit_is(&o, 8);
    assert_eq!(read(&dir.join("g.bin")), b"previous");
    assert_eq!(names(&dir), ["g.bin"]);
    // To standard output the data went out, and the mismatch is reported.
    let o = run(&srv, &["get", "f.bin", "-"]);
    exit_is(&o, 8);
    assert!(o.stdout == body);
}

#[test]
fn exit_9_local_io() {
    let srv = TestServer::start();
    seed(&srv, &[("f", b"remote file")]);
    let dir = local(&srv, "l");
    let plain = write(&dir.join("somefile"), b"plain");
    let o = run(&srv, &["get", "f", s(&plain.join("x"))]);
    exit_is(&o, 9);
    assert!(stderr(&o).contains("somefile"), "{}", stderr(&o));
    assert_eq!(read(&plain), b"plain");
    // Several files into a "directory" that is a file.
    seed(&srv, &[("g", b"g")]);
    exit_is(&run(&srv, &["get", "f", "g", s(&plain)]), 9);
    // Standard input that cannot be read (a directory).
    let o = client(&srv)
        .args(["put", "-", "stdin-copy"])
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdin(std::fs::File::open(&dir).unwrap())
        .output()
        .unwrap();
    exit_is(&o, 9);
    assert!(stderr(&o).contains("standard input"), "{}", stderr(&o));
    assert!(!srv.home("alice").join("stdin-copy").exists());
    // A device that refuses the bytes is named as what it is; also for a
    // body large enough to be written on its own thread.
    seed(&srv, &[("big", &data(6 << 20, 9)[..])]);
    for name in ["f", "big"] {
        let o = run(&srv, &["get", name, "/dev/full"]);
        exit_is(&o, 9);
        assert!(stderr(&o).contains("/dev/full"), "{}", stderr(&o));
    }
}

/// A server name that doesn't resolve is a connection failure (3), like a
/// refused connection; an address that isn't HOST:PORT is a usage error.
#[test]
fn an_unresolvable_host_is_a_connection_failure() {
    let srv = TestServer::start();
    let f = write(&local(&srv, "l").join("f"), b"x");
    for (server, want) in [
        ("no-such-host.invalid:9000", 3),
        ("127.0.0.1", 2),
        ("127.0.0.1:notaport", 2),
        (":9000", 2),
    ] {
        let o = client(&srv)
            .args(["put", "--retries", "0", s(&f), "f"])
            .env("MINIFTP_SERVER", server)
            .env("MINIFTP_USER", "alice")
            .env("MINIFTP_PASSWORD", PW)
            .output()
            .unwrap();
        exit_is(&o, want);
        assert!(stderr(&o).contains(server), "{server}: {}", stderr(&o));
    }
}

#[test]
fn exit_9_standard_output_closed() {
    let srv = TestServer::start();
    seed(&srv, &[("big", &data(8 << 20, 61))]);
    let mut child = client(&srv)
        .args(["get", "big", "-"])
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Like `| head -c 10`: read a little, then close the pipe.
    let mut out = child.stdout.take().unwrap();
    let mut first = [0u8; 10];
    out.read_exact(&mut first).unwrap();
    drop(out);
    let o = child.wait_with_output().unwrap();
    exit_is(&o, 9);
}

#[test]
fn one_failed_download_does_not_stop_the_others() {
    let srv = TestServer::start();
    seed(&srv, &[("a", b"a"), ("b", b"b"), ("c", b"c")]);
    let dir = local(&srv, "l");
    // out/b is a directory: b cannot be renamed into place.
    std::fs::create_dir_all(dir.join("out/b")).unwrap();
    let o = run(&srv, &["get", "a", "b", "c", s(&dir.join("out"))]);
    exit_is(&o, 9);
    assert_eq!(read(&dir.join("out/a")), b"a");
    assert_eq!(read(&dir.join("out/c")), b"c");
    assert!(dir.join("out/b").is_dir());
    // "A partial download is kept for -c only when the connection was
    // lost; after any other failure it is deleted."
    assert_eq!(names(&dir.join("out")), ["a", "b", "c"]);
}

#[test]
fn exit_10_server() {
    // 450: another transfer is writing the partial upload being resumed.
    let srv = TestServer::start();
    let body = data(1 << 20, 70);
    let f = write(&local(&srv, "l").join("f"), &body);
    let holder = upload_partly(&srv, "f", &body, 100_000);
    let o = run(&srv, &["put", "-c", s(&f), "f"]);
    exit_is(&o, 10);
    drop(holder);

    // 421: the server is full (max_connections = 1).
    let srv = TestServer::with(Opts {
        toml: "[limits]\nmax_connections = 1\n".into(),
        ..Opts::default()
    });
    let f = write(&local(&srv, "l").join("f"), b"f");
    let holder = srv.connect();
    let o = run(&srv, &[&["put"][..], &NET, &[s(&f), "f"]].concat());
    exit_is(&o, 10);
    let o = run(&srv, &[&["get"][..], &NET, &["f", "-"]].concat());
    exit_is(&o, 10);
    drop(holder);
}
