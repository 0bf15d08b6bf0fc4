//! Registration from clients under the three policies, the operator's
//! approval with `useradd`, and the refusals (duplicates, bad names, cap).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{TestServer, Wire};

/// Failed logins answered at once and never locked out, so tests can poll
/// for an account to appear.
const NO_LOGIN_DELAY: &str = "[limits]\nfailed_login_delay_ms = 0\nmax_failed_logins = 100000\n";

fn server(policy: &str, limits: &str) -> TestServer {
    TestServer::with(opts(&format!(
        "registration = \"{policy}\"\n{NO_LOGIN_DELAY}{limits}"
    )))
}

/// Polls until `user` can log in (up to 5 s); the logged-in connection.
fn wait_login(s: &TestServer, user: &str, pw: &str) -> Wire {
    let mut w = s.connect();
    let mut last = json!(null);
    let ok = eventually(Duration::from_secs(5), || {
        last = w.call(login_req(user, pw));
        last["code"] == 230
    });
    assert!(ok, "{user} can't log in: {last}\n{}", s.log());
    w
}

fn pending_list(s: &TestServer) -> String {
    useradd_ok(&s.config, &["--pending"], None)
}

fn users_file(s: &TestServer) -> String {
    std::fs::read_to_string(s.root().join("users.toml")).unwrap_or_default()
}

#[test]
fn registration_closed_is_531() {
    let s = server("closed", "");
    let mut w = s.connect();
    let r = w.call(register_req("carol", "carol-pw"));
    assert_eq!(r["code"], 531, "{r}");
    assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
    assert!(!pending_list(&s).contains("carol"));
    assert!(!users_file(&s).contains("carol"));
    assert_eq!(try_login(&s, "carol", "carol-pw")["code"], 530);
}

#[test]
fn registration_approval_is_202_and_listed_by_useradd_pending() {
    let s = server("approval", "");
    let mut w = s.connect();
    let r = w.call(register_req("carol", "Carol-Secret-9"));
    assert_eq!(r["code"], 202, "{r}");
    let list = pending_list(&s);
    let line = list
        .lines()
        .find(|l| l.starts_with("carol"))
        .unwrap_or_else(|| panic!("carol not in --pending:\n{list}"));
    assert!(line.contains("127.0.0.1"), "peer not listed: {line}");
    // The request holds a hash, never the password.
    let pending = std::fs::read_to_string(s.root().join("pending.toml")).unwrap();
    assert!(pending.contains("$argon2id$"), "{pending}");
    assert!(!pending.contains("Carol-Secret-9"), "{pending}");
    let mode = std::fs::metadata(s.root().join("pending.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "pending.toml mode {mode:o}");
    // Not an account yet.
    assert!(!users_file(&s).contains("carol"));
    assert_eq!(w.call(login_req("carol", "Carol-Secret-9"))["code"], 530);
}

#[test]
fn approved_registration_can_log_in_with_the_approved_quota() {
    let s = server("approval", "");
    let mut w = s.connect();
    assert_eq!(w.call(register_req("carol", "carol-pw"))["code"], 202);
    assert_eq!(w.call(login_req("carol", "carol-pw"))["code"], 530);
    let out = useradd_ok(&s.config, &["carol", "--approve", "--quota", "10M"], None);
    assert!(out.contains("carol"), "{out}");
    let mut c = wait_login(&s, "carol", "carol-pw");
    let q = c.call(json!({"op": "quota"}));
    assert_eq!(q["code"], 200, "{q}");
    assert_eq!(q["quota"]["total"], 10u64 << 20, "{q}");
    assert_served(&mut c, "carol's first session");
    // The request is gone from the list, and the wrong password still fails.
    assert!(!pending_list(&s).contains("carol"));
    assert_eq!(try_login(&s, "carol", "wrong")["code"], 530);
    // The account persists across a restart.
    let mut s = s;
    s.kill_and_restart();
    s.login("carol", "carol-pw");
}

#[test]
fn rejected_registration_is_removed_and_cannot_log_in() {
    let s = server("approval", "");
    let mut w = s.connect();
    assert_eq!(w.call(register_req("carol", "carol-pw"))["code"], 202);
    useradd_ok(&s.config, &["carol", "--reject"], None);
    assert!(!pending_list(&s).contains("carol"));
    assert!(!users_file(&s).contains("carol"));
    // Give the server a reload period: still no account.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(w.call(login_req("carol", "carol-pw"))["code"], 530);
    // The name is free to ask for again.
    assert_eq!(w.call(register_req("carol", "carol-pw2"))["code"], 202);
    // Approving or rejecting a name with no request fails.
    let out = useradd(&s.config, &["nobody", "--approve"], None);
    assert!(!out.status.success());
}

#[test]
fn registration_open_is_201_and_login_works_at_once() {
    let s = server("open", "");
    let mut w = s.connect();
    let r = w.call(register_req("dave", "Dave-Secret-7"));
    assert_eq!(r["code"], 201, "{r}");
    // No waiting for the users-file watcher.
    let r = try_login(&s, "dave", "Dave-Secret-7");
    assert_eq!(r["code"], 230, "{r}");
    let users = users_file(&s);
    assert!(users.contains("dave"), "{users}");
    assert!(users.contains("$argon2id$"), "{users}");
    assert!(!users.contains("Dave-Secret-7"), "{users}");
    let mode = std::fs::metadata(s.root().join("users.toml"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "users.toml mode {mode:o} after a registration");
    // The registering connection itself can log in too.
    assert_eq!(w.call(login_req("dave", "Dave-Secret-7"))["code"], 230);
    assert_served(&mut w, "dave's session");
}

#[test]
fn duplicate_registration_names_are_531() {
    let s = server("approval", "");
    let mut w = s.connect();
    // An existing account.
    let r = w.call(register_req("alice", "whatever"));
    assert_eq!(r["code"], 531, "{r}");
    // A name already waiting.
    assert_eq!(w.call(register_req("carol", "carol-pw"))["code"], 202);
    let r = w.call(register_req("carol", "other-pw"));
    assert_eq!(r["code"], 531, "{r}");
    // alice's password is untouched.
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);

    let s = server("open", "");
    let mut w = s.connect();
    assert_eq!(w.call(register_req("dave", "dave-pw"))["code"], 201);
    let r = w.call(register_req("dave", "other-pw"));
    assert_eq!(r["code"], 531, "{r}");
    assert_eq!(w.call(register_req("alice", "x-pw"))["code"], 531);
    assert_eq!(try_login(&s, "dave", "dave-pw")["code"], 230);
    assert_eq!(try_login(&s, "dave", "other-pw")["code"], 530);
}

#[test]
fn bad_registration_names_are_501() {
    for policy in ["approval", "open"] {
        let s = server(policy, "");
        let mut w = s.connect();
        let long = "x".repeat(33);
        for bad in [
            "a/b",
            "..",
            "../evil",
            "with space",
            "tab\there",
            "ctl\u{1}x",
            "nl\n",
            &long,
            "",
            "back\\slash",
        ] {
            let r = w.call(register_req(bad, "some-pw"));
            assert_eq!(r["code"], 501, "{policy}: name {bad:?}: {r}");
        }
        // An empty password is refused too.
        let r = w.call(register_req("fine", ""));
        assert_eq!(r["code"], 501, "{policy}: empty password: {r}");
        assert_eq!(w.call(json!({"op": "noop"}))["code"], 200);
        let users = users_file(&s);
        assert!(
            !users.contains("evil") && !users.contains("space"),
            "{users}"
        );
        assert!(!pending_list(&s).contains("evil"));
        assert!(!s.root().join("evil").exists());
        assert!(!s.home("a").exists());
        // A name at the limit (32 bytes) is fine.
        let ok = w.call(register_req(&"y".repeat(32), "some-pw"));
        assert!(ok["code"] == 201 || ok["code"] == 202, "{policy}: {ok}");
    }
}

#[test]
fn registrations_beyond_max_pending_are_531() {
    let s = server("approval", "max_pending_registrations = 2\n");
    let mut w = s.connect();
    assert_eq!(w.call(register_req("u1", "pw"))["code"], 202);
    assert_eq!(w.call(register_req("u2", "pw"))["code"], 202);
    let r = w.call(register_req("u3", "pw"));
    assert_eq!(r["code"], 531, "{r}");
    assert!(!pending_list(&s).contains("u3"));
    // Once one is decided, there is room again.
    useradd_ok(&s.config, &["u1", "--reject"], None);
    assert_eq!(w.call(register_req("u3", "pw"))["code"], 202);
}

#[test]
fn registration_passwords_are_not_logged() {
    let s = server("open", "");
    let mut w = s.connect();
    assert_eq!(
        w.call(register_req("erin", "Erin-Reg-Secret-4"))["code"],
        201
    );
    assert_eq!(w.call(login_req("erin", "Erin-Reg-Secret-4"))["code"], 230);
    assert!(wait_for_log(&s, &["login user=erin"]), "{}", s.log());
    let log = s.log();
    assert!(!log.contains("Erin-Reg-Secret-4"), "{log}");
}
