//! The requests for sync and scripts: `tree` (bulk listing with digests,
//! paged, hashing bounded per request), `set_mtime`, `put` with `mtime`,
//! `rm` with `force`, and the greeting's `registration`.

use std::os::unix::fs::MetadataExt;

use serde_json::{json, Value};

use crate::files::fx::*;
use crate::util::*;

/// Every entry of a recursive `tree` of `path`, following `after`;
/// returns the entries and the number of requests it took.
fn tree_all(w: &mut Wire, path: &str) -> (Vec<Value>, usize) {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    for n in 1..1000 {
        let mut req = json!({"op": "tree", "path": path, "recursive": true});
        if let Some(a) = &after {
            req["after"] = json!(a);
        }
        let r = w.call(req);
        code(&r, 200);
        all.extend(r["tree"].as_array().unwrap().iter().cloned());
        match r["after"].as_str() {
            Some(a) => after = Some(a.to_string()),
            None => return (all, n),
        }
    }
    panic!("tree of {path} never ended");
}

fn paths(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e["path"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn tree_lists_depth_first_with_digests() {
    let s = TestServer::start();
    let mut w = alice(&s);
    code(&put_mkdirs(&mut w, "t/b/x.txt", b"xx"), 226);
    code(&put_mkdirs(&mut w, "t/a.txt", b"a"), 226);
    code(&put_mkdirs(&mut w, "t/c", b""), 226);
    code(&mkdir(&mut w, "t/b/empty", false), 200);
    let (all, _) = tree_all(&mut w, "t");
    assert_eq!(
        paths(&all),
        ["a.txt", "b", "b/empty", "b/x.txt", "c"],
        "{all:?}"
    );
    assert_eq!(all[0]["sha256"], sha(b"a"));
    assert_eq!(all[0]["size"], 1);
    assert_eq!(all[0]["type"], "file");
    assert_eq!(all[1]["type"], "dir");
    assert!(all[1].get("sha256").is_none(), "{}", all[1]);
    assert_eq!(all[3]["sha256"], sha(b"xx"));
    assert_eq!(all[4]["sha256"], sha(b""));
    // Not recursive: the directory's own entries only.
    let r = w.call(json!({"op": "tree", "path": "t"}));
    assert_eq!(paths(r["tree"].as_array().unwrap()), ["a.txt", "b", "c"]);
    // A file: its one entry, under its name.
    let r = w.call(json!({"op": "tree", "path": "t/b/x.txt"}));
    assert_eq!(paths(r["tree"].as_array().unwrap()), ["x.txt"]);
    code(&w.call(json!({"op": "tree", "path": "nope"})), 550);
    code(&w.call(json!({"op": "tree", "path": "../x"})), 553);
}

#[test]
fn tree_pages_and_hashes_files_written_behind_the_servers_back() {
    let s = TestServer::start();
    let mut w = alice(&s);
    code(&mkdir(&mut w, "many", false), 200);
    // Written on the disk directly: no stored digest, hashed by `tree`.
    let dir = s.home("alice").join("many");
    for i in 0..5100 {
        std::fs::write(dir.join(format!("f{i:05}")), i.to_string()).unwrap();
    }
    let (all, requests) = tree_all(&mut w, "many");
    assert_eq!(all.len(), 5100);
    assert!(requests >= 2, "5100 entries came in {requests} reply");
    let names = paths(&all);
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "entries repeated or out of order");
    for (i, e) in all.iter().enumerate() {
        assert_eq!(e["sha256"], sha(i.to_string().as_bytes()), "{e}");
    }
}

#[test]
fn tree_hashes_a_large_file_over_several_requests_and_stores_the_digest() {
    let s = TestServer::start();
    let _tmpfs = home_on_tmpfs(&s, "alice");
    let mut w = alice(&s);
    // 300 MiB, more than one request may hash; sparse, so it costs no disk.
    let big = s.home("alice").join("big.img");
    std::fs::File::create(&big)
        .unwrap()
        .set_len(300 * MIB)
        .unwrap();
    let r = w.call(json!({"op": "tree", "path": "/", "recursive": true}));
    code(&r, 200);
    assert_eq!(r["tree"].as_array().unwrap().len(), 0, "{r}");
    assert_eq!(r["after"], "", "{r}");
    let (all, _) = tree_all(&mut w, "/");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["sha256"], zeros_sha(300 * MIB, b""));
    // Stored: a download now announces it in its 150.
    let r = w.call(json!({"op": "get", "path": "big.img", "offset": 300 * MIB}));
    code(&r, 150);
    assert_eq!(r["sha256"], zeros_sha(300 * MIB, b""));
    code(&w.recv(), 226);
}

#[test]
fn put_with_mtime_and_set_mtime_keep_the_digest() {
    let s = TestServer::start();
    let mut w = alice(&s);
    let r = w.call(json!({"op": "put", "path": "m.txt", "size": 3, "mtime": 1_000_000_000}));
    code(&r, 150);
    w.send_raw(b"abc");
    code(&done(&mut w, &sha(b"abc")), 226);
    let on_disk = s.home("alice").join("m.txt");
    assert_eq!(std::fs::metadata(&on_disk).unwrap().mtime(), 1_000_000_000);
    let r = op1(&mut w, "stat", "m.txt");
    assert_eq!(r["entry"]["mtime"], 1_000_000_000);
    let r = w.call(json!({"op": "set_mtime", "path": "m.txt", "mtime": -86400}));
    code(&r, 200);
    assert_eq!(std::fs::metadata(&on_disk).unwrap().mtime(), -86400);
    // The stored digest survived the change of time.
    let (r, body, end) = w.get("m.txt").unwrap();
    assert_eq!(r["sha256"], sha(b"abc"), "{r}");
    assert_eq!(body, b"abc");
    code(&end, 226);
    // Directories too; a missing path is 550.
    code(&mkdir(&mut w, "d", false), 200);
    code(
        &w.call(json!({"op": "set_mtime", "path": "d", "mtime": 5})),
        200,
    );
    assert_eq!(
        std::fs::metadata(s.home("alice").join("d"))
            .unwrap()
            .mtime(),
        5
    );
    code(
        &w.call(json!({"op": "set_mtime", "path": "nope", "mtime": 5})),
        550,
    );
    code(&w.call(json!({"op": "set_mtime", "path": "m.txt"})), 501);
}

#[test]
fn rm_force_accepts_a_missing_path() {
    let s = TestServer::start();
    let mut w = alice(&s);
    code(&rm(&mut w, "gone.txt", false), 550);
    let r = w.call(json!({"op": "rm", "path": "gone.txt", "force": true}));
    code(&r, 200);
    assert!(
        r["msg"].as_str().unwrap().contains("nothing to remove"),
        "{r}"
    );
    let r = w.call(json!({"op": "rm", "path": "no/dir/x", "force": true}));
    code(&r, 200);
    code(&w.put("here.txt", b"1"), 226);
    code(
        &w.call(json!({"op": "rm", "path": "here.txt", "force": true})),
        200,
    );
    assert!(!s.home("alice").join("here.txt").exists());
    // Force does not make a directory removable without recursive.
    code(&mkdir(&mut w, "full/d", true), 200);
    code(
        &w.call(json!({"op": "rm", "path": "full", "force": true})),
        551,
    );
}

#[test]
fn greeting_names_the_registration_policy() {
    for policy in ["open", "approval", "closed"] {
        let s = server("1M", &format!("registration = \"{policy}\""));
        let mut w = Wire::connect(&s.addr);
        let g = w.recv();
        assert_eq!(g["registration"], policy, "{g}");
    }
}
