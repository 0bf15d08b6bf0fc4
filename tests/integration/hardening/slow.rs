//! Slow clients: thousands of connections that send one byte and stop,
//! sessions and uploads that stall, downloads nobody reads. The timeouts
//! reclaim every one (the client reads the documented 421 or the close),
//! the server's memory stays bounded while they hang (VmRSS of the server
//! process before, during, after), its descriptors come back, and a
//! bystander's round trips succeed all along.

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::{data, Wire};

/// Extra server memory allowed while the slow clients hang on.
const RSS_BUDGET_KIB: u64 = 64 * 1024;

/// Samples the server's RSS every 20 ms for `d`: the peak.
fn peak_rss(pid: u32, d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut peak = rss_kib(pid);
    while Instant::now() < end {
        peak = peak.max(rss_kib(pid));
        std::thread::sleep(Duration::from_millis(20));
    }
    peak
}

/// 2000 connections (10,000 under STRESS=1) from 500 addresses each send
/// one byte of a frame header and then nothing. The server holds them all
/// without growing by more than 64 MiB, serves a bystander meanwhile, and
/// the login timeout closes every one with a 421; afterwards its memory and
/// descriptors are back near where they started.
#[test]
fn thousands_of_one_byte_connections_are_reclaimed_by_the_login_timeout() {
    let n = scaled(2000, 10_000);
    let timeout = if stress() { 10 } else { 3 };
    // Our ends of the sockets (the server has its own limit).
    raise_nofile(n as u64 + 1000);
    let s = server(&format!(
        "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\nlogin_timeout_secs = {timeout}\n",
        n + 100,
        n + 100
    ));
    let pid = s.child.id();
    let by = Bystander::start(&s);
    by.progress(3, Duration::from_secs(10), "before the slow clients");
    let rss0 = rss_kib(pid);
    let fds0 = by.quiet(|| fd_count(pid));

    let t = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut st = tcp_from(nth_ip(10, i % 500), &s.addr)
            .unwrap_or_else(|e| panic!("connection {i} of {n}: {e}"));
        st.write_all(&[0]).unwrap();
        conns.push(st);
    }
    let opened = t.elapsed();
    eprintln!("{n} slow connections opened in {opened:?}");
    // All of them are held by the server now.
    let held = eventually(Duration::from_secs(10), || fd_count(pid) >= fds0 + n);
    assert!(
        held,
        "the server holds {} descriptors, expected {fds0} + {n}",
        fd_count(pid)
    );
    let during = peak_rss(pid, Duration::from_millis(500));
    by.progress(2, Duration::from_secs(10), "while the slow clients hang on");
    eprintln!(
        "server RSS: {rss0} KiB before, {during} KiB with {n} slow connections (+{} KiB)",
        during.saturating_sub(rss0)
    );
    assert!(
        during.saturating_sub(rss0) < RSS_BUDGET_KIB,
        "server grew by {} KiB for {n} idle connections",
        during - rss0
    );

    // Every one: greeting, then the 421 of the login timeout, then EOF.
    for (i, st) in conns.into_iter().enumerate() {
        let mut w = Wire { stream: st };
        let g = w
            .try_recv()
            .unwrap_or_else(|| panic!("connection {i}: no greeting"));
        want(&g, 220);
        let r = w
            .try_recv()
            .unwrap_or_else(|| panic!("connection {i}: closed without the 421"));
        want(&r, 421);
        assert!(
            r["msg"].as_str().unwrap_or("").contains("login timed out"),
            "{r}"
        );
        assert!(w.closed(), "connection {i}: open after its 421");
    }
    let took = t.elapsed();
    assert!(
        took < opened + Duration::from_secs(timeout + 15),
        "reclaiming took {took:?} (opened in {opened:?}, timeout {timeout}s)"
    );
    let fds = by.quiet(|| wait_fds_at_most(&s, fds0, Duration::from_secs(10)));
    assert!(fds <= fds0, "server holds {fds} descriptors, {fds0} before");
    std::thread::sleep(Duration::from_millis(500));
    let after = rss_kib(pid);
    eprintln!("server RSS after reclaiming: {after} KiB");
    assert!(
        after.saturating_sub(rss0) < RSS_BUDGET_KIB / 4,
        "server RSS {after} KiB after the slow connections were reclaimed, {rss0} KiB before"
    );
    by.progress(2, Duration::from_secs(10), "after the slow clients");
    by.finish();
}

/// 40 sessions (200 under STRESS=1) ask for a 50 MB file and never read.
/// Half of the downloads go by sendfile (digest known), half through the
/// hashing copy (a file put on disk behind the server's back). The server
/// buffers none of it (RSS grows by less than 64 MiB for 2 GB asked), keeps
/// serving the bystander, and the idle timeout closes every stalled
/// download without a trailer.
#[test]
fn downloads_nobody_reads_are_not_buffered_and_are_closed_by_the_idle_timeout() {
    let m = scaled(40, 200);
    raise_nofile(4 * m as u64 + 1000);
    let s = server(
        "[limits]\nidle_timeout_secs = 2\nmax_connections = 1000\nmax_connections_per_ip = 1000\n",
    );
    let pid = s.child.id();
    let big = data(50 << 20, 1);
    let mut w = s.login("alice", "alice-pw");
    want(&w.put("sent.bin", &big), 226);
    std::fs::write(s.home("alice").join("copied.bin"), &big).unwrap();
    drop(w);
    let by = Bystander::start(&s);
    by.progress(2, Duration::from_secs(10), "before the stalled downloads");
    let rss0 = rss_kib(pid);
    let fds0 = by.quiet(|| fd_count(pid));

    let t = Instant::now();
    let mut clients = Vec::new();
    for i in 0..m {
        let mut c = login_from(nth_ip(11, i), &s.addr, "alice", "alice-pw");
        let path = if i % 2 == 0 { "sent.bin" } else { "copied.bin" };
        c.send(json!({"op": "get", "path": path}));
        clients.push(c);
    }
    let during = peak_rss(pid, Duration::from_millis(1500));
    by.progress(2, Duration::from_secs(10), "while downloads stall");
    eprintln!("server RSS: {rss0} KiB before, peak {during} KiB with {m} stalled 50 MB downloads");
    assert!(
        during.saturating_sub(rss0) < RSS_BUDGET_KIB,
        "server grew by {} KiB for {m} downloads nobody reads",
        during - rss0
    );
    // Wait until the server has closed them all (its descriptors are
    // back) before reading anything: a client that starts reading in time
    // would of course get its download.
    let closed = wait_fds_at_most(&s, fds0, Duration::from_secs(30));
    assert!(
        closed <= fds0,
        "{} of {m} stalled downloads still open after {:?}",
        closed - fds0,
        t.elapsed()
    );
    for (i, c) in clients.iter_mut().enumerate() {
        let r = c.recv();
        want(&r, 150);
        let (got, eof) = drain_to_eof(c, big.len() as u64 + 10_000);
        assert!(
            eof,
            "download {i}: no close after {got} bytes ({:?})",
            t.elapsed()
        );
        assert!(
            got < big.len() as u64,
            "download {i}: the whole body ({got} bytes) went out to a client that never read"
        );
    }
    let took = t.elapsed();
    assert!(
        took < Duration::from_secs(30),
        "stalled downloads closed after {took:?}"
    );
    let fds = by.quiet(|| wait_fds_at_most(&s, fds0, Duration::from_secs(10)));
    assert!(fds <= fds0, "server holds {fds} descriptors, {fds0} before");
    by.progress(2, Duration::from_secs(10), "after the stalled downloads");
    // Both files are intact and still served whole.
    let mut w = s.login("alice", "alice-pw");
    assert!(fetch(&mut w, "sent.bin") == big);
    assert!(fetch(&mut w, "copied.bin") == big);
    by.finish();
}

/// 300 logged-in sessions (2000 under STRESS=1) stall three ways: half a
/// request frame, an upload body that stops after 1000 bytes, or nothing at
/// all. The idle timeout sends each its 421 and closes it; each stalled
/// upload leaves exactly its 1000 bytes as a resumable partial, and the
/// quota counts exactly those.
#[test]
fn stalled_sessions_and_uploads_are_reclaimed_by_the_idle_timeout() {
    let n = scaled(300, 2000);
    raise_nofile(2 * n as u64 + 1000);
    let s = server(&format!(
        "[limits]\nidle_timeout_secs = 2\nmax_connections = {}\nmax_connections_per_ip = {}\n",
        n + 100,
        n + 100
    ));
    let pid = s.child.id();
    let home = s.home("alice");
    let by = Bystander::start(&s);
    let rss0 = rss_kib(pid);
    let fds0 = by.quiet(|| fd_count(pid));
    let t = Instant::now();
    let mut sessions = Vec::new();
    for i in 0..n {
        let mut w = login_from(nth_ip(12, i % 250), &s.addr, "alice", "alice-pw");
        match i % 3 {
            0 => {
                w.send_raw(&header(100));
                w.send_raw(b"{\"op\"");
            }
            1 => {
                // 100 kB announced (and reserved): 2000 / 3 of them fit
                // alice's 100M.
                let r =
                    w.call(json!({"op": "put", "path": format!("up-{i}.bin"), "size": 100_000}));
                want(&r, 150);
                w.send_raw(&data(1000, i as u64));
            }
            _ => {}
        }
        sessions.push(w);
    }
    let during = peak_rss(pid, Duration::from_millis(300));
    eprintln!(
        "server RSS: {rss0} KiB before, {during} KiB with {n} stalled sessions (set up in {:?})",
        t.elapsed()
    );
    assert!(during.saturating_sub(rss0) < RSS_BUDGET_KIB);
    by.progress(2, Duration::from_secs(10), "while sessions stall");
    for (i, w) in sessions.iter_mut().enumerate() {
        assert_421_then_eof(w, &format!("stalled session {i} (kind {})", i % 3));
    }
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let fds = by.quiet(|| wait_fds_at_most(&s, fds0, Duration::from_secs(10)));
    assert!(fds <= fds0, "server holds {fds} descriptors, {fds0} before");
    let uploads = (0..n).filter(|i| i % 3 == 1).count();
    let mut obs = s.login("alice", "alice-pw");
    assert_books_balance(&mut obs, &home);
    let parts = partials_on_disk(&home);
    assert_eq!(parts.len(), uploads, "{parts:?}");
    assert!(parts.iter().all(|(_, len)| *len == 1000), "{parts:?}");
    assert_eq!(quota(&mut obs).0, 1000 * uploads as u64);
    for i in (0..n).filter(|i| i % 3 == 1).take(5) {
        let p = partial_settled(&mut obs, &format!("up-{i}.bin"));
        want(&p, 200);
        assert_eq!(p["sha256"], sha(&data(1000, i as u64)));
    }
    by.finish();
}
