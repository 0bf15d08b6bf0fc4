//! Framing and message decoding: the greeting, malformed input of every
//! kind, and the pre-/post-login command sets. Each malformed-input test
//! keeps a second, logged-in client and checks it is served during and
//! after.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{TestServer, Wire};

#[test]
fn greeting_is_220_with_protocol_1() {
    let s = TestServer::start();
    let mut w = Wire::connect(&s.addr);
    let g = w.recv();
    assert_eq!(g["code"], 220, "{g}");
    assert_eq!(g["protocol"], 1, "{g}");
    assert!(g["msg"].is_string(), "{g}");
}

#[test]
fn zero_length_frame_gets_500_and_connection_continues() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    w.send_raw(&header(0));
    let r = w.recv();
    assert_eq!(r["code"], 500, "{r}");
    assert_served(&mut other, "after a zero-length frame from another client");
    // Same connection goes on: a noop, then a login.
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
    // And once more after login.
    w.send_raw(&header(0));
    assert_eq!(w.recv()["code"], 500);
    assert_served(&mut w, "the same session after a zero-length frame");
}

#[test]
fn frame_over_64k_gets_500_then_close() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    // Only the header: the server must decide from it alone.
    w.send_raw(&header(64 * 1024 + 1));
    let r = w.try_recv().expect("a 500 frame before the close");
    assert_eq!(r["code"], 500, "{r}");
    assert!(w.closed(), "connection left open after an over-long frame");
    assert_served(&mut other, "after an over-long frame from another client");
}

#[test]
fn frame_of_exactly_64k_is_accepted() {
    let s = TestServer::start();
    let mut w = s.connect();
    let mut payload = br#"{"op":"noop"}"#.to_vec();
    payload.resize(64 * 1024, b' ');
    w.send_frame(&payload);
    let r = w.recv();
    assert_eq!(r["code"], 200, "{r}");
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
}

#[test]
fn huge_length_prefix_is_refused_without_allocating() {
    let mut s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    for len in [1u64 << 63, u64::MAX, 1 << 40] {
        let mut w = s.connect();
        w.send_raw(&header(len));
        let r = w.try_recv().unwrap_or_else(|| {
            panic!("length {len}: connection closed without a 500 (did the server die?)")
        });
        assert_eq!(r["code"], 500, "length {len}: {r}");
        assert!(w.closed(), "length {len}: connection left open");
        // An attempt to allocate 2^63 bytes would have aborted the process.
        assert_served(&mut other, &format!("after a frame header of {len}"));
    }
    assert!(
        s.child.try_wait().unwrap().is_none(),
        "the server process exited"
    );
    // And new clients are still welcome.
    let mut w = s.login("alice", "alice-pw");
    assert_served(&mut w, "a new session after the huge headers");
    // The server didn't grow: resident memory stays small.
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
    let rss_kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .expect("VmRSS");
    assert!(rss_kib < 256 * 1024, "server RSS is {rss_kib} KiB");
}

#[test]
fn non_utf8_payload_gets_500_and_connection_continues() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    w.send_frame(&[b'{', 0xff, 0xfe, b'}']);
    let r = w.recv();
    assert_eq!(r["code"], 500, "{r}");
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    assert_served(&mut other, "after a non-UTF-8 frame from another client");
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
}

#[test]
fn payload_that_is_not_json_gets_500_and_connection_continues() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    for bad in [
        &b"hello"[..],
        b"{\"op\":\"noop\"",
        b"[1,2,3]",
        b"\"noop\"",
        b"null",
        b"42",
    ] {
        w.send_frame(bad);
        let r = w.recv();
        assert_eq!(r["code"], 500, "{:?}: {r}", String::from_utf8_lossy(bad));
    }
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    assert_served(&mut other, "after non-JSON frames from another client");
}

#[test]
fn object_without_op_gets_500() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    for bad in [json!({}), json!({"user": "alice", "password": "alice-pw"})] {
        let r = w.call(bad.clone());
        assert_eq!(r["code"], 500, "{bad}: {r}");
    }
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    // Also after login.
    let r = other.call(json!({"path": "/"}));
    assert_eq!(r["code"], 500, "{r}");
    assert_served(&mut other, "after a frame without op");
}

#[test]
fn unknown_op_gets_502_before_and_after_login() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    let r = w.call(json!({"op": "format_disk"}));
    assert_eq!(r["code"], 502, "{r}");
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    let r = other.call(json!({"op": "LOGIN", "user": "alice", "password": "alice-pw"}));
    assert_eq!(r["code"], 502, "{r}");
    assert_served(&mut other, "after an unknown op");
}

#[test]
fn bad_fields_get_501_and_connection_continues() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    for bad in [
        json!({"op": "login", "user": "alice"}),
        json!({"op": "login", "user": 7, "password": "alice-pw"}),
        json!({"op": "register", "password": "x"}),
    ] {
        let r = w.call(bad.clone());
        assert_eq!(r["code"], 501, "{bad}: {r}");
    }
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    for bad in [
        json!({"op": "cd"}),
        json!({"op": "cd", "path": 5}),
        json!({"op": "put", "path": "a", "size": -1}),
        json!({"op": "mv", "from": "a"}),
        json!({"op": "ls", "start": "zero"}),
    ] {
        let r = other.call(bad.clone());
        assert_eq!(r["code"], 501, "{bad}: {r}");
    }
    assert_served(&mut other, "after requests with bad fields");
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
}

#[test]
fn truncated_frame_then_silence_is_closed_by_login_timeout() {
    let s = TestServer::with(opts("[limits]\nlogin_timeout_secs = 1\n"));
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    let started = Instant::now();
    w.send_raw(&header(100));
    w.send_raw(br#"{"op":"no"#);
    // While it hangs, the other client is served.
    assert_served(&mut other, "while another client sends half a frame");
    assert_421_then_eof(&mut w, "half a frame, then silence");
    let took = started.elapsed();
    assert!(took >= Duration::from_secs(1), "closed after {took:?}");
    assert!(took < Duration::from_secs(5), "closed only after {took:?}");
    assert_served(&mut other, "after the half-frame client was closed");
}

#[test]
fn frames_split_across_writes_and_pipelined_are_all_answered() {
    let s = TestServer::start();
    let mut w = s.connect();
    // One frame, a byte at a time.
    let payload = login_req("alice", "alice-pw").to_string();
    let mut bytes = header(payload.len() as u64).to_vec();
    bytes.extend_from_slice(payload.as_bytes());
    for b in &bytes {
        w.send_raw(&[*b]);
    }
    assert_eq!(w.recv()["code"], 230);
    // Three frames in one write: three replies, in order.
    let mut buf = Vec::new();
    for v in [
        json!({"op": "noop"}),
        json!({"op": "pwd"}),
        json!({"op": "bogus"}),
    ] {
        let p = v.to_string();
        buf.extend_from_slice(&header(p.len() as u64));
        buf.extend_from_slice(p.as_bytes());
    }
    w.send_raw(&buf);
    assert_eq!(w.recv()["code"], 200);
    assert_eq!(w.recv()["cwd"], "/");
    assert_eq!(w.recv()["code"], 502);
}

#[test]
fn before_login_only_login_register_noop_and_quit_are_allowed() {
    let s = TestServer::start();
    let mut w = s.connect();
    for req in [
        json!({"op": "pwd"}),
        json!({"op": "quota"}),
        json!({"op": "ls"}),
        json!({"op": "cd", "path": "/"}),
        json!({"op": "stat", "path": "x"}),
        json!({"op": "mkdir", "path": "d"}),
        json!({"op": "rmdir", "path": "d"}),
        json!({"op": "rm", "path": "x"}),
        json!({"op": "mv", "from": "a", "to": "b"}),
        json!({"op": "cp", "from": "a", "to": "b"}),
        json!({"op": "put", "path": "x", "size": 3}),
        json!({"op": "get", "path": "x"}),
        json!({"op": "partial", "path": "x"}),
        json!({"op": "done", "sha256": "00"}),
    ] {
        let r = w.call(req.clone());
        assert_eq!(r["code"], 503, "{req} before login: {r}");
    }
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    // Nothing was created in the home by the refused requests.
    assert!(!s.home("alice").join("d").exists());
    let r = w.call(json!({"op": "quit"}));
    assert_eq!(r["code"], 221, "{r}");
    assert!(w.closed(), "connection open after quit");
}

#[test]
fn after_login_login_and_register_get_503() {
    let s = TestServer::with(opts("registration = \"open\"\n"));
    let mut w = s.login("alice", "alice-pw");
    let r = w.call(login_req("alice", "alice-pw"));
    assert_eq!(r["code"], 503, "{r}");
    let r = w.call(register_req("newbie", "newbie-pw"));
    assert_eq!(r["code"], 503, "{r}");
    assert_served(&mut w, "after a refused second login");
    // The register was refused, not carried out.
    let r = try_login(&s, "newbie", "newbie-pw");
    assert_eq!(r["code"], 530, "{r}");
}

#[test]
fn quit_is_answered_221_even_when_the_client_half_closes() {
    // A script that sends its last request and shuts down its sending side
    // (like `printf ... | nc -N`) still gets the answer.
    let s = TestServer::start();
    let mut w = s.login("alice", "alice-pw");
    let p = json!({"op": "pwd"}).to_string();
    let mut buf = header(p.len() as u64).to_vec();
    buf.extend_from_slice(p.as_bytes());
    let q = json!({"op": "quit"}).to_string();
    buf.extend_from_slice(&header(q.len() as u64));
    buf.extend_from_slice(q.as_bytes());
    w.send_raw(&buf);
    w.stream.shutdown(std::net::Shutdown::Write).unwrap();
    let r = w.try_recv().expect("pwd answered before the close");
    assert_eq!(r["code"], 200, "{r}");
    let r = w.try_recv().expect("quit answered before the close");
    assert_eq!(r["code"], 221, "{r}");
    assert!(w.closed());
}

#[test]
fn malformed_input_from_many_clients_at_once_leaves_a_session_served() {
    let s = TestServer::with(opts("[limits]\nlogin_timeout_secs = 2\n"));
    let mut other = s.login("alice", "alice-pw");
    let addr = s.addr.clone();
    let handles: Vec<_> = (0..20)
        .map(|i| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut w = Wire::connect(&addr);
                assert_eq!(w.recv()["code"], 220);
                match i % 5 {
                    0 => {
                        w.send_raw(&header(0));
                        assert_eq!(w.recv()["code"], 500);
                    }
                    1 => {
                        w.send_frame(&[0xc3, 0x28]);
                        assert_eq!(w.recv()["code"], 500);
                    }
                    2 => {
                        w.send_frame(b"}{");
                        assert_eq!(w.recv()["code"], 500);
                    }
                    3 => {
                        w.send_raw(&header(1 << 63));
                        assert_eq!(w.try_recv().expect("500")["code"], 500);
                        assert!(w.closed());
                    }
                    _ => {
                        w.send_raw(&header(50));
                        w.send_raw(b"{");
                        assert_421_then_eof(&mut w, "half frame");
                    }
                }
            })
        })
        .collect();
    assert_served(&mut other, "while 20 clients send garbage");
    for h in handles {
        h.join().expect("garbage client");
    }
    assert_served(&mut other, "after 20 clients sent garbage");
}

#[test]
fn malformed_frames_pipelined_with_good_ones_are_answered_in_order() {
    let s = TestServer::start();
    let mut w = s.connect();
    let mut buf = Vec::new();
    let frame = |buf: &mut Vec<u8>, p: &[u8]| {
        buf.extend_from_slice(&header(p.len() as u64));
        buf.extend_from_slice(p);
    };
    buf.extend_from_slice(&header(0));
    frame(&mut buf, &[0xff, 0xff]);
    frame(&mut buf, b"not json");
    frame(&mut buf, br#"{"op":"noop"}"#);
    frame(&mut buf, br#"{"op":"nope"}"#);
    frame(
        &mut buf,
        br#"{"op":"login","user":"alice","password":"alice-pw"}"#,
    );
    frame(&mut buf, br#"{"op":"pwd"}"#);
    w.send_raw(&buf);
    let codes: Vec<u64> = (0..7).map(|_| code(&w.recv())).collect();
    assert_eq!(codes, [500, 500, 500, 200, 502, 230, 200]);
}

#[test]
fn truncated_frame_in_a_session_is_closed_by_the_idle_timeout() {
    let s = TestServer::with(opts("[limits]\nidle_timeout_secs = 1\n"));
    let mut w = s.login("alice", "alice-pw");
    let t = Instant::now();
    w.send_raw(&header(1000));
    w.send_raw(br#"{"op":"#);
    assert_421_then_eof(&mut w, "half a frame in a session");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    let mut fresh = s.login("alice", "alice-pw");
    assert_served(&mut fresh, "after the half-frame session was closed");
}

/// Small requests with big replies, written without reading the replies:
/// the server stops reading when replies pile up (backpressure) instead of
/// buffering them without bound, answers every one once the client reads,
/// and serves others meanwhile.
#[test]
fn replies_a_client_does_not_read_are_not_buffered_without_bound() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.login("alice", "alice-pw");
    // A directory whose listing is ~125 KB.
    let dir = s.home("alice").join("many");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..500 {
        std::fs::write(dir.join(format!("{i:04}-{}", "n".repeat(200))), b"").unwrap();
    }
    let first = w.call(json!({"op": "ls", "path": "many"}));
    assert_eq!(
        first["entries"].as_array().map(Vec::len),
        Some(500),
        "{first}"
    );
    let reply_len = first.to_string().len();
    let rss = || -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", s.child.id())).unwrap();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    let before = rss();
    // 1000 requests (~30 KB) asking for ~125 MB of replies.
    const N: usize = 1000;
    let p = json!({"op": "ls", "path": "many"}).to_string();
    let mut all = Vec::new();
    for _ in 0..N {
        all.extend_from_slice(&header(p.len() as u64));
        all.extend_from_slice(p.as_bytes());
    }
    w.send_raw(&all);
    // Give the server time to do its worst, watching its memory.
    let mut peak = before;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(2) {
        peak = peak.max(rss());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_served(&mut other, "while a client doesn't read its replies");
    let grown_mib = peak.saturating_sub(before) / 1024;
    let asked_mib = (N * reply_len) >> 20;
    assert!(
        grown_mib < 40,
        "server memory grew by {grown_mib} MiB for {asked_mib} MiB of unread replies"
    );
    for i in 0..N {
        let r = w.recv();
        assert_eq!(r["code"], 200, "reply {i}: {r}");
        assert_eq!(r["entries"].as_array().map(Vec::len), Some(500));
    }
    assert_served(&mut w, "after reading all the replies");
}

#[test]
fn deeply_nested_json_gets_500_and_the_server_survives() {
    let s = TestServer::start();
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    let deep = "[".repeat(60_000);
    w.send_frame(deep.as_bytes());
    assert_eq!(w.recv()["code"], 500);
    let nested = format!(
        r#"{{"op":"noop","x":{}{}}}"#,
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    w.send_frame(nested.as_bytes());
    let r = w.recv();
    assert!(r["code"] == 500 || r["code"] == 200, "{r}");
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    assert_served(&mut other, "after deeply nested JSON");
}
