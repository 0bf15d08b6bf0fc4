//! Connection limits (total and per address) and the login and idle
//! timeouts.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{TestServer, Wire};

const OTHER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A raw connection that is refused: 421, then EOF.
fn assert_refused(mut w: Wire, what: &str) {
    assert_421_then_eof(&mut w, what);
}

#[test]
fn connection_beyond_max_connections_gets_421_and_is_closed() {
    let s = TestServer::with(opts(
        "[limits]\nmax_connections = 3\nmax_connections_per_ip = 10\n",
    ));
    let mut open: Vec<Wire> = (0..3).map(|_| s.connect()).collect();
    assert_refused(Wire::connect(&s.addr), "4th connection");
    assert_refused(
        wire_from(OTHER_IP, &s.addr),
        "4th connection, other address",
    );
    // The admitted ones are served normally.
    assert_eq!(open[0].call(login_req("alice", "alice-pw"))["code"], 230);
    assert_served(&mut open[0], "an admitted connection at the limit");
    // Closing one makes room again.
    let last = open.pop().unwrap();
    drop(last);
    let mut admitted = None;
    let ok = eventually(Duration::from_secs(5), || {
        let mut w = Wire::connect(&s.addr);
        match w.try_recv() {
            Some(r) if r["code"] == 220 => {
                admitted = Some(w);
                true
            }
            _ => false,
        }
    });
    assert!(ok, "no connection admitted after one was closed");
    let mut w = admitted.unwrap();
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
    // And the limit still holds.
    assert_refused(Wire::connect(&s.addr), "4th connection again");
}

#[test]
fn connection_beyond_max_connections_per_ip_gets_421_but_another_address_connects() {
    let s = TestServer::with(opts(
        "[limits]\nmax_connections = 10\nmax_connections_per_ip = 2\n",
    ));
    let mut a = s.login("alice", "alice-pw");
    let _b = s.connect();
    assert_refused(Wire::connect(&s.addr), "3rd connection from 127.0.0.1");
    let mut o = wire_from(OTHER_IP, &s.addr);
    let g = o.recv();
    assert_eq!(g["code"], 220, "127.0.0.2 refused: {g}");
    assert_eq!(o.call(login_req("alice", "alice-pw"))["code"], 230);
    assert_served(&mut o, "session from 127.0.0.2");
    assert_served(&mut a, "session from 127.0.0.1 at its limit");
    // A connection ended by the server (quit) frees its slot too.
    assert_eq!(a.call(json!({"op": "quit"}))["code"], 221);
    assert!(a.closed());
    let ok = eventually(Duration::from_secs(5), || {
        let mut w = Wire::connect(&s.addr);
        matches!(w.try_recv(), Some(r) if r["code"] == 220)
    });
    assert!(ok, "slot not freed after quit");
}

#[test]
fn login_timeout_closes_a_connection_that_has_not_logged_in() {
    let s = TestServer::with(opts("[limits]\nlogin_timeout_secs = 1\n"));
    let t = Instant::now();
    let mut idle = s.connect();
    let mut logged_in = s.login("alice", "alice-pw");
    assert_421_then_eof(&mut idle, "never logged in");
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(1), "closed after {took:?}");
    assert!(took < Duration::from_secs(4), "closed only after {took:?}");
    // The logged-in one, older than the login timeout by now, stays.
    std::thread::sleep(Duration::from_millis(1200));
    assert_served(&mut logged_in, "a session past the login timeout");
}

#[test]
fn login_timeout_is_not_reset_by_pre_login_traffic() {
    let s = TestServer::with(opts("[limits]\nlogin_timeout_secs = 1\n"));
    let mut w = s.connect();
    let t = Instant::now();
    let mut got_421 = false;
    while t.elapsed() < Duration::from_secs(5) {
        w.send(json!({"op": "noop"}));
        match w.try_recv() {
            Some(r) if r["code"] == 200 => {}
            Some(r) if r["code"] == 421 => {
                got_421 = true;
                break;
            }
            Some(r) => panic!("unexpected reply {r}"),
            None => break,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        got_421,
        "no 421 within {:?} of noops before login",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(w.closed());
}

#[test]
fn idle_timeout_closes_an_idle_logged_in_session() {
    let s = TestServer::with(opts("[limits]\nidle_timeout_secs = 1\n"));
    let mut idle = s.login("alice", "alice-pw");
    let t = Instant::now();
    let mut busy = s.login("alice", "alice-pw");
    // `busy` keeps talking for 3 s: it stays.
    let keep = std::thread::spawn(move || {
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            let r = busy.call(json!({"op": "noop"}));
            assert_eq!(r["code"], 200, "active session: {r}");
            std::thread::sleep(Duration::from_millis(250));
        }
        assert_served(&mut busy, "an active session after 3 s");
    });
    assert_421_then_eof(&mut idle, "idle session");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(900), "closed after {took:?}");
    assert!(took < Duration::from_secs(4), "closed only after {took:?}");
    keep.join()
        .expect("active session closed by the idle timeout");
    assert!(wait_for_log(&s, &["session end user=alice"]), "{}", s.log());
}

#[test]
fn quota_request_reports_used_total_and_free() {
    let s = TestServer::start();
    let mut w = s.login("alice", "alice-pw");
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(q["code"], 200, "{q}");
    let total = 100u64 << 20;
    assert_eq!(
        q["quota"],
        json!({"used": 0, "total": total, "free": total, "entries": 0, "max_entries": 100_000}),
        "{q}"
    );
    let r = w.put("f.bin", &vec![7u8; 1000]);
    assert_eq!(r["code"], 226, "{r}");
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(
        q["quota"],
        json!({
            "used": 1000,
            "total": total,
            "free": total - 1000,
            "entries": 1,
            "max_entries": 100_000
        }),
        "{q}"
    );
    // A second session of the same user sees the same numbers.
    let mut w2 = s.login("alice", "alice-pw");
    assert_eq!(w2.call(json!({"op": "quota"}))["quota"]["used"], 1000);
}

#[test]
fn stalled_upload_is_aborted_by_the_idle_timeout() {
    let s = TestServer::with(opts("[limits]\nidle_timeout_secs = 1\n"));
    let mut w = s.login("alice", "alice-pw");
    let r = w.call(json!({"op": "put", "path": "stalled.bin", "size": 1000}));
    assert_eq!(r["code"], 150, "{r}");
    w.send_raw(&[1u8; 10]);
    let t = Instant::now();
    // No more bytes: the session is closed (a 421 if it can be sent).
    match w.try_recv() {
        None => {}
        Some(r) => {
            assert_eq!(r["code"], 421, "{r}");
            assert!(w.closed());
        }
    }
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert!(!s.home("alice").join("stalled.bin").exists());
    assert!(wait_for_log(&s, &["session end user=alice"]), "{}", s.log());
    // Other sessions are fine.
    let mut fresh = s.login("alice", "alice-pw");
    assert_served(&mut fresh, "after a stalled upload was aborted");
}

#[test]
fn download_the_client_never_reads_is_aborted_by_the_idle_timeout() {
    let s = TestServer::with(opts("[limits]\nidle_timeout_secs = 1\n"));
    let mut w = s.login("alice", "alice-pw");
    let body = crate::util::data(32 << 20, 3);
    assert_eq!(w.put("big.bin", &body)["code"], 226);
    w.send(json!({"op": "get", "path": "big.bin"}));
    // Don't read: socket buffers fill up and the transfer stalls.
    assert!(
        eventually(Duration::from_secs(8), || !log_lines_with(
            &s,
            &["session end user=alice", "idle timeout"]
        )
        .is_empty()),
        "stalled download not ended:\n{}",
        s.log()
    );
    let mut fresh = s.login("alice", "alice-pw");
    assert_served(&mut fresh, "after a stalled download was aborted");
    drop(w);
}

#[test]
fn login_timeout_during_a_delayed_login_failure_still_sends_421() {
    let s = TestServer::with(opts(
        "[limits]\nlogin_timeout_secs = 1\nfailed_login_delay_ms = 4000\nmax_failed_logins = 10\n",
    ));
    let mut w = s.connect();
    let t = Instant::now();
    w.send(login_req("alice", "wrong"));
    // The 530 is held back for 4 s; the login timeout comes first.
    assert_421_then_eof(&mut w, "login timeout while a failure is delayed");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
}
