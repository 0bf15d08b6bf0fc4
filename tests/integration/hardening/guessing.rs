//! Password guessing spread over many connections of one address at once
//! (tests/server_core/auth.rs has the sequential delay, the lockout, the
//! other address and the log lines): however the guesses are spread, the
//! address learns at most `max_failed_logins − 1` "wrong password" answers
//! (and gets at most `max_failed_logins` accounts made) before every
//! further login or registration from it is refused with 429 without a
//! password check; the same user from another address logs in; the
//! failures are logged.

use std::collections::BTreeMap;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::Wire;

const MAX: u64 = 5;

/// Sends `reqs[i]` on connection `i` of `src`, all at once; the replies.
fn all_at_once(
    addr: &str,
    src: std::net::Ipv4Addr,
    reqs: Vec<serde_json::Value>,
) -> Vec<serde_json::Value> {
    let conns: Vec<Wire> = reqs.iter().map(|_| connect_from(src, addr)).collect();
    let barrier = Arc::new(Barrier::new(reqs.len()));
    let handles: Vec<_> = conns
        .into_iter()
        .zip(reqs)
        .map(|(mut w, req)| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                w.call(req)
            })
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("guesser"))
        .collect()
}

fn tally(replies: &[serde_json::Value]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for r in replies {
        *m.entry(code(r)).or_default() += 1;
    }
    m
}

/// 50 wrong passwords (for alice and for unknown names) sent at the same
/// moment on 50 connections from 127.0.0.2: exactly 4 get 530, the other 46
/// get 429 with a retry_after. Three more volleys are refused outright and
/// quickly, the right password too, while alice from 127.0.0.3 logs in.
#[test]
fn parallel_guesses_from_one_address_are_bounded_by_the_lockout() {
    let s = server(&format!(
        "[limits]\nfailed_login_delay_ms = 50\nmax_failed_logins = {MAX}\nlockout_secs = 120\n\
         max_connections_per_ip = 200\n"
    ));
    let by = Bystander::start(&s);
    let attacker = ip(0, 0, 2);
    let guesses = |round: usize| -> Vec<serde_json::Value> {
        (0..50)
            .map(|i| {
                let user = if i % 3 == 0 {
                    format!("ghost{i}")
                } else {
                    "alice".into()
                };
                login_req(&user, &format!("guess-{round}-{i}"))
            })
            .collect()
    };
    let replies = all_at_once(&s.addr, attacker, guesses(0));
    let t = tally(&replies);
    eprintln!("first volley: {t:?}");
    assert_eq!(
        t.get(&530).copied().unwrap_or(0),
        (MAX - 1) as usize,
        "{t:?}"
    );
    assert_eq!(
        t.get(&429).copied().unwrap_or(0),
        50 - (MAX - 1) as usize,
        "{t:?}"
    );
    for r in replies.iter().filter(|r| r["code"] == 429) {
        let retry = r["retry_after"].as_u64().unwrap_or_else(|| panic!("{r}"));
        assert!((1..=120).contains(&retry), "{r}");
    }
    by.progress(2, Duration::from_secs(10), "after the first volley");

    for round in 1..4 {
        let t0 = Instant::now();
        let replies = all_at_once(&s.addr, attacker, guesses(round));
        assert_eq!(
            tally(&replies),
            BTreeMap::from([(429, 50)]),
            "volley {round}"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "volley {round}: {:?}",
            t0.elapsed()
        );
    }
    // The right password is refused from there too...
    let r = connect_from(attacker, &s.addr).call(login_req("alice", "alice-pw"));
    want(&r, 429);
    // ...not from another address.
    let mut w = connect_from(ip(0, 0, 3), &s.addr);
    want(&w.call(login_req("alice", "alice-pw")), 230);
    want(&w.call(json!({"op": "pwd"})), 200);

    let failed: Vec<String> = s
        .log()
        .lines()
        .filter(|l| l.contains("failed login") && l.contains("peer=127.0.0.2:"))
        .map(str::to_owned)
        .collect();
    assert!(
        failed.len() >= MAX as usize && failed.len() <= 50,
        "{} failed-login lines for 127.0.0.2:\n{}",
        failed.len(),
        failed.join("\n")
    );
    assert!(
        failed.iter().any(|l| l.contains("locked out")),
        "{failed:#?}"
    );
    assert!(!s.log().contains("guess-"), "a password is in the log");
    by.finish();
}

/// Registrations count as failures too (each costs a hash): 40 register
/// requests and 10 wrong logins sent at once from one address create at
/// most `max_failed_logins` accounts and get at most that many answers
/// that aren't 429 in all.
#[test]
fn parallel_registrations_and_guesses_share_the_limit() {
    let s = server(&format!(
        "registration = \"open\"\n[limits]\nfailed_login_delay_ms = 50\nmax_failed_logins = {MAX}\n\
         lockout_secs = 120\nmax_connections_per_ip = 200\n"
    ));
    let by = Bystander::start(&s);
    let attacker = ip(0, 0, 4);
    let reqs: Vec<serde_json::Value> = (0..50)
        .map(|i| {
            if i % 5 == 0 {
                login_req("alice", &format!("guess-{i}"))
            } else {
                json!({"op": "register", "user": format!("spam{i}"), "password": "pw-pw-pw"})
            }
        })
        .collect();
    let replies = all_at_once(&s.addr, attacker, reqs);
    let t = tally(&replies);
    eprintln!("registrations and guesses: {t:?}");
    let created = t.get(&201).copied().unwrap_or(0);
    let wrong = t.get(&530).copied().unwrap_or(0);
    assert!(wrong < MAX as usize, "{t:?}");
    assert!(created + wrong <= MAX as usize, "{t:?}");
    assert_eq!(
        t.get(&429).copied().unwrap_or(0),
        50 - created - wrong,
        "{t:?}"
    );
    // Exactly the accounts reported created exist.
    let mut made = 0;
    for (i, r) in replies.iter().enumerate() {
        if r["code"] == 201 {
            made += 1;
            let mut w = connect_from(ip(0, 0, 5), &s.addr);
            want(&w.call(login_req(&format!("spam{i}"), "pw-pw-pw")), 230);
        }
    }
    assert_eq!(made, created);
    let r = connect_from(attacker, &s.addr)
        .call(json!({"op": "register", "user": "late", "password": "x"}));
    want(&r, 429);
    by.finish();
}
