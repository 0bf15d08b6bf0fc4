//! `miniftp put` and `miniftp get`: single files, several files and globs,
//! recursive trees, `-p`, `-` for standard input and output, `-c` resume
//! both ways, `-q` and `-v`.

use serde_json::json;

use crate::clients::fx::*;
use crate::util::*;

#[test]
fn put_then_get_a_single_file() {
    let srv = TestServer::start();
    let dir = local(&srv, "l");
    let body = data(300_000, 1);
    let f = write(&dir.join("a.bin"), &body);
    let o = run(&srv, &["put", s(&f), "a.bin"]);
    exit_is(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    same(&srv.home("alice").join("a.bin"), &body);

    // Under another remote name, then into an existing remote directory
    // named without a trailing slash.
    exit_is(&run(&srv, &["put", s(&f), "/b.bin"]), 0);
    same(&srv.home("alice").join("b.bin"), &body);
    seed(&srv, &[("docs/keep.txt", b"k")]);
    exit_is(&run(&srv, &["put", s(&f), "docs"]), 0);
    same(&srv.home("alice").join("docs/a.bin"), &body);

    // Back: to a new local name, and into an existing local directory.
    let out = local(&srv, "out");
    let o = run(&srv, &["get", "a.bin", s(&out.join("copy.bin"))]);
    exit_is(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    same(&out.join("copy.bin"), &body);
    exit_is(&run(&srv, &["get", "/docs/a.bin", s(&out)]), 0);
    same(&out.join("a.bin"), &body);
    // An existing local file is replaced.
    write(&out.join("copy.bin"), b"old content");
    exit_is(&run(&srv, &["get", "b.bin", s(&out.join("copy.bin"))]), 0);
    same(&out.join("copy.bin"), &body);
    assert_eq!(names(&out), ["a.bin", "copy.bin"], "no partial left behind");
}

#[test]
fn put_several_files_and_globs_into_a_remote_directory() {
    let srv = TestServer::start();
    let dir = local(&srv, "l");
    let a = write(&dir.join("a.txt"), b"alpha\n");
    let b = write(&dir.join("b.txt"), b"bravo\n");
    write(&dir.join("c.log"), b"charlie\n");
    let home = srv.home("alice");

    // Several files: REMOTE is a directory; -p creates it.
    let o = run(&srv, &["put", "-p", s(&a), s(&b), "in"]);
    exit_is(&o, 0);
    assert_eq!(read(&home.join("in/a.txt")), b"alpha\n");
    assert_eq!(read(&home.join("in/b.txt")), b"bravo\n");

    // A glob (quoted from the shell) expanded by miniftp itself, into an
    // existing directory given with a trailing slash.
    let pattern = format!("{}/*.txt", s(&dir));
    let o = run(&srv, &["put", &pattern, "in2/"]);
    exit_is(&o, 5); // in2 does not exist and there is no -p
    let o = run(&srv, &["put", "-p", &pattern, "in2/"]);
    exit_is(&o, 0);
    let mut got: Vec<String> = std::fs::read_dir(home.join("in2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    got.sort();
    assert_eq!(got, ["a.txt", "b.txt"]);
    assert_eq!(read(&home.join("in2/b.txt")), b"bravo\n");

    // A pattern that matches nothing: exit 5 before anything is sent.
    let o = run(
        &srv,
        &["put", "-p", s(&a), &format!("{}/*.none", s(&dir)), "in3/"],
    );
    exit_is(&o, 5);
    assert!(!home.join("in3").exists(), "something was sent");

    // Several files onto an existing remote *file*: nothing changes.
    seed(&srv, &[("plain", b"plain file")]);
    let o = run(&srv, &["put", s(&a), s(&b), "plain"]);
    exit_is(&o, 1);
    assert_eq!(read(&home.join("plain")), b"plain file");
}

/// Hundreds of small files go out eager and pipelined, several server
/// batches' worth, with a large one and a refused one in the middle: every
/// file arrives whole, in order, and the refusal doesn't derail the rest.
#[test]
fn many_small_files_in_one_run_all_arrive() {
    let srv = TestServer::with(Opts {
        users: vec![("alice", "alice-pw", "20M")],
        ..Opts::default()
    });
    let dir = local(&srv, "many");
    let mut files = Vec::new();
    for i in 0..300 {
        let body = data(i * 37 % 5000, i as u64);
        files.push(write(&dir.join(format!("f{i:03}")), &body));
    }
    // Bigger than the eager limit, then bigger than what is left of the quota.
    files.insert(150, write(&dir.join("f150-big"), &data(3 << 20, 9)));
    files.insert(200, write(&dir.join("f200-huge"), &data(30 << 20, 8)));
    let mut args = vec!["put", "-p"];
    args.extend(files.iter().map(|f| s(f)));
    args.push("many/");
    let o = run(&srv, &args);
    exit_is(&o, 7);
    assert!(stderr(&o).contains("f200-huge"), "{}", stderr(&o));
    let home = srv.home("alice").join("many");
    for f in &files {
        let name = f.file_name().unwrap();
        if name == "f200-huge" {
            assert!(!home.join(name).exists());
            continue;
        }
        same(&home.join(name), &read(f));
    }
}

#[test]
fn get_several_files_and_globs_into_a_local_directory() {
    let srv = TestServer::start();
    let (ga, gb) = (data(70_000, 2), data(10, 3));
    seed(
        &srv,
        &[
            ("logs/a.gz", &ga),
            ("logs/b.gz", &gb),
            ("logs/c.txt", b"text"),
            ("top.txt", b"top"),
        ],
    );
    let base = local(&srv, "l");

    // A glob on the server's listing, into a new directory named with a
    // trailing slash (created).
    let out = base.join("out");
    let o = run(&srv, &["get", "logs/*.gz", &format!("{}/", s(&out))]);
    exit_is(&o, 0);
    assert_eq!(names(&out), ["a.gz", "b.gz"]);
    same(&out.join("a.gz"), &ga);
    same(&out.join("b.gz"), &gb);

    // Several files: LOCAL is a directory, created if missing.
    let out2 = base.join("out2");
    let o = run(&srv, &["get", "logs/c.txt", "/top.txt", s(&out2)]);
    exit_is(&o, 0);
    assert_eq!(names(&out2), ["c.txt", "top.txt"]);
    assert_eq!(read(&out2.join("top.txt")), b"top");

    // A glob that matches nothing, or a missing remote among others: exit
    // 5 before anything is downloaded.
    let out3 = base.join("out3");
    exit_is(&run(&srv, &["get", "logs/*.zip", s(&out3)]), 5);
    exit_is(&run(&srv, &["get", "top.txt", "missing.txt", s(&out3)]), 5);
    assert!(!out3.exists(), "something was downloaded");
}

/// A local tree with nested directories and an empty one.
fn make_tree(root: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let files = vec![
        ("a.txt".to_string(), b"top file\n".to_vec()),
        ("sub/b.bin".to_string(), data(150_000, 4)),
        ("sub/deeper/c.bin".to_string(), data(5_000_000, 5)),
        ("sub/deeper/d e.txt".to_string(), b"spaces".to_vec()),
        ("z/zero".to_string(), Vec::new()),
    ];
    for (rel, body) in &files {
        write(&root.join(rel), body);
    }
    std::fs::create_dir_all(root.join("sub/empty")).unwrap();
    files
}

#[test]
fn put_recursive_tree() {
    let srv = TestServer::start();
    let base = local(&srv, "l");
    let tree = base.join("proj");
    let files = make_tree(&tree);
    let home = srv.home("alice");

    // Without -r a directory is a usage error, and nothing is sent.
    let o = run(&srv, &["put", s(&tree), "backup"]);
    exit_is(&o, 2);
    assert!(stderr(&o).contains("-r"), "{}", stderr(&o));

    // The tree goes into REMOTE under its own name.
    let o = run(&srv, &["put", "-r", s(&tree), "backup"]);
    exit_is(&o, 0);
    for (rel, body) in &files {
        same(&home.join("backup/proj").join(rel), body);
    }
    assert!(home.join("backup/proj/sub/empty").is_dir());
    assert!(partials(&home).is_empty());
}

#[test]
fn get_recursive_tree() {
    let srv = TestServer::start();
    let src = local(&srv, "src");
    let files = make_tree(&src.join("proj"));
    exit_is(&run(&srv, &["put", "-r", s(&src.join("proj")), "/"]), 0);
    let base = local(&srv, "l");

    let copy = base.join("copy");
    let o = run(&srv, &["get", "proj", s(&copy)]);
    exit_is(&o, 2);
    assert!(!copy.exists());

    let o = run(&srv, &["get", "-r", "proj", s(&copy)]);
    exit_is(&o, 0);
    for (rel, body) in &files {
        same(&copy.join("proj").join(rel), body);
    }
    assert!(copy.join("proj/sub/empty").is_dir());
    assert!(partials(&copy).is_empty());
}

#[test]
fn put_parents_creates_missing_remote_directories() {
    let srv = TestServer::start();
    let f = write(&local(&srv, "l").join("r.pdf"), &data(20_000, 6));
    let home = srv.home("alice");
    // Without -p the missing parent is "not found".
    let o = run(&srv, &["put", s(&f), "x/y/z/r.pdf"]);
    exit_is(&o, 5);
    assert!(!home.join("x").exists());
    let o = run(&srv, &["put", "-p", s(&f), "x/y/z/r.pdf"]);
    exit_is(&o, 0);
    same(&home.join("x/y/z/r.pdf"), &read(&f));
    // REMOTE as a directory: -p creates it.
    let o = run(&srv, &["put", "-p", s(&f), "backups/2026/"]);
    exit_is(&o, 0);
    same(&home.join("backups/2026/r.pdf"), &read(&f));
}

/// Bytes that look like a tar stream: 512-byte headers and padded bodies.
fn tar_like() -> Vec<u8> {
    let mut out = Vec::new();
    for (i, len) in [(0u64, 1000usize), (1, 3_000_000), (2, 0), (3, 77)] {
        let mut header = vec![0u8; 512];
        let name = format!("project/file{i}.dat");
        header[..name.len()].copy_from_slice(name.as_bytes());
        header[124..135].copy_from_slice(format!("{len:011o}").as_bytes());
        out.extend(header);
        out.extend(data(len, 10 + i));
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend(vec![0u8; 1024]);
    out
}

#[test]
fn put_from_standard_input() {
    let srv = TestServer::start();
    let home = srv.home("alice");
    let stream = tar_like();
    let o = run_in(
        &srv,
        &["put", "-p", "-", "backups/project.tgz"],
        Some(&stream),
    );
    exit_is(&o, 0);
    assert_eq!(stdout(&o), "");
    assert_eq!(stderr(&o), "");
    same(&home.join("backups/project.tgz"), &stream);

    // -v reports the stream's digest.
    let o = run_in(&srv, &["put", "-v", "-", "again.tgz"], Some(&stream));
    exit_is(&o, 0);
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert_eq!(sha_in(&err), Some(sha256_hex(&stream).as_str()), "{err}");
    same(&home.join("again.tgz"), &stream);

    // An empty stream stores an empty file.
    let o = run_in(&srv, &["put", "-", "empty"], Some(b""));
    exit_is(&o, 0);
    assert_eq!(read(&home.join("empty")), b"");
    assert!(partials(&home).is_empty());
}

#[test]
fn get_to_standard_output() {
    let srv = TestServer::start();
    let body = data(2_500_000, 7);
    seed(&srv, &[("backups/project.tgz", &body), ("other", b"x")]);
    let o = run(&srv, &["get", "backups/project.tgz", "-"]);
    exit_is(&o, 0);
    assert!(o.stdout == body, "stdout is not exactly the file");
    assert_eq!(stderr(&o), "");

    // Diagnostics only on stderr.
    let o = run(&srv, &["get", "-v", "backups/project.tgz", "-"]);
    exit_is(&o, 0);
    assert!(o.stdout == body, "stdout is not exactly the file with -v");
    let err = stderr(&o);
    assert_eq!(lines(&err).len(), 1, "{err}");
    assert_eq!(sha_in(&err), Some(sha256_hex(&body).as_str()), "{err}");

    // `-` takes exactly one remote file.
    let o = run(&srv, &["get", "backups/project.tgz", "other", "-"]);
    exit_is(&o, 2);
    assert_eq!(o.stdout, b"");
    let o = run(&srv, &["get", "backups", "-"]);
    exit_is(&o, 2);
    assert_eq!(o.stdout, b"");
    // A missing file: nothing on stdout.
    let o = run(&srv, &["get", "nope", "-"]);
    exit_is(&o, 5);
    assert_eq!(o.stdout, b"");
}

#[test]
fn get_continue_finishes_a_local_partial() {
    let srv = TestServer::start();
    let body = data(3_000_000, 8);
    seed(&srv, &[("big.bin", &body)]);
    let out = local(&srv, "dl");
    // What an interrupted download leaves: the first MiB in the hidden
    // partial beside the destination.
    write(&out.join(".big.bin.miniftp-part"), &body[..1 << 20]);
    let o = run(
        &srv,
        &["get", "-c", "-v", "big.bin", s(&out.join("big.bin"))],
    );
    exit_is(&o, 0);
    same(&out.join("big.bin"), &body);
    assert_eq!(names(&out), ["big.bin"]);
    let err = stderr(&o);
    assert!(err.contains("(resumed at 1 MiB)"), "{err}");
    assert_eq!(sha_in(&err), Some(sha256_hex(&body).as_str()), "{err}");

    // A partial holding the whole file: nothing left to send.
    write(&out.join(".big.bin.miniftp-part"), &body);
    std::fs::remove_file(out.join("big.bin")).unwrap();
    let o = run(&srv, &["get", "-c", "big.bin", s(&out)]);
    exit_is(&o, 0);
    same(&out.join("big.bin"), &body);
    assert_eq!(names(&out), ["big.bin"]);
}

#[test]
fn get_continue_with_a_wrong_partial_starts_over() {
    // docs/PROTOCOL.md 8.7: a mismatch at the end of a resumed download
    // "means the file changed on the server or the kept part was wrong, and
    // the client starts over from 0".
    let srv = TestServer::start();
    let body = data(1_500_000, 9);
    seed(&srv, &[("f.bin", &body)]);
    let out = local(&srv, "dl");
    write(&out.join(".f.bin.miniftp-part"), &data(500_000, 99));
    let o = run(&srv, &["get", "-c", "f.bin", s(&out.join("f.bin"))]);
    // Whatever happens, a wrong file never appears under the real name.
    if let Ok(got) = std::fs::read(out.join("f.bin")) {
        assert!(got == body, "a corrupt file was renamed into place");
    }
    exit_is(&o, 0);
    same(&out.join("f.bin"), &body);
    assert_eq!(names(&out), ["f.bin"]);
}

#[test]
fn put_continue_finishes_a_server_partial() {
    let srv = TestServer::start();
    let home = srv.home("alice");
    let body = data(2 << 20, 11);
    let f = write(&local(&srv, "l").join("big.bin"), &body);
    // An interrupted upload: half the body, then the connection drops.
    drop(upload_partly(&srv, "up/big.bin", &body, 1 << 20));
    let p = wait_partial(&srv, "up/big.bin", 1 << 20);
    assert_eq!(p["sha256"], sha256_hex(&body[..1 << 20]));

    let o = run(&srv, &["put", "-c", "-v", s(&f), "up/big.bin"]);
    exit_is(&o, 0);
    let err = stderr(&o);
    assert!(err.contains("(resumed at 1 MiB)"), "{err}");
    assert_eq!(sha_in(&err), Some(sha256_hex(&body).as_str()), "{err}");
    same(&home.join("up/big.bin"), &body);
    assert!(partials(&home).is_empty(), "{:?}", partials(&home));
    let mut w = srv.login("alice", PW);
    assert_eq!(op(&mut w, "partial", "up/big.bin")["code"], 550);
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(q["quota"]["used"], body.len(), "{q}");
}

#[test]
fn put_continue_starts_over_when_the_partial_differs() {
    let srv = TestServer::start();
    let home = srv.home("alice");
    let body = data(1 << 20, 12);
    let f = write(&local(&srv, "l").join("f.bin"), &body);
    let other = data(1 << 20, 13);
    drop(upload_partly(&srv, "f.bin", &other, 400_000));
    wait_partial(&srv, "f.bin", 400_000);
    let o = run(&srv, &["put", "-c", "-v", s(&f), "f.bin"]);
    exit_is(&o, 0);
    let err = stderr(&o);
    assert!(!err.contains("resumed"), "{err}");
    same(&home.join("f.bin"), &body);
    assert!(partials(&home).is_empty());

    // -c with no partial at all is a plain upload.
    let o = run(&srv, &["put", "-c", s(&f), "g.bin"]);
    exit_is(&o, 0);
    same(&home.join("g.bin"), &body);
}

#[test]
fn quiet_prints_nothing() {
    let srv = TestServer::start();
    let dir = local(&srv, "l");
    let a = write(&dir.join("a"), &data(100_000, 14));
    let b = write(&dir.join("b"), b"b");
    let o = run(&srv, &["put", "-q", "-p", s(&a), s(&b), "q/"]);
    exit_is(&o, 0);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    let o = run(&srv, &["get", "-q", "q/*", s(&dir.join("back"))]);
    exit_is(&o, 0);
    assert_eq!((stdout(&o).as_str(), stderr(&o).as_str()), ("", ""));
    same(&dir.join("back/a"), &read(&a));
    // -q and -v conflict.
    exit_is(&run(&srv, &["put", "-q", "-v", s(&a), "x"]), 2);
    exit_is(&run(&srv, &["get", "-q", "-v", "q/a", s(&dir)]), 2);
}

#[test]
fn verbose_prints_a_line_per_file_with_its_digest() {
    let srv = TestServer::start();
    let dir = local(&srv, "l");
    let files: Vec<_> = (0..3)
        .map(|i| {
            let body = data(50_000 * (i + 1), 20 + i as u64);
            (write(&dir.join(format!("f{i}.dat")), &body), body)
        })
        .collect();
    let mut args = vec!["put", "-v", "-p"];
    args.extend(files.iter().map(|(p, _)| s(p)));
    args.push("v/");
    let o = run(&srv, &args);
    exit_is(&o, 0);
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let got = lines(&err);
    assert_eq!(got.len(), files.len(), "one line per file:\n{err}");
    for ((path, body), line) in files.iter().zip(&got) {
        assert!(
            line.starts_with(&format!("put {} -> v/", s(path))),
            "{line}"
        );
        assert_eq!(sha_in(line), Some(sha256_hex(body).as_str()), "{line}");
    }

    let back = dir.join("back");
    let o = run(&srv, &["get", "-v", "v/*.dat", s(&back)]);
    exit_is(&o, 0);
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    let got = lines(&err);
    assert_eq!(got.len(), files.len(), "one line per file:\n{err}");
    for ((_, body), line) in files.iter().zip(&got) {
        assert!(line.starts_with("get v/f"), "{line}");
        assert_eq!(sha_in(line), Some(sha256_hex(body).as_str()), "{line}");
    }
}

#[test]
fn no_progress_output_without_a_terminal() {
    let srv = TestServer::start();
    let body = data(20 << 20, 30);
    let dir = local(&srv, "l");
    let f = write(&dir.join("big"), &body);
    let o = run(&srv, &["put", s(&f), "big"]);
    exit_is(&o, 0);
    assert_eq!(stderr(&o), "", "progress output on a pipe");
    let o = run(&srv, &["get", "big", s(&dir.join("back"))]);
    exit_is(&o, 0);
    assert_eq!(stderr(&o), "", "progress output on a pipe");
    same(&dir.join("back"), &body);
    // The scripted shell too.
    let script = format!("put {} big2\nget big2 {}\n", s(&f), s(&dir.join("back2")));
    let o = run_in(&srv, &["shell", "--user", "alice"], Some(script.as_bytes()));
    exit_is(&o, 0);
    let err = stderr(&o);
    assert!(
        !err.contains('\r') && !err.contains('\x1b') && !err.contains("=>") && !err.contains("ETA"),
        "progress output on a pipe: {err:?}"
    );
    assert_eq!(err, "");
    same(&dir.join("back2"), &body);
}

#[test]
fn recursive_transfers_skip_symlinks_and_special_files() {
    let srv = TestServer::start();
    let base = local(&srv, "l");
    let tree = base.join("t");
    write(&tree.join("real.txt"), b"real");
    write(&tree.join("d/inner.txt"), b"inner");
    std::os::unix::fs::symlink(tree.join("real.txt"), tree.join("link.txt")).unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("etc-link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        tree.join("fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let o = run(&srv, &["put", "-r", s(&tree), "/"]);
    exit_is(&o, 0);
    let home = srv.home("alice");
    assert_eq!(names(&home.join("t")), ["d", "real.txt"]);
    assert_eq!(read(&home.join("t/d/inner.txt")), b"inner");

    // Remote symlinks and non-UTF-8 names are skipped by get -r.
    std::os::unix::fs::symlink("real.txt", home.join("t/rlink")).unwrap();
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad\xffname");
        std::fs::write(home.join("t/d").join(name), b"x").unwrap();
    }
    let copy = base.join("copy");
    let o = run(&srv, &["get", "-r", "t", s(&copy)]);
    exit_is(&o, 0);
    assert_eq!(names(&copy.join("t")), ["d", "real.txt"]);
    assert_eq!(names(&copy.join("t/d")), ["inner.txt"]);
    assert!(stderr(&o).contains("not UTF-8"), "{}", stderr(&o));
}

#[test]
fn retries_a_full_server() {
    // --retries: a server answering 421 (full) is tried again.
    let srv = TestServer::with(Opts {
        toml: "[limits]\nmax_connections = 1\n".into(),
        ..Opts::default()
    });
    let f = write(&local(&srv, "l").join("f"), b"retried");
    let holder = srv.connect();
    let child = client(&srv)
        .args(["put", "--retries", "2", s(&f), "f"])
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    assert!(
        eventually(std::time::Duration::from_secs_f64(10.0), || srv
            .log()
            .contains("refused connection from")),
        "{}",
        srv.log()
    );
    drop(holder);
    let o = child.wait_with_output().unwrap();
    exit_is(&o, 0);
    assert_eq!(read(&srv.home("alice").join("f")), b"retried");
}

/// The file the fake server below serves half of before it drops.
fn lost_body() -> Vec<u8> {
    data(1_000_000, 95)
}

#[test]
fn a_download_cut_off_is_kept_and_resumed_with_continue() {
    // A server that sends half of the file and then drops the connection.
    let addr = fake_server(1, |mut c| {
        let body = lost_body();
        frame(
            &mut c,
            json!({"code": 220, "msg": "ready", "protocol": 1, "server": "miniftp/0.1.0"}),
        );
        while let Some(req) = read_frame(&mut c) {
            let req: serde_json::Value = serde_json::from_slice(&req).unwrap();
            let entry = json!({"name": "f.bin", "type": "file", "size": body.len(), "mtime": 0});
            match req["op"].as_str().unwrap() {
                "login" => frame(&mut c, json!({"code": 230, "msg": "welcome", "cwd": "/"})),
                "stat" => frame(
                    &mut c,
                    json!({"code": 200, "msg": "/f.bin", "entry": entry}),
                ),
                "get" => {
                    frame(
                        &mut c,
                        json!({"code": 150, "msg": "go", "size": body.len(), "offset": 0}),
                    );
                    use std::io::Write;
                    let _ = c.write_all(&body[..400_000]);
                    return;
                }
                _ => frame(&mut c, json!({"code": 502, "msg": "no"})),
            }
        }
    });
    let srv = TestServer::start();
    let body = lost_body();
    seed(&srv, &[("f.bin", &body)]);
    let out = local(&srv, "dl");
    let target = out.join("f.bin");
    let o = run(
        &srv,
        &[
            "get",
            "--server",
            &addr,
            "--retries",
            "0",
            "f.bin",
            s(&target),
        ],
    );
    exit_is(&o, 3);
    // Nothing under the real name; what arrived is kept for -c.
    assert_eq!(names(&out), [".f.bin.miniftp-part"]);
    same(&out.join(".f.bin.miniftp-part"), &body[..400_000]);
    let o = run(&srv, &["get", "-c", "-v", "f.bin", s(&target)]);
    exit_is(&o, 0);
    assert!(
        stderr(&o).contains("(resumed at 390.62 KiB)"),
        "{}",
        stderr(&o)
    );
    same(&target, &body);
    assert_eq!(names(&out), ["f.bin"]);
}

#[test]
fn get_continue_with_a_partial_longer_than_the_file_starts_over() {
    // The file was replaced by a shorter one since the download broke off
    // (PROTOCOL.md 8.7: the client starts over from 0).
    let srv = TestServer::start();
    let body = data(100_000, 96);
    seed(&srv, &[("f.bin", &body)]);
    let out = local(&srv, "dl");
    write(&out.join(".f.bin.miniftp-part"), &data(300_000, 97));
    let o = run(&srv, &["get", "-c", "f.bin", s(&out.join("f.bin"))]);
    exit_is(&o, 0);
    same(&out.join("f.bin"), &body);
    assert_eq!(names(&out), ["f.bin"]);
}
