//! Load: many concurrent clients (threads, each its own connection and
//! source address) doing a mixed workload for a fixed time — login, put of
//! small and medium files (plain and eager), get with every byte checked,
//! ls compared with what the client knows it stored, stat, rm, quota.
//! Zero failed operations, zero corrupted files (the disk is compared with
//! each client's record at the end), and every user's quota equals the
//! bytes on disk. 200 clients for 10 s in the default run; 1,000 clients
//! for 60 s in the ignored test that `make stress` runs.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::{data, Opts, TestServer, Wire};

const USERS: [(&str, &str, &str); 10] = [
    ("l0", "pw-l0", "10G"),
    ("l1", "pw-l1", "10G"),
    ("l2", "pw-l2", "10G"),
    ("l3", "pw-l3", "10G"),
    ("l4", "pw-l4", "10G"),
    ("l5", "pw-l5", "10G"),
    ("l6", "pw-l6", "10G"),
    ("l7", "pw-l7", "10G"),
    ("l8", "pw-l8", "10G"),
    ("l9", "pw-l9", "10G"),
];

#[derive(Default)]
struct Stats {
    ops: AtomicU64,
    bytes: AtomicU64,
    failures: Mutex<Vec<String>>,
}

/// A file a client stored: (length, seed) of its content.
type Stored = BTreeMap<String, (usize, u64)>;

#[test]
fn two_hundred_clients_mixed_workload_every_byte_checked() {
    run_load(200, Duration::from_secs(10));
}

#[test]
#[ignore = "stress: 1,000 clients for a minute (make stress)"]
fn stress_thousand_clients_mixed_workload_for_a_minute() {
    run_load(1000, Duration::from_secs(60));
}

#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
fn run_load(clients: usize, length: Duration) {
    raise_nofile(4 * clients as u64 + 1000);
    let s = TestServer::with(Opts {
        toml: format!(
            "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\nidle_timeout_secs = 600\n",
            clients + 100,
            clients + 100
        ),
        users: USERS.to_vec(),
        env: vec![],
    });
    let stats = Arc::new(Stats::default());
    let barrier = Arc::new(Barrier::new(clients + 1));
    let t0 = Instant::now();
    // The connections are opened one after the other (a burst of
    // simultaneous connects is floods::burst_of_connections_all_get_their_greeting).
    let wires: Vec<Wire> = (0..clients)
        .map(|i| {
            let mut w = wire_from(nth_ip(16, i), &s.addr);
            w.stream
                .set_read_timeout(Some(Duration::from_secs(120)))
                .unwrap();
            let g = w
                .try_recv()
                .unwrap_or_else(|| panic!("client {i}: no greeting"));
            want(&g, 220);
            w
        })
        .collect();
    let handles: Vec<_> = wires
        .into_iter()
        .enumerate()
        .map(|(i, w)| {
            let (stats, barrier) = (Arc::clone(&stats), Arc::clone(&barrier));
            std::thread::Builder::new()
                .stack_size(1024 * 1024)
                .spawn(move || {
                    let mut stored = Stored::new();
                    barrier.wait();
                    let deadline = Instant::now() + length;
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        client(i, w, deadline, &stats, &mut stored)
                    }));
                    let err = match r {
                        Ok(Ok(())) => None,
                        Ok(Err(e)) => Some(e),
                        Err(p) => Some(
                            p.downcast_ref::<String>()
                                .cloned()
                                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                                .unwrap_or_else(|| "panic".into()),
                        ),
                    };
                    if let Some(e) = err {
                        stats
                            .failures
                            .lock()
                            .unwrap()
                            .push(format!("client {i}: {e}"));
                    }
                    stored
                })
                .expect("spawn client")
        })
        .collect();
    barrier.wait();
    let results: Vec<Stored> = handles
        .into_iter()
        .map(|h| h.join().expect("client thread"))
        .collect();
    let took = t0.elapsed();
    let ops = stats.ops.load(Ordering::Relaxed);
    let bytes = stats.bytes.load(Ordering::Relaxed);
    eprintln!(
        "{clients} clients, {took:?}: {ops} operations ({:.0}/s), {:.1} MiB moved ({:.1} MiB/s)",
        ops as f64 / took.as_secs_f64(),
        bytes as f64 / MIB as f64,
        bytes as f64 / MIB as f64 / took.as_secs_f64()
    );
    let failures = stats.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed clients (of {clients}):\n{}",
        failures.len(),
        failures
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        ops >= clients as u64 * 5,
        "only {ops} operations in {took:?}"
    );

    // Every byte on disk is what its client last stored; nothing else is
    // there (no partial, no stray file).
    let mut corrupted = Vec::new();
    for (i, stored) in results.iter().enumerate() {
        let (user, _, _) = USERS[i % USERS.len()];
        let dir = s.home(user).join(format!("c{i}"));
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        on_disk.sort();
        let expected: Vec<String> = stored.keys().cloned().collect();
        if on_disk != expected {
            corrupted.push(format!("c{i}: on disk {on_disk:?}, stored {expected:?}"));
            continue;
        }
        for (name, (len, seed)) in stored {
            let got = std::fs::read(dir.join(name)).unwrap();
            if got != data(*len, *seed) {
                corrupted.push(format!("c{i}/{name}: content differs"));
            }
        }
    }
    assert!(
        corrupted.is_empty(),
        "corrupted files:\n{}",
        corrupted.join("\n")
    );
    for (user, pw, _) in USERS {
        let mut w = s.login(user, pw);
        assert_books_balance(&mut w, &s.home(user));
    }
    assert_no_panic_in_log(&s);
}

/// One client's session until `deadline`.
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
fn client(
    i: usize,
    mut w: Wire,
    deadline: Instant,
    stats: &Stats,
    stored: &mut Stored,
) -> Result<(), String> {
    let (user, pw, _) = USERS[i % USERS.len()];
    let mut rng = Rng::new(i as u64 + 1);
    check(&w.call(login_req(user, pw)), 230, "login")?;
    let dir = format!("c{i}");
    check(&w.call(json!({"op": "mkdir", "path": dir})), 200, "mkdir")?;
    let op = |stats: &Stats, bytes: usize| {
        stats.ops.fetch_add(1, Ordering::Relaxed);
        stats.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    };
    let mut seq = 0u64;
    while Instant::now() < deadline {
        seq += 1;
        let roll = rng.below(100);
        let known: Vec<String> = stored.keys().cloned().collect();
        match roll {
            // Small or medium put (sometimes eager).
            0..=39 => {
                let medium = roll < 8;
                let (name, len) = if medium {
                    (
                        format!("m{}", rng.below(2)),
                        256 * 1024 + rng.below(768 * 1024) as usize,
                    )
                } else {
                    (
                        format!("s{}", rng.below(8)),
                        rng.below(16 * 1024) as usize + 1,
                    )
                };
                let seed = ((i as u64) << 32) | seq;
                let body = data(len, seed);
                let path = format!("{dir}/{name}");
                let r = if roll % 4 == 0 {
                    eager_put(&mut w, &path, &body)?
                } else {
                    w.put(&path, &body)
                };
                check(&r, 226, &format!("put {path}"))?;
                if r["sha256"] != sha(&body) || r["size"] != len {
                    return Err(format!("put {path}: {r}"));
                }
                stored.insert(name, (len, seed));
                op(stats, len);
            }
            // Get with every byte checked.
            40..=69 if !known.is_empty() => {
                let name = rng.pick(&known).clone();
                let (len, seed) = stored[&name];
                let path = format!("{dir}/{name}");
                let r = w.call(json!({"op": "get", "path": path}));
                check(&r, 150, &format!("get {path}"))?;
                if r["size"] != len {
                    return Err(format!("get {path}: size {} but {len} stored", r["size"]));
                }
                let mut body = vec![0u8; len];
                w.stream
                    .read_exact(&mut body)
                    .map_err(|e| format!("get {path}: body: {e}"))?;
                let t = w.try_recv().ok_or("no trailer")?;
                check(&t, 226, &format!("get {path} trailer"))?;
                if body != data(len, seed) || t["sha256"] != sha(&body) {
                    return Err(format!("get {path}: corrupted ({t})"));
                }
                op(stats, len);
            }
            // The listing is exactly what this client stored.
            70..=79 => {
                let r = w.call(json!({"op": "ls", "path": dir}));
                check(&r, 200, "ls")?;
                let got = names(&r);
                if got != known {
                    return Err(format!("ls {dir}: {got:?}, stored {known:?}"));
                }
                op(stats, 0);
            }
            80..=86 if !known.is_empty() => {
                let name = rng.pick(&known).clone();
                let r = w.call(json!({"op": "stat", "path": format!("{dir}/{name}")}));
                check(&r, 200, "stat")?;
                if r["entry"]["size"] != stored[&name].0 {
                    return Err(format!("stat {name}: {r}"));
                }
                op(stats, 0);
            }
            87..=93 if !known.is_empty() => {
                let name = rng.pick(&known).clone();
                check(
                    &w.call(json!({"op": "rm", "path": format!("{dir}/{name}")})),
                    200,
                    "rm",
                )?;
                stored.remove(&name);
                op(stats, 0);
            }
            _ => {
                let r = w.call(json!({"op": "quota"}));
                check(&r, 200, "quota")?;
                let r = w.call(json!({"op": "pwd"}));
                check(&r, 200, "pwd")?;
                op(stats, 0);
            }
        }
    }
    let r = w.call(json!({"op": "quit"}));
    check(&r, 221, "quit")
}

fn check(r: &serde_json::Value, c: u64, what: &str) -> Result<(), String> {
    if r["code"] == c {
        Ok(())
    } else {
        Err(format!("{what}: expected {c}, got {r}"))
    }
}

/// Request, body and trailer in one go: the final reply.
fn eager_put(w: &mut Wire, path: &str, body: &[u8]) -> Result<serde_json::Value, String> {
    let mut buf = frame(
        json!({"op": "put", "path": path, "size": body.len(), "eager": true})
            .to_string()
            .as_bytes(),
    );
    buf.extend_from_slice(body);
    buf.extend(frame(
        json!({"op": "done", "sha256": sha(body)})
            .to_string()
            .as_bytes(),
    ));
    std::io::Write::write_all(&mut w.stream, &buf).map_err(|e| format!("eager put {path}: {e}"))?;
    let r = w.try_recv().ok_or("closed after an eager put")?;
    if r["code"] != 150 {
        return Ok(r);
    }
    w.try_recv()
        .ok_or_else(|| "closed before the eager put's final reply".into())
}
