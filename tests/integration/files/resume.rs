//! Interrupted uploads: the dropped connection, the killed server, resumes
//! verified whole, and the sweep of stale partial uploads.

use std::time::Duration;

use serde_json::Value;

use crate::files::fx::*;
use crate::util::*;

/// Starts a sized put of `body` to `path` and sends its first `sent` bytes;
/// returns the connection once the server has stored them.
fn put_partly(s: &TestServer, path: &str, body: &[u8], sent: usize, chunked: bool) -> Wire {
    let mut w = alice(s);
    let size = (!chunked).then_some(body.len() as u64);
    code(&begin_put(&mut w, path, size, 0, true), 150);
    if chunked {
        send_chunked_open(&mut w, &body[..sent], 10_000);
    } else {
        w.send_raw(&body[..sent]);
    }
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (s.home("alice").join(d), n.to_string()),
        None => (s.home("alice"), path.to_string()),
    };
    assert!(
        eventually(Duration::from_secs_f64(5.0), || partial_size_on_disk(
            &dir, &name
        ) == Some(sent as u64)),
        "{path}: the server never stored the {sent} bytes sent"
    );
    w
}

/// Chunks without the end mark: the body stays open.
fn send_chunked_open(w: &mut Wire, data: &[u8], chunk: usize) {
    for piece in data.chunks(chunk) {
        send_chunk(w, piece);
    }
}

/// Resumes `path` from `offset` with the rest of `body` and the digest of
/// the whole; returns the final reply.
fn resume(w: &mut Wire, path: &str, body: &[u8], offset: usize, chunked: bool) -> Value {
    let size = (!chunked).then_some(body.len() as u64);
    let r = begin_put(w, path, size, offset as u64, false);
    if r["code"] != 150 {
        return r;
    }
    assert_eq!(r["offset"], offset);
    if chunked {
        send_chunked(w, &body[offset..], &[12_345]);
    } else {
        w.send_raw(&body[offset..]);
    }
    done(w, &sha(body))
}

#[test]
fn dropped_upload_keeps_the_old_file_and_resumes() {
    let s = TestServer::start();
    let home = s.home("alice");
    let mut obs = alice(&s);
    let old = data(100_000, 1);
    code(&obs.put("f", &old), 226);
    let new = data(1 << 20, 2);
    let sent = 300_000;
    drop(put_partly(&s, "f", &new, sent, false));

    let r = partial_settled(&mut obs, "f");
    code(&r, 200);
    assert_eq!(r["size"], sent);
    assert_eq!(r["sha256"], sha(&new[..sent]));
    // The old version is what everybody sees.
    assert_eq!(std::fs::read(home.join("f")).unwrap(), old);
    assert_eq!(fetch(&mut obs, "f"), old);
    assert_eq!(op1(&mut obs, "stat", "f")["entry"]["size"], 100_000);
    assert_eq!(names(&op1(&mut obs, "ls", "/")), ["f"]);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 100_000 + sent as u64);

    // Past the partial's end: refused, the partial kept.
    code(
        &begin_put(&mut obs, "f", Some(1 << 20), sent as u64 + 1, false),
        501,
    );
    assert_eq!(partial_settled(&mut obs, "f")["size"], sent);
    // Resuming from before its end drops the bytes after the offset.
    let r = resume(&mut obs, "f", &new, 200_000, false);
    code(&r, 226);
    assert_eq!(r["size"], 1 << 20);
    assert_eq!(r["sha256"], sha(&new));
    assert!(std::fs::read(home.join("f")).unwrap() == new);
    assert!(partials_on_disk(&home).is_empty());
    code(&op1(&mut obs, "partial", "f"), 550);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 1 << 20);
}

#[test]
fn dropped_chunked_upload_resumes_exactly_at_its_end() {
    let s = TestServer::start();
    let home = s.home("alice");
    let mut obs = alice(&s);
    let body = data(700_000, 3);
    let sent = 250_000;
    drop(put_partly(&s, "dir/c.bin", &body, sent, true));
    assert!(!home.join("dir/c.bin").exists());
    let r = partial_settled(&mut obs, "dir/c.bin");
    code(&r, 200);
    assert_eq!(r["size"], sent);
    assert_eq!(r["sha256"], sha(&body[..sent]));
    assert_eq!(names(&op1(&mut obs, "ls", "dir")), Vec::<String>::new());
    let r = resume(&mut obs, "dir/c.bin", &body, sent, true);
    code(&r, 226);
    assert_eq!(r["size"], 700_000);
    assert!(std::fs::read(home.join("dir/c.bin")).unwrap() == body);
    assert!(partials_on_disk(&home).is_empty());
    assert_used_matches_disk(&mut obs, &home);
}

#[test]
fn resume_with_a_wrong_whole_digest_changes_nothing_visible() {
    let s = TestServer::start();
    let home = s.home("alice");
    let mut obs = alice(&s);
    let old = data(5_000, 1);
    code(&obs.put("f", &old), 226);
    let new = data(400_000, 2);
    drop(put_partly(&s, "f", &new, 100_000, false));
    code(&partial_settled(&mut obs, "f"), 200);
    // The rest of another file: the whole digest can't match.
    let other = data(400_000, 3);
    code(
        &begin_put(&mut obs, "f", Some(400_000), 100_000, false),
        150,
    );
    obs.send_raw(&other[100_000..]);
    code(&done(&mut obs, &sha(&other)), 554);
    assert_eq!(std::fs::read(home.join("f")).unwrap(), old);
    assert!(
        partials_on_disk(&home).is_empty(),
        "{:?}",
        partials_on_disk(&home)
    );
    assert_eq!(names(&op1(&mut obs, "ls", "/")), ["f"]);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 5_000);
}

/// The server is killed (SIGKILL) with three uploads in their bodies: two
/// replacing files, one new, one of them chunked. After a restart nothing
/// half-written shows under a real name, each partial reports exactly what
/// was stored, and resuming completes each to a verified file.
#[test]
fn sigkill_during_uploads_then_resume() {
    let mut s = TestServer::start();
    let home = s.home("alice");
    let mut w = alice(&s);
    let old_a = data(50_000, 1);
    let old_b = data(60_000, 2);
    code(&w.put("a.bin", &old_a), 226);
    code(&put_mkdirs(&mut w, "dir x/b ü.bin", &old_b), 226);
    drop(w);
    let new_a = data(3 << 20, 11);
    let new_b = data(2 << 20, 12);
    let new_c = data(1 << 20, 13);
    let (pa, pb, pc) = (1_000_017, 654_321, 300_000);
    let _wa = put_partly(&s, "a.bin", &new_a, pa, false);
    let _wb = put_partly(&s, "dir x/b ü.bin", &new_b, pb, false);
    let _wc = put_partly(&s, "c.bin", &new_c, pc, true);

    s.kill_and_restart();

    let mut w = alice(&s);
    assert_eq!(names(&op1(&mut w, "ls", "/")), ["a.bin", "dir x"]);
    assert_eq!(names(&op1(&mut w, "ls", "dir x")), ["b ü.bin"]);
    assert_eq!(std::fs::read(home.join("a.bin")).unwrap(), old_a);
    assert_eq!(std::fs::read(home.join("dir x/b ü.bin")).unwrap(), old_b);
    assert!(!home.join("c.bin").exists());
    assert_eq!(fetch(&mut w, "a.bin"), old_a);
    assert_eq!(fetch(&mut w, "dir x/b ü.bin"), old_b);
    code(&op1(&mut w, "stat", "c.bin"), 550);
    for (path, body, sent) in [
        ("a.bin", &new_a, pa),
        ("dir x/b ü.bin", &new_b, pb),
        ("c.bin", &new_c, pc),
    ] {
        let r = op1(&mut w, "partial", path);
        code(&r, 200);
        assert_eq!(r["size"], sent, "{path}");
        assert_eq!(r["sha256"], sha(&body[..sent]), "{path}");
    }
    // The fresh walk at login counts the partials.
    assert_used_matches_disk(&mut w, &home);
    assert_eq!(used(&mut w), (50_000 + 60_000 + pa + pb + pc) as u64);

    let r = resume(&mut w, "a.bin", &new_a, pa, false);
    code(&r, 226);
    assert_eq!(r["size"], 3 << 20);
    let r = resume(&mut w, "dir x/b ü.bin", &new_b, pb, false);
    code(&r, 226);
    let r = resume(&mut w, "c.bin", &new_c, pc, true);
    code(&r, 226);
    assert_eq!(r["size"], 1 << 20);
    assert!(std::fs::read(home.join("a.bin")).unwrap() == new_a);
    assert!(std::fs::read(home.join("dir x/b ü.bin")).unwrap() == new_b);
    assert!(std::fs::read(home.join("c.bin")).unwrap() == new_c);
    assert_eq!(fetch(&mut w, "c.bin"), new_c);
    assert!(
        partials_on_disk(&home).is_empty(),
        "{:?}",
        partials_on_disk(&home)
    );
    assert_used_matches_disk(&mut w, &home);
    assert_eq!(used(&mut w), (3 << 20) + (2 << 20) + (1 << 20));
}

const SWEEP_2S: &str = "[limits]\npartial_max_age_secs = 2\n";

#[test]
fn stale_partials_are_swept() {
    let s = server("100M", SWEEP_2S);
    let home = s.home("alice");
    let mut obs = alice(&s);
    code(&obs.put("keep.bin", &data(10_000, 1)), 226);
    drop(put_partly(
        &s,
        "stale.bin",
        &data(200_000, 2),
        100_000,
        false,
    ));
    drop(put_partly(
        &s,
        "sub/deep.bin",
        &data(200_000, 3),
        50_000,
        true,
    ));
    // Present at first (younger than two seconds)...
    code(&partial_settled(&mut obs, "stale.bin"), 200);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 160_000);
    // ...gone within a few sweeps.
    assert!(
        eventually(Duration::from_secs_f64(10.0), || partials_on_disk(&home)
            .is_empty()),
        "stale partials still on disk: {:?}",
        partials_on_disk(&home)
    );
    code(&op1(&mut obs, "partial", "stale.bin"), 550);
    code(&op1(&mut obs, "partial", "sub/deep.bin"), 550);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 10_000);
    assert_eq!(
        std::fs::read(home.join("keep.bin")).unwrap(),
        data(10_000, 1)
    );
    code(
        &begin_put(&mut obs, "stale.bin", Some(200_000), 100_000, false),
        501,
    );
}

#[test]
fn stale_partials_are_swept_after_a_restart_without_login() {
    let mut s = server("100M", SWEEP_2S);
    let home = s.home("alice");
    let _w = put_partly(&s, "x.bin", &data(300_000, 1), 120_000, false);
    s.kill_and_restart();
    assert!(
        eventually(Duration::from_secs_f64(10.0), || partials_on_disk(&home)
            .is_empty()),
        "stale partial still on disk"
    );
    let mut w = alice(&s);
    code(&op1(&mut w, "partial", "x.bin"), 550);
    assert_eq!(used(&mut w), 0);
    assert!(!home.join("x.bin").exists());
}

/// An upload that is only slow is not stale: stalled for twice the maximum
/// age while it holds the path, it still completes.
#[test]
fn stalled_upload_is_not_swept() {
    let s = server("100M", SWEEP_2S);
    let home = s.home("alice");
    let mut obs = alice(&s);
    let held = data(400_000, 1);
    let mut w = alice(&s);
    code(&begin_put(&mut w, "held.bin", Some(400_000), 0, false), 150);
    w.send_raw(&held[..200_000]);
    std::thread::sleep(Duration::from_millis(4500));
    code(&op1(&mut obs, "partial", "held.bin"), 450);
    w.send_raw(&held[200_000..]);
    code(&done(&mut w, &sha(&held)), 226);
    assert!(std::fs::read(home.join("held.bin")).unwrap() == held);
    assert!(partials_on_disk(&home).is_empty());
    assert_used_matches_disk(&mut obs, &home);
}

/// The same for the second of two uploads of one path (it writes a
/// private partial), stalled after the first one finished.
#[test]
fn stalled_second_upload_of_a_path_is_not_swept() {
    let s = server("100M", SWEEP_2S);
    let home = s.home("alice");
    let mut obs = alice(&s);
    let first = data(300_000, 2);
    let second = data(300_000, 3);
    let mut wa = alice(&s);
    let mut wb = alice(&s);
    code(
        &begin_put(&mut wa, "shared.bin", Some(300_000), 0, false),
        150,
    );
    code(
        &begin_put(&mut wb, "shared.bin", Some(300_000), 0, false),
        150,
    );
    wb.send_raw(&second[..100_000]);
    wa.send_raw(&first);
    code(&done(&mut wa, &sha(&first)), 226);
    std::thread::sleep(Duration::from_millis(4500));
    wb.send_raw(&second[100_000..]);
    let r = done(&mut wb, &sha(&second));
    let books = (used(&mut obs), disk_usage(&home));
    assert!(
        r["code"] == 226 && books.0 == books.1,
        "second upload after a stall: {r}; quota used {} vs {} bytes on disk",
        books.0,
        books.1
    );
    assert!(std::fs::read(home.join("shared.bin")).unwrap() == second);
    assert!(partials_on_disk(&home).is_empty());
}

/// A directory whose only content is an interrupted upload looks empty;
/// rmdir must not remove it silently (the partial would be lost without
/// its bytes leaving the books), and `rm -r` removes it and frees them.
#[test]
fn directory_holding_only_a_partial() {
    let s = TestServer::start();
    let home = s.home("alice");
    let mut obs = alice(&s);
    drop(put_partly(&s, "d/p.bin", &data(100_000, 1), 40_000, false));
    code(&partial_settled(&mut obs, "d/p.bin"), 200);
    assert!(names(&op1(&mut obs, "ls", "d")).is_empty());
    let r = op1(&mut obs, "rmdir", "d");
    assert_ne!(r["code"], 200, "{r}");
    assert_eq!(partial_size_on_disk(&home.join("d"), "p.bin"), Some(40_000));
    assert_used_matches_disk(&mut obs, &home);
    code(&rm(&mut obs, "d", true), 200);
    assert!(!home.join("d").exists());
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 0);
}

/// After an upload's body the server wants `done`. Anything that names
/// another op — known, unknown, or with bad arguments — is not carried out,
/// gets 503, and ends the upload with its bytes kept for a resume; a bad
/// `done`, or a frame with no op at all, gets its error and the trailer is
/// still awaited (PROTOCOL.md 3.2, 8.3).
#[test]
fn a_frame_other_than_done_after_the_body_ends_the_upload_for_a_resume() {
    let s = TestServer::start();
    let mut w = alice(&s);
    for (i, other) in [
        serde_json::json!({"op": "pwd"}),
        serde_json::json!({"op": "bogus"}),
        serde_json::json!({"op": "mkdir"}),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("t{i}.txt");
        code(&begin_put(&mut w, &name, Some(3), 0, false), 150);
        w.send_raw(b"abc");
        // Frames that don't end the upload first.
        code(&w.call(serde_json::json!({"op": "done"})), 501);
        code(&w.call(serde_json::json!({"no": "op"})), 500);
        w.send_frame(b"not json");
        code(&w.recv(), 500);
        let r = w.call(other.clone());
        code(&r, 503);
        let op = other["op"].as_str().unwrap();
        assert!(
            r["msg"]
                .as_str()
                .unwrap()
                .contains(&format!("got {op}; the upload was kept for resuming")),
            "{other}: {r}"
        );
        // Logged in again: a done now is out of place, and the bytes wait
        // in the partial.
        code(&done(&mut w, &sha(b"abc")), 503);
        let p = partial_settled(&mut w, &name);
        code(&p, 200);
        assert_eq!(p["size"], 3, "{other}: {p}");
        assert_eq!(p["sha256"], sha(b"abc"));
        code(&op1(&mut w, "stat", &name), 550);
        // And it resumes to a verified whole.
        code(&begin_put(&mut w, &name, Some(5), 3, false), 150);
        w.send_raw(b"de");
        code(&done(&mut w, &sha(b"abcde")), 226);
    }
}
