//! Login: success, failures, the doubling delay, the per-address lockout,
//! and what the log says about failures.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{Opts, TestServer};

const OTHER_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[test]
fn login_with_correct_password_is_230() {
    let s = TestServer::start();
    let mut w = s.connect();
    let r = w.call(login_req("alice", "alice-pw"));
    assert_eq!(r["code"], 230, "{r}");
    assert_eq!(r["user"], "alice", "{r}");
    assert_served(&mut w, "after login");
}

#[test]
fn wrong_password_and_unknown_user_are_530_alike() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 50\n",
    ));
    let mut w = s.connect();
    let wrong = w.call(login_req("alice", "not-alice-pw"));
    assert_eq!(wrong["code"], 530, "{wrong}");
    let unknown = w.call(login_req("nobody", "alice-pw"));
    assert_eq!(unknown["code"], 530, "{unknown}");
    // Nothing tells a wrong name from a wrong password.
    assert_eq!(wrong["msg"], unknown["msg"]);
    // Case matters in both.
    assert_eq!(w.call(login_req("Alice", "alice-pw"))["code"], 530);
    assert_eq!(w.call(login_req("alice", "ALICE-PW"))["code"], 530);
    // Still not logged in, and the connection is usable.
    assert_eq!(w.call(json!({"op": "pwd"}))["code"], 503);
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
}

#[test]
fn failed_login_reply_is_delayed_and_the_delay_doubles() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 300\nmax_failed_logins = 10\n",
    ));
    let mut w = s.connect();
    let mut took = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let r = w.call(login_req("alice", "wrong"));
        took.push(t.elapsed());
        assert_eq!(r["code"], 530, "{r}");
    }
    for (i, t) in took.iter().enumerate() {
        let min = Duration::from_millis(300 << i);
        assert!(
            *t >= min,
            "failure {}: answered after {t:?}, want >= {min:?}",
            i + 1
        );
    }
    // A success is not delayed.
    let t = Instant::now();
    assert_eq!(w.call(login_req("alice", "alice-pw"))["code"], 230);
    assert!(
        t.elapsed() < Duration::from_millis(1200),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn delayed_failure_does_not_hold_up_other_clients() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 2000\nmax_failed_logins = 10\n",
    ));
    let mut other = s.login("alice", "alice-pw");
    let mut w = s.connect();
    w.send(login_req("alice", "wrong"));
    let t = Instant::now();
    assert_served(&mut other, "while a failed login is being delayed");
    let mut fresh = s.login("alice", "alice-pw");
    assert_served(&mut fresh, "a new session while a failed login is delayed");
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "{:?}",
        t.elapsed()
    );
    assert_eq!(w.recv()["code"], 530);
}

#[test]
fn max_failed_logins_lock_the_address_out_with_429_and_retry_after() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 3\nlockout_secs = 60\n",
    ));
    let mut w = s.connect();
    for i in 1..3 {
        let r = w.call(login_req("alice", "wrong"));
        assert_eq!(r["code"], 530, "failure {i}: {r}");
    }
    // The failure that reaches the limit: refused either way.
    let r = w.call(login_req("alice", "wrong"));
    assert!(r["code"] == 530 || r["code"] == 429, "failure 3: {r}");
    // Now even the right password is refused, on this connection...
    let r = w.call(login_req("alice", "alice-pw"));
    assert_eq!(r["code"], 429, "{r}");
    let retry = r["retry_after"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retry_after: {r}"));
    assert!((1..=60).contains(&retry), "retry_after {retry}");
    // ...and on a new one from the same address, for another user too.
    let r = try_login(&s, "alice", "alice-pw");
    assert_eq!(r["code"], 429, "{r}");
    assert!(r["retry_after"].as_u64().is_some(), "{r}");
    // The same user from another address is not locked out.
    let mut o = wire_from(OTHER_IP, &s.addr);
    assert_eq!(o.recv()["code"], 220);
    let r = o.call(login_req("alice", "alice-pw"));
    assert_eq!(
        r["code"], 230,
        "login from 127.0.0.2 during the lockout of 127.0.0.1: {r}"
    );
    assert_served(&mut o, "session from 127.0.0.2");
    // The locked-out connection still answers the pre-login basics.
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
}

#[test]
fn lockout_ends_after_lockout_secs() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 2\nlockout_secs = 2\n",
    ));
    let mut w = s.connect();
    w.call(login_req("alice", "wrong"));
    w.call(login_req("alice", "wrong"));
    let locked_at = Instant::now();
    let r = w.call(login_req("alice", "alice-pw"));
    assert_eq!(r["code"], 429, "{r}");
    let retry = r["retry_after"].as_u64().expect("retry_after");
    assert!(
        (1..=2).contains(&retry),
        "retry_after {retry} with lockout_secs = 2"
    );
    // Keep trying (attempts while locked don't extend the lockout).
    let mut last = r;
    let ok = eventually(Duration::from_secs(6), || {
        last = w.call(login_req("alice", "alice-pw"));
        last["code"] == 230
    });
    assert!(
        ok,
        "still refused {:?} after the lockout: {last}",
        locked_at.elapsed()
    );
    assert!(locked_at.elapsed() >= Duration::from_millis(1500));
}

#[test]
fn successful_login_resets_the_failure_count() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 3\nlockout_secs = 60\n",
    ));
    for round in 0..3 {
        let mut w = s.connect();
        for i in 0..2 {
            let r = w.call(login_req("alice", "wrong"));
            assert_eq!(r["code"], 530, "round {round}, failure {i}: {r}");
        }
        let r = w.call(login_req("alice", "alice-pw"));
        assert_eq!(r["code"], 230, "round {round}: {r}");
    }
}

#[test]
fn failed_logins_are_logged_without_the_password() {
    let s = TestServer::with(opts(
        "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 2\nlockout_secs = 60\n",
    ));
    let mut w = s.connect();
    assert_eq!(w.call(login_req("alice", "Wr0ng-Secret-1"))["code"], 530);
    let second = w.call(login_req("ghost", "Wr0ng-Secret-2"));
    assert!(second["code"] == 530 || second["code"] == 429, "{second}");
    assert!(
        wait_for_log(&s, &["failed login", "alice", "peer=127.0.0.1:"]),
        "no failed-login line for alice:\n{}",
        s.log()
    );
    assert!(
        wait_for_log(&s, &["failed login", "ghost", "peer=127.0.0.1:"]),
        "no failed-login line for the unknown user:\n{}",
        s.log()
    );
    let log = s.log();
    assert!(
        !log.contains("Wr0ng-Secret"),
        "a password is in the log:\n{log}"
    );
}

/// The lockout limits how many passwords an address may try. Logins sent
/// on several connections at once all pass the "locked?" check before the
/// first one has been verified; one that is still being verified when the
/// address gets locked out must not log in.
#[test]
fn login_still_in_flight_when_the_lockout_starts_is_refused() {
    // A slow hash and one auth thread: the requests queue up behind each
    // other, so all are accepted before the first failure is counted.
    let s = TestServer::with(Opts {
        toml: "[limits]\nfailed_login_delay_ms = 10\nmax_failed_logins = 3\nlockout_secs = 60\n\
               [auth]\nargon2_memory_kib = 65536\nargon2_iterations = 2\n\
               [workers]\nauth_threads = 1\n"
            .into(),
        ..Opts::default()
    });
    let mut conns: Vec<_> = (0..4).map(|_| s.connect()).collect();
    let t = Instant::now();
    for w in &mut conns[..3] {
        w.send(login_req("alice", "guess"));
    }
    // Let the three guesses reach the server (and the auth queue) first:
    // which of four connections the loop reads first is not defined.
    std::thread::sleep(Duration::from_millis(50));
    conns[3].send(login_req("alice", "alice-pw"));
    let replies: Vec<_> = conns.iter_mut().map(|w| w.recv()).collect();
    eprintln!("four logins answered in {:?}: {replies:?}", t.elapsed());
    for (i, r) in replies[..3].iter().enumerate() {
        assert!(r["code"] == 530 || r["code"] == 429, "guess {i}: {r}");
    }
    assert_eq!(
        replies[3]["code"], 429,
        "the 4th password tried from one address (max_failed_logins = 3) was accepted: {}",
        replies[3]
    );
}
