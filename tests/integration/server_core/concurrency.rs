//! Many clients at once: all are served correctly, and an existing session
//! keeps being answered meanwhile.

use std::sync::{Arc, Barrier};

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{TestServer, Wire};

const CLIENTS: usize = 200;

#[test]
fn two_hundred_clients_log_in_at_once_while_another_session_is_served() {
    let s = TestServer::with(opts(&format!(
        "[limits]\nmax_connections = {}\nmax_connections_per_ip = {}\n",
        CLIENTS + 50,
        CLIENTS + 50
    )));
    let mut other = s.login("alice", "alice-pw");
    let barrier = Arc::new(Barrier::new(CLIENTS + 1));
    let handles: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let addr = s.addr.clone();
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let mut w = Wire::connect(&addr);
                let g = w.try_recv().expect("greeting");
                assert_eq!(g["code"], 220, "client {i}: {g}");
                let r = w.call(login_req("alice", "alice-pw"));
                assert_eq!(r["code"], 230, "client {i}: {r}");
                // Each session is its own: pwd answers for it.
                let p = w.call(json!({"op": "pwd"}));
                assert_eq!(p["cwd"], "/", "client {i}: {p}");
                w
            })
        })
        .collect();
    barrier.wait();
    // Meanwhile the existing session gets its answers.
    let mut round_trips = 0;
    loop {
        let r = other.call(json!({"op": "noop"}));
        assert_eq!(r["code"], 200, "noop during the login storm: {r}");
        round_trips += 1;
        if handles.iter().all(|h| h.is_finished()) {
            break;
        }
    }
    let mut sessions = Vec::new();
    let mut failures = Vec::new();
    for (i, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(w) => sessions.push(w),
            Err(e) => failures.push(format!(
                "client {i}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} clients failed: {failures:#?}",
        failures.len()
    );
    eprintln!("{round_trips} noop round trips during the logins");
    assert_served(&mut other, "after 200 logins");
    // All 200 are still open and served.
    for (i, w) in sessions.iter_mut().enumerate() {
        let r = w.call(json!({"op": "noop"}));
        assert_eq!(r["code"], 200, "session {i}: {r}");
    }
    assert_eq!(
        log_lines_with(&s, &["login user=alice"]).len(),
        CLIENTS + 1,
        "one login line per session"
    );
}

#[test]
fn concurrent_uploads_by_several_sessions_all_land_intact() {
    let s = TestServer::start();
    let handles: Vec<_> = (0..16u64)
        .map(|i| {
            let addr = s.addr.clone();
            std::thread::spawn(move || {
                let mut w = Wire::connect(&addr);
                assert_eq!(w.recv()["code"], 220);
                assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
                let body = crate::util::data(256 * 1024 + i as usize, i);
                let r = w.put(&format!("f{i}.bin"), &body);
                assert_eq!(r["code"], 226, "upload {i}: {r}");
                body
            })
        })
        .collect();
    let mut other = s.login("alice", "alice-pw");
    assert_served(&mut other, "during 16 uploads");
    let mut total = 0u64;
    for (i, h) in handles.into_iter().enumerate() {
        let body = h.join().expect("uploader");
        total += body.len() as u64;
        let on_disk = std::fs::read(s.home("alice").join(format!("f{i}.bin"))).unwrap();
        assert!(on_disk == body, "f{i}.bin differs");
    }
    let q = other.call(json!({"op": "quota"}));
    assert_eq!(q["quota"]["used"], total, "{q}");
}
