//! `miniftp admin who | kick USER | lockouts | unlock ADDR` over the
//! owner-only socket in the data directory, and `limits.lockout_exempt`.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::thread;
use std::time::Duration;

use serde_json::json;

use super::ox::*;
use crate::server_core::common::{assert_421_then_eof, login_req, wait_for_log};
use crate::util::{self, data, eventually, TestServer, Wire};

/// The line of `who` for `user`, waiting (5 s) for one containing `part`.
fn who_line(s: &TestServer, user: &str, part: &str) -> String {
    let mut line = String::new();
    let found = eventually(Duration::from_secs(5), || {
        let out = admin_ok(s, &["who"]);
        line = out
            .lines()
            .find(|l| l.starts_with(&format!("{user} ")) && l.contains(part))
            .unwrap_or_default()
            .to_string();
        !line.is_empty()
    });
    assert!(
        found,
        "no `who` line for {user} with {part:?}: {}",
        admin_ok(s, &["who"])
    );
    line
}

/// `who` lists every connection with its user, address, listener and the
/// transfer in progress; `kick` ends a user's sessions with a 421 (an
/// upload kept for resuming, a download cut off), and nobody else's.
#[test]
fn who_lists_sessions_and_kick_ends_them() {
    let s = rated(
        &[
            ("alice", "alice-pw", "0", "0"),
            ("bob", "bob-pw", "0", "1M"),
            ("carol", "carol-pw", "1M", "0"),
        ],
        "",
    );
    let file = data(4 * MIB as usize, 1);
    assert_eq!(
        session(&s.addr, "bob", "bob-pw").put("b.bin", &file)["code"],
        226
    );
    let mut alice = session(&s.addr, "alice", "alice-pw");
    let mut anon = s.connect();
    // bob downloads at 1 MiB/s, carol uploads at 1 MiB/s.
    let (addr, want) = (s.addr.clone(), file.clone());
    let bob = thread::spawn(move || timed_get(&addr, "bob", "bob-pw", "b.bin", &want));
    let mut carol = session(&s.addr, "carol", "carol-pw");
    let r = carol.call(json!({"op": "put", "path": "c.bin", "size": file.len()}));
    assert_eq!(r["code"], 150, "{r}");
    let mut writer = carol.stream.try_clone().unwrap();
    let body = file.clone();
    let writing = thread::spawn(move || {
        let _ = writer.write_all(&body);
    });

    let out = admin_ok(&s, &["who"]);
    assert!(out.starts_with("USER "), "{out}");
    let port = alice.stream.local_addr().unwrap().port();
    let line = who_line(&s, "alice", &format!("127.0.0.1:{port}"));
    assert!(line.contains(" miniftp "), "{line}");
    who_line(&s, "bob", "get \"/b.bin\"");
    who_line(&s, "carol", "put \"/c.bin\"");
    let port = anon.stream.local_addr().unwrap().port();
    assert!(
        out.lines()
            .any(|l| l.starts_with("- ") && l.contains(&format!(":{port}"))),
        "{out}"
    );

    // An idle session: 421, then closed.
    assert_eq!(
        admin_ok(&s, &["kick", "alice"]),
        "closing 1 session(s) of alice\n"
    );
    assert_421_then_eof(&mut alice, "kicked alice");
    assert!(
        wait_for_log(&s, &["kick user=alice", "closed by the operator"]),
        "{}",
        s.log()
    );
    assert!(wait_for_log(
        &s,
        &["session end user=alice", "(closed by the operator)"]
    ));
    // An upload: 421, its partial kept for resuming.
    assert_eq!(
        admin_ok(&s, &["kick", "carol"]),
        "closing 1 session(s) of carol\n"
    );
    assert_421_then_eof(&mut carol, "kicked carol");
    writing.join().unwrap();
    let mut w = session(&s.addr, "carol", "carol-pw");
    let mut kept = json!(null);
    assert!(
        eventually(Duration::from_secs(5), || {
            kept = w.call(json!({"op": "partial", "path": "c.bin"}));
            kept["code"] == 200
        }),
        "no partial kept: {kept}"
    );
    assert!(kept["size"].as_u64().unwrap() > 0, "{kept}");
    assert_eq!(
        admin_ok(&s, &["kick", "nobody"]),
        "nobody has no sessions\n"
    );
    // bob, not kicked, got his whole file, on time.
    let secs = bob.join().unwrap();
    assert!(secs > 3.0, "bob's limit was not applied: {secs} s");
    // The anonymous connection is still served.
    assert_eq!(anon.call(json!({"op": "noop"}))["code"], 200);
}

/// A download in the middle of its body is cut off without a reply (one
/// would read as file bytes); the client sees the connection end early.
#[test]
fn kick_cuts_off_a_download() {
    let s = rated(&[("bob", "bob-pw", "0", "1M")], "");
    let file = data(4 * MIB as usize, 2);
    assert_eq!(
        session(&s.addr, "bob", "bob-pw").put("b.bin", &file)["code"],
        226
    );
    let mut w = session(&s.addr, "bob", "bob-pw");
    let r = w.call(json!({"op": "get", "path": "b.bin"}));
    assert_eq!(r["code"], 150, "{r}");
    who_line(&s, "bob", "get \"/b.bin\"");
    assert_eq!(
        admin_ok(&s, &["kick", "bob"]),
        "closing 1 session(s) of bob\n"
    );
    let mut got = Vec::new();
    w.stream.read_to_end(&mut got).unwrap();
    assert!(got.len() < file.len(), "the whole file came after a kick");
    assert!(got[..] == file[..got.len()], "not the file's bytes");
    assert!(
        wait_for_log(&s, &["transfer op=get", "user=bob", "result=aborted"]),
        "{}",
        s.log()
    );
}

/// `lockouts` lists a locked-out address with its failures and time left;
/// `unlock` lifts it at once. The metrics count the lockout and the logins
/// it refused.
#[test]
fn lockouts_are_listed_and_unlocked() {
    let s = rated(
        &[("alice", "alice-pw", "0", "0")],
        "[limits]\nmax_failed_logins = 2\nfailed_login_delay_ms = 1\nlockout_secs = 600\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    assert_eq!(admin_ok(&s, &["lockouts"]), "no addresses locked out\n");
    let mut w = s.connect();
    assert_eq!(w.call(login_req("alice", "wrong"))["code"], 530);
    assert_eq!(w.call(login_req("alice", "wrong"))["code"], 429);
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 429);
    let out = admin_ok(&s, &["lockouts"]);
    let line = out
        .lines()
        .find(|l| l.starts_with("127.0.0.1 "))
        .unwrap_or_else(|| panic!("{out}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[1], "2", "{line}");
    assert!(fields[2].ends_with('s') && fields[2] > "5", "{line}");
    assert!(
        wait_for_log(&s, &["refused op=login", "reason=lockout"]),
        "{}",
        s.log()
    );
    let m = scrape(&s);
    for (series, value) in [
        ("miniftp_lockouts_total", 1.0),
        ("miniftp_logins_total{result=\"failed\"}", 2.0),
        ("miniftp_logins_total{result=\"locked_out\"}", 1.0),
    ] {
        assert_eq!(sample(&m, series), Some(value), "{series} in\n{m}");
    }

    assert_eq!(
        admin_ok(&s, &["unlock", "127.0.0.1"]),
        "unlocked 127.0.0.1\n"
    );
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
    assert_eq!(admin_ok(&s, &["lockouts"]), "no addresses locked out\n");
    assert_eq!(
        admin_ok(&s, &["unlock", "::ffff:192.0.2.1"]),
        "192.0.2.1 was not locked out\n"
    );
    let out = admin(&s, &["unlock", "not-an-address"]);
    assert_eq!(out.status.code(), Some(2), "{}", util::stderr(&out));
}

/// Failed logins from an address in `limits.lockout_exempt` are answered
/// late but never lock it out: the right password still gets in.
#[test]
fn an_exempt_address_is_never_locked_out() {
    let s = rated(
        &[("alice", "alice-pw", "0", "0")],
        "[limits]\nmax_failed_logins = 2\nfailed_login_delay_ms = 1\n\
         lockout_exempt = [\"127.0.0.0/8\"]\n",
    );
    let mut w = s.connect();
    for _ in 0..4 {
        assert_eq!(w.call(login_req("alice", "wrong"))["code"], 530);
    }
    assert_eq!(admin_ok(&s, &["lockouts"]), "no addresses locked out\n");
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
}

/// The socket is the owner's only, and without a server `admin` says so;
/// a stopped server removes it.
#[test]
fn the_admin_socket_is_private_and_goes_with_the_server() {
    let mut s = rated(&[("alice", "alice-pw", "0", "0")], "");
    let sock = s.root().join("admin.sock");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    util::signal(&s.child, "TERM");
    assert!(s.child.wait().unwrap().success());
    assert!(!sock.exists(), "admin.sock left behind");
    let out = admin(&s, &["who"]);
    assert!(!out.status.success());
    let err = util::stderr(&out);
    assert!(
        err.contains("admin.sock") && err.contains("is a server running"),
        "{err}"
    );
    // A socket file left by a server that died is replaced at start.
    let _stale = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    drop(_stale);
    s.kill_and_restart();
    assert!(admin_ok(&s, &["who"]).contains("no connections"));
    let _ = Wire::connect(&s.addr);
}
