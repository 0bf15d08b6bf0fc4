//! Quotas: refusals before a byte is written, sessions racing for the last
//! bytes, copies, removals, partial uploads, and a used figure that always
//! equals the bytes in the home.

use serde_json::json;

use crate::files::fx::*;
use crate::util::*;

const QUOTA_1M: u64 = 1 << 20;

#[test]
fn put_over_the_free_space_is_refused_at_once() {
    let s = server("1M", "");
    let home = s.home("alice");
    let mut w = alice(&s);
    assert_eq!(quota(&mut w), (0, QUOTA_1M, QUOTA_1M));
    code(&w.put("a", &data(600 * 1024, 1)), 226);
    let free = QUOTA_1M - 600 * 1024;
    assert_eq!(quota(&mut w), (600 * 1024, QUOTA_1M, free));

    // Refused on the put itself, before any body: the reply is the very
    // next frame, and it says how much is free.
    let r = begin_put(&mut w, "b", Some(500 * 1024), 0, false);
    code(&r, 552);
    let msg = r["msg"].as_str().unwrap();
    assert!(msg.contains(&human(free)), "free space not in {msg:?}");
    assert!(!home.join("b").exists());
    assert!(partials_on_disk(&home).is_empty());
    assert_eq!(quota(&mut w), (600 * 1024, QUOTA_1M, free));
    noop_ok(&mut w);
    // Also for a resume of a path that has no partial, and with mkdirs: no
    // directory appears.
    code(&begin_put(&mut w, "dir/b", Some(QUOTA_1M), 0, true), 552);
    assert!(!home.join("dir").exists());

    // Exactly the free space fits; then not one byte more.
    let last = data(free as usize, 2);
    code(&w.put("b", &last), 226);
    assert_eq!(quota(&mut w), (QUOTA_1M, QUOTA_1M, 0));
    let r = begin_put(&mut w, "c", Some(1), 0, false);
    code(&r, 552);
    assert!(r["msg"].as_str().unwrap().contains(&human(0)), "{r}");
    // An empty file still fits.
    code(&w.put("empty", b""), 226);
    assert_used_matches_disk(&mut w, &home);
}

#[test]
fn chunked_upload_over_quota_fails_mid_body() {
    let s = server("1M", "");
    let home = s.home("alice");
    let mut w = alice(&s);
    code(&w.put("a", &data(100_000, 1)), 226);
    let body = data(1_200_000, 2);
    code(&begin_put(&mut w, "big", None, 0, false), 150);
    send_chunked(&mut w, &body, &[300_000]);
    let r = w.recv();
    code(&r, 552);
    // The trailer only closes the failed body; the session goes on.
    w.send(json!({"op": "done", "sha256": sha(&body)}));
    noop_ok(&mut w);
    assert!(!home.join("big").exists());
    assert!(partials_on_disk(&home).is_empty());
    assert_eq!(quota(&mut w), (100_000, QUOTA_1M, QUOTA_1M - 100_000));
    // What fits still goes through in chunks.
    let ok = data(900_000, 3);
    code(&put_chunked(&mut w, "ok", &ok, &[300_000]), 226);
    assert_eq!(std::fs::read(home.join("ok")).unwrap(), ok);
    assert_used_matches_disk(&mut w, &home);
}

#[test]
fn sessions_racing_for_the_last_bytes_never_pass_the_quota() {
    let s = server("4M", "");
    let quota_bytes = 4u64 << 20;
    let home = s.home("alice");
    let mut obs = alice(&s);
    let size = 300_000usize;
    std::thread::scope(|sc| {
        for t in 0..3 {
            let s = &s;
            sc.spawn(move || {
                let mut w = alice(s);
                for j in 0.. {
                    let r = w.put(&format!("t{t}_{j}"), &data(size, t * 100 + j));
                    if r["code"] == 552 {
                        break;
                    }
                    code(&r, 226);
                }
            });
        }
    });
    let stored = disk_usage(&home);
    assert!(
        stored <= quota_bytes,
        "{stored} bytes stored, quota {quota_bytes}"
    );
    // Sized uploads reserve up front and never fail later: every slot fills.
    assert_eq!(stored, (quota_bytes / size as u64) * size as u64);
    assert_used_matches_disk(&mut obs, &home);
    assert!(partials_on_disk(&home).is_empty());
}

#[test]
fn chunked_sessions_racing_never_pass_the_quota() {
    let s = server("4M", "");
    let quota_bytes = 4u64 << 20;
    let home = s.home("alice");
    let mut obs = alice(&s);
    std::thread::scope(|sc| {
        for t in 0..3u64 {
            let s = &s;
            sc.spawn(move || {
                let mut w = alice(s);
                let mut refused = 0;
                for j in 0..40u64 {
                    let body = data(250_000, t * 100 + j);
                    let r = put_chunked(&mut w, &format!("c{t}_{j}"), &body, &[64 * 1024]);
                    if r["code"] == 552 {
                        // Quota passed mid-body: the done got no reply.
                        noop_ok(&mut w);
                        refused += 1;
                        if refused == 3 {
                            break;
                        }
                        continue;
                    }
                    code(&r, 226);
                }
            });
        }
    });
    let stored = disk_usage(&home);
    assert!(
        stored <= quota_bytes,
        "{stored} bytes stored, quota {quota_bytes}"
    );
    assert!(
        partials_on_disk(&home).is_empty(),
        "{:?}",
        partials_on_disk(&home)
    );
    assert_used_matches_disk(&mut obs, &home);
}

#[test]
fn cp_is_counted_and_rm_frees() {
    let s = server("1M", "");
    let home = s.home("alice");
    let mut w = alice(&s);
    let a = data(400 * 1024, 1);
    code(&w.put("a", &a), 226);
    code(&cp(&mut w, "a", "b"), 200);
    assert_eq!(used(&mut w), 800 * 1024);
    let r = cp(&mut w, "a", "c");
    code(&r, 552);
    assert!(
        r["msg"].as_str().unwrap().contains(&human(224 * 1024)),
        "{r}"
    );
    assert!(!home.join("c").exists());
    assert!(partials_on_disk(&home).is_empty());
    assert_eq!(used(&mut w), 800 * 1024);
    code(&rm(&mut w, "b", false), 200);
    assert_eq!(quota(&mut w), (400 * 1024, QUOTA_1M, 624 * 1024));
    code(&cp(&mut w, "a", "c"), 200);
    assert_eq!(std::fs::read(home.join("c")).unwrap(), a);
    assert_used_matches_disk(&mut w, &home);
    code(&mkdir(&mut w, "d", false), 200);
    code(&mv(&mut w, "c", "d"), 200);
    code(&rm(&mut w, "d", true), 200);
    assert_eq!(quota(&mut w), (400 * 1024, QUOTA_1M, 624 * 1024));
    assert_used_matches_disk(&mut w, &home);
}

#[test]
fn used_space_is_exact_after_every_operation() {
    let s = server("100M", "");
    let home = s.home("alice");
    let mut obs = alice(&s);
    let mut w = alice(&s);
    macro_rules! step {
        ($what:expr, $r:expr, $code:expr) => {{
            let r = $r;
            assert_eq!(r["code"].as_u64(), Some($code), "{}: {r}", $what);
            assert_used_matches_disk(&mut obs, &home);
        }};
    }
    step!("put", w.put("a", &data(10_000, 1)), 226);
    step!("put bigger", w.put("a", &data(20_000, 2)), 226);
    step!("put smaller", w.put("a", &data(5_000, 3)), 226);
    step!(
        "chunked",
        put_chunked(&mut w, "b", &data(30_000, 4), &[7_000]),
        226
    );
    step!("cp", cp(&mut w, "a", "c"), 200);
    step!("cp over", cp(&mut w, "b", "c"), 200);
    step!("mv", mv(&mut w, "c", "d"), 200);
    step!("mv over", mv(&mut w, "a", "d"), 200);
    step!("mkdir", mkdir(&mut w, "e/f", true), 200);
    step!("put in dir", w.put("e/f/g", &data(7_000, 5)), 226);
    step!("mv dir", mv(&mut w, "e", "e2"), 200);
    step!("rm", rm(&mut w, "d", false), 200);
    step!("rm -r", rm(&mut w, "e2", true), 200);
    step!("empty", w.put("h", b""), 226);
    // A failed upload.
    code(&begin_put(&mut w, "x", Some(4_000), 0, false), 150);
    w.send_raw(&data(4_000, 6));
    step!("bad digest", done(&mut w, &sha(b"no")), 554);
    // An interrupted upload: its partial counts.
    let body = data(16_000, 7);
    let mut w2 = alice(&s);
    code(&begin_put(&mut w2, "i", Some(16_000), 0, false), 150);
    w2.send_raw(&body[..8_000]);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home, "i") == Some(8_000)
    ));
    drop(w2);
    assert_used_matches_disk(&mut obs, &home);
    assert_eq!(used(&mut obs), 30_000 + 8_000);
    code(&partial_settled(&mut w, "i"), 200);
    // Resumed from a point before its end (the rest is cut off).
    code(&begin_put(&mut w, "i", Some(16_000), 5_000, false), 150);
    assert_used_matches_disk(&mut obs, &home);
    w.send_raw(&body[5_000..]);
    step!("resumed", done(&mut w, &sha(&body)), 226);
    assert_eq!(std::fs::read(home.join("i")).unwrap(), body);
    // Interrupted, then started over from 0.
    let mut w3 = alice(&s);
    code(&begin_put(&mut w3, "j", Some(9_000), 0, false), 150);
    w3.send_raw(&body[..3_000]);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home, "j") == Some(3_000)
    ));
    drop(w3);
    assert_used_matches_disk(&mut obs, &home);
    code(&partial_settled(&mut w, "j"), 200);
    step!("restart", w.put("j", &body[..9_000]), 226);
    step!("quota", w.call(json!({"op": "quota"})), 200);
    assert_eq!(used(&mut obs), 30_000 + 16_000 + 9_000);
    // A fresh walk of the home at the next login agrees.
    drop(w);
    drop(obs);
    let mut w = alice(&s);
    assert_used_matches_disk(&mut w, &home);
}

#[test]
fn partial_uploads_count_against_the_quota() {
    let s = server("1M", "");
    let home = s.home("alice");
    let mut obs = alice(&s);
    let body = data(900 * 1024, 1);
    let mut w = alice(&s);
    code(
        &begin_put(&mut w, "p", Some(body.len() as u64), 0, false),
        150,
    );
    w.send_raw(&body[..600 * 1024]);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home, "p") == Some(600 * 1024)
    ));
    drop(w);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || used(&mut obs) == 600 * 1024
    ));
    let free = QUOTA_1M - 600 * 1024;
    assert_eq!(quota(&mut obs), (600 * 1024, QUOTA_1M, free));
    let r = begin_put(&mut obs, "other", Some(500 * 1024), 0, false);
    code(&r, 552);
    assert!(r["msg"].as_str().unwrap().contains(&human(free)), "{r}");
    // Resuming needs only the rest.
    let mut w = alice(&s);
    let r = partial_settled(&mut w, "p");
    assert_eq!(r["size"], 600 * 1024);
    code(
        &begin_put(&mut w, "p", Some(body.len() as u64), 600 * 1024, false),
        150,
    );
    w.send_raw(&body[600 * 1024..]);
    code(&done(&mut w, &sha(&body)), 226);
    assert_eq!(
        quota(&mut obs),
        (900 * 1024, QUOTA_1M, QUOTA_1M - 900 * 1024)
    );
    assert_used_matches_disk(&mut obs, &home);
}

/// Starting an interrupted upload over from byte 0 replaces its partial:
/// the partial's bytes are given back before the new body is written, so
/// the new upload must fit in the quota as if the partial were gone.
#[test]
fn restarting_an_upload_reuses_its_partials_space() {
    let s = server("1M", "");
    let home = s.home("alice");
    let mut obs = alice(&s);
    let body = data(900 * 1024, 1);
    let mut w = alice(&s);
    code(
        &begin_put(&mut w, "p", Some(body.len() as u64), 0, false),
        150,
    );
    w.send_raw(&body[..600 * 1024]);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home, "p") == Some(600 * 1024)
    ));
    drop(w);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || used(&mut obs) == 600 * 1024
    ));
    code(&partial_settled(&mut obs, "p"), 200);
    let r = obs.put("p", &body);
    code(&r, 226);
    assert_eq!(std::fs::read(home.join("p")).unwrap(), body);
    assert_used_matches_disk(&mut obs, &home);
}

/// `rm -r` of a directory while an upload into it is in progress: whatever
/// happens to the upload, the used figure must stay the bytes on disk (the
/// in-progress partial is reserved, not used, so removing it frees nothing
/// that was counted as used).
#[test]
fn rm_recursive_during_an_upload_keeps_the_books() {
    let s = server("10M", "");
    let home = s.home("alice");
    let mut obs = alice(&s);
    code(&obs.put("outside", &data(500_000, 1)), 226);
    code(&put_mkdirs(&mut obs, "d/keep", &data(1_000, 2)), 226);
    let body = data(200_000, 3);
    let mut w = alice(&s);
    code(&begin_put(&mut w, "d/x", Some(200_000), 0, false), 150);
    w.send_raw(&body[..100_000]);
    assert!(eventually(
        std::time::Duration::from_secs_f64(5.0),
        || partial_size_on_disk(&home.join("d"), "x") == Some(100_000)
    ));
    // Either refused while the upload runs (450, nothing removed, the
    // upload completes), or done: the books must hold either way.
    let r = rm(&mut obs, "d", true);
    w.send_raw(&body[100_000..]);
    let fin = done(&mut w, &sha(&body));
    match r["code"].as_u64() {
        Some(450) => {
            code(&fin, 226);
            assert_eq!(std::fs::read(home.join("d/x")).unwrap(), body);
            assert!(home.join("d/keep").is_file());
        }
        Some(200) => {
            assert!(!home.join("d").exists());
            assert!(fin["code"].as_u64().is_some(), "{fin}");
        }
        _ => panic!("rm -r: {r}"),
    }
    noop_ok(&mut w);
    assert_used_matches_disk(&mut obs, &home);
    let (used_now, total, free) = quota(&mut obs);
    assert_eq!(used_now + free, total);
}
