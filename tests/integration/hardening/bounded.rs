//! Bounded resources, each driven to its cap: the failed-login table
//! (`MAX_FAILED_LOGIN_ENTRIES` = 10,000 addresses; the oldest is evicted)
//! and the per-connection request buffer (one frame of at most 64 KiB).
//! The other caps are covered elsewhere: pending registrations, reply
//! backpressure, the request-frame limit (tests/server_core), listing pages
//! (tests/files); docs/STRESS.md lists them all.

use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hardening::hx::*;
use crate::util::Wire;

/// The failed-login table's cap (src/limits.rs).
const MAX_FAILED_LOGIN_ENTRIES: usize = 10_000;

/// A failed login from `src`: the reply's code.
fn fail_from(src: Ipv4Addr, addr: &str) -> u64 {
    let mut w = connect_from(src, addr);
    code(&w.call(login_req("alice", "wrong")))
}

fn login_code(src: Ipv4Addr, addr: &str) -> u64 {
    let mut w = connect_from(src, addr);
    code(&w.call(login_req("alice", "alice-pw")))
}

/// Every failure locks its address out (max_failed_logins = 1, for an
/// hour). A and B fail first, then 9,998 other addresses: the table holds
/// exactly 10,000 and A is still locked out. The 10,001st address evicts
/// the oldest entry, A (it can log in again; B can't); the 10,002nd evicts
/// B. Meanwhile the server stays responsive (the bystander, a fresh login)
/// and small. (About 3 s: it runs in the default suite.)
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn failed_login_table_is_capped_and_evicts_the_oldest() {
    raise_nofile(5_000);
    let s = server(
        "[limits]\nmax_failed_logins = 1\nfailed_login_delay_ms = 10\nlockout_secs = 3600\n\
         max_connections = 5000\n",
    );
    let pid = s.child.id();
    let by = Bystander::start(&s);
    let rss0 = rss_kib(pid);
    let a = ip(20, 0, 1);
    let b = ip(20, 0, 2);
    assert_eq!(fail_from(a, &s.addr), 429);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(fail_from(b, &s.addr), 429);
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(login_code(a, &s.addr), 429, "A not locked out");

    let fillers = MAX_FAILED_LOGIN_ENTRIES - 2;
    let next = Arc::new(AtomicUsize::new(0));
    let wrong = Arc::new(Mutex::new(Vec::new()));
    let t = Instant::now();
    let handles: Vec<_> = (0..16)
        .map(|_| {
            let (addr, next, wrong) = (s.addr.clone(), Arc::clone(&next), Arc::clone(&wrong));
            std::thread::spawn(move || loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= fillers {
                    return;
                }
                let c = fail_from(nth_ip(21, k), &addr);
                if c != 429 {
                    wrong.lock().unwrap().push(format!("filler {k}: {c}"));
                }
            })
        })
        .collect();
    // Responsive while the table fills.
    let mut slowest_login = Duration::ZERO;
    while !handles.iter().all(|h| h.is_finished()) {
        let t = Instant::now();
        let mut w = s.login("bob", "bob-pw");
        slowest_login = slowest_login.max(t.elapsed());
        want(&w.call(serde_json::json!({"op": "noop"})), 200);
        std::thread::sleep(Duration::from_millis(200));
    }
    for h in handles {
        h.join().expect("filler");
    }
    eprintln!(
        "{fillers} failed logins from distinct addresses in {:?}; slowest fresh login meanwhile {slowest_login:?}",
        t.elapsed()
    );
    assert!(
        wrong.lock().unwrap().is_empty(),
        "{:?}",
        wrong.lock().unwrap()
    );
    by.progress(
        2,
        Duration::from_secs(10),
        "with the failed-login table full",
    );
    assert!(slowest_login < Duration::from_secs(2), "{slowest_login:?}");

    // 10,000 entries: nobody evicted yet.
    assert_eq!(
        login_code(a, &s.addr),
        429,
        "A evicted before the table was full"
    );
    assert_eq!(login_code(b, &s.addr), 429);
    // The 10,001st address evicts A, the oldest.
    assert_eq!(fail_from(ip(22, 0, 1), &s.addr), 429);
    assert_eq!(login_code(b, &s.addr), 429, "B evicted instead of A");
    assert_eq!(
        login_code(a, &s.addr),
        230,
        "A still locked out: the table is not capped"
    );
    // The 10,002nd evicts B.
    assert_eq!(fail_from(ip(22, 0, 2), &s.addr), 429);
    assert_eq!(login_code(b, &s.addr), 230, "B still locked out");
    // The newest are still locked out.
    assert_eq!(login_code(nth_ip(21, fillers - 1), &s.addr), 429);
    assert_eq!(login_code(ip(22, 0, 2), &s.addr), 429);
    let rss = rss_kib(pid);
    eprintln!("server RSS {rss0} KiB before, {rss} KiB with the table full");
    assert!(
        rss.saturating_sub(rss0) < 32 * 1024,
        "{rss} KiB, {rss0} KiB before"
    );
    by.finish();
}

/// 500 connections (1000 under STRESS=1) each send all but the last byte
/// of a request frame of the largest size (64 KiB), half before and half
/// after login: the server holds one frame's worth per connection — its
/// memory grows by about 64 KiB per connection, not twice that — answers
/// every frame once its last byte comes, and serves the bystander.
#[test]
fn connections_holding_an_almost_complete_64k_frame_cost_one_frame_each() {
    let n = scaled(500, 1000);
    raise_nofile(4 * n as u64 + 1000);
    let s = server(&format!(
        "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\n",
        n + 100,
        n + 100
    ));
    let pid = s.child.id();
    let by = Bystander::start(&s);
    let rss0 = rss_kib(pid);
    let mut payload = br#"{"op":"noop","pad":""#.to_vec();
    payload.resize(65_536 - 2, b'p');
    payload.extend(b"\"}");
    let whole = frame(&payload);
    let mut conns: Vec<Wire> = (0..n)
        .map(|i| {
            let mut w = if i % 2 == 0 {
                connect_from(nth_ip(23, i % 200), &s.addr)
            } else {
                login_from(nth_ip(23, i % 200), &s.addr, "alice", "alice-pw")
            };
            w.stream.write_all(&whole[..whole.len() - 1]).unwrap();
            w
        })
        .collect();
    // Let the server read it all.
    std::thread::sleep(Duration::from_millis(1500));
    let rss = rss_kib(pid);
    let per_conn = rss.saturating_sub(rss0) * 1024 / n as u64;
    eprintln!(
        "server RSS {rss0} KiB before, {rss} KiB with {n} almost complete 64 KiB frames ({per_conn} bytes each)"
    );
    by.progress(2, Duration::from_secs(10), "with the frames pending");
    assert!(
        per_conn < 80 * 1024,
        "each connection costs the server {per_conn} bytes for one 64 KiB frame"
    );
    for (i, w) in conns.iter_mut().enumerate() {
        w.stream.write_all(&whole[whole.len() - 1..]).unwrap();
        let r = w
            .try_recv()
            .unwrap_or_else(|| panic!("connection {i}: closed"));
        assert_eq!(r["code"], 200, "connection {i}: {r}");
    }
    by.finish();
}

/// An account (home handle, used figure) lives while a session or a
/// transfer holds it; "the next login after that walks the home again"
/// (src/server/quota.rs, docs/PROTOCOL.md 9.3). After sessions that did
/// every kind of upload (sized, chunked, eager, failed, interrupted) have
/// ended, the server holds no descriptor of the home, and bytes put into
/// the home behind its back count at the next login.
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn accounts_are_released_when_their_last_session_ends() {
    let s = server("");
    let pid = s.child.id();
    let home = s.home("alice");
    let by = Bystander::start(&s);
    std::fs::create_dir_all(&home).unwrap();
    let home_fds = || {
        fd_list(pid)
            .split(' ')
            .filter(|e| e.ends_with(&format!("{}", home.display())))
            .count()
    };
    // Each case uses a session and says whether it ended it itself.
    type Case = Box<dyn Fn(&mut Wire) -> bool>;
    let cases: Vec<(&str, Case)> = vec![
        (
            "sized put",
            Box::new(|w: &mut Wire| {
                want(&w.put("a", &crate::util::data(5000, 1)), 226);
                false
            }),
        ),
        (
            "ls and get",
            Box::new(|w: &mut Wire| {
                want(&w.call(serde_json::json!({"op": "ls"})), 200);
                let _ = fetch(w, "a");
                false
            }),
        ),
        (
            "eager put",
            Box::new(|w: &mut Wire| {
                let body = crate::util::data(3000, 3);
                w.send(serde_json::json!({"op": "put", "path": "e", "size": body.len(), "eager": true}));
                w.send_raw(&body);
                w.send(serde_json::json!({"op": "done", "sha256": sha(&body)}));
                want(&w.recv(), 150);
                want(&w.recv(), 226);
                false
            }),
        ),
        (
            "put over quota",
            Box::new(|w: &mut Wire| {
                want(
                    &w.call(serde_json::json!({"op": "put", "path": "q", "size": 1u64 << 40})),
                    552,
                );
                false
            }),
        ),
        (
            "interrupted put",
            Box::new(|w: &mut Wire| {
                want(
                    &w.call(serde_json::json!({"op": "put", "path": "i", "size": 10_000})),
                    150,
                );
                w.send_raw(&[7u8; 100]);
                w.stream.shutdown(std::net::Shutdown::Both).unwrap();
                true
            }),
        ),
        (
            "chunked put",
            Box::new(|w: &mut Wire| {
                let body = crate::util::data(5000, 2);
                want(&w.call(serde_json::json!({"op": "put", "path": "b"})), 150);
                w.send_raw(&chunk(&body[..2000]));
                w.send_raw(&chunk(&body[2000..]));
                w.send_raw(&header(0));
                want(
                    &w.call(serde_json::json!({"op": "done", "sha256": sha(&body)})),
                    226,
                );
                false
            }),
        ),
    ];
    for (what, f) in &cases {
        let mut w = s.login("alice", "alice-pw");
        if !f(&mut w) {
            want(&w.call(serde_json::json!({"op": "quit"})), 221);
            assert!(w.closed());
        }
        drop(w);
        let released = eventually(Duration::from_secs(5), || home_fds() == 0);
        assert!(
            released,
            "after a session with a {what}, the server still holds alice's home: {}",
            fd_list(pid)
        );
        // Bytes added behind the server's back count at the next login.
        std::fs::write(
            home.join(format!("behind-{}", what.replace(' ', "-"))),
            vec![0u8; 1000],
        )
        .unwrap();
        let mut w = s.login("alice", "alice-pw");
        let (used, _, _) = quota(&mut w);
        assert_eq!(
            used,
            disk_usage(&home),
            "used at a new login after a {what}: no fresh walk"
        );
        want(&w.call(serde_json::json!({"op": "quit"})), 221);
        assert!(w.closed());
        assert!(eventually(Duration::from_secs(5), || home_fds() == 0));
    }
    by.finish();
}
