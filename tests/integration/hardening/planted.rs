//! Things another local account puts into a home behind the server's back
//! (issue 12, items 4 and 7): SECURITY.md allows that an account on the
//! server host may write into a home. A FIFO under a hidden partial's name
//! used to block a worker thread for good at `partial` (two of them, and
//! every other user's `ls` hung); a symlink there was followed by `put`,
//! which truncated and overwrote the file it pointed to; a socket got 451
//! where PROTOCOL.md promises 553.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::Wire;

fn mkfifo(path: &std::path::Path) {
    let st = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success(), "mkfifo {}", path.display());
}

/// A session whose reads give up after 5 s (a hang is the failure here).
fn impatient(w: Wire) -> Wire {
    w.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    w
}

/// The reproduction from the review: `mkfifo HOME/.x.miniftp-part`, then
/// `partial x` never answered, and with two such requests (two io
/// threads) every other user's `ls` hung. Now `partial` answers at once
/// with 553 (what is there is not a regular file), and a new upload of the
/// name replaces the FIFO.
#[test]
fn fifo_under_a_partial_name_does_not_block_workers() {
    let s = server("[workers]\nio_threads = 2\n");
    let mut a1 = impatient(s.login("alice", "alice-pw"));
    let mut a2 = impatient(s.login("alice", "alice-pw"));
    let mut bob = impatient(s.login("bob", "bob-pw"));
    let home = s.home("alice");
    mkfifo(&home.join(".x.miniftp-part"));
    mkfifo(&home.join(".y.miniftp-part"));
    let t = Instant::now();
    a1.send(json!({"op": "partial", "path": "x"}));
    a2.send(json!({"op": "partial", "path": "y"}));
    let r1 = a1.try_recv().expect("partial x hung");
    let r2 = a2.try_recv().expect("partial y hung");
    want(&r1, 553);
    want(&r2, 553);
    assert!(
        r1["msg"].as_str().unwrap().contains("not a regular file"),
        "{r1}"
    );
    want(&bob.call(json!({"op": "ls", "path": "/"})), 200);
    eprintln!("answered in {:?}", t.elapsed());
    // A resume can't continue it; a new upload replaces it.
    let r = a1.call(json!({"op": "put", "path": "x", "size": 4, "offset": 2}));
    want(&r, 553);
    want(&a1.put("x", b"data"), 226);
    assert_eq!(fetch(&mut a1, "x"), b"data");
    let md = std::fs::symlink_metadata(home.join("x")).unwrap();
    assert!(md.file_type().is_file());
    assert!(!home.join(".x.miniftp-part").exists());
    // A `get` of a FIFO itself is refused at once, as before.
    mkfifo(&home.join("pipe"));
    want(&a2.call(json!({"op": "get", "path": "pipe"})), 553);
    want(
        &a2.call(json!({"op": "cp", "from": "pipe", "to": "p2"})),
        553,
    );
}

/// A symlink planted under a partial's name used to be followed: `put x`
/// opened `.x.miniftp-part` with create+truncate, which truncated and
/// rewrote the file the link pointed to, and the commit then left `x` a
/// symlink. Now the server never opens a partial through a symlink: a new
/// upload replaces the link with a file of its own, a resume and
/// `partial` refuse it (553), and the linked file is untouched.
#[test]
fn symlink_under_a_partial_name_is_not_followed() {
    let s = server("");
    let mut w = impatient(s.login("alice", "alice-pw"));
    let home = s.home("alice");
    let precious = b"precious content".to_vec();
    want(&w.put("victim.txt", &precious), 226);
    std::os::unix::fs::symlink("victim.txt", home.join(".x.miniftp-part")).unwrap();
    std::os::unix::fs::symlink("victim.txt", home.join(".y.miniftp-part")).unwrap();
    want(&w.call(json!({"op": "partial", "path": "y"})), 553);
    let r = w.call(json!({"op": "put", "path": "y", "size": 20, "offset": 8}));
    want(&r, 553);
    want(&w.put("x", b"new"), 226);
    assert_eq!(std::fs::read(home.join("victim.txt")).unwrap(), precious);
    assert_eq!(fetch(&mut w, "victim.txt"), precious);
    let md = std::fs::symlink_metadata(home.join("x")).unwrap();
    assert!(md.file_type().is_file(), "x is {:?}", md.file_type());
    assert_eq!(std::fs::read(home.join("x")).unwrap(), b"new");
    // A hard link under the partial's name is not written through either.
    std::fs::hard_link(home.join("victim.txt"), home.join(".z.miniftp-part")).unwrap();
    let r = w.call(json!({"op": "put", "path": "z", "size": 20, "offset": 8}));
    want(&r, 553);
    want(&w.put("z", b"zzz"), 226);
    assert_eq!(std::fs::read(home.join("victim.txt")).unwrap(), precious);
    // What was planted was not in the books: a new login counts afresh.
    quit_and_wait(&s, w, "alice");
    let mut w = s.login("alice", "alice-pw");
    assert_books_balance(&mut w, &home);
}

/// A socket in a home: `get` and `cp` answered 451 (an I/O error) where
/// PROTOCOL.md says a device, FIFO or socket gets 553.
#[test]
fn socket_in_a_home_is_refused_with_553() {
    let s = server("");
    let mut w = s.login("alice", "alice-pw");
    let _sock = std::os::unix::net::UnixListener::bind(s.home("alice").join("sock")).unwrap();
    let r = w.call(json!({"op": "get", "path": "sock"}));
    want(&r, 553);
    assert!(
        r["msg"].as_str().unwrap().contains("not a regular file"),
        "{r}"
    );
    want(
        &w.call(json!({"op": "cp", "from": "sock", "to": "copy"})),
        553,
    );
    let r = w.call(json!({"op": "ls", "path": "/"}));
    let entries = r["entries"].as_array().unwrap();
    assert!(entries
        .iter()
        .any(|e| e["name"] == "sock" && e["type"] == "other"));
}
