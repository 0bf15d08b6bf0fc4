//! The home-directory jail: `..`, absolute paths, symlinks that lead out
//! (made before or after login), devices and FIFOs, NUL bytes, reserved
//! names. The test process and the server both run as root here, so file
//! permissions protect nothing: only the jail does. Every test checks that
//! files outside the home are unchanged.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::files::fx::*;
use crate::util::*;

/// A directory beside the data directory, with files a jailbreak would
/// read, change or remove.
struct Outside {
    dir: PathBuf,
    before: BTreeMap<PathBuf, Vec<u8>>,
}

impl Outside {
    fn new(s: &TestServer) -> Outside {
        let dir = s.dir.path().join("outside");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("canary.txt"), b"CANARY: must never change").unwrap();
        std::fs::write(dir.join("f"), b"outside f").unwrap();
        std::fs::write(dir.join("sub/deep.txt"), b"outside deep").unwrap();
        let before = snapshot(&dir);
        Outside { dir, before }
    }

    #[track_caller]
    fn assert_unchanged(&self) {
        assert_eq!(
            snapshot(&self.dir),
            self.before,
            "files outside the home changed"
        );
    }
}

/// Every path below `dir` (symlinks not followed) with its content.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let md = std::fs::symlink_metadata(&p).unwrap();
        if md.is_dir() {
            out.insert(p.clone(), b"<dir>".to_vec());
            out.extend(snapshot(&p));
        } else {
            out.insert(p.clone(), std::fs::read(&p).unwrap_or_default());
        }
    }
    out
}

/// Every request that takes a path, with `p` in each path slot (a put with
/// `mkdirs` has its own test below). The put
/// announces a 3-byte body, so a put that is wrongly accepted (150) shows
/// up as a 150 in the assertion.
fn every_op(p: &str) -> Vec<Value> {
    vec![
        json!({"op": "cd", "path": p}),
        json!({"op": "ls", "path": p}),
        json!({"op": "stat", "path": p}),
        json!({"op": "mkdir", "path": p}),
        json!({"op": "mkdir", "path": p, "parents": true}),
        json!({"op": "rmdir", "path": p}),
        json!({"op": "rm", "path": p}),
        json!({"op": "rm", "path": p, "recursive": true}),
        json!({"op": "mv", "from": p, "to": "moved"}),
        json!({"op": "mv", "from": "victim", "to": p}),
        json!({"op": "cp", "from": p, "to": "copied"}),
        json!({"op": "cp", "from": "victim", "to": p}),
        json!({"op": "partial", "path": p}),
        json!({"op": "put", "path": p, "size": 3}),
        json!({"op": "put", "path": p}),
        json!({"op": "get", "path": p}),
        json!({"op": "get", "path": p, "offset": 1}),
    ]
}

/// Sends every path-taking request with `p`; each must be answered `want`.
#[track_caller]
fn all_refused(w: &mut Wire, p: &str, want: u64) {
    let mut wrong = Vec::new();
    for req in every_op(p) {
        let r = w.call(req.clone());
        if r["code"].as_u64() != Some(want) {
            assert_ne!(r["code"], 150, "{req} was accepted: {r}");
            wrong.push(format!("{req} -> {r}"));
        }
    }
    noop_ok(w);
    assert!(wrong.is_empty(), "expected {want}:\n{}", wrong.join("\n"));
}

fn home_setup(s: &TestServer) -> (PathBuf, Wire) {
    let mut w = alice(s);
    code(&w.put("victim", b"victim content"), 226);
    (s.home("alice"), w)
}

#[track_caller]
fn assert_home_untouched(home: &Path) {
    assert_eq!(
        std::fs::read(home.join("victim")).unwrap(),
        b"victim content"
    );
    assert!(!home.join("moved").exists());
    assert!(!home.join("copied").exists());
}

#[test]
fn dotdot_above_the_home_is_refused() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let (home, mut w) = home_setup(&s);
    for p in [
        "..",
        "../x",
        "/..",
        "/../x",
        "a/../../x",
        "../alice/victim",
        "./../../outside/f",
    ] {
        all_refused(&mut w, p, 553);
    }
    assert_home_untouched(&home);
    assert!(!s.root().join("home/x").exists());
    assert!(!s.root().join("x").exists());
    // `..` inside the home is fine, and cwd never climbs out.
    code(&mkdir(&mut w, "a/b", true), 200);
    code(&op1(&mut w, "cd", "a/b"), 200);
    assert_eq!(op1(&mut w, "stat", "../..")["entry"]["type"], "dir");
    assert_eq!(names(&op1(&mut w, "ls", "../..")), ["a", "victim"]);
    code(&op1(&mut w, "cd", "../../.."), 553);
    assert_eq!(w.call(json!({"op": "pwd"}))["cwd"], "/a/b");
    assert_eq!(fetch(&mut w, "../../victim"), b"victim content");
    out.assert_unchanged();
}

#[test]
fn absolute_paths_are_home_relative() {
    let s = TestServer::start();
    let (home, mut w) = home_setup(&s);
    let unique = format!("miniftp-jail-test-{}", std::process::id());
    // /etc/passwd is the home's /etc/passwd: absent.
    code(&get_at(&mut w, "/etc/passwd", 0).unwrap_err(), 550);
    code(&op1(&mut w, "stat", "/etc/passwd"), 550);
    code(&op1(&mut w, "cd", "/etc"), 550);
    let etc_passwd = std::fs::read("/etc/passwd").ok();
    let r = put_mkdirs(&mut w, &format!("/etc/{unique}"), b"jailed");
    code(&r, 226);
    assert_eq!(
        std::fs::read(home.join("etc").join(&unique)).unwrap(),
        b"jailed"
    );
    assert!(!Path::new("/etc").join(&unique).exists());
    let r = put_mkdirs(&mut w, &format!("/tmp/{unique}/x"), b"jailed");
    code(&r, 226);
    assert!(home.join("tmp").join(&unique).join("x").is_file());
    assert!(!Path::new("/tmp").join(&unique).exists());
    code(&w.put("/etc/passwd", b"not the real one"), 226);
    assert_eq!(
        std::fs::read(home.join("etc/passwd")).unwrap(),
        b"not the real one"
    );
    assert_eq!(std::fs::read("/etc/passwd").ok(), etc_passwd);
    // The root of every listing is the home.
    assert_eq!(names(&op1(&mut w, "ls", "/")), ["etc", "tmp", "victim"]);
    let r = op1(&mut w, "cd", "/etc");
    assert_eq!(r["cwd"], "/etc");
    assert_eq!(fetch(&mut w, "passwd"), b"not the real one");
    code(&rm(&mut w, "/etc", true), 200);
    assert!(!home.join("etc").exists());
    assert!(Path::new("/etc").is_dir());
    assert_eq!(std::fs::read("/etc/passwd").ok(), etc_passwd);
}

/// Symlinks put in the home (by someone with shell access) that point out:
/// absolute and relative, to files, directories, nothing, and themselves.
#[test]
fn symlinks_leading_out_are_refused() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let home = make_home(&s);
    let rel_out = "../../../outside"; // home is DIR/data/home/alice
    symlink("/etc/passwd", home.join("abs_passwd")).unwrap();
    symlink(out.dir.join("canary.txt"), home.join("abs_canary")).unwrap();
    symlink(format!("{rel_out}/canary.txt"), home.join("rel_canary")).unwrap();
    symlink(&out.dir, home.join("abs_dir")).unwrap();
    symlink(rel_out, home.join("rel_dir")).unwrap();
    symlink("../../", home.join("rel_up")).unwrap();
    std::fs::create_dir(home.join("deep")).unwrap();
    symlink("../../../../outside", home.join("deep/up")).unwrap();
    symlink(out.dir.join("created.txt"), home.join("dangling_file")).unwrap();
    symlink(out.dir.join("newdir"), home.join("dangling_dir")).unwrap();
    symlink("loop", home.join("loop")).unwrap();
    let etc_passwd = std::fs::read("/etc/passwd").ok();
    let mut w = alice(&s);
    code(&w.put("victim", b"victim content"), 226);

    // Reading through a link that leads out.
    for link in [
        "abs_passwd",
        "abs_canary",
        "rel_canary",
        "dangling_file",
        "loop",
    ] {
        let r = get_at(&mut w, link, 0).map(|x| x.0).unwrap_or_else(|e| e);
        code(&r, 553);
        code(&op1(&mut w, "stat", link), 553);
        code(&op1(&mut w, "ls", link), 553);
        code(&op1(&mut w, "cd", link), 553);
        code(&cp(&mut w, link, "copied"), 553);
        assert!(!home.join("copied").exists());
    }
    // Anything below a directory link that leads out.
    for dir in ["abs_dir", "rel_dir", "rel_up", "deep/up", "dangling_dir"] {
        code(&op1(&mut w, "ls", dir), 553);
        code(&op1(&mut w, "cd", dir), 553);
        for below in [
            "canary.txt",
            "f",
            "sub",
            "sub/deep.txt",
            "new.txt",
            "newdir/x",
        ] {
            all_refused(&mut w, &format!("{dir}/{below}"), 553);
        }
    }
    all_refused(&mut w, "rel_up/outside/canary.txt", 553);
    assert_home_untouched(&home);
    out.assert_unchanged();

    // Writing to the link's own name replaces the link, or is refused:
    // never written through.
    for link in ["abs_canary", "rel_canary", "dangling_file"] {
        let r = w.put(link, b"overwrite attempt");
        assert!(r["code"] == 226 || r["code"] == 553, "put {link}: {r}");
        if r["code"] == 226 {
            let md = std::fs::symlink_metadata(home.join(link)).unwrap();
            assert!(md.is_file(), "{link} is still a link after a put");
        }
        out.assert_unchanged();
    }
    let r = cp(&mut w, "victim", "abs_passwd");
    assert!(r["code"] == 200 || r["code"] == 553, "{r}");
    assert_eq!(std::fs::read("/etc/passwd").ok(), etc_passwd);
    let r = mkdir(&mut w, "dangling_dir", true);
    assert_ne!(r["code"], 200, "{r}");
    assert!(!out.dir.join("newdir").exists());
    // Removing a link removes the link only.
    code(&rm(&mut w, "abs_dir", true), 200);
    code(&rm(&mut w, "rel_dir", false), 200);
    code(&rm(&mut w, "deep", true), 200);
    code(&op1(&mut w, "rmdir", "rel_up"), 551);
    assert!(!home.join("abs_dir").exists());
    assert!(!home.join("deep").exists());
    out.assert_unchanged();
    assert_eq!(std::fs::read("/etc/passwd").ok(), etc_passwd);
    // Listing the home shows links as links, without following them.
    let r = op1(&mut w, "ls", "/");
    assert_eq!(entry(&r, "rel_up")["type"], "symlink");
    assert_eq!(entry(&r, "loop")["type"], "symlink");
    assert_eq!(entry(&r, "abs_canary")["type"], "file"); // replaced by the put
    assert_used_matches_disk(&mut w, &home);
}

/// `put` with `mkdirs` into a directory that is a symlink leading out: it
/// must be refused as leading out (553) like every other request, not
/// answered "already exists" (555), and nothing may be written outside.
#[test]
fn put_with_mkdirs_through_a_link_leading_out_is_refused() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let home = make_home(&s);
    symlink(&out.dir, home.join("abs_dir")).unwrap();
    symlink("../../../outside", home.join("rel_dir")).unwrap();
    let mut w = alice(&s);
    let mut wrong = Vec::new();
    for p in [
        "abs_dir/new.txt",
        "rel_dir/canary.txt",
        "abs_dir/sub/x",
        "rel_dir/newdir/x",
    ] {
        let r = begin_put(&mut w, p, Some(3), 0, true);
        assert_ne!(r["code"], 150, "put {p} was accepted: {r}");
        if r["code"] != 553 {
            wrong.push(format!("put {p} mkdirs -> {r}"));
        }
        out.assert_unchanged();
    }
    assert!(!out.dir.join("newdir").exists());
    assert!(wrong.is_empty(), "expected 553:\n{}", wrong.join("\n"));
}

/// A directory, or a file, replaced by a symlink leading out after the
/// session logged in, cd'ed there and looked at it.
#[test]
fn symlinks_swapped_in_after_login_are_refused() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let (home, mut w) = home_setup(&s);
    code(&put_mkdirs(&mut w, "d/f", b"inside f"), 226);
    code(&w.put("g", b"inside g"), 226);
    code(&op1(&mut w, "cd", "d"), 200);
    assert_eq!(fetch(&mut w, "f"), b"inside f");
    code(&op1(&mut w, "stat", "/g"), 200);

    std::fs::rename(home.join("d"), home.join("d_real")).unwrap();
    symlink(&out.dir, home.join("d")).unwrap();
    std::fs::remove_file(home.join("g")).unwrap();
    symlink("../../../outside/canary.txt", home.join("g")).unwrap();

    // The session's cwd now leads out: everything relative to it refused.
    code(&w.call(json!({"op": "ls"})), 553);
    for p in ["f", "canary.txt", "sub/deep.txt", "new.txt", "./f", "sub"] {
        all_refused(&mut w, p, 553);
    }
    code(&get_at(&mut w, "/g", 0).unwrap_err(), 553);
    code(&op1(&mut w, "stat", "/g"), 553);
    code(&cp(&mut w, "/g", "/copied"), 553);
    out.assert_unchanged();
    // Out of it again.
    code(&op1(&mut w, "cd", "/d_real"), 200);
    assert_eq!(fetch(&mut w, "f"), b"inside f");
    out.assert_unchanged();
    assert_eq!(
        std::fs::read(home.join("victim")).unwrap(),
        b"victim content"
    );
}

#[test]
fn symlinks_within_the_home_work() {
    let s = TestServer::start();
    let home = make_home(&s);
    std::fs::create_dir(home.join("sub")).unwrap();
    std::fs::write(home.join("sub/file"), b"real file").unwrap();
    symlink("sub/file", home.join("to_file")).unwrap();
    symlink("sub", home.join("to_dir")).unwrap();
    let mut w = alice(&s);
    assert_eq!(fetch(&mut w, "to_file"), b"real file");
    assert_eq!(op1(&mut w, "stat", "to_dir")["entry"]["type"], "dir");
    assert_eq!(names(&op1(&mut w, "ls", "to_dir")), ["file"]);
    code(&w.put("to_dir/new", b"new"), 226);
    assert_eq!(std::fs::read(home.join("sub/new")).unwrap(), b"new");
    code(&op1(&mut w, "cd", "to_dir"), 200);
    assert_eq!(fetch(&mut w, "new"), b"new");
}

/// A FIFO or a device in the home: a get must be refused at once (a FIFO
/// would block forever, /dev/zero never ends), cp too.
#[test]
fn devices_and_fifos_are_refused_quickly() {
    let s = TestServer::start();
    let home = make_home(&s);
    let fifo_ok = std::process::Command::new("mkfifo")
        .arg(home.join("fifo"))
        .status()
        .is_ok_and(|st| st.success());
    let zero_ok = std::process::Command::new("mknod")
        .arg(home.join("zero"))
        .args(["c", "1", "5"])
        .status()
        .is_ok_and(|st| st.success());
    assert!(fifo_ok || zero_ok, "neither mkfifo nor mknod works here");
    let mut w = alice(&s);
    let mut specials = Vec::new();
    if fifo_ok {
        specials.push("fifo");
    }
    if zero_ok {
        specials.push("zero");
    }
    for name in &specials {
        let t = Instant::now();
        let r = get_at(&mut w, name, 0).map(|x| x.0).unwrap_or_else(|e| e);
        code(&r, 553);
        assert!(
            t.elapsed() < Duration::from_secs(2),
            "get {name} took {:?}",
            t.elapsed()
        );
        code(&get_at(&mut w, name, 5).unwrap_err(), 553);
        code(&cp(&mut w, name, "copy"), 553);
        assert!(!home.join("copy").exists());
        let r = op1(&mut w, "stat", name);
        code(&r, 200);
        assert_eq!(r["entry"]["type"], "other");
        code(&op1(&mut w, "cd", name), 551);
        let ls = op1(&mut w, "ls", "/");
        assert_eq!(entry(&ls, name)["type"], "other");
        noop_ok(&mut w);
    }
    // A put to the name replaces the special file, never writes into it.
    if fifo_ok {
        let t = Instant::now();
        let r = w.put("fifo", b"data");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(r["code"] == 226 || r["code"] == 553, "{r}");
        if r["code"] == 226 {
            assert_eq!(std::fs::read(home.join("fifo")).unwrap(), b"data");
        }
    }
    // Special files hold no bytes of the quota; rm removes them.
    assert_used_matches_disk(&mut w, &home);
    for name in &specials {
        let r = rm(&mut w, name, false);
        code(&r, 200);
        assert!(std::fs::symlink_metadata(home.join(name)).is_err());
    }
}

#[test]
fn nul_bytes_in_paths_are_refused() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let (home, mut w) = home_setup(&s);
    for p in ["a\0b", "\0", "victim\0", "/etc/passwd\0.txt", "d\0/x"] {
        all_refused(&mut w, p, 553);
    }
    // As a raw JSON escape too.
    let frame = br#"{"op":"stat","path":"victim\u0000x"}"#;
    w.send_frame(frame);
    code(&w.recv(), 553);
    assert_eq!(
        std::fs::read_dir(&home).unwrap().count(),
        1,
        "something was created in the home"
    );
    assert_home_untouched(&home);
    out.assert_unchanged();
}

#[test]
fn reserved_partial_names_are_refused() {
    let s = TestServer::start();
    let (home, mut w) = home_setup(&s);
    // A real partial upload, to make the names point at something.
    let mut up = alice(&s);
    code(&begin_put(&mut up, "victim", Some(100), 0, false), 150);
    up.send_raw(&[7u8; 40]);
    assert!(eventually(
        Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home, "victim") == Some(40)
    ));
    drop(up);
    code(&partial_settled(&mut w, "victim"), 200);
    for p in [
        ".victim.miniftp-part",
        ".x.miniftp-part",
        ".x.miniftp-part.0123456789abcdef",
        "d/.x.miniftp-part",
        ".x.miniftp-part/y",
        "/.victim.miniftp-part",
    ] {
        all_refused(&mut w, p, 553);
    }
    // The partial is still there, untouched and unlisted.
    assert_eq!(partial_size_on_disk(&home, "victim"), Some(40));
    assert_eq!(names(&op1(&mut w, "ls", "/")), ["victim"]);
    assert_eq!(partial_settled(&mut w, "victim")["size"], 40);
    // Names that merely look alike are ordinary.
    for p in [
        "x.miniftp-part",
        ".hidden",
        "..dots",
        ".miniftp",
        "a.miniftp-part.b",
    ] {
        code(&w.put(p, b"ok"), 226);
        assert_eq!(std::fs::read(home.join(p)).unwrap(), b"ok");
    }
    assert_home_untouched(&home);
}

/// A symlink planted under the name of the hidden partial of `f`, pointing
/// outside: an upload of `f` must not write through it, and `partial f`
/// must not read through it.
#[test]
fn planted_partial_symlink_cannot_redirect_an_upload() {
    let s = TestServer::start();
    let out = Outside::new(&s);
    let home = make_home(&s);
    symlink(out.dir.join("canary.txt"), home.join(".f.miniftp-part")).unwrap();
    symlink("../../../outside/f", home.join(".g.miniftp-part")).unwrap();
    let mut w = alice(&s);
    for name in ["f", "g"] {
        let r = op1(&mut w, "partial", name);
        assert!(r["code"] == 553 || r["code"] == 550, "partial {name}: {r}");
        let r = begin_put(&mut w, name, Some(10), 5, false);
        assert!(r["code"] == 553 || r["code"] == 501, "resume {name}: {r}");
        let r = w.put(name, b"0123456789");
        assert!(r["code"] == 226 || r["code"] == 553, "put {name}: {r}");
        if r["code"] == 226 {
            assert_eq!(std::fs::read(home.join(name)).unwrap(), b"0123456789");
        }
        out.assert_unchanged();
    }
    let r = w.put("f", b"again");
    assert!(r["code"] == 226 || r["code"] == 553, "{r}");
    out.assert_unchanged();
}
