//! Quota bypass through deep trees (issue 12, item 1). The usage walk used
//! to skip anything deeper than 256 levels while `mkdir -p` and `put` with
//! `mkdirs` went ~2000 levels down: bytes stored there were not in `used`
//! at the next login, and a user could store without end. Now no path may
//! be deeper than the walk reaches (256 levels), a move may not carry a
//! tree past it, a recursive remove that stops partway still takes what it
//! freed off `used`, and a per-user entry limit bounds files and
//! directories (inodes) as the quota bounds bytes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::hardening::hx::*;
use crate::util::{data, disk_usage, Opts, TestServer, Wire};

/// The deepest path the server accepts, in components.
const MAX_DEPTH: usize = 256;

/// `levels` directories `d/d/...` deep.
fn chain(levels: usize) -> String {
    vec!["d"; levels].join("/")
}

/// `put` with `mkdirs`; the final reply (or the refusal of the `put`).
fn put_mkdirs(w: &mut Wire, path: &str, body: &[u8]) -> Value {
    let r = w.call(json!({"op": "put", "path": path, "size": body.len(), "mkdirs": true}));
    if r["code"] != 150 {
        return r;
    }
    w.send_raw(body);
    w.call(json!({"op": "done", "sha256": sha(body)}))
}

fn one_user(quota: &'static str, toml: &str) -> TestServer {
    TestServer::with(Opts {
        toml: toml.to_string(),
        users: vec![("alice", "alice-pw", quota)],
        env: vec![],
    })
}

/// The reproduction from the review: with a 1 MiB quota, `mkdir -p` 300
/// levels and a 1 MiB file at the bottom used to be invisible to the next
/// login's `used`, so the same user could store 1 MiB again, and again.
/// Now the 300-level path is refused (553) whichever way it is created,
/// the deepest allowed path (256 levels) is counted after a new login,
/// and the quota holds.
#[test]
fn deep_tree_cannot_hide_bytes_from_the_quota() {
    let s = one_user("1M", "");
    let mut w = s.login("alice", "alice-pw");
    let too_deep = chain(300);
    let r = w.call(json!({"op": "mkdir", "path": too_deep, "parents": true}));
    want(&r, 553);
    let body = data(900 * 1024, 1);
    let r = put_mkdirs(&mut w, &format!("{too_deep}/f"), &body);
    want(&r, 553);
    // One level past the limit is one too many, also step by step.
    want(
        &w.call(json!({"op": "mkdir", "path": chain(MAX_DEPTH), "parents": true})),
        200,
    );
    want(
        &w.call(json!({"op": "mkdir", "path": format!("{}/d", chain(MAX_DEPTH))})),
        553,
    );
    want(&w.call(json!({"op": "cd", "path": chain(MAX_DEPTH)})), 200);
    want(&w.put("f", b"x"), 553);
    want(&w.call(json!({"op": "cd", "path": "/"})), 200);
    // The deepest file allowed is counted, by this session and the next.
    let deepest = format!("{}/f", chain(MAX_DEPTH - 1));
    want(&put_mkdirs(&mut w, &deepest, &body), 226);
    assert_eq!(quota(&mut w).0, body.len() as u64);
    quit_and_wait(&s, w, "alice");
    let mut w = s.login("alice", "alice-pw");
    assert_eq!(
        quota(&mut w).0,
        body.len() as u64,
        "the next login's walk missed the deep file"
    );
    want(&w.put("again.bin", &body), 552);
    assert_books_balance(&mut w, &s.home("alice"));
    // A move can't carry a tree past the limit either: `d` is 256 levels
    // deep already, so it can't go one level down.
    want(&w.call(json!({"op": "mkdir", "path": "box"})), 200);
    let r = w.call(json!({"op": "mv", "from": "d", "to": "box"}));
    want(&r, 553);
    assert!(s.home("alice").join("d").is_dir());
    // Sideways is fine.
    want(&w.call(json!({"op": "mv", "from": "d", "to": "e"})), 200);
    // And the whole tree goes with one recursive remove.
    want(
        &w.call(json!({"op": "rm", "path": "e", "recursive": true})),
        200,
    );
    assert_eq!(quota(&mut w).0, 0);
    // No walk skipped anything (the refused move's audit line says
    // "deeper than" too).
    let skipped = s
        .log()
        .lines()
        .any(|l| l.contains("walk:") && l.contains("deeper than"));
    assert!(!skipped, "{}", tail(&s.log(), 20));
}

/// A recursive remove that stops partway (here at a tree deeper than it
/// may go, planted by another local account) used to forget the bytes it
/// had already freed: `used` stayed high for good. Now it answers 501 and
/// what it removed leaves `used`: the books match the disk.
#[test]
fn recursive_remove_stopped_partway_keeps_used_exact() {
    let s = one_user("100M", "");
    let home = s.home("alice");
    let mut w = s.login("alice", "alice-pw");
    want(&w.put("keep.bin", &data(1000, 1)), 226);
    quit_and_wait(&s, w, "alice");
    // A chain 300 levels deep below t/, put there behind the server's
    // back, with two files at each of its first 200 levels: one made
    // before the next level's directory and one after, with names that
    // differ from level to level, so that the remove meets files before
    // the depth limit whatever order the filesystem lists names in
    // (creation order, its reverse, a hash).
    let mut dir = home.join("t");
    let mut levels = Vec::new();
    for level in 0..300 {
        std::fs::create_dir(&dir).unwrap();
        if level < 200 {
            std::fs::write(
                dir.join(format!("a{level}")),
                data(100 + level, level as u64),
            )
            .unwrap();
            levels.push(dir.clone());
        }
        dir = dir.join("x");
    }
    for (level, dir) in levels.iter().enumerate() {
        std::fs::write(dir.join(format!("z{level}")), b"after").unwrap();
    }
    let mut w = s.login("alice", "alice-pw");
    let before = disk_usage(&home);
    assert_eq!(quota(&mut w).0, before, "walk at login");
    let r = w.call(json!({"op": "rm", "path": "t", "recursive": true}));
    want(&r, 501);
    assert!(home.join("keep.bin").exists());
    assert!(disk_usage(&home) < before, "nothing was removed");
    assert_books_balance(&mut w, &home);
}

/// The per-user entry limit: files, directories and partial uploads count,
/// from the users file (`max_entries`, set with `useradd --max-entries`)
/// or the config's `default_max_entries`. At the limit `mkdir`, `put` and
/// `cp` get 552 and create nothing; removing entries makes room again; the
/// count survives a new login (the same walk as the bytes) and is shown by
/// `quota`.
#[test]
fn entry_limit_bounds_files_and_directories() {
    let s = one_user("100M", "default_max_entries = 12\n");
    let mut w = s.login("alice", "alice-pw");
    // 1 directory + 4 files + 1 mkdir -p of 3 = 8.
    want(&w.call(json!({"op": "mkdir", "path": "a"})), 200);
    for i in 0..4 {
        want(&w.put(&format!("a/f{i}"), b"x"), 226);
    }
    want(
        &w.call(json!({"op": "mkdir", "path": "p/q/r", "parents": true})),
        200,
    );
    // An interrupted upload keeps a partial: an entry too (9).
    let r = w.call(json!({"op": "put", "path": "half.bin", "size": 10}));
    want(&r, 150);
    w.send_raw(b"12345");
    drop(w);
    let mut w = s.login("alice", "alice-pw");
    want(&partial_settled(&mut w, "half.bin"), 200);
    let r = w.call(json!({"op": "quota"}));
    assert_eq!(r["quota"]["entries"], 9, "{r}");
    assert_eq!(r["quota"]["max_entries"], 12, "{r}");
    // Replacing a file adds nothing (9); a copy adds one (10).
    want(&w.put("a/f0", b"yy"), 226);
    want(
        &w.call(json!({"op": "cp", "from": "a/f0", "to": "c0"})),
        200,
    );
    // mkdir -p with 3 missing levels would pass 12: refused, nothing made.
    let r = w.call(json!({"op": "mkdir", "path": "m/n/o", "parents": true}));
    want(&r, 552);
    assert!(!s.home("alice").join("m").exists());
    want(&w.call(json!({"op": "mkdir", "path": "m"})), 200);
    want(&w.put("g", b"x"), 226);
    // 12: every way of making one more is refused. Like bytes, replacing
    // a file needs room for both while the new version is written (its
    // partial is one more entry until it is renamed over the old one).
    want(&w.call(json!({"op": "mkdir", "path": "n"})), 552);
    want(&w.put("h", b"x"), 552);
    want(&w.call(json!({"op": "cp", "from": "g", "to": "h"})), 552);
    let r = put_mkdirs(&mut w, "new/dir/file", b"x");
    want(&r, 552);
    want(&w.put("g", b"xyz"), 552);
    assert!(!s.home("alice").join("new").exists());
    assert!(!s.home("alice").join("h").exists());
    assert!(crate::util::partials_on_disk(&s.home("alice")).len() == 1);
    // A rename makes nothing new.
    want(&w.call(json!({"op": "mv", "from": "g", "to": "g2"})), 200);
    // A new login counts the same 12 from the disk.
    quit_and_wait(&s, w, "alice");
    let mut w = s.login("alice", "alice-pw");
    assert_eq!(w.call(json!({"op": "quota"}))["quota"]["entries"], 12);
    // Removing a tree of 4 makes room for 4.
    want(
        &w.call(json!({"op": "rm", "path": "p", "recursive": true})),
        200,
    );
    want(&w.call(json!({"op": "rm", "path": "a/f3"})), 200);
    for name in ["h1", "h2", "h3", "h4"] {
        want(&w.put(name, b"x"), 226);
    }
    want(&w.put("h5", b"x"), 552);
    assert_eq!(w.call(json!({"op": "quota"}))["quota"]["entries"], 12);

    // A per-user limit in the users file wins over the default, and a
    // change reaches a live session.
    crate::util::useradd_with(
        &s.config,
        "bob",
        "bob-pw",
        "10M",
        &["--max-entries".as_ref(), "2".as_ref()],
    );
    let text = std::fs::read_to_string(s.root().join("users.toml")).unwrap();
    assert!(text.contains("max_entries = 2"), "{text}");
    let mut b = login_eventually(&s, "bob", "bob-pw");
    want(&b.put("1", b"x"), 226);
    want(&b.put("2", b"x"), 226);
    want(&b.put("3", b"x"), 552);
    let out = std::process::Command::new(crate::util::BIN)
        .args(["useradd", "bob", "--set-max-entries", "3", "--config"])
        .arg(&s.config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = eventually(Duration::from_secs(10), || {
        b.call(json!({"op": "quota"}))["quota"]["max_entries"] == 3
    });
    assert!(ok, "the new limit did not reach the session");
    want(&b.put("3", b"x"), 226);
}

/// Logs in, retrying while a just-added user is not loaded yet.
fn login_eventually(s: &TestServer, user: &str, pw: &str) -> Wire {
    let mut w = s.connect();
    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs(10), || {
        last = w.call(login_req(user, pw));
        last["code"] == 230
    });
    assert!(ok, "{user} can't log in: {last}");
    w
}
