//! Interrupted uploads: the dropped connection, the killed server, resumes
//! verified whole, and the sweep of stale partial uploads; on both backends.
//! Sizes are in MiB so that an object store, which keeps whole parts of an
//! interrupted upload (8 MiB, 16 MiB for bodies of unknown size), keeps
//! something: `Stored::kept` says what each backend keeps of what was sent.

use std::time::Duration;

use serde_json::Value;

use crate::files::fx::*;
use crate::util::*;

on_both!(
    dropped_upload_keeps_the_old_file_and_resumes,
    dropped_chunked_upload_resumes_exactly_at_its_end,
    resume_with_a_wrong_whole_digest_changes_nothing_visible,
    sigkill_during_uploads_then_resume,
    stale_partials_are_swept,
    stale_partials_are_swept_after_a_restart_without_login,
    stalled_upload_is_not_swept,
    stalled_second_upload_of_a_path_is_not_swept,
    directory_holding_only_a_partial,
);

const MIB: usize = 1 << 20;

/// Starts a put of `body` to `path` (sized, or chunked) and sends its first
/// `sent` bytes; returns the connection once the server has stored what
/// it keeps of them (`Stored::kept`), and that many bytes.
fn put_partly(
    s: &TestServer,
    path: &str,
    body: &[u8],
    sent: usize,
    chunked: bool,
) -> (Wire, usize) {
    let mut w = alice(s);
    let size = (!chunked).then_some(body.len() as u64);
    code(&begin_put(&mut w, path, size, 0, true), 150);
    if chunked {
        send_chunked_open(&mut w, &body[..sent], 64 * 1024);
    } else {
        w.send_raw(&body[..sent]);
    }
    let home = s.stored("alice");
    home.wait_partial(path, sent as u64, chunked);
    (w, home.kept(sent as u64, chunked) as usize)
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

fn dropped_upload_keeps_the_old_file_and_resumes(store: Store) {
    let s = start_on(store);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let old = data(100_000, 1);
    code(&obs.put("f", &old), 226);
    let new = data(20 * MIB, 2);
    let (w, kept) = put_partly(&s, "f", &new, 12 * MIB + 300_000, false);
    drop(w);

    let r = partial_settled(&mut obs, "f");
    code(&r, 200);
    assert_eq!(r["size"], kept);
    assert_eq!(r["sha256"], sha(&new[..kept]));
    // The old version is what everybody sees.
    assert_eq!(home.content("f"), old);
    assert_eq!(fetch(&mut obs, "f"), old);
    assert_eq!(op1(&mut obs, "stat", "f")["entry"]["size"], 100_000);
    assert_eq!(names(&op1(&mut obs, "ls", "/")), ["f"]);
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), 100_000 + kept as u64);

    // Past the partial's end: refused, the partial kept.
    let size = Some(new.len() as u64);
    code(&begin_put(&mut obs, "f", size, kept as u64 + 1, false), 501);
    assert_eq!(partial_settled(&mut obs, "f")["size"], kept);
    // Resuming from before its end drops the bytes after the offset; an
    // object store resumes only at its end (where its last part ended).
    let from = kept - 200_000;
    if home.is_s3() {
        let r = begin_put(&mut obs, "f", size, from as u64, false);
        code(&r, 501);
        assert!(
            r["msg"]
                .as_str()
                .unwrap()
                .contains(&format!("at byte {kept}")),
            "{r}"
        );
        assert_eq!(partial_settled(&mut obs, "f")["size"], kept);
    }
    let from = if home.is_s3() { kept } else { from };
    let r = resume(&mut obs, "f", &new, from, false);
    code(&r, 226);
    assert_eq!(r["size"], 20 * MIB);
    assert_eq!(r["sha256"], sha(&new));
    assert!(home.content("f") == new);
    assert!(home.partials().is_empty());
    code(&op1(&mut obs, "partial", "f"), 550);
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), 20 << 20);
}

fn dropped_chunked_upload_resumes_exactly_at_its_end(store: Store) {
    let s = start_on(store);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let body = data(40 * MIB, 3);
    let (w, kept) = put_partly(&s, "dir/c.bin", &body, 20 * MIB + 250_000, true);
    drop(w);
    assert!(!home.exists("dir/c.bin"));
    let r = partial_settled(&mut obs, "dir/c.bin");
    code(&r, 200);
    assert_eq!(r["size"], kept);
    assert_eq!(r["sha256"], sha(&body[..kept]));
    assert_eq!(names(&op1(&mut obs, "ls", "dir")), Vec::<String>::new());
    let r = resume(&mut obs, "dir/c.bin", &body, kept, true);
    code(&r, 226);
    assert_eq!(r["size"], 40 * MIB);
    assert!(home.content("dir/c.bin") == body);
    assert!(home.partials().is_empty());
    assert_used_matches(&mut obs, &home);
}

fn resume_with_a_wrong_whole_digest_changes_nothing_visible(store: Store) {
    let s = start_on(store);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let old = data(5_000, 1);
    code(&obs.put("f", &old), 226);
    let new = data(20 * MIB, 2);
    let (w, kept) = put_partly(&s, "f", &new, 9 * MIB, false);
    drop(w);
    code(&partial_settled(&mut obs, "f"), 200);
    // The rest of another file: the whole digest can't match.
    let other = data(20 * MIB, 3);
    let size = Some(other.len() as u64);
    code(&begin_put(&mut obs, "f", size, kept as u64, false), 150);
    obs.send_raw(&other[kept..]);
    code(&done(&mut obs, &sha(&other)), 554);
    assert_eq!(home.content("f"), old);
    assert!(home.partials().is_empty(), "{:?}", home.partials());
    assert_eq!(names(&op1(&mut obs, "ls", "/")), ["f"]);
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), 5_000);
}

/// The server is killed (SIGKILL) with three uploads in their bodies: two
/// replacing files, one new, one of them chunked. After a restart nothing
/// half-written shows under a real name, each partial reports exactly what
/// was stored, and resuming completes each to a verified file.
fn sigkill_during_uploads_then_resume(store: Store) {
    let mut s = start_on(store);
    let home = s.stored("alice");
    let mut w = alice(&s);
    let old_a = data(50_000, 1);
    let old_b = data(60_000, 2);
    code(&w.put("a.bin", &old_a), 226);
    code(&put_mkdirs(&mut w, "dir x/b ü.bin", &old_b), 226);
    drop(w);
    let new_a = data(20 * MIB, 11);
    let new_b = data(18 * MIB, 12);
    let new_c = data(20 * MIB, 13);
    let (_wa, pa) = put_partly(&s, "a.bin", &new_a, 9 * MIB + 17, false);
    let (_wb, pb) = put_partly(&s, "dir x/b ü.bin", &new_b, 8 * MIB + 654_321, false);
    let (_wc, pc) = put_partly(&s, "c.bin", &new_c, 17 * MIB, true);

    s.kill_and_restart();

    let mut w = alice(&s);
    assert_eq!(names(&op1(&mut w, "ls", "/")), ["a.bin", "dir x"]);
    assert_eq!(names(&op1(&mut w, "ls", "dir x")), ["b ü.bin"]);
    assert_eq!(home.content("a.bin"), old_a);
    assert_eq!(home.content("dir x/b ü.bin"), old_b);
    assert!(!home.exists("c.bin"));
    assert_eq!(fetch(&mut w, "a.bin"), old_a);
    assert_eq!(fetch(&mut w, "dir x/b ü.bin"), old_b);
    code(&op1(&mut w, "stat", "c.bin"), 550);
    for (path, body, kept) in [
        ("a.bin", &new_a, pa),
        ("dir x/b ü.bin", &new_b, pb),
        ("c.bin", &new_c, pc),
    ] {
        let r = op1(&mut w, "partial", path);
        code(&r, 200);
        assert_eq!(r["size"], kept, "{path}");
        assert_eq!(r["sha256"], sha(&body[..kept]), "{path}");
    }
    // The fresh walk (or the counters and records) at login count them.
    assert_used_matches(&mut w, &home);
    assert_eq!(used(&mut w), (50_000 + 60_000 + pa + pb + pc) as u64);

    let r = resume(&mut w, "a.bin", &new_a, pa, false);
    code(&r, 226);
    assert_eq!(r["size"], 20 * MIB);
    let r = resume(&mut w, "dir x/b ü.bin", &new_b, pb, false);
    code(&r, 226);
    let r = resume(&mut w, "c.bin", &new_c, pc, true);
    code(&r, 226);
    assert_eq!(r["size"], 20 * MIB);
    assert!(home.content("a.bin") == new_a);
    assert!(home.content("dir x/b ü.bin") == new_b);
    assert!(home.content("c.bin") == new_c);
    assert_eq!(fetch(&mut w, "c.bin"), new_c);
    assert!(home.partials().is_empty(), "{:?}", home.partials());
    assert_used_matches(&mut w, &home);
    assert_eq!(used(&mut w), (58 * MIB) as u64);
}

const SWEEP_2S: &str = "[limits]\npartial_max_age_secs = 2\n";

fn stale_partials_are_swept(store: Store) {
    let s = server_on(store, "100M", SWEEP_2S);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    code(&obs.put("keep.bin", &data(10_000, 1)), 226);
    let (w, k1) = put_partly(&s, "stale.bin", &data(20 * MIB, 2), 9 * MIB, false);
    drop(w);
    let (w, k2) = put_partly(&s, "sub/deep.bin", &data(20 * MIB, 3), 17 * MIB, true);
    drop(w);
    // Present at first (younger than two seconds)...
    code(&partial_settled(&mut obs, "stale.bin"), 200);
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), (10_000 + k1 + k2) as u64);
    // ...gone within a few sweeps.
    assert!(
        eventually(Duration::from_secs_f64(10.0), || home.partials().is_empty()),
        "stale partials still there: {:?}",
        home.partials()
    );
    code(&op1(&mut obs, "partial", "stale.bin"), 550);
    code(&op1(&mut obs, "partial", "sub/deep.bin"), 550);
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), 10_000);
    assert_eq!(home.content("keep.bin"), data(10_000, 1));
    code(
        &begin_put(&mut obs, "stale.bin", Some(20 << 20), k1 as u64, false),
        501,
    );
}

fn stale_partials_are_swept_after_a_restart_without_login(store: Store) {
    let mut s = server_on(store, "100M", SWEEP_2S);
    let home = s.stored("alice");
    let (_w, kept) = put_partly(&s, "x.bin", &data(20 * MIB, 1), 9 * MIB, false);
    assert!(kept > 0);
    s.kill_and_restart();
    assert!(
        eventually(Duration::from_secs_f64(10.0), || home.partials().is_empty()),
        "stale partial still there"
    );
    let mut w = alice(&s);
    code(&op1(&mut w, "partial", "x.bin"), 550);
    assert_eq!(used(&mut w), 0);
    assert!(!home.exists("x.bin"));
}

/// An upload that is only slow is not stale: stalled for twice the maximum
/// age while it holds the path, it still completes.
fn stalled_upload_is_not_swept(store: Store) {
    let s = server_on(store, "100M", SWEEP_2S);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let held = data(400_000, 1);
    let mut w = alice(&s);
    code(&begin_put(&mut w, "held.bin", Some(400_000), 0, false), 150);
    w.send_raw(&held[..200_000]);
    std::thread::sleep(Duration::from_millis(4500));
    code(&op1(&mut obs, "partial", "held.bin"), 450);
    w.send_raw(&held[200_000..]);
    code(&done(&mut w, &sha(&held)), 226);
    assert!(home.content("held.bin") == held);
    assert!(home.partials().is_empty());
    assert_used_matches(&mut obs, &home);
}

/// The same for the second of two uploads of one path (it writes a
/// private partial), stalled after the first one finished.
fn stalled_second_upload_of_a_path_is_not_swept(store: Store) {
    let s = server_on(store, "100M", SWEEP_2S);
    let home = s.stored("alice");
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
    let books = (used(&mut obs), home.usage());
    assert!(
        r["code"] == 226 && books.0 == books.1,
        "second upload after a stall: {r}; quota used {} vs {} bytes on disk",
        books.0,
        books.1
    );
    assert!(home.content("shared.bin") == second);
    assert!(home.partials().is_empty());
}

/// A directory whose only content is an interrupted upload looks empty;
/// rmdir must not remove it silently (the partial would be lost without
/// its bytes leaving the books), and `rm -r` removes it and frees them.
fn directory_holding_only_a_partial(store: Store) {
    let s = start_on(store);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let (w, kept) = put_partly(&s, "d/p.bin", &data(20 * MIB, 1), 9 * MIB, false);
    drop(w);
    code(&partial_settled(&mut obs, "d/p.bin"), 200);
    assert!(names(&op1(&mut obs, "ls", "d")).is_empty());
    let r = op1(&mut obs, "rmdir", "d");
    assert_ne!(r["code"], 200, "{r}");
    assert_eq!(home.partial_size("d/p.bin"), Some(kept as u64));
    assert_used_matches(&mut obs, &home);
    code(&rm(&mut obs, "d", true), 200);
    assert!(!home.exists("d"));
    assert!(home.partials().is_empty(), "{:?}", home.partials());
    assert_used_matches(&mut obs, &home);
    assert_eq!(used(&mut obs), 0);
}

/// After an upload's body the server wants `done`. Anything that names
/// another op — known, unknown, or with bad arguments — is not carried out,
/// gets 503, and ends the upload with its bytes kept for a resume; a bad
/// `done`, or a frame with no op at all, gets its error and the trailer is
/// still awaited (PROTOCOL.md 3.2, 8.3).
///
/// Local disks only: an object store keeps no partial of a 3-byte body
/// (less than one part; `s3::server` tests what it does instead).
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
