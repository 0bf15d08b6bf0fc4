//! Names with spaces, quotes, backslashes and non-ASCII UTF-8 through every
//! command (on both backends); names on disk that are not UTF-8 at all
//! (local disks only: S3 keys are UTF-8 by definition).

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use serde_json::json;

use crate::files::fx::*;
use crate::util::*;

on_both!(
    odd_names_through_every_command,
    long_names_and_paths,
    put_accepts_names_of_255_bytes,
);

const NAMES: &[&str] = &[
    "a b c.txt",
    "quote\"d 'single'.txt",
    "ünïcödé 日本語 🚀.bin",
    "back\\slash",
    "semi;colon & $dollar `tick` *star? [x]",
    "-dash",
    " leading space",
    "trailing space ",
    "tab\tand\nnewline",
    "%s %n {}",
];

fn odd_names_through_every_command(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    let dir = "dír with \"space\" é";
    for (i, name) in NAMES.iter().enumerate() {
        let path = format!("{dir}/{name}");
        let body = data(1000 + i, i as u64);
        let r = put_mkdirs(&mut w, &path, &body);
        code(&r, 226);
        assert_eq!(home.content(&format!("{dir}/{name}")), body, "{name:?}");
        let r = op1(&mut w, "stat", &path);
        code(&r, 200);
        assert_eq!(r["entry"]["name"], *name);
        assert_eq!(r["entry"]["size"], body.len());
        assert_eq!(fetch(&mut w, &path), body);
    }
    let r = op1(&mut w, "ls", dir);
    code(&r, 200);
    let mut listed = names(&r);
    let mut expect: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    listed.sort();
    expect.sort();
    assert_eq!(listed, expect);
    for e in r["entries"].as_array().unwrap() {
        assert!(e.get("escaped").is_none() || e["escaped"] == false, "{e}");
    }
    let r = op1(&mut w, "cd", dir);
    code(&r, 200);
    assert_eq!(r["cwd"], format!("/{dir}"));
    for name in NAMES {
        let copy = format!("{name} copy ✓");
        let moved = format!("{name} moved «»");
        code(&cp(&mut w, name, &copy), 200);
        code(&mv(&mut w, &copy, &moved), 200);
        let body = home.content(&format!("{dir}/{name}"));
        assert_eq!(home.content(&format!("{dir}/{moved}")), body);
        assert!(!home.exists(&format!("{dir}/{copy}")));
        code(&rm(&mut w, &moved, false), 200);
        assert!(!home.exists(&format!("{dir}/{moved}")));
        let sub = format!("sub {name}");
        code(&mkdir(&mut w, &sub, false), 200);
        assert!(home.is_dir(&format!("{dir}/{sub}")));
        code(&op1(&mut w, "rmdir", &sub), 200);
    }
    code(&op1(&mut w, "cd", "/"), 200);
    code(&rm(&mut w, dir, true), 200);
    assert!(!home.exists(dir));
    assert_eq!(used(&mut w), 0);
}

#[test]
fn non_utf8_names_are_listed_escaped() {
    let s = TestServer::start();
    let home = make_home(&s);
    std::fs::write(home.join(OsStr::from_bytes(b"bad\xffname")), b"12345").unwrap();
    std::fs::create_dir(home.join(OsStr::from_bytes(b"\xc3(dir"))).unwrap();
    std::fs::write(home.join(OsStr::from_bytes(b"\xc3(dir/inner")), b"1234567").unwrap();
    std::fs::write(home.join("ok é"), b"ok").unwrap();
    let mut w = alice(&s);
    let r = op1(&mut w, "ls", "/");
    code(&r, 200);
    assert_eq!(r["entries"].as_array().unwrap().len(), 3, "{r}");
    let bad = entry(&r, "bad\\xffname");
    assert_eq!(bad["escaped"], true);
    assert_eq!(bad["type"], "file");
    assert_eq!(bad["size"], 5);
    let d = entry(&r, "\\xc3(dir");
    assert_eq!(d["escaped"], true);
    assert_eq!(d["type"], "dir");
    let ok = entry(&r, "ok é");
    assert!(ok.get("escaped").is_none() || ok["escaped"] == false);
    // The escaped spelling names no file: a clean "not found".
    code(&get_at(&mut w, "bad\\xffname", 0).unwrap_err(), 550);
    code(&op1(&mut w, "ls", "\\xc3(dir"), 550);
    code(&op1(&mut w, "stat", "bad\\xffname"), 550);
    noop_ok(&mut w);
    assert_eq!(
        std::fs::read(home.join(OsStr::from_bytes(b"bad\xffname"))).unwrap(),
        b"12345"
    );
}

#[test]
fn non_utf8_names_count_in_the_used_space() {
    let s = TestServer::start();
    let home = make_home(&s);
    std::fs::write(home.join(OsStr::from_bytes(b"bad\xffname")), b"12345").unwrap();
    std::fs::create_dir(home.join(OsStr::from_bytes(b"\xc3(dir"))).unwrap();
    std::fs::write(home.join(OsStr::from_bytes(b"\xc3(dir/inner")), b"1234567").unwrap();
    std::fs::write(home.join("ok"), b"ok").unwrap();
    let mut w = alice(&s);
    assert_eq!(
        used(&mut w),
        disk_usage(&home),
        "used space at login misses files under a non-UTF-8 directory"
    );
}

#[test]
fn rm_recursive_removes_non_utf8_names() {
    let s = TestServer::start();
    let home = make_home(&s);
    std::fs::create_dir_all(home.join("d/sub")).unwrap();
    std::fs::write(home.join(OsStr::from_bytes(b"d/x\xfe")), b"abc").unwrap();
    std::fs::write(home.join("d/good"), b"good").unwrap();
    std::fs::create_dir(home.join(OsStr::from_bytes(b"d/\xffsubdir"))).unwrap();
    std::fs::write(home.join(OsStr::from_bytes(b"d/\xffsubdir/f")), b"f").unwrap();
    let mut w = alice(&s);
    let r = op1(&mut w, "ls", "d");
    assert_eq!(r["entries"].as_array().unwrap().len(), 4, "{r}");
    let r = rm(&mut w, "d", true);
    code(&r, 200);
    assert!(!home.join("d").exists(), "d is still on disk");
    assert_used_matches_disk(&mut w, &home);
}

fn long_names_and_paths(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    let name200 = "n".repeat(200);
    code(&w.put(&name200, b"x"), 226);
    assert!(home.is_file(&name200));
    code(&w.put(&"n".repeat(256), b"x"), 553);
    code(&mkdir(&mut w, &"é".repeat(128), false), 553);
    code(&w.put(&"d/".repeat(2100), b"x"), 553);
    code(&op1(&mut w, "stat", &"n".repeat(256)), 553);
    noop_ok(&mut w);
    let r = w.call(json!({"op": "ls"}));
    assert_eq!(names(&r), [name200]);
}

/// Names up to 255 bytes are valid (the server's own limit, and Linux's):
/// mkdir and mv take them, so put must too.
fn put_accepts_names_of_255_bytes(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    let name255 = "n".repeat(255);
    let wide = "é".repeat(127); // 254 bytes
    code(&mkdir(&mut w, &name255, false), 200);
    code(&op1(&mut w, "rmdir", &name255), 200);
    code(&w.put("short", b"x"), 226);
    code(&mv(&mut w, "short", &wide), 200);
    code(&rm(&mut w, &wide, false), 200);
    let r = w.put(&name255, b"x");
    code(&r, 226);
    assert!(home.is_file(&name255));
    code(&w.put(&wide, b"y"), 226);
    assert!(home.is_file(&wide));
    // cp and a second concurrent upload use longer temporary names.
    let name240 = "c".repeat(240);
    code(&cp(&mut w, &name255, &name240), 200);
    assert_eq!(home.content(&name240), b"x");
    let name230 = "u".repeat(230);
    let mut w2 = alice(&s);
    code(&begin_put(&mut w, &name230, Some(1), 0, false), 150);
    code(&begin_put(&mut w2, &name230, Some(1), 0, false), 150);
    w.send_raw(b"1");
    w2.send_raw(b"2");
    code(&done(&mut w, &sha(b"1")), 226);
    code(&done(&mut w2, &sha(b"2")), 226);
    assert_eq!(home.content(&name230), b"2");
    assert!(home.partials().is_empty());
}
