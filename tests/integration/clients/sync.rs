//! `miniftp sync up|down`, and the one-shots for scripts (`ls -l/--json`,
//! `rm -f`, `sum`): first run, a run with nothing changed (nothing moves),
//! a changed file, --delete, --dry-run, --exclude, times kept both ways, an
//! interrupted sync that leaves every file old or new and is resumed, and
//! `sum` checked by the real `sha256sum -c`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::clients::fx::*;
use crate::util::*;

/// A local tree: a.txt, sub/b.bin (2 MiB), sub/deep/c.txt, skip.tmp.
fn tree(srv: &TestServer, name: &str) -> std::path::PathBuf {
    let root = local(srv, name);
    write(&root.join("a.txt"), b"alpha");
    write(&root.join("sub/b.bin"), &data(2 << 20, 7));
    write(&root.join("sub/deep/c.txt"), b"gamma");
    write(&root.join("skip.tmp"), b"scratch");
    set_mtime(&root.join("a.txt"), 1_500_000_000);
    root
}

fn set_mtime(p: &Path, secs: i64) {
    let f = std::fs::File::options().write(true).open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs as u64))
        .unwrap();
}

fn mtime(p: &Path) -> i64 {
    std::fs::metadata(p).unwrap().mtime()
}

/// The summary line of a sync.
fn summary(o: &std::process::Output) -> String {
    exit_is(o, 0);
    let out = stdout(o);
    out.lines()
        .find(|l| l.starts_with("sync "))
        .unwrap_or_else(|| panic!("no summary in {out:?}"))
        .to_string()
}

#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn sync_up_first_run_no_change_change_delete_and_times() {
    let srv = TestServer::start();
    let root = tree(&srv, "src");
    let src = s(&root);
    let home = srv.home("alice");
    let line = summary(&run(
        &srv,
        &["sync", "up", src, "/backup", "--exclude", "*.tmp"],
    ));
    assert!(line.contains("3 files sent"), "{line}");
    same(&home.join("backup/sub/b.bin"), &data(2 << 20, 7));
    same(&home.join("backup/sub/deep/c.txt"), b"gamma");
    assert!(
        !home.join("backup/skip.tmp").exists(),
        "an excluded file was sent"
    );
    assert_eq!(mtime(&home.join("backup/a.txt")), 1_500_000_000);
    assert_eq!(
        mtime(&home.join("backup/sub/b.bin")),
        mtime(&root.join("sub/b.bin"))
    );

    // Nothing changed: nothing moves, and it says so.
    let before = srv.log().matches("transfer op=put").count();
    let line = summary(&run(
        &srv,
        &["sync", "up", src, "/backup", "--exclude", "*.tmp"],
    ));
    assert!(
        line.contains("0 files sent") && line.contains("nothing to do"),
        "{line}"
    );
    assert_eq!(srv.log().matches("transfer op=put").count(), before);

    // One file changed (same size, other bytes), one touched only, one gone.
    std::fs::write(root.join("sub/deep/c.txt"), b"GAMMA").unwrap();
    set_mtime(&root.join("a.txt"), 1_600_000_000);
    std::fs::remove_file(root.join("sub/b.bin")).unwrap();
    let o = run(
        &srv,
        &["sync", "up", "-v", src, "/backup", "--exclude", "*.tmp"],
    );
    let line = summary(&o);
    assert!(
        line.contains("1 files sent") && line.contains("1 times set"),
        "{line}"
    );
    assert!(line.contains("0 deleted"), "{line}");
    same(&home.join("backup/sub/deep/c.txt"), b"GAMMA");
    assert_eq!(mtime(&home.join("backup/a.txt")), 1_600_000_000);
    assert!(
        home.join("backup/sub/b.bin").exists(),
        "deleted without --delete"
    );

    // --dry-run shows the deletion and changes nothing; --delete does it,
    // but leaves excluded files alone.
    std::fs::write(home.join("backup/keep.tmp"), b"x").unwrap();
    let o = run(
        &srv,
        &[
            "sync",
            "up",
            "-n",
            "--delete",
            src,
            "/backup",
            "--exclude",
            "*.tmp",
        ],
    );
    assert!(stdout(&o).contains("delete sub/b.bin"), "{}", stdout(&o));
    assert!(summary(&o).contains("dry run"));
    assert!(home.join("backup/sub/b.bin").exists(), "--dry-run deleted");
    let line = summary(&run(
        &srv,
        &[
            "sync",
            "up",
            "--delete",
            src,
            "/backup",
            "--exclude",
            "*.tmp",
        ],
    ));
    assert!(line.contains("1 deleted"), "{line}");
    assert!(!home.join("backup/sub/b.bin").exists());
    assert!(
        home.join("backup/keep.tmp").exists(),
        "an excluded remote file was deleted"
    );
}

#[test]
fn sync_down_keeps_times_and_deletes_only_when_asked() {
    let srv = TestServer::start();
    let root = tree(&srv, "src");
    exit_is(&run(&srv, &["sync", "up", "-q", s(&root), "/b"]), 0);
    let dest = srv.dir.path().join("restore");
    let line = summary(&run(&srv, &["sync", "down", s(Path::new("/b")), s(&dest)]));
    assert!(line.contains("4 files received"), "{line}");
    same(&dest.join("sub/b.bin"), &data(2 << 20, 7));
    assert_eq!(mtime(&dest.join("a.txt")), 1_500_000_000);
    assert!(partials(&dest).is_empty());
    let line = summary(&run(&srv, &["sync", "down", "/b", s(&dest)]));
    assert!(line.contains("nothing to do"), "{line}");

    // A local change is put back; an extra local file goes with --delete.
    std::fs::write(dest.join("a.txt"), b"ALPHA").unwrap();
    std::fs::write(dest.join("extra.txt"), b"e").unwrap();
    let line = summary(&run(&srv, &["sync", "down", "/b", s(&dest)]));
    assert!(
        line.contains("1 files received") && line.contains("0 deleted"),
        "{line}"
    );
    same(&dest.join("a.txt"), b"alpha");
    assert_eq!(mtime(&dest.join("a.txt")), 1_500_000_000);
    let line = summary(&run(&srv, &["sync", "down", "--delete", "/b", s(&dest)]));
    assert!(line.contains("1 deleted"), "{line}");
    assert!(!dest.join("extra.txt").exists());
}

#[test]
fn interrupted_sync_leaves_old_or_new_and_resumes() {
    let srv = TestServer::start();
    let root = local(&srv, "big");
    let n = 6;
    for i in 0..n {
        write(&root.join(format!("f{i}")), &data(1 << 20, i));
    }
    exit_is(&run(&srv, &["sync", "up", "-q", s(&root), "/t"]), 0);
    // New versions, sent slowly; the client is killed in the middle.
    for i in 0..n {
        write(&root.join(format!("f{i}")), &data((1 << 20) + 3, 100 + i));
    }
    let mut child = client(&srv)
        .args([
            "sync",
            "up",
            "-q",
            "-j",
            "1",
            "--bwlimit",
            "1M",
            s(&root),
            "/t",
        ])
        .env("MINIFTP_USER", "alice")
        .env("MINIFTP_PASSWORD", PW)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let home = srv.home("alice").join("t");
    let is_new =
        |i: u64| std::fs::read(home.join(format!("f{i}"))).unwrap() == data((1 << 20) + 3, 100 + i);
    assert!(
        eventually(std::time::Duration::from_secs_f64(20.0), || (0..n)
            .any(is_new)),
        "no file was replaced"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let mut new = 0;
    for i in 0..n {
        let got = std::fs::read(home.join(format!("f{i}"))).unwrap();
        let old = got == data(1 << 20, i);
        new += usize::from(!old);
        assert!(old || got == data((1 << 20) + 3, 100 + i), "f{i} is torn");
    }
    assert!(new < n as usize, "the sync finished before it was stopped");
    let line = summary(&run(&srv, &["sync", "up", s(&root), "/t"]));
    assert!(!line.contains("failed"), "{line}");
    for i in 0..n {
        same(&home.join(format!("f{i}")), &data((1 << 20) + 3, 100 + i));
    }
}

#[test]
fn ls_long_json_and_sum_checked_by_sha256sum() {
    let srv = TestServer::start();
    let root = tree(&srv, "src");
    exit_is(&run(&srv, &["sync", "up", "-q", s(&root), "/b"]), 0);
    let o = run(&srv, &["ls", "-l", "/b/sub"]);
    exit_is(&o, 0);
    assert!(
        stdout(&o).contains(&format!(" {} ", 2 << 20)),
        "exact bytes: {}",
        stdout(&o)
    );
    let o = run(&srv, &["ls", "--json", "/b"]);
    exit_is(&o, 0);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let a = v
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "a.txt")
        .unwrap();
    assert_eq!(a["size"], 5);
    assert_eq!(a["mtime"], 1_500_000_000);
    assert_eq!(a["type"], "file");
    assert_eq!(a["sha256"], sha256_hex(b"alpha"));
    // sum's lines check the local copy with the real sha256sum.
    let o = run(&srv, &["sum", "-r", "/b"]);
    exit_is(&o, 0);
    let lines = stdout(&o).replace("/b/", "");
    let mut check = Command::new("sha256sum")
        .arg("-c")
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    check
        .stdin
        .take()
        .unwrap()
        .write_all(lines.as_bytes())
        .unwrap();
    let out = check.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).matches(": OK").count(),
        4
    );
    // A changed local copy fails the check.
    std::fs::write(root.join("a.txt"), b"tampered").unwrap();
    let o = run(&srv, &["sum", "/b/a.txt"]);
    let line = stdout(&o).replace("/b/", "");
    let mut check = Command::new("sha256sum")
        .args(["-c", "--quiet"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(line.as_bytes())
        .unwrap();
    assert!(!check.wait().unwrap().success());
}

#[test]
fn rm_force_and_the_readme_retention_recipe() {
    let srv = TestServer::start();
    let exit_of = |o: std::process::Output| o.status.code();
    assert_eq!(exit_of(run(&srv, &["rm", "/nope.tgz"])), Some(5));
    assert_eq!(
        exit_of(run(&srv, &["rm", "-f", "/nope.tgz", "/nope/*.tgz"])),
        Some(0)
    );
    // The README's retention line, run as written (cron's `\%` is `%`).
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let recipe = readme
        .lines()
        .find(|l| l.contains("miniftp rm -f"))
        .expect("a retention line with `miniftp rm -f` in README.md");
    let cmd = recipe
        .splitn(6, char::is_whitespace)
        .nth(5)
        .unwrap()
        .replace("\\%", "%");
    let old = String::from_utf8(
        Command::new("date")
            .args(["-d", "14 days ago", "+%F"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let old = old.trim();
    seed(
        &srv,
        &[
            (&format!("backups/app-{old}.tgz"), b"old"),
            ("backups/app-new.tgz", b"new"),
        ],
    );
    let o = srv.cli_env(&["--version"], &[], None);
    exit_is(&o, 0);
    let sh = |cmd: &str| {
        Command::new("sh")
            .args(["-c", cmd])
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    Path::new(BIN).parent().unwrap().display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .env("MINIFTP_SERVER", &srv.addr)
            .env("MINIFTP_USER", "alice")
            .env("MINIFTP_PASSWORD", PW)
            .env("MINIFTP_PLAINTEXT", "1")
            .env("HOME", srv.dir.path())
            .status()
            .unwrap()
    };
    assert!(sh(&cmd).success(), "{cmd}");
    let backups = srv.home("alice").join("backups");
    assert!(!backups.join(format!("app-{old}.tgz")).exists());
    assert!(backups.join("app-new.tgz").exists());
    // The next night the file is already gone: still exit 0.
    assert!(sh(&cmd).success(), "a second run failed: {cmd}");
}
