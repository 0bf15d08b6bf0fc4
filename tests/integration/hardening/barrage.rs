//! No panic from network input: a deterministic barrage of random bytes,
//! random frames, random JSON and random-but-well-formed requests (with
//! bodies and trailers behind uploads), before and after login, on many
//! connections at once. Afterwards the server is alive, serves a fresh
//! login with put/get/ls, holds no leftover connection, and its log has no
//! "panicked". The same for random bytes against a TLS server. Seeds are
//! fixed: a failure reproduces; `BARRAGE_SEED=N` tries other ones.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::hardening::hx::*;
use crate::util::{data, Opts, TestServer, Wire};

const OPS: [&str; 18] = [
    "login", "register", "quit", "noop", "pwd", "cd", "ls", "stat", "mkdir", "rmdir", "rm", "mv",
    "cp", "quota", "put", "done", "partial", "get",
];

const FIELDS: [&str; 15] = [
    "op",
    "path",
    "from",
    "to",
    "size",
    "offset",
    "mkdirs",
    "eager",
    "recursive",
    "parents",
    "start",
    "user",
    "password",
    "protocol",
    "sha256",
];

fn seed() -> u64 {
    std::env::var("BARRAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed)
}

fn rand_path(rng: &mut Rng) -> String {
    let fixed = [
        "a",
        "b/c",
        "..",
        "../..",
        "/",
        "",
        "x\u{0}y",
        ".a.miniftp-part",
        ".b.miniftp-part.0123456789abcdef",
        "d/e/f/g",
        "é/日本",
        "./././a",
        "a/../../b",
        "a//b",
        "dir",
        "dir/",
        "f.bin",
        "\\",
        "~",
        "*",
        "a\nb",
    ];
    match rng.below(10) {
        0 => "n".repeat(200 + rng.below(100) as usize),
        1 => "a/".repeat(rng.below(2100) as usize),
        2 => {
            let n = rng.below(12) as usize;
            (0..n)
                .map(|_| char::from_u32(rng.below(0x3000) as u32).unwrap_or('?'))
                .collect()
        }
        _ => rng.pick(&fixed).to_string(),
    }
}

fn rand_number(rng: &mut Rng) -> Value {
    match rng.below(9) {
        0 => json!(0),
        1 => json!(rng.below(100)),
        2 => json!(-(rng.below(1000) as i64) - 1),
        3 => json!(u64::MAX),
        4 => json!(1u64 << 63),
        5 => json!(rng.below(1 << 20) as f64 + 0.5),
        6 => json!((1u64 << 53) + 1),
        7 => json!(i64::MIN),
        _ => json!(1e300),
    }
}

fn rand_value(rng: &mut Rng, depth: u32) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => rand_number(rng),
        3 => json!(rand_path(rng)),
        4 => json!(rng.pick(&OPS).to_string()),
        5 => {
            let n = rng.below(40) as usize;
            json!(hex::encode(rng.bytes(n)))
        }
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| rand_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut m = Map::new();
            for _ in 0..rng.below(5) {
                let k = if rng.chance(70) {
                    rng.pick(&FIELDS).to_string()
                } else {
                    rand_path(rng)
                };
                m.insert(k, rand_value(rng, depth + 1));
            }
            Value::Object(m)
        }
    }
}

/// A request of a known op with plausible (and sometimes wrong) fields;
/// an upload comes with a body and a trailer behind it.
fn rand_request(rng: &mut Rng) -> Vec<u8> {
    let op = *rng.pick(&OPS);
    if op == "quit" && rng.chance(80) {
        return frame(br#"{"op":"noop"}"#);
    }
    let mut m = Map::new();
    m.insert("op".into(), json!(op));
    for f in FIELDS.iter().skip(1) {
        if rng.chance(35) {
            let v = match *f {
                "path" | "from" | "to" => json!(rand_path(rng)),
                "size" | "offset" | "start" | "protocol" => {
                    if rng.chance(70) {
                        json!(rng.below(30_000))
                    } else {
                        rand_number(rng)
                    }
                }
                "mkdirs" | "eager" | "recursive" | "parents" => {
                    if rng.chance(85) {
                        json!(rng.chance(50))
                    } else {
                        rand_value(rng, 3)
                    }
                }
                "sha256" => json!(hex::encode(rng.bytes(32))),
                _ => json!(rand_path(rng)),
            };
            m.insert(f.to_string(), v);
        }
    }
    let mut out = frame(Value::Object(m.clone()).to_string().as_bytes());
    if op == "put" && rng.chance(70) {
        // A body as announced (or not), then a trailer.
        match m.get("size").and_then(Value::as_u64) {
            Some(n) if n <= 30_000 => {
                let off = m.get("offset").and_then(Value::as_u64).unwrap_or(0).min(n);
                let len = if rng.chance(85) {
                    n - off
                } else {
                    rng.below(n + 10)
                };
                out.extend(data(len as usize, rng.next()));
            }
            Some(_) => {}
            None => {
                for _ in 0..rng.below(4) {
                    let len = if rng.chance(90) {
                        rng.below(5000)
                    } else {
                        rng.next()
                    };
                    out.extend(header(len));
                    out.extend(data(len.min(5000) as usize, rng.next()));
                }
                out.extend(header(0));
            }
        }
        let digest = if rng.chance(50) {
            hex::encode(rng.bytes(32))
        } else {
            rand_path(rng)
        };
        out.extend(frame(
            json!({"op": "done", "sha256": digest})
                .to_string()
                .as_bytes(),
        ));
    }
    out
}

/// One item of the barrage.
fn rand_item(rng: &mut Rng) -> Vec<u8> {
    match rng.below(100) {
        0..=2 => {
            let n = 1 + rng.below(64) as usize;
            rng.bytes(n)
        }
        3..=5 => {
            // A header whose payload doesn't match it.
            let mut v = header(rng.below(70_000)).to_vec();
            let n = rng.below(200) as usize;
            v.extend(rng.bytes(n));
            v
        }
        6 => header(65_537 + rng.below(1 << 40)).to_vec(),
        7..=9 => header(0).to_vec(),
        10..=24 => {
            let n = rng.below(300) as usize;
            frame(&rng.bytes(n))
        }
        25..=44 => frame(rand_value(rng, 0).to_string().as_bytes()),
        45..=59 => {
            // An object with an op and random fields.
            let mut v = rand_value(rng, 2);
            if !v.is_object() {
                v = json!({});
            }
            v["op"] = if rng.chance(80) {
                json!(rng.pick(&OPS).to_string())
            } else {
                rand_value(rng, 3)
            };
            frame(v.to_string().as_bytes())
        }
        _ => rand_request(rng),
    }
}

#[derive(Default)]
struct Tally {
    items: AtomicU64,
    connections: AtomicU64,
    reply_bytes: AtomicU64,
    hangs: Mutex<Vec<String>>,
}

/// One barrage connection: optional login, `n` items pipelined while a
/// reader drains the replies, then a half-close; the server must close
/// within 30 s.
fn barrage_connection(
    addr: &str,
    src: std::net::Ipv4Addr,
    login: bool,
    rng: &mut Rng,
    n: usize,
    tally: &Tally,
) {
    let Ok(stream) = tcp_from(src, addr) else {
        return;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut w = Wire { stream };
    if w.try_recv().is_none_or(|g| g["code"] != 220) {
        return;
    }
    if login && w.call(login_req("alice", "alice-pw"))["code"] != 230 {
        return;
    }
    tally.connections.fetch_add(1, Ordering::Relaxed);
    let mut reader = w.stream.try_clone().unwrap();
    let drained = std::thread::spawn(move || {
        let t = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match reader.read(&mut buf) {
                Ok(0) => return (total, true, t),
                Ok(k) => total += k as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (total, true, t)
                }
                Err(_) => return (total, false, t),
            }
        }
    });
    for _ in 0..n {
        let item = rand_item(rng);
        tally.items.fetch_add(1, Ordering::Relaxed);
        if w.stream.write_all(&item).is_err() {
            break; // The server closed (an over-long header, a quit).
        }
    }
    let _ = w.stream.shutdown(Shutdown::Write);
    let (bytes, eof, t) = drained.join().expect("reader");
    tally.reply_bytes.fetch_add(bytes, Ordering::Relaxed);
    if !eof {
        tally.hangs.lock().unwrap().push(format!(
            "{src}: no close {:?} after the half-close ({bytes} reply bytes)",
            t.elapsed()
        ));
    }
}

/// Runs `conns` connections of `per_conn` items on `threads` threads.
fn barrage(addr: &str, threads: usize, conns: usize, per_conn: usize) -> Arc<Tally> {
    let tally = Arc::new(Tally::default());
    let base = seed();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (addr, tally) = (addr.to_string(), Arc::clone(&tally));
            std::thread::spawn(move || {
                for c in (t..conns).step_by(threads) {
                    let mut rng = Rng::new(base ^ (c as u64).wrapping_mul(0x1000_0001));
                    let login = c % 2 == 1;
                    barrage_connection(
                        &addr,
                        nth_ip(30, c % 5000),
                        login,
                        &mut rng,
                        per_conn,
                        &tally,
                    );
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("barrage thread");
    }
    tally
}

/// A few thousand random items (a hundred thousand under STRESS=1) on 8
/// threads: the server survives, answers a fresh session, releases every
/// connection, and never panics.
#[test]
fn random_barrage_before_and_after_login_never_panics() {
    let (conns, per_conn) = if stress() { (10_000, 100) } else { (400, 40) };
    raise_nofile(10_000);
    let mut s = server(
        "registration = \"open\"\n[limits]\nfailed_login_delay_ms = 1\nmax_failed_logins = 3\nlockout_secs = 1\n\
         max_connections = 2000\nidle_timeout_secs = 20\nlogin_timeout_secs = 20\n",
    );
    let pid = s.child.id();
    let by = Bystander::start(&s);
    let sockets0 = fd_list(pid).matches("socket:").count();
    let t = Instant::now();
    let tally = barrage(&s.addr.clone(), 8, conns, per_conn);
    eprintln!(
        "barrage: {} items on {} connections in {:?}, {} reply bytes (seed {:#x})",
        tally.items.load(Ordering::Relaxed),
        tally.connections.load(Ordering::Relaxed),
        t.elapsed(),
        tally.reply_bytes.load(Ordering::Relaxed),
        seed()
    );
    assert_alive(&mut s);
    assert_no_panic_in_log(&s);
    let hangs = tally.hangs.lock().unwrap();
    assert!(
        hangs.is_empty(),
        "connections the server never closed:\n{}",
        hangs.join("\n")
    );
    by.progress(2, Duration::from_secs(10), "after the barrage");
    let mut w = s.login("alice", "alice-pw");
    let body = data(100_000, 1);
    want(&w.put("after-barrage.bin", &body), 226);
    assert!(fetch(&mut w, "after-barrage.bin") == body);
    want(&w.call(json!({"op": "ls", "path": "/"})), 200);
    drop(w);
    // No connection left over (sockets only: a home directory handle
    // kept is bounded::accounts_are_released_when_their_last_session_ends).
    let sockets = || fd_list(pid).matches("socket:").count();
    let mut now = sockets();
    eventually(Duration::from_secs(10), || {
        now = sockets();
        now <= sockets0
    });
    assert!(
        now <= sockets0,
        "server holds {now} sockets, {sockets0} before the barrage: {}",
        fd_list(pid)
    );
    assert_books_balance(&mut s.login("alice", "alice-pw"), &s.home("alice"));
    by.finish();
}

/// Random bytes, and random bytes behind a TLS record header, against a
/// server running TLS: each connection is closed (an alert or nothing),
/// nothing panics, and a real TLS client still works afterwards.
#[test]
fn random_bytes_against_a_tls_server_never_panic() {
    let mut s = TestServer::with(Opts {
        toml: "[tls]\nenabled = true\n[limits]\nlogin_timeout_secs = 5\n".into(),
        ..Opts::default()
    });
    let mut rng = Rng::new(seed());
    let n = scaled(300, 5000);
    let mut hangs = Vec::new();
    for i in 0..n {
        let Ok(mut st) = tcp_from(nth_ip(31, i % 1000), &s.addr) else {
            continue;
        };
        st.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut bytes = match i % 3 {
            0 => vec![0x16, 0x03, 0x01],
            1 => vec![0x16, 0x03, 0x03, 0x00, 0x40, 0x01],
            _ => vec![],
        };
        let len = rng.below(2000) as usize;
        bytes.extend(rng.bytes(len));
        let _ = st.write_all(&bytes);
        let _ = st.shutdown(Shutdown::Write);
        let mut w = Wire { stream: st };
        let (_, eof) = drain_to_eof(&mut w, 1 << 20);
        if !eof {
            hangs.push(i);
        }
    }
    assert_alive(&mut s);
    assert_no_panic_in_log(&s);
    assert!(
        hangs.is_empty(),
        "TLS connections not closed after garbage: {hangs:?}"
    );
    let dir = s.dir.path().to_path_buf();
    std::fs::write(dir.join("up.bin"), b"after the garbage").unwrap();
    let up = s.cli(
        &[
            "put",
            "-u",
            "alice",
            dir.join("up.bin").to_str().unwrap(),
            "/x",
        ],
        "alice-pw",
    );
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    assert_eq!(
        std::fs::read(s.home("alice").join("x")).unwrap(),
        b"after the garbage"
    );
}
