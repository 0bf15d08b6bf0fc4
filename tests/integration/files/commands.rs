//! Every file command, its success and its errors, with the effect on disk
//! or in the bucket: each test runs on both backends (`on_both!`).

use serde_json::json;

use crate::files::fx::*;
use crate::util::*;

on_both!(
    before_login_file_commands_are_refused,
    pwd_and_cd,
    ls_and_stat,
    ls_pages_of_a_thousand,
    mkdir_and_rmdir,
    rm_files_and_trees,
    mv_renames_moves_and_replaces,
    mv_onto_itself_keeps_the_file_and_the_quota,
    cp_copies_files,
    put_and_get_errors,
    empty_files_both_ways,
);

fn before_login_file_commands_are_refused(store: Store) {
    let s = start_on(store);
    let mut w = s.connect();
    for req in [
        json!({"op": "pwd"}),
        json!({"op": "ls"}),
        json!({"op": "cd", "path": "/"}),
        json!({"op": "stat", "path": "a"}),
        json!({"op": "mkdir", "path": "a"}),
        json!({"op": "rm", "path": "a"}),
        json!({"op": "quota"}),
        json!({"op": "put", "path": "a", "size": 1}),
        json!({"op": "get", "path": "a"}),
        json!({"op": "partial", "path": "a"}),
        json!({"op": "done", "sha256": "00"}),
    ] {
        let r = w.call(req.clone());
        code(&r, 503);
    }
    assert!(!s.stored("alice").exists("a"));
}

fn pwd_and_cd(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let r = w.call(json!({"op": "pwd"}));
    code(&r, 200);
    assert_eq!(r["cwd"], "/");
    code(&mkdir(&mut w, "d/e", true), 200);
    code(&w.put("d/f.txt", b"in d"), 226);

    let r = op1(&mut w, "cd", "d");
    code(&r, 200);
    assert_eq!(r["cwd"], "/d");
    assert_eq!(w.call(json!({"op": "pwd"}))["cwd"], "/d");
    // Relative paths now start in /d.
    assert_eq!(fetch(&mut w, "f.txt"), b"in d");
    code(&op1(&mut w, "stat", "/d/f.txt"), 200);
    code(&op1(&mut w, "stat", "f.txt"), 200);
    let r = op1(&mut w, "cd", "e");
    assert_eq!(r["cwd"], "/d/e");
    let r = op1(&mut w, "cd", "..");
    assert_eq!(r["cwd"], "/d");
    let r = op1(&mut w, "cd", "./e/./../e//");
    assert_eq!(r["cwd"], "/d/e");
    let r = op1(&mut w, "cd", "/");
    assert_eq!(r["cwd"], "/");
    let r = op1(&mut w, "cd", "d/e/../..");
    assert_eq!(r["cwd"], "/");

    // Errors leave the directory where it was.
    code(&op1(&mut w, "cd", "d"), 200);
    code(&op1(&mut w, "cd", "f.txt"), 551);
    code(&op1(&mut w, "cd", "nope"), 550);
    code(&op1(&mut w, "cd", ""), 501);
    code(&op1(&mut w, "cd", "../.."), 553);
    code(&w.call(json!({"op": "cd"})), 501);
    assert_eq!(w.call(json!({"op": "pwd"}))["cwd"], "/d");
}

fn ls_and_stat(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&w.put("a", b"abc"), 226);
    code(&mkdir(&mut w, "b", false), 200);
    code(&w.put("c", b""), 226);
    code(&w.put("b/inner", b"12345"), 226);

    let r = op1(&mut w, "ls", "/");
    code(&r, 200);
    assert_eq!(names(&r), ["a", "b", "c"]);
    assert!(r.get("next").is_none(), "{r}");
    let a = entry(&r, "a");
    assert_eq!(a["type"], "file");
    assert_eq!(a["size"], 3);
    assert_eq!(a["mtime"].as_u64(), Some(home.mtime("a")));
    assert!(a.get("escaped").is_none() || a["escaped"] == false);
    assert_eq!(entry(&r, "b")["type"], "dir");
    assert_eq!(entry(&r, "c")["size"], 0);

    // Without a path: the current directory.
    let r = w.call(json!({"op": "ls"}));
    assert_eq!(names(&r), ["a", "b", "c"]);
    code(&op1(&mut w, "cd", "b"), 200);
    let r = w.call(json!({"op": "ls"}));
    assert_eq!(names(&r), ["inner"]);
    assert_eq!(names(&op1(&mut w, "ls", "..")), ["a", "b", "c"]);
    // ls of a file: that one entry.
    let r = op1(&mut w, "ls", "/a");
    code(&r, 200);
    assert_eq!(names(&r), ["a"]);
    assert_eq!(r["entries"][0]["size"], 3);
    code(&op1(&mut w, "ls", "/missing"), 550);
    code(&op1(&mut w, "ls", "/a/x"), 551);
    // An empty directory.
    code(&mkdir(&mut w, "/empty", false), 200);
    let r = op1(&mut w, "ls", "/empty");
    code(&r, 200);
    assert!(names(&r).is_empty());

    let r = op1(&mut w, "stat", "/a");
    code(&r, 200);
    assert_eq!(r["entry"]["name"], "a");
    assert_eq!(r["entry"]["type"], "file");
    assert_eq!(r["entry"]["size"], 3);
    let r = op1(&mut w, "stat", "inner");
    assert_eq!(r["entry"]["size"], 5);
    let r = op1(&mut w, "stat", "/b");
    assert_eq!(r["entry"]["type"], "dir");
    let r = op1(&mut w, "stat", "/");
    code(&r, 200);
    assert_eq!(r["entry"]["type"], "dir");
    code(&op1(&mut w, "stat", "/missing"), 550);
    code(&op1(&mut w, "stat", ""), 501);
}

fn ls_pages_of_a_thousand(store: Store) {
    let s = start_on(store);
    make_home(&s);
    let home = s.stored("alice");
    // Planted from four threads: 2500 PUTs one after another to the
    // bucket would take seconds.
    std::thread::scope(|sc| {
        for t in 0..4 {
            let home = &home;
            sc.spawn(move || {
                for i in (t..2500).step_by(4) {
                    home.plant(&format!("f{i:04}"), b"");
                }
            });
        }
    });
    let mut w = alice(&s);
    let mut all = Vec::new();
    let r = op1(&mut w, "ls", "/");
    assert_eq!(names(&r).len(), 1000);
    assert_eq!(r["next"], 1000);
    all.extend(names(&r));
    let r = w.call(json!({"op": "ls", "path": "/", "start": 1000}));
    assert_eq!(names(&r).len(), 1000);
    assert_eq!(r["next"], 2000);
    all.extend(names(&r));
    let r = w.call(json!({"op": "ls", "start": 2000}));
    assert_eq!(names(&r).len(), 500);
    assert!(r.get("next").is_none(), "{r}");
    all.extend(names(&r));
    let expect: Vec<String> = (0..2500).map(|i| format!("f{i:04}")).collect();
    assert_eq!(all, expect);
    let r = w.call(json!({"op": "ls", "start": 9999}));
    code(&r, 200);
    assert!(names(&r).is_empty());
}

fn mkdir_and_rmdir(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&mkdir(&mut w, "a", false), 200);
    assert!(home.is_dir("a"));
    code(&mkdir(&mut w, "a", false), 555);
    code(&mkdir(&mut w, "a", true), 200);
    code(&mkdir(&mut w, "x/y", false), 550);
    assert!(!home.exists("x"));
    code(&mkdir(&mut w, "x/y/z", true), 200);
    assert!(home.is_dir("x/y/z"));
    code(&mkdir(&mut w, "/", false), 555);
    code(&mkdir(&mut w, "/", true), 200);
    code(&w.put("f", b"file"), 226);
    code(&mkdir(&mut w, "f", false), 555);
    code(&mkdir(&mut w, "f/g", false), 551);
    code(&mkdir(&mut w, "f/g", true), 551);
    assert_eq!(home.content("f"), b"file");
    code(&mkdir(&mut w, "", false), 501);

    code(&op1(&mut w, "rmdir", "x"), 556);
    code(&op1(&mut w, "rmdir", "x/y/z"), 200);
    assert!(!home.exists("x/y/z"));
    code(&op1(&mut w, "rmdir", "f"), 551);
    assert!(home.is_file("f"));
    code(&op1(&mut w, "rmdir", "missing"), 550);
    code(&op1(&mut w, "rmdir", "/"), 553);
    code(&op1(&mut w, "rmdir", "x/y"), 200);
    code(&op1(&mut w, "rmdir", "x"), 200);
    assert!(!home.exists("x"));
    assert!(home.is_dir(""));
}

fn rm_files_and_trees(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&w.put("a", &data(1000, 1)), 226);
    let r = rm(&mut w, "a", false);
    code(&r, 200);
    assert!(!home.exists("a"));
    assert_eq!(used(&mut w), 0);
    code(&rm(&mut w, "a", false), 550);

    code(&put_mkdirs(&mut w, "d/x", &data(300, 2)), 226);
    code(&put_mkdirs(&mut w, "d/sub/deeper/y", &data(700, 3)), 226);
    code(&mkdir(&mut w, "d/empty", false), 200);
    code(&w.put("keep", b"keep"), 226);
    assert_eq!(used(&mut w), 1004);
    code(&rm(&mut w, "d", false), 551);
    assert!(home.is_file("d/sub/deeper/y"));
    code(&rm(&mut w, "d", true), 200);
    assert!(!home.exists("d"));
    assert_eq!(used(&mut w), 4);
    assert_used_matches(&mut w, &home);

    code(&rm(&mut w, "/", false), 553);
    code(&rm(&mut w, "/", true), 553);
    code(&rm(&mut w, "", false), 501);
    assert!(home.is_file("keep"));
    // rm of a single file with recursive is just a remove.
    code(&rm(&mut w, "keep", true), 200);
    assert!(!home.exists("keep"));
    assert_eq!(used(&mut w), 0);
}

fn mv_renames_moves_and_replaces(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&w.put("a", b"content of a"), 226);
    code(&mv(&mut w, "a", "b"), 200);
    assert!(!home.exists("a"));
    assert_eq!(home.content("b"), b"content of a");

    // Into a directory.
    code(&mkdir(&mut w, "d", false), 200);
    code(&mv(&mut w, "b", "d"), 200);
    assert_eq!(home.content("d/b"), b"content of a");
    code(&mv(&mut w, "/d/b", "/d/renamed"), 200);
    assert!(home.is_file("d/renamed"));

    // Errors.
    code(&mv(&mut w, "missing", "x"), 550);
    code(&mv(&mut w, "d/renamed", "nodir/x"), 550);
    assert!(home.is_file("d/renamed"));
    code(&mv(&mut w, "/", "x"), 553);
    code(&mv(&mut w, "d", "d/sub"), 501);
    assert!(home.is_file("d/renamed"));

    // Over an existing file: it is replaced and its bytes freed.
    code(&w.put("c", &data(5000, 4)), 226);
    code(&w.put("e", &data(9000, 5)), 226);
    assert_eq!(used(&mut w), 14000 + 12);
    code(&mv(&mut w, "c", "e"), 200);
    assert_eq!(home.content("e"), data(5000, 4));
    assert!(!home.exists("c"));
    assert_eq!(used(&mut w), 5000 + 12);
    assert_used_matches(&mut w, &home);

    // A directory renamed, with its content; on an object store, which
    // has no atomic rename of a tree, refused with a reason (docs/STORAGE.md)
    // and nothing moved. An empty one is renamed on both.
    let r = mv(&mut w, "d", "d2");
    if store == Store::S3 {
        code(&r, 556);
        let msg = r["msg"].as_str().unwrap();
        assert!(msg.contains("can't be renamed"), "{msg}");
        assert!(home.is_file("d/renamed"));
        assert!(!home.exists("d2"));
        code(&mv(&mut w, "d/renamed", "renamed"), 200);
        code(&mv(&mut w, "d", "d2"), 200);
        code(&mv(&mut w, "renamed", "d2"), 200);
    } else {
        code(&r, 200);
    }
    assert!(home.is_file("d2/renamed"));
    assert!(!home.exists("d"));
    assert_used_matches(&mut w, &home);
}

fn mv_onto_itself_keeps_the_file_and_the_quota(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&w.put("a", &data(4000, 1)), 226);
    code(&mkdir(&mut w, "d", false), 200);
    code(&w.put("d/b", &data(3000, 2)), 226);
    assert_eq!(used(&mut w), 7000);
    // Renaming a file to its own name (directly, or via its directory)
    // changes nothing on disk, so it must change nothing in the books.
    let r = mv(&mut w, "a", "a");
    assert!(r["code"] == 200 || r["code"] == 501, "{r}");
    let r = mv(&mut w, "/d/b", "/d");
    assert!(r["code"] == 200 || r["code"] == 501, "{r}");
    assert_eq!(home.content("a"), data(4000, 1));
    assert_eq!(home.content("d/b"), data(3000, 2));
    assert_eq!(used(&mut w), 7000, "mv onto itself changed the used figure");
}

fn cp_copies_files(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    let a = data(70_000, 7);
    code(&w.put("a", &a), 226);
    let r = cp(&mut w, "a", "b");
    code(&r, 200);
    assert_eq!(r["size"], 70_000);
    assert_eq!(home.content("b"), a);
    assert_eq!(home.content("a"), a);
    assert_eq!(fetch(&mut w, "b"), a);
    assert_eq!(used(&mut w), 140_000);

    code(&mkdir(&mut w, "d", false), 200);
    code(&cp(&mut w, "a", "d"), 200);
    assert_eq!(home.content("d/a"), a);

    code(&cp(&mut w, "missing", "x"), 550);
    code(&cp(&mut w, "d", "x"), 551);
    code(&cp(&mut w, "a", "a"), 501);
    code(&cp(&mut w, "a", "nodir/x"), 550);
    assert!(!home.exists("x"));
    assert!(!home.exists("nodir"));

    // Over an existing file: replaced, its bytes freed.
    code(&w.put("e", &data(100_000, 8)), 226);
    code(&cp(&mut w, "a", "e"), 200);
    assert_eq!(home.content("e"), a);
    assert_used_matches(&mut w, &home);
    assert_eq!(used(&mut w), 4 * 70_000);
    assert!(home.partials().is_empty());
}

fn put_and_get_errors(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    code(&mkdir(&mut w, "d", false), 200);
    code(&w.put("f", b"0123456789"), 226);

    // put
    code(&w.put("d", b"x"), 551);
    code(&w.put("/", b"x"), 551);
    code(&w.put("nodir/x", b"x"), 550);
    assert!(!home.exists("nodir"));
    code(&put_mkdirs(&mut w, "nodir/sub/x", b"x"), 226);
    assert_eq!(home.content("nodir/sub/x"), b"x");
    code(&begin_put(&mut w, "g", Some(5), 6, false), 501);
    code(&begin_put(&mut w, "g", Some(10), 5, false), 501);
    code(&w.put("", b"x"), 501);
    code(&w.call(json!({"op": "put", "path": "g", "size": -1})), 501);
    code(&w.call(json!({"op": "put"})), 501);
    assert!(!home.exists("g"));

    // get
    code(&get_at(&mut w, "d", 0).unwrap_err(), 551);
    code(&get_at(&mut w, "/", 0).unwrap_err(), 551);
    code(&get_at(&mut w, "missing", 0).unwrap_err(), 550);
    code(&get_at(&mut w, "f", 11).unwrap_err(), 501);
    code(
        &w.call(json!({"op": "get", "path": "f", "offset": "x"})),
        501,
    );

    // done and partial out of place
    code(&done(&mut w, &sha(b"")), 503);
    code(&op1(&mut w, "partial", "f"), 550);
    code(&op1(&mut w, "partial", "missing"), 550);
    code(&w.call(json!({"op": "format_disk"})), 502);

    assert!(home.partials().is_empty());
    assert_eq!(home.content("f"), b"0123456789");
    assert_used_matches(&mut w, &home);
    noop_ok(&mut w);
}

fn empty_files_both_ways(store: Store) {
    let s = start_on(store);
    let mut w = alice(&s);
    let home = s.stored("alice");
    let r = w.put("empty", b"");
    code(&r, 226);
    assert_eq!(r["size"], 0);
    assert_eq!(r["sha256"], sha(b""));
    assert_eq!(home.content("empty").len(), 0);
    let r = put_chunked(&mut w, "empty2", b"", &[1]);
    code(&r, 226);
    assert_eq!(r["size"], 0);
    assert!(home.is_file("empty2"));

    for name in ["empty", "empty2"] {
        let (r, body, t) = get_at(&mut w, name, 0).unwrap();
        code(&r, 150);
        assert_eq!(r["size"], 0);
        assert!(body.is_empty());
        code(&t, 226);
        assert_eq!(t["sha256"], sha(b""));
    }
    code(&get_at(&mut w, "empty", 1).unwrap_err(), 501);
    let r = op1(&mut w, "ls", "/");
    assert_eq!(entry(&r, "empty")["size"], 0);
    // An empty file replaces a full one.
    code(&w.put("full", b"some bytes"), 226);
    code(&w.put("full", b""), 226);
    assert_eq!(home.content("full").len(), 0);
    assert_eq!(used(&mut w), 0);
    assert!(home.partials().is_empty());
}
