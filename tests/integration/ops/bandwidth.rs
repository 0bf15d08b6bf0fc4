//! Bandwidth limits (users file `rate_up`/`rate_down`, config
//! `limits.rate_up`/`rate_down`): over 10 s a limited transfer stays within
//! 10 % of its limit, a user's sessions share the user's limit, and users
//! without a limit are not slowed down; and the clients' `--bwlimit`.

use std::thread;

use super::ox::*;
use crate::util::data;

/// Bytes per second of `bytes` moved in `secs`, as a fraction of `limit`.
fn ratio(bytes: u64, secs: f64, limit: u64) -> f64 {
    bytes as f64 / secs / limit as f64
}

/// alice may download 1 MiB/s over all her sessions: two sessions fetching
/// 5 MiB each take 10 s together, within 10 %, and share it evenly. bob,
/// unlimited, fetches 20 MiB at the same time at many times that rate.
#[test]
fn a_users_download_limit_holds_over_its_sessions_and_others_are_unaffected() {
    let s = rated(
        &[
            ("alice", "alice-pw", "0", "1M"),
            ("bob", "bob-pw", "0", "0"),
        ],
        "",
    );
    let a = data(5 * MIB as usize, 1);
    let b = data(20 * MIB as usize, 2);
    assert_eq!(
        session(&s.addr, "alice", "alice-pw").put("a.bin", &a)["code"],
        226
    );
    assert_eq!(
        session(&s.addr, "bob", "bob-pw").put("b.bin", &b)["code"],
        226
    );

    let alice: Vec<_> = (0..2)
        .map(|_| {
            let (addr, a) = (s.addr.clone(), a.clone());
            thread::spawn(move || timed_get(&addr, "alice", "alice-pw", "a.bin", &a))
        })
        .collect();
    let bob = timed_get(&s.addr, "bob", "bob-pw", "b.bin", &b);
    let alice: Vec<f64> = alice.into_iter().map(|t| t.join().unwrap()).collect();
    let last = alice.iter().copied().fold(0.0, f64::max);
    let first = alice.iter().copied().fold(f64::MAX, f64::min);
    let r = ratio(10 * MIB, last, MIB);
    eprintln!(
        "alice: 2 x 5 MiB in {alice:?} s = {r:.3} of 1 MiB/s; bob: 20 MiB in {bob:.2} s \
         ({:.0} MiB/s)",
        20.0 / bob
    );
    assert!((0.9..=1.1).contains(&r), "alice at {r:.3} of her limit");
    assert!(first >= 0.8 * last, "unfair shares: {alice:?}");
    // Unaffected: bob moves at least four times alice's limit.
    assert!(20.0 / bob >= 4.0, "bob slowed down: 20 MiB in {bob:.2} s");
}

/// alice may upload 1 MiB/s: 10 MiB take 10 s within 10 %. At the same
/// time the server's global download limit of 2 MiB/s binds bob and carol
/// (no limits of their own) together: 10 MiB each take 10 s within 10 %,
/// in even shares.
#[test]
fn a_users_upload_limit_and_the_global_download_limit_hold() {
    let s = rated(
        &[
            ("alice", "alice-pw", "1M", "0"),
            ("bob", "bob-pw", "0", "0"),
            ("carol", "carol-pw", "0", "0"),
        ],
        "[limits]\nrate_down = \"2M\"\n",
    );
    let b = data(10 * MIB as usize, 3);
    let c = data(10 * MIB as usize, 4);
    assert_eq!(
        session(&s.addr, "bob", "bob-pw").put("b.bin", &b)["code"],
        226
    );
    assert_eq!(
        session(&s.addr, "carol", "carol-pw").put("c.bin", &c)["code"],
        226
    );

    let (addr, up) = (s.addr.clone(), data(10 * MIB as usize, 5));
    let alice = thread::spawn(move || timed_put(&addr, "alice", "alice-pw", "up.bin", &up));
    let addr = s.addr.clone();
    let bob = thread::spawn(move || timed_get(&addr, "bob", "bob-pw", "b.bin", &b));
    let carol = timed_get(&s.addr, "carol", "carol-pw", "c.bin", &c);
    let (alice, bob) = (alice.join().unwrap(), bob.join().unwrap());
    let up = ratio(10 * MIB, alice, MIB);
    let down = ratio(20 * MIB, bob.max(carol), 2 * MIB);
    eprintln!(
        "alice up: 10 MiB in {alice:.2} s = {up:.3} of 1 MiB/s; bob and carol down: \
         {bob:.2} s and {carol:.2} s = {down:.3} of 2 MiB/s"
    );
    assert!((0.9..=1.1).contains(&up), "alice's upload at {up:.3}");
    assert!((0.9..=1.1).contains(&down), "global download at {down:.3}");
    assert!(
        bob.min(carol) >= 0.8 * bob.max(carol),
        "unfair: {bob} {carol}"
    );
}

/// The clients' own `--bwlimit` (src/client/throttle.rs): `put` and `get`
/// of 3 MiB at 1 MiB/s take 3 s each, within 10 %, and the file arrives
/// whole.
#[test]
fn the_clients_bwlimit_holds() {
    let s = rated(&[("alice", "alice-pw", "0", "0")], "");
    let dir = s.dir.path();
    let body = data(3 * MIB as usize, 6);
    let up = dir.join("up.bin");
    std::fs::write(&up, &body).unwrap();
    let down = dir.join("down.bin");
    let timed = |args: &[&str]| {
        let start = std::time::Instant::now();
        let out = s.cli(args, "alice-pw");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            crate::util::stderr(&out)
        );
        start.elapsed().as_secs_f64()
    };
    let put = timed(&[
        "put",
        "-u",
        "alice",
        "--bwlimit",
        "1M",
        up.to_str().unwrap(),
        "/x.bin",
    ]);
    let get = timed(&[
        "get",
        "-u",
        "alice",
        "--bwlimit",
        "1M",
        "/x.bin",
        down.to_str().unwrap(),
    ]);
    assert_eq!(std::fs::read(&down).unwrap(), body);
    let (up_r, down_r) = (ratio(3 * MIB, put, MIB), ratio(3 * MIB, get, MIB));
    eprintln!("--bwlimit 1M: put 3 MiB in {put:.2} s ({up_r:.3}), get in {get:.2} s ({down_r:.3})");
    assert!((0.9..=1.1).contains(&up_r), "put at {up_r:.3} of --bwlimit");
    assert!(
        (0.9..=1.1).contains(&down_r),
        "get at {down_r:.3} of --bwlimit"
    );
}

/// `shell --bwlimit`: a scripted session's `put` and `get` of 2 MiB each
/// share one bucket, so at 1 MiB/s the session takes 4 s, within 10 %.
#[test]
fn the_shells_bwlimit_holds_over_the_session() {
    let s = rated(&[("alice", "alice-pw", "0", "0")], "");
    let dir = s.dir.path();
    let body = data(2 * MIB as usize, 8);
    let (up, down) = (dir.join("s-up.bin"), dir.join("s-down.bin"));
    std::fs::write(&up, &body).unwrap();
    let script = format!(
        "put {} /s.bin\nget /s.bin {}\n",
        up.display(),
        down.display()
    );
    let start = std::time::Instant::now();
    let out = s.cli_env(
        &["shell", "-u", "alice", "--bwlimit", "1M"],
        &[("MINIFTP_PASSWORD", "alice-pw")],
        Some(script.as_bytes()),
    );
    let secs = start.elapsed().as_secs_f64();
    assert!(out.status.success(), "{}", crate::util::stderr(&out));
    assert_eq!(std::fs::read(&down).unwrap(), body);
    let r = ratio(4 * MIB, secs, MIB);
    eprintln!("shell --bwlimit 1M: 4 MiB in {secs:.2} s ({r:.3})");
    assert!((0.9..=1.1).contains(&r), "shell at {r:.3} of --bwlimit");
}
