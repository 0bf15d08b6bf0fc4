//! `sync`'s local digest cache, through the real binary: a run with
//! nothing changed hashes nothing and moves nothing; a file rewritten with
//! its size and mtime restored is still caught (its ctime moved); a cache
//! file that is damaged, tampered with, of another version or bypassed
//! with `--no-cache` is not trusted (everything is hashed, and still
//! nothing is sent).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use miniftp::limits::CACHE_RACY_NS;

use crate::clients::fx::*;
use crate::util::*;

/// A local tree of three files: a.txt, sub/b.bin (1 MiB), sub/c.txt.
fn tree(srv: &TestServer) -> PathBuf {
    let root = local(srv, "src");
    write(&root.join("a.txt"), b"alpha");
    write(&root.join("sub/b.bin"), &data(1 << 20, 3));
    write(&root.join("sub/c.txt"), b"gamma");
    root
}

fn ctime_ns(p: &Path) -> i128 {
    let md = std::fs::metadata(p).unwrap();
    md.ctime() as i128 * 1_000_000_000 + md.ctime_nsec() as i128
}

/// Waits until every file under `root` is old enough for the cache to
/// keep its digest (a younger one is hashed again on the next run, by
/// design): a condition on the clock, not on readiness.
fn age_past_racy_window(root: &Path) {
    let newest = ["a.txt", "sub/b.bin", "sub/c.txt"]
        .iter()
        .map(|f| ctime_ns(&root.join(f)))
        .max()
        .unwrap();
    let ready = newest + CACHE_RACY_NS + 50_000_000;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128;
    if ready > now {
        std::thread::sleep(Duration::from_nanos((ready - now) as u64));
    }
}

/// `sync -v up ROOT /b`: its summary line and its stderr (the phase log).
fn sync_v(srv: &TestServer, root: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec!["sync", "-v", "up", s(root), "/b"];
    args.extend_from_slice(extra);
    let o = run(srv, &args);
    exit_is(&o, 0);
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("sync up:"))
        .unwrap_or_else(|| panic!("no summary in {}", stdout(&o)))
        .to_string();
    (line, stderr(&o))
}

/// The one cache file (one synced directory).
fn cache_file(srv: &TestServer) -> PathBuf {
    let dir = srv.dir.path().join(".cache/miniftp/sync");
    let files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

#[track_caller]
fn nothing_sent(line: &str) {
    assert!(
        line.contains("0 files sent (0 B)") && line.contains("nothing to do"),
        "{line}"
    );
}

#[track_caller]
fn digests_said(log: &str, want: &str) {
    assert!(log.contains(&format!("local digests: {want}")), "{log}");
}

#[test]
fn unchanged_files_are_not_hashed_and_a_ctime_change_is_caught() {
    let srv = TestServer::start();
    let root = tree(&srv);
    age_past_racy_window(&root);
    let (line, _) = sync_v(&srv, &root, &[]);
    assert!(line.contains("3 files sent"), "{line}");

    // Nothing changed: every digest from the cache, no byte moves.
    let puts = srv.log().matches("transfer op=put").count();
    let (line, log) = sync_v(&srv, &root, &[]);
    nothing_sent(&line);
    digests_said(&log, "3 from the cache, 0 hashed");
    assert_eq!(srv.log().matches("transfer op=put").count(), puts);

    // Other bytes of the same size, the mtime put back to the nanosecond:
    // only the ctime tells, and that is enough.
    let b = root.join("sub/b.bin");
    let before = std::fs::metadata(&b).unwrap();
    std::fs::write(&b, data(1 << 20, 4)).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&b)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let after = std::fs::metadata(&b).unwrap();
    assert_eq!(
        (after.len(), after.mtime(), after.mtime_nsec(), after.ino()),
        (
            before.len(),
            before.mtime(),
            before.mtime_nsec(),
            before.ino()
        ),
        "the test must restore size and mtime"
    );
    let (line, log) = sync_v(&srv, &root, &[]);
    assert!(line.contains("1 files sent"), "{line}");
    digests_said(&log, "2 from the cache, 1 hashed");
    same(&srv.home("alice").join("b/sub/b.bin"), &data(1 << 20, 4));
}

#[test]
fn a_damaged_foreign_or_bypassed_cache_is_not_trusted() {
    let srv = TestServer::start();
    let root = tree(&srv);
    age_past_racy_window(&root);
    exit_is(&run(&srv, &["sync", "-q", "up", s(&root), "/b"]), 0);
    let file = cache_file(&srv);
    let good = read(&file);
    let (_, log) = sync_v(&srv, &root, &[]);
    digests_said(&log, "3 from the cache, 0 hashed");

    // Each bad cache: ignored whole, every file hashed, nothing sent, and
    // a good cache written in its place.
    let text = String::from_utf8(good.clone()).unwrap();
    let (header, body) = text.split_once('\n').unwrap();
    let some_digest = body
        .split('"')
        .find(|w| w.len() == 64 && w.bytes().all(|c| c.is_ascii_hexdigit()))
        .expect("a digest in the cache");
    let tampered = text.replacen(some_digest, &"0".repeat(64), 1);
    let version = header.split(' ').nth(1).unwrap();
    let other_version = text.replacen(&format!(" {version} "), " 999 ", 1);
    let bad: [(&str, Vec<u8>); 4] = [
        ("garbage", b"\x00not a cache\xff".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("a digest changed", tampered.into_bytes()),
        ("another version", other_version.into_bytes()),
    ];
    for (what, bytes) in bad {
        std::fs::write(&file, &bytes).unwrap();
        let (line, log) = sync_v(&srv, &root, &[]);
        nothing_sent(&line);
        assert!(
            log.contains("local digests: 0 from the cache, 3 hashed"),
            "{what}: {log}"
        );
        let (_, log) = sync_v(&srv, &root, &[]);
        assert!(
            log.contains("local digests: 3 from the cache, 0 hashed"),
            "{what}, the run after: {log}"
        );
    }

    // --no-cache hashes everything; deleting the cache is harmless.
    let (line, log) = sync_v(&srv, &root, &["--no-cache"]);
    nothing_sent(&line);
    digests_said(&log, "0 from the cache, 3 hashed");
    std::fs::remove_file(&file).unwrap();
    let (line, log) = sync_v(&srv, &root, &[]);
    nothing_sent(&line);
    digests_said(&log, "0 from the cache, 3 hashed");
}
