//! `miniftp shell` with commands on standard input (no terminal): every
//! command and its output, stopping at the first failure with its exit
//! code, --keep-going, quoting, comments and quit.

use std::process::Output;

use crate::clients::fx::*;
use crate::util::*;

fn script(srv: &TestServer, args: &[&str], text: &str) -> Output {
    run_in(srv, &[&["shell"][..], args].concat(), Some(text.as_bytes()))
}

#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn every_command() {
    let srv = TestServer::start();
    let l = local(&srv, "l");
    let body = data(200_000, 80);
    write(&l.join("data.bin"), &body);
    write(&l.join("my file.txt"), b"twelve bytes");
    std::fs::create_dir_all(l.join("sub")).unwrap();
    let dl = local(&srv, "dl");
    let text = format!(
        "# a comment, then an empty line\n\
         \n\
         lcd {l}\n\
         lpwd\n\
         lls\n\
         pwd\n\
         mkdir -p a/b/c\n\
         cd a\n\
         pwd\n\
         put \"my file.txt\"\n\
         put data.bin b/\n\
         ls\n\
         ls -l\n\
         ls b\n\
         stat \"my file.txt\"\n\
         cp \"my file.txt\" copy.txt\n\
         mv copy.txt b\n\
         ls b\n\
         rm b/copy.txt\n\
         rmdir b/c\n\
         lcd {dl}\n\
         get b/data.bin\n\
         get \"my file.txt\" renamed.txt\n\
         quota\n\
         cd /\n\
         rm -r a\n\
         ls\n\
         help\n\
         help put\n",
        l = s(&l),
        dl = s(&dl),
    );
    let o = script(&srv, &[], &text);
    exit_is(&o, 0);
    assert_eq!(stderr(&o), "");
    let data_sha = sha256_hex(&body);
    let txt_sha = sha256_hex(b"twelve bytes");
    let expected = [
        s(&l).to_string(),
        s(&l).to_string(),
        "data.bin".into(),
        "my file.txt".into(),
        "sub/".into(),
        "/".into(),
        "/a/b/c: directory *".into(),
        "/a".into(),
        format!("put my file.txt -> my file.txt: 12 B in *s (*/s), sha256 {txt_sha}"),
        format!("put data.bin -> b/data.bin: 195.31 KiB in *s (*/s), sha256 {data_sha}"),
        "b/".into(),
        "my file.txt".into(),
        "d          -  ????-??-?? ??:??  b/".into(),
        "-       12 B  ????-??-?? ??:??  my file.txt".into(),
        "c/".into(),
        "data.bin".into(),
        "-       12 B  ????-??-?? ??:??  my file.txt".into(),
        "/a/my file.txt copied to /a/copy.txt".into(),
        "/a/copy.txt -> /a/b/copy.txt".into(),
        "c/".into(),
        "copy.txt".into(),
        "data.bin".into(),
        "/a/b/copy.txt: removed*".into(),
        "/a/b/c: *removed".into(),
        s(&dl).to_string(),
        format!("get b/data.bin -> data.bin: 195.31 KiB in *s (*/s), sha256 {data_sha}"),
        format!("get my file.txt -> renamed.txt: 12 B in *s (*/s), sha256 {txt_sha}"),
        "used 195.32 KiB of 100 MiB (99.81 MiB free); * of 100000 files and directories".into(),
        "/a: removed*".into(),
        "commands (help CMD for details):".into(),
        "  put [-r] [-c] LOCAL [REMOTE]".into(),
        "  get [-r] [-c] REMOTE [LOCAL]".into(),
        "  ls [-l] [--json] [PATH]".into(),
        "  cd PATH".into(),
        "  pwd".into(),
        "  mkdir [-p] PATH".into(),
        "  rmdir PATH".into(),
        "  rm [-r] [-f] PATH".into(),
        "  mv FROM TO".into(),
        "  cp FROM TO".into(),
        "  stat [--json] PATH".into(),
        "  quota".into(),
        "  lcd [DIR]".into(),
        "  lpwd".into(),
        "  lls [DIR]".into(),
        "  help [COMMAND]".into(),
        "  quit".into(),
        "put [-r] [-c] LOCAL [REMOTE]".into(),
        "    Upload the local file LOCAL, to REMOTE*".into(),
        "*".into(),
        "    LOCAL may be a glob (put *.txt); several matches go into REMOTE.".into(),
        "    The server stores it under its name only once the SHA-256 matches.".into(),
        "    -r  upload a directory and everything in it.".into(),
        "    -c  resume an interrupted upload of the same file.".into(),
        "    Ctrl-C stops the transfer (the partial is kept for -c).".into(),
        "    mput LOCAL... uploads several into the current directory. Also: mput.".into(),
    ];
    assert_lines(&stdout(&o), &expected);
    // The files that moved.
    same(&dl.join("data.bin"), &body);
    assert_eq!(read(&dl.join("renamed.txt")), b"twelve bytes");
    assert_eq!(names(&dl), ["data.bin", "renamed.txt"]);
    assert_eq!(names(&srv.home("alice")), Vec::<String>::new());
}

/// `?` matches one character, `*` any run of characters.
fn wild(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

#[track_caller]
fn assert_lines<S: AsRef<str>>(out: &str, expected: &[S]) {
    let got: Vec<&str> = out.lines().collect();
    for (i, want) in expected.iter().enumerate() {
        let want = want.as_ref();
        let line = got.get(i).copied().unwrap_or("<missing>");
        assert!(
            wild(want, line),
            "line {}: expected {want:?}, got {line:?}\nwhole output:\n{out}",
            i + 1
        );
    }
    assert_eq!(got.len(), expected.len(), "whole output:\n{out}");
}

#[test]
fn stops_at_the_first_failure_with_its_exit_code() {
    let srv = TestServer::start();
    let o = script(&srv, &[], "mkdir one\ncd nope\nmkdir two\n");
    exit_is(&o, 5);
    assert_lines(&stdout(&o), &["/one: directory created"]);
    let err = stderr(&o);
    assert!(err.starts_with("miniftp: line 2: cd nope: "), "{err}");
    assert!(!err.contains("line 3"), "{err}");
    assert!(srv.home("alice").join("one").is_dir());
    assert!(
        !srv.home("alice").join("two").exists(),
        "ran past the failure"
    );

    // Other codes: the jail (6), a bad line (2), an existing directory (1).
    for (line, code) in [
        ("get ../x", 6),
        ("frobnicate now", 2),
        ("put \"unbalanced", 2),
        ("mkdir one", 1),
        ("ls nope", 5),
    ] {
        let o = script(&srv, &[], &format!("pwd\n{line}\nmkdir never\n"));
        exit_is(&o, code);
        assert_lines(&stdout(&o), &["/"]);
        assert!(
            stderr(&o).starts_with(&format!("miniftp: line 2: {line}: ")),
            "{}",
            stderr(&o)
        );
        assert!(!srv.home("alice").join("never").exists(), "{line}: ran on");
    }
}

#[test]
fn keep_going_runs_everything_and_exits_with_the_first_failure() {
    let srv = TestServer::start();
    for flag in ["--keep-going", "-k"] {
        let o = script(
            &srv,
            &[flag],
            "mkdir one\ncd nope\nget ../x\nmkdir one\nmkdir two\nrmdir one\n",
        );
        exit_is(&o, 5);
        let err = stderr(&o);
        for n in [2, 3, 4] {
            assert!(err.contains(&format!("miniftp: line {n}: ")), "{err}");
        }
        assert!(!err.contains("line 5") && !err.contains("line 6"), "{err}");
        assert!(srv.home("alice").join("two").is_dir());
        assert!(!srv.home("alice").join("one").exists());
        std::fs::remove_dir(srv.home("alice").join("two")).unwrap();
    }
    // Nothing failed: 0.
    let o = script(&srv, &["-k"], "mkdir x\nrmdir x\n");
    exit_is(&o, 0);
}

#[test]
fn names_with_spaces_in_quotes() {
    let srv = TestServer::start();
    let l = local(&srv, "l");
    write(&l.join("a b.txt"), b"spaced out");
    let text = format!(
        "mkdir \"dir with spaces\"\n         put \"{l}/a b.txt\" \"dir with spaces/c d.txt\"\n         ls 'dir with spaces'\n         mv \"dir with spaces/c d.txt\" 'e f.txt'\n         cp 'e f.txt' \"dir with spaces\"\n         ls \"dir with spaces\"\n         get 'e f.txt' \"{l}/g h.txt\"\n",
        l = s(&l)
    );
    let o = script(&srv, &[], &text);
    exit_is(&o, 0);
    let home = srv.home("alice");
    assert_eq!(read(&home.join("e f.txt")), b"spaced out");
    assert_eq!(read(&home.join("dir with spaces/e f.txt")), b"spaced out");
    assert_eq!(read(&l.join("g h.txt")), b"spaced out");
    let out = stdout(&o);
    let got = lines(&out);
    assert_eq!(got[2], "c d.txt", "{out}");
    assert_eq!(got[5], "e f.txt", "{out}");
}

#[test]
fn quit_ends_early_and_aliases_work() {
    let srv = TestServer::start();
    for quit in ["quit", "exit", "q", "bye"] {
        let o = script(
            &srv,
            &[],
            &format!("mkdir {quit}-dir\n{quit}\nmkdir after\n"),
        );
        exit_is(&o, 0);
        assert!(srv.home("alice").join(format!("{quit}-dir")).is_dir());
        assert!(
            !srv.home("alice").join("after").exists(),
            "{quit} did not quit"
        );
    }
    // `dir` is `ls`, `?` is `help`, `rm -rf` is `rm -r`.
    let o = script(&srv, &[], "mkdir -p t/u\ndir t\n? quota\nrm -rf t\nls\n");
    exit_is(&o, 0);
    let out = stdout(&o);
    let got = lines(&out);
    assert_eq!(got[1], "u/", "{out}");
    assert_eq!(got[2], "quota", "{out}");
    assert!(!srv.home("alice").join("t").exists());
    // `help` knows the aliases: each gives its command's section.
    for (alias, usage) in [
        ("dir", "ls"),
        ("?", "help"),
        ("bye", "quit"),
        ("exit", "quit"),
    ] {
        let o = script(&srv, &[], &format!("help {alias}\n"));
        exit_is(&o, 0);
        let out = stdout(&o);
        assert!(
            lines(&out).first().is_some_and(|l| l.starts_with(usage)),
            "help {alias}: {out}"
        );
    }
}

#[test]
fn transfers_resume_and_need_existing_directories() {
    let srv = TestServer::start();
    let body = data(2_000_000, 81);
    let l = local(&srv, "l");
    let f = write(&l.join("big.bin"), &body);
    // put without mkdir -p first: the parent is not created.
    let o = script(&srv, &[], &format!("put {} nodir/big.bin\n", s(&f)));
    exit_is(&o, 5);
    // `DIR/` names a directory: a missing one is an error, never a file
    // called DIR.
    let o = script(&srv, &[], &format!("put {} nodir/\n", s(&f)));
    exit_is(&o, 5);
    assert!(!srv.home("alice").join("nodir").exists());
    let o = script(&srv, &[], &format!("mkdir d\nput {} d/\n", s(&f)));
    exit_is(&o, 0);
    same(&srv.home("alice").join("d/big.bin"), &body);
    // An interrupted upload, resumed with put -c.
    drop(upload_partly(&srv, "big.bin", &body, 700_000));
    wait_partial(&srv, "big.bin", 700_000);
    let dl = local(&srv, "dl");
    write(&dl.join(".big.bin.miniftp-part"), &body[..300_000]);
    let text = format!("put -c {} big.bin\nlcd {}\nget -c big.bin\n", s(&f), s(&dl));
    let o = script(&srv, &[], &text);
    exit_is(&o, 0);
    let out = stdout(&o);
    let got = lines(&out);
    assert!(got[0].contains("(resumed at 683.59 KiB)"), "{out}");
    assert!(got[2].contains("(resumed at 292.97 KiB)"), "{out}");
    same(&srv.home("alice").join("big.bin"), &body);
    same(&dl.join("big.bin"), &body);
    assert_eq!(names(&dl), ["big.bin"]);
}

#[test]
fn lcd_without_a_directory_goes_home() {
    let srv = TestServer::start();
    let o = script(&srv, &[], "lcd /\nlpwd\nlcd\nlpwd\n");
    exit_is(&o, 0);
    let home = s(srv.dir.path()).to_string();
    assert_lines(&stdout(&o), &["/", "/", &home, &home]);
}

/// The scripted shell fed in two parts, with the server closing the idle
/// session in between.
fn script_across_an_idle_close(
    srv: &TestServer,
    args: &[&str],
    first: &str,
    second: &str,
) -> Output {
    use std::io::Write;
    let mut child = client(srv)
        .arg("shell")
        .args(args)
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(first.as_bytes()).unwrap();
    stdin.flush().unwrap();
    let closes = || {
        srv.log()
            .lines()
            .filter(|l| l.contains("session end user=alice") && l.contains("(idle timeout)"))
            .count()
    };
    assert!(
        eventually(std::time::Duration::from_secs_f64(10.0), || closes() == 1),
        "{}",
        srv.log()
    );
    stdin.write_all(second.as_bytes()).unwrap();
    drop(stdin);
    child.wait_with_output().unwrap()
}

#[test]
fn keep_going_reconnects_after_a_lost_connection() {
    let srv = TestServer::with(Opts {
        toml: "[limits]\nidle_timeout_secs = 1\n".into(),
        ..Opts::default()
    });
    let o = script_across_an_idle_close(
        &srv,
        &["--keep-going"],
        "mkdir -p a\ncd a\n",
        "pwd\nmkdir b\npwd\n",
    );
    // The failed line is a 421 (10) or a reset connection (3), depending on
    // whether the server's reply or its close is read first.
    let code = o.status.code();
    assert!(
        code == Some(10) || code == Some(3),
        "exit {code:?}: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("line 3: pwd: "), "{}", stderr(&o));
    // After the reconnect, the session is back in /a.
    assert!(srv.home("alice").join("a/b").is_dir(), "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(lines(&out).last(), Some(&"/a"), "{out}");

    // Without --keep-going it stops there.
    let srv = TestServer::with(Opts {
        toml: "[limits]\nidle_timeout_secs = 1\n".into(),
        ..Opts::default()
    });
    let o = script_across_an_idle_close(&srv, &[], "mkdir a\n", "mkdir b\n");
    let code = o.status.code();
    assert!(
        code == Some(10) || code == Some(3),
        "exit {code:?}: {}",
        stderr(&o)
    );
    assert!(!srv.home("alice").join("b").exists());
}

#[test]
fn listings_follow_pages_and_show_every_type() {
    let srv = TestServer::start();
    seed(&srv, &[("big/placeholder", b"")]);
    let dir = srv.home("alice").join("big");
    std::fs::remove_file(dir.join("placeholder")).unwrap();
    // More entries than one `ls` reply holds (1000).
    let mut want: Vec<String> = (0..2345).map(|i| format!("f{i:05}")).collect();
    for n in &want {
        std::fs::write(dir.join(n), b"").unwrap();
    }
    std::fs::create_dir(dir.join("sub")).unwrap();
    std::os::unix::fs::symlink("f00000", dir.join("link")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        dir.join("pipe"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    let o = script(&srv, &[], "ls big\nls -l big\n");
    exit_is(&o, 0);
    let out = stdout(&o);
    let all: Vec<&str> = out.lines().collect();
    want.extend(["link".into(), "pipe".into(), "sub/".into()]);
    want.sort();
    assert_eq!(all.len(), 2 * want.len(), "{} lines", all.len());
    assert_eq!(&all[..want.len()], &want[..]);
    let long = &all[want.len()..];
    let line = |name: &str| {
        *long
            .iter()
            .find(|l| l.ends_with(&format!("  {name}")))
            .unwrap_or_else(|| panic!("no {name} in ls -l"))
    };
    assert!(line("f00000").starts_with("-        0 B  "));
    assert!(line("sub/").starts_with("d          -  "));
    assert!(line("link").starts_with("l "));
    assert!(line("pipe").starts_with("? "));

    // get with a glob matching only on the third page of the listing.
    let l = local(&srv, "l");
    let o = run(&srv, &["get", "big/f0234*", s(&l)]);
    exit_is(&o, 0);
    assert_eq!(
        names(&l),
        ["f02340", "f02341", "f02342", "f02343", "f02344"]
    );
}
