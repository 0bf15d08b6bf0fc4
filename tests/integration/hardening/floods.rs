//! Connection floods past `limits.max_connections_per_ip` and
//! `limits.max_connections`: every connection past a limit is refused at
//! once with the documented 421 frame and closed (also when the client
//! sends a request without waiting for the greeting, or hangs up at once),
//! the limit is counted per client address, admitted sessions keep being
//! served, no descriptor leaks, and slots freed are given out again exactly.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::hardening::hx::*;
use crate::util::Wire;

/// How a flood connection behaves.
#[derive(Clone, Copy)]
enum Style {
    /// Waits for the server's first frame.
    Reads,
    /// Sends a login at once, then reads.
    Talks,
    /// Hangs up without reading.
    HangsUp,
}

struct FloodResult {
    refused: usize,
    slowest: Duration,
    failures: Vec<String>,
}

/// `attempts` connections from `src(k)` on `threads` threads, each of which
/// must be refused with a 421 whose message contains `why`.
fn flood(
    addr: &str,
    attempts: usize,
    threads: usize,
    src: impl Fn(usize) -> Ipv4Addr + Send + Sync + 'static,
    why: &'static str,
) -> FloodResult {
    let src = Arc::new(src);
    let result = Arc::new(Mutex::new(FloodResult {
        refused: 0,
        slowest: Duration::ZERO,
        failures: Vec::new(),
    }));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, src, result) = (addr.to_string(), Arc::clone(&src), Arc::clone(&result));
            std::thread::spawn(move || {
                for k in (t..attempts).step_by(threads) {
                    let style = [Style::Reads, Style::Talks, Style::HangsUp][k % 3];
                    let started = Instant::now();
                    let stream = match tcp_from(src(k), &addr) {
                        Ok(s) => s,
                        Err(e) => {
                            result
                                .lock()
                                .unwrap()
                                .failures
                                .push(format!("attempt {k}: connect: {e}"));
                            continue;
                        }
                    };
                    let mut w = Wire { stream };
                    let outcome = match style {
                        Style::HangsUp => {
                            drop(w);
                            continue;
                        }
                        Style::Talks => {
                            let _ = std::io::Write::write_all(
                                &mut w.stream,
                                &frame(login_req("alice", "alice-pw").to_string().as_bytes()),
                            );
                            w.try_recv()
                        }
                        Style::Reads => w.try_recv(),
                    };
                    let took = started.elapsed();
                    let mut res = result.lock().unwrap();
                    match outcome {
                        Some(r)
                            if r["code"] == 421
                                && r["msg"].as_str().is_some_and(|m| m.contains(why)) =>
                        {
                            if !w.closed() {
                                res.failures
                                    .push(format!("attempt {k}: open after the 421"));
                            }
                            res.refused += 1;
                            res.slowest = res.slowest.max(took);
                        }
                        Some(r) => res.failures.push(format!("attempt {k}: got {r}")),
                        None => res
                            .failures
                            .push(format!("attempt {k}: closed without the 421 ({took:?})")),
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("flood thread");
    }
    Arc::try_unwrap(result).ok().unwrap().into_inner().unwrap()
}

/// Expected refusals: the connections that read.
fn readers(attempts: usize) -> usize {
    (0..attempts).filter(|k| k % 3 != 2).count()
}

/// 127.0.0.2 holds its 20 connections (`max_connections_per_ip = 20`) and
/// floods 3000 more (20,000 under STRESS=1): each is refused at once with
/// the per-address 421; meanwhile 127.0.0.3 opens 20 sessions that all log
/// in, the 20 held ones log in too, and the bystander is served.
#[test]
fn flood_from_one_address_is_refused_while_another_address_gets_in() {
    let attempts = scaled(3000, 20_000);
    raise_nofile(10_000);
    let s = server("[limits]\nmax_connections = 500\nmax_connections_per_ip = 20\n");
    let pid = s.child.id();
    let by = Bystander::start_as(&s.addr, ip(0, 0, 9), "bob", "bob-pw");
    let (fds0, list0) = by.quiet(|| (fd_count(pid), fd_list(pid)));
    let flooder = ip(0, 0, 2);
    let mut held: Vec<Wire> = (0..20).map(|_| connect_from(flooder, &s.addr)).collect();

    let addr = s.addr.clone();
    let t = Instant::now();
    let flood_thread = std::thread::spawn(move || {
        flood(&addr, attempts, 4, move |_| flooder, "from your address")
    });
    // Another address is not affected by the flood.
    let mut others = Vec::new();
    for i in 0..20 {
        let mut w = connect_from(ip(0, 0, 3), &s.addr);
        let r = w.call(login_req("alice", "alice-pw"));
        want(&r, 230);
        let r = w.call(serde_json::json!({"op": "noop"}));
        assert_eq!(r["code"], 200, "session {i} from 127.0.0.3: {r}");
        others.push(w);
    }
    by.progress(3, Duration::from_secs(20), "during the flood");
    let res = flood_thread.join().expect("flood");
    eprintln!(
        "{attempts} flood connections in {:?}, slowest refusal {:?}",
        t.elapsed(),
        res.slowest
    );
    assert!(
        res.failures.is_empty(),
        "{:#?}",
        &res.failures[..res.failures.len().min(20)]
    );
    assert_eq!(res.refused, readers(attempts));
    assert!(
        res.slowest < Duration::from_secs(2),
        "slowest refusal {:?}",
        res.slowest
    );
    // The connections the flooder holds are served normally.
    for (i, w) in held.iter_mut().enumerate() {
        let r = w.call(login_req("alice", "alice-pw"));
        assert_eq!(r["code"], 230, "held connection {i}: {r}");
    }
    // Still exactly at its limit: one more is refused.
    let mut w = wire_from(flooder, &s.addr);
    want(&w.try_recv().expect("a 421"), 421);
    drop(held);
    drop(others);
    let fds = by.quiet(|| wait_fds_at_most(&s, fds0, Duration::from_secs(10)));
    assert!(
        fds <= fds0,
        "server holds {fds} descriptors, {fds0} before the flood ({list0}): {}\n{}",
        fd_list(pid),
        tail(&s.log(), 40)
    );
    // The flooder's slots are free again.
    let again: Vec<Wire> = (0..20).map(|_| connect_from(flooder, &s.addr)).collect();
    assert_eq!(again.len(), 20);
    by.finish();
}

/// With `max_connections = 50` full (the bystander and 49 others),
/// connections (2000; 10,000 under STRESS=1) from as many addresses are all
/// refused at once with the server-wide 421. Closing 10 of the held ones
/// lets exactly 10 new ones in.
#[test]
fn flood_past_max_connections_is_refused_and_freed_slots_are_reused_exactly() {
    let attempts = scaled(2000, 10_000);
    raise_nofile(10_000);
    let s = server("[limits]\nmax_connections = 50\nmax_connections_per_ip = 1000\n");
    let pid = s.child.id();
    let by = Bystander::start(&s);
    let (fds0, list0) = by.quiet(|| (fd_count(pid), fd_list(pid)));
    let mut held: Vec<Wire> = (0..49)
        .map(|i| connect_from(nth_ip(14, i), &s.addr))
        .collect();
    let addr = s.addr.clone();
    let t = Instant::now();
    let flood_thread = std::thread::spawn(move || {
        flood(
            &addr,
            attempts,
            4,
            |k| nth_ip(15, k),
            "too many connections to this server",
        )
    });
    by.progress(3, Duration::from_secs(20), "during the flood");
    let res = flood_thread.join().expect("flood");
    eprintln!(
        "{attempts} flood connections in {:?}, slowest refusal {:?}",
        t.elapsed(),
        res.slowest
    );
    assert!(
        res.failures.is_empty(),
        "{:#?}",
        &res.failures[..res.failures.len().min(20)]
    );
    assert_eq!(res.refused, readers(attempts));
    assert!(
        res.slowest < Duration::from_secs(2),
        "slowest refusal {:?}",
        res.slowest
    );

    // Free 10 slots: exactly 10 newcomers get in, the 11th is refused.
    held.truncate(39);
    let mut admitted = Vec::new();
    let ok = eventually(Duration::from_secs(10), || {
        let mut w = wire_from(ip(0, 0, 20), &s.addr);
        match w.try_recv() {
            Some(r) if r["code"] == 220 => admitted.push(w),
            Some(r) => assert_eq!(r["code"], 421, "{r}"),
            None => panic!("closed without a frame"),
        }
        admitted.len() == 10
    });
    assert!(
        ok,
        "only {} connections admitted after 10 closed",
        admitted.len()
    );
    let mut w = wire_from(ip(0, 0, 21), &s.addr);
    want(&w.try_recv().expect("a 421"), 421);
    for (i, w) in admitted.iter_mut().chain(held.iter_mut()).enumerate() {
        let r = w.call(login_req("alice", "alice-pw"));
        assert_eq!(r["code"], 230, "admitted connection {i}: {r}");
    }
    by.progress(2, Duration::from_secs(10), "after the flood");
    drop(admitted);
    drop(held);
    let fds = by.quiet(|| wait_fds_at_most(&s, fds0, Duration::from_secs(10)));
    assert!(
        fds <= fds0,
        "server holds {fds} descriptors, {fds0} before the flood ({list0}): {}\n{}",
        fd_list(pid),
        tail(&s.log(), 40)
    );
    by.finish();
}

/// 1,000 clients connect at the same instant, all within
/// `max_connections`: every one gets its greeting promptly (10 s is
/// generous). The kernel completes the handshakes itself and queues them
/// for the server's accept; a listen backlog far below `max_connections`
/// (std's `TcpListener::bind` uses 128, src/serve.rs) overflows, and with
/// SYN cookies the overflowed connections are dropped without a word: the
/// client believes it is connected and waits forever for a greeting.
#[test]
fn burst_of_connections_all_get_their_greeting() {
    let n = 1000;
    raise_nofile(n as u64 + 1000);
    let s = server(&format!(
        "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\n",
        n + 100,
        n + 100
    ));
    let by = Bystander::start(&s);
    let barrier = Arc::new(std::sync::Barrier::new(n));
    let handles: Vec<_> = (0..n)
        .map(|i| {
            let (addr, barrier) = (s.addr.clone(), Arc::clone(&barrier));
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    barrier.wait();
                    let t = Instant::now();
                    let stream =
                        tcp_from(nth_ip(17, i), &addr).map_err(|e| format!("connect: {e}"))?;
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let mut w = Wire { stream };
                    match w.try_recv() {
                        Some(g) if g["code"] == 220 => Ok((w, t.elapsed())),
                        Some(g) => Err(format!("got {g}")),
                        None => Err(format!("no greeting after {:?}", t.elapsed())),
                    }
                })
                .unwrap()
        })
        .collect();
    let mut failures = Vec::new();
    let mut slowest = Duration::ZERO;
    let mut held = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join().expect("client thread") {
            Ok((w, took)) => {
                slowest = slowest.max(took);
                held.push(w);
            }
            Err(e) => failures.push(format!("client {i}: {e}")),
        }
    }
    eprintln!("{} of {n} greeted, slowest {slowest:?}", held.len());
    assert!(
        failures.is_empty(),
        "{} of {n} simultaneous connections never got a greeting:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    by.finish();
}
