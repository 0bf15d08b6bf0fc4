//! Malformed input in the states tests/server_core/frames.rs doesn't reach:
//! the upload trailer (garbage, bad digests, an over-long frame), a chunked
//! body (absurd chunk lengths), a body cut short, a download (junk sent
//! while it runs), a connection waiting on a held failed login, and a
//! refused eager upload. The offending client gets an error or is
//! disconnected, exactly as docs/PROTOCOL.md says, nothing half-written
//! stays visible, the quota books balance, and a bystander (bob, doing
//! put/get/ls in a loop) never sees a failure.

use std::io::Read;
use std::net::Shutdown;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::data;

const SOON: Duration = Duration::from_secs(10);

/// Garbage where the `done` trailer belongs: every kind of malformed frame
/// that names no other op gets its error and the server keeps waiting for a
/// valid `done`, which then stores the file. (A frame naming another op,
/// even an unknown one, ends the upload: files::resume.)
#[test]
fn garbage_trailers_get_errors_and_a_valid_done_still_completes() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut w = s.login("alice", "alice-pw");
    let body = data(300_000, 1);
    want(
        &w.call(json!({"op": "put", "path": "f.bin", "size": body.len()})),
        150,
    );
    w.send_raw(&body);
    let garbage: Vec<(Vec<u8>, u64)> = vec![
        (header(0).to_vec(), 500),
        (frame(&[0xff, 0xfe, 0x00]), 500),
        (frame(b"garbage"), 500),
        (frame(b"[1,2,3]"), 500),
        (frame(br#"{"sha256":"00"}"#), 500),
        (frame(br#"{"op":"done"}"#), 501),
        (frame(br#"{"op":"done","sha256":5}"#), 501),
        (frame(br#"{"op":"done","sha256":null}"#), 501),
        (frame(br#"{"op":"done","sha256":["a"]}"#), 501),
    ];
    for (bytes, c) in &garbage {
        w.send_raw(bytes);
        let r = w.recv();
        assert_eq!(
            code(&r),
            *c,
            "trailer {:?}: {r}",
            String::from_utf8_lossy(&bytes[bytes.len().min(8)..])
        );
    }
    by.progress(2, SOON, "while alice sends garbage trailers");
    // All of it pipelined in one write gets the same answers, in order.
    let all: Vec<u8> = garbage.iter().flat_map(|(b, _)| b.clone()).collect();
    w.send_raw(&all);
    for (_, c) in &garbage {
        assert_eq!(code(&w.recv()), *c);
    }
    let r = w.call(json!({"op": "done", "sha256": sha(&body)}));
    want(&r, 226);
    assert_eq!(r["size"], body.len());
    assert!(std::fs::read(home.join("f.bin")).unwrap() == body);
    assert!(partials_on_disk(&home).is_empty());
    assert_books_balance(&mut w, &home);
    assert_eq!(quota(&mut w).0, body.len() as u64);
    by.finish();
}

/// A `done` whose digest is not 64 hex digits can never match: the upload
/// is refused (554, or 501 with the trailer still awaited), nothing is
/// stored, the old version stays, no partial is left, the books balance.
#[test]
fn done_with_a_digest_that_is_not_hex_changes_nothing() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut w = s.login("alice", "alice-pw");
    let old = data(10_000, 7);
    want(&w.put("f.bin", &old), 226);
    let body = data(200_000, 8);
    let good = sha(&body);
    let bad_digests: Vec<String> = vec![
        String::new(),
        "z".repeat(64),
        good[..63].to_string(),
        format!("{good}0"),
        format!("{}é", &good[..62]),
        format!("{}\u{0}", &good[..63]),
        format!(" {}", &good[..63]),
        "g".repeat(60_000),
        "\u{202e}".repeat(1000),
    ];
    for (i, bad) in bad_digests.iter().enumerate() {
        want(
            &w.call(json!({"op": "put", "path": "f.bin", "size": body.len()})),
            150,
        );
        w.send_raw(&body);
        let r = w.call(json!({"op": "done", "sha256": bad}));
        match code(&r) {
            554 => {
                // Discarded: the digest of what was received is reported.
                assert_eq!(r["sha256"], good, "bad digest {i}: {r}");
                assert!(partials_on_disk(&home).is_empty(), "bad digest {i}");
            }
            501 => {
                // Refused as malformed: the upload still waits for its
                // trailer; end it with a wrong (but well-formed) digest.
                let r = w.call(json!({"op": "done", "sha256": "0".repeat(64)}));
                want(&r, 554);
            }
            _ => panic!("bad digest {i} ({} chars): {r}", bad.len()),
        }
        assert!(
            std::fs::read(home.join("f.bin")).unwrap() == old,
            "bad digest {i}"
        );
        assert_eq!(fetch(&mut w, "f.bin"), old);
        want(&w.call(json!({"op": "partial", "path": "f.bin"})), 550);
        assert_books_balance(&mut w, &home);
        assert_eq!(quota(&mut w).0, old.len() as u64, "bad digest {i}");
    }
    by.progress(2, SOON, "after the bad digests");
    // Digests are accepted in any case.
    want(
        &w.call(json!({"op": "put", "path": "f.bin", "size": body.len()})),
        150,
    );
    w.send_raw(&body);
    want(
        &w.call(json!({"op": "done", "sha256": good.to_uppercase()})),
        226,
    );
    assert!(std::fs::read(home.join("f.bin")).unwrap() == body);
    by.finish();
}

/// A header announcing more than 64 KiB where the trailer belongs: 500,
/// then the close (the stream can't be resynchronised). The upload counts
/// as interrupted: its bytes stay in the resumable partial, and the resume
/// completes it.
#[test]
fn overlong_frame_in_place_of_the_trailer_closes_and_keeps_the_partial() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut obs = s.login("alice", "alice-pw");
    let body = data(500_000, 3);
    for (i, len) in [65_537u64, 1 << 40, u64::MAX].into_iter().enumerate() {
        let path = format!("f{i}.bin");
        let mut w = s.login("alice", "alice-pw");
        want(
            &w.call(json!({"op": "put", "path": path, "size": body.len()})),
            150,
        );
        w.send_raw(&body);
        w.send_raw(&header(len));
        let r = w
            .try_recv()
            .unwrap_or_else(|| panic!("{path}: no 500 before the close"));
        want(&r, 500);
        assert!(
            w.closed(),
            "{path}: connection left open after a {len}-byte header"
        );
        let p = partial_settled(&mut obs, &path);
        want(&p, 200);
        assert_eq!(p["size"], body.len(), "{p}");
        assert_eq!(p["sha256"], sha(&body), "{p}");
        want(&obs.call(json!({"op": "stat", "path": path})), 550);
    }
    by.progress(2, SOON, "after the over-long trailers");
    assert_books_balance(&mut obs, &home);
    for i in 0..3 {
        let path = format!("f{i}.bin");
        let r =
            obs.call(json!({"op": "put", "path": path, "size": body.len(), "offset": body.len()}));
        want(&r, 150);
        want(&obs.call(json!({"op": "done", "sha256": sha(&body)})), 226);
        assert!(std::fs::read(home.join(&path)).unwrap() == body);
    }
    assert!(partials_on_disk(&home).is_empty());
    assert_books_balance(&mut obs, &home);
    by.finish();
}

/// Chunk lengths no quota can hold (up to 2^64 − 1): `552` at once, during
/// the body, before anything is written or reserved; the partial is gone
/// and the books balance once the client gives up.
#[test]
fn absurd_chunk_lengths_get_552_at_once_and_reserve_nothing() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut obs = s.login("alice", "alice-pw");
    let lens = [u64::MAX, u64::MAX - 1, 1 << 63, 1 << 40, (100 << 20) + 1];
    for (i, len) in lens.into_iter().enumerate() {
        for lead in [0usize, 3000] {
            let mut w = s.login("alice", "alice-pw");
            let path = format!("c{i}-{lead}.bin");
            want(&w.call(json!({"op": "put", "path": path})), 150);
            if lead > 0 {
                // A good chunk first: its bytes are written, then dropped.
                w.send_raw(&chunk(&data(lead, i as u64)));
            }
            w.send_raw(&header(len));
            w.send_raw(b"some bytes of the absurd chunk");
            let t = Instant::now();
            let r = w.recv();
            want(&r, 552);
            assert!(t.elapsed() < SOON, "552 after {:?}", t.elapsed());
            let msg = r["msg"].as_str().unwrap_or_default();
            assert!(msg.contains("quota"), "{r}");
            drop(w);
            assert_books_balance(&mut obs, &home);
            assert_eq!(quota(&mut obs).0, 0, "chunk of {len} after {lead} bytes");
            want(&partial_settled(&mut obs, &path), 550);
            assert!(
                partials_on_disk(&home).is_empty(),
                "{:?}",
                partials_on_disk(&home)
            );
        }
    }
    by.progress(2, SOON, "after the absurd chunks");
    // The user can still upload everything the quota allows.
    let mut w = s.login("alice", "alice-pw");
    let body = data(3 << 20, 9);
    want(&w.put("ok.bin", &body), 226);
    by.finish();
}

/// Requests (good and bad) sent while a download is running wait in the
/// socket: the body and its 226 come first, whole, then their answers in
/// order. An over-long header among them closes the connection after the
/// download; half a frame left behind is closed by the idle timeout.
#[test]
fn junk_sent_during_a_download_is_answered_after_it() {
    let s = server("[limits]\nidle_timeout_secs = 2\n");
    let by = Bystander::start(&s);
    let mut w = s.login("alice", "alice-pw");
    let body = data(8 << 20, 5);
    want(&w.put("big.bin", &body), 226);

    // Malformed frames and a good one.
    w.send(json!({"op": "get", "path": "big.bin"}));
    let mut junk = header(0).to_vec();
    junk.extend(frame(&[0xc3, 0x28]));
    junk.extend(frame(b"{\"op\":"));
    junk.extend(frame(br#"{"op":"get","path":7}"#));
    junk.extend(frame(br#"{"op":"done","sha256":"00"}"#));
    junk.extend(frame(br#"{"op":"noop"}"#));
    w.send_raw(&junk);
    let got = read_download(&mut w, body.len());
    assert!(got == body, "download corrupted by junk sent during it");
    let codes: Vec<u64> = (0..6).map(|_| code(&w.recv())).collect();
    assert_eq!(codes, [500, 500, 500, 501, 503, 200]);
    by.progress(1, SOON, "after the first download with junk");

    // Half a header behind the get: the download completes, then the idle
    // timeout ends the connection.
    let mut w = s.login("alice", "alice-pw");
    w.send(json!({"op": "get", "path": "big.bin"}));
    w.send_raw(&[0, 0, 0]);
    let got = read_download(&mut w, body.len());
    assert!(got == body);
    let t = Instant::now();
    assert_421_then_eof(&mut w, "half a header left after a download");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    by.finish();
}

/// An over-long frame sent whole (header and payload in one write, as a
/// buggy client would): the client reads the 500 before the close, as
/// docs/PROTOCOL.md 2.2 promises, instead of a connection reset. Before
/// login (a 421 would be the same) and after.
#[test]
fn overlong_frame_sent_with_its_payload_still_gets_its_500() {
    let s = server("");
    let by = Bystander::start(&s);
    for logged_in in [false, true] {
        for len in [65_537usize, 300_000] {
            let mut w = if logged_in {
                s.login("alice", "alice-pw")
            } else {
                s.connect()
            };
            let mut payload = br#"{"op":"noop","pad":""#.to_vec();
            payload.resize(len - 2, b'x');
            payload.extend(b"\"}");
            w.send_raw(&frame(&payload));
            let r = w.try_recv();
            let r = r.unwrap_or_else(|| {
                panic!("{len}-byte frame (logged in: {logged_in}): connection reset/closed without the 500")
            });
            want(&r, 500);
            assert!(w.closed());
        }
    }
    by.finish();
}

/// Reads one download's 150, `size` body bytes and 226 trailer (checking
/// it): the body.
#[track_caller]
fn read_download(w: &mut crate::util::Wire, size: usize) -> Vec<u8> {
    let r = w.recv();
    want(&r, 150);
    assert_eq!(r["size"], size);
    let mut got = vec![0u8; size];
    w.stream.read_exact(&mut got).expect("download body");
    let t = w.recv();
    want(&t, 226);
    assert_eq!(t["sha256"].as_str(), Some(sha(&got).as_str()));
    got
}

/// A body shorter than announced, then the end of the stream (half-close
/// or close), in a sized and a chunked upload, also in the middle of a
/// chunk header: the server ends the upload as a lost connection (closes
/// without a reply), keeps exactly the bytes received in the resumable
/// partial, and the resume completes it.
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn body_shorter_than_announced_then_eof_keeps_exactly_what_arrived() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut obs = s.login("alice", "alice-pw");
    let body = data(1_000_000, 11);
    struct Case {
        path: &'static str,
        chunked: bool,
        half_close: bool,
        // Bytes of the body (or, chunked: what is sent raw).
        send: Vec<u8>,
        kept: usize,
    }
    let mut chunked_send = chunk(&body[..40_000]);
    chunked_send.extend(chunk(&body[40_000..70_000]));
    let mut mid_chunk = chunked_send.clone();
    mid_chunk.extend(&header(50_000));
    mid_chunk.extend(&body[70_000..80_000]);
    let mut mid_header = chunked_send.clone();
    mid_header.extend(&header(50_000)[..5]);
    let cases = vec![
        Case {
            path: "sized-shut.bin",
            chunked: false,
            half_close: true,
            send: body[..123_457].to_vec(),
            kept: 123_457,
        },
        Case {
            path: "sized-drop.bin",
            chunked: false,
            half_close: false,
            send: body[..999_999].to_vec(),
            kept: 999_999,
        },
        Case {
            path: "chunks-shut.bin",
            chunked: true,
            half_close: true,
            send: chunked_send,
            kept: 70_000,
        },
        Case {
            path: "mid-chunk.bin",
            chunked: true,
            half_close: true,
            send: mid_chunk,
            kept: 80_000,
        },
        Case {
            path: "mid-header.bin",
            chunked: true,
            half_close: false,
            send: mid_header,
            kept: 70_000,
        },
    ];
    for c in &cases {
        let mut w = s.login("alice", "alice-pw");
        let mut req = json!({"op": "put", "path": c.path});
        if !c.chunked {
            req["size"] = json!(body.len());
        }
        want(&w.call(req), 150);
        w.send_raw(&c.send);
        if c.half_close {
            w.stream.shutdown(Shutdown::Write).unwrap();
            let t = Instant::now();
            let r = w.try_recv();
            assert!(r.is_none(), "{}: a reply to a cut-off body: {r:?}", c.path);
            assert!(
                t.elapsed() < SOON,
                "{}: closed after {:?}",
                c.path,
                t.elapsed()
            );
        } else {
            drop(w);
        }
        let p = partial_settled(&mut obs, c.path);
        want(&p, 200);
        assert_eq!(p["size"], c.kept, "{}: {p}", c.path);
        assert_eq!(p["sha256"], sha(&body[..c.kept]), "{}: {p}", c.path);
        want(&obs.call(json!({"op": "stat", "path": c.path})), 550);
    }
    by.progress(2, SOON, "after the cut-off bodies");
    assert_books_balance(&mut obs, &home);
    for c in &cases {
        let r =
            obs.call(json!({"op": "put", "path": c.path, "size": body.len(), "offset": c.kept}));
        want(&r, 150);
        obs.send_raw(&body[c.kept..]);
        want(&obs.call(json!({"op": "done", "sha256": sha(&body)})), 226);
        assert!(
            std::fs::read(home.join(c.path)).unwrap() == body,
            "{}",
            c.path
        );
    }
    assert!(partials_on_disk(&home).is_empty());
    assert_books_balance(&mut obs, &home);
    assert_eq!(quota(&mut obs).0, 5 * body.len() as u64);
    by.finish();
}

/// Frames pipelined behind a login whose failure is held back (the
/// connection is busy): nothing is answered before the 530, then each gets
/// its own answer, in order.
#[test]
fn junk_behind_a_held_failed_login_is_answered_in_order_after_it() {
    let s = server("[limits]\nfailed_login_delay_ms = 800\nmax_failed_logins = 10\n");
    let by = Bystander::start(&s);
    let mut w = s.connect();
    let t = Instant::now();
    let mut buf = frame(login_req("alice", "wrong").to_string().as_bytes());
    buf.extend(header(0));
    buf.extend(frame(b"\xff"));
    buf.extend(frame(br#"{"op":"pwd"}"#));
    buf.extend(frame(br#"{"op":"put","path":"x","size":3,"eager":false}"#));
    buf.extend(frame(br#"{"op":"nope"}"#));
    buf.extend(frame(login_req("alice", "alice-pw").to_string().as_bytes()));
    buf.extend(frame(br#"{"op":"pwd"}"#));
    w.send_raw(&buf);
    let first = w.recv();
    want(&first, 530);
    assert!(
        t.elapsed() >= Duration::from_millis(700),
        "530 after {:?}",
        t.elapsed()
    );
    let codes: Vec<u64> = (0..7).map(|_| code(&w.recv())).collect();
    assert_eq!(codes, [500, 500, 503, 503, 502, 230, 200]);
    by.finish();
}

/// A refused eager upload whose body is followed by garbage instead of
/// the trailer: one refusal for the put, the body discarded, the garbage
/// gets its 500, a `done` after it is still swallowed, and the session goes
/// on. Nothing is written.
#[test]
fn refused_eager_put_followed_by_garbage_keeps_the_stream_in_step() {
    let s = server("");
    let by = Bystander::start(&s);
    let home = s.home("alice");
    let mut w = s.login("alice", "alice-pw");
    want(&w.call(json!({"op": "mkdir", "path": "d"})), 200);
    let body = data(70_000, 4);
    let mut buf = frame(
        json!({"op": "put", "path": "d", "size": body.len(), "eager": true})
            .to_string()
            .as_bytes(),
    );
    // The body itself looks like frames: it must be skipped, not parsed.
    let mut fake = Vec::new();
    while fake.len() < body.len() {
        fake.extend(frame(br#"{"op":"rm","path":"d","recursive":true}"#));
    }
    fake.truncate(body.len());
    buf.extend(&fake);
    buf.extend(frame(b"this is not the trailer"));
    buf.extend(frame(
        json!({"op": "done", "sha256": sha(&fake)})
            .to_string()
            .as_bytes(),
    ));
    buf.extend(frame(br#"{"op":"noop"}"#));
    w.send_raw(&buf);
    let codes: Vec<u64> = (0..3).map(|_| code(&w.recv())).collect();
    assert_eq!(
        codes,
        [551, 500, 200],
        "refused eager put, garbage trailer, noop"
    );
    let r = w.call(json!({"op": "ls", "path": "/"}));
    assert_eq!(names(&r), ["d"]);
    assert!(
        home.join("d").is_dir(),
        "the fake frames in the body were run"
    );
    assert!(partials_on_disk(&home).is_empty());
    assert_books_balance(&mut w, &home);
    assert_eq!(quota(&mut w).0, 0);
    by.finish();
}
