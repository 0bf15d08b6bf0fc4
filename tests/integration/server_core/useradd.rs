//! `miniftp useradd` against a running server and a stopped one, the users
//! file it writes, and the server's live reload of that file.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::json;

use crate::server_core::common::*;
use crate::util::{self, TestServer, Wire, CHEAP_AUTH};

const NO_LOGIN_DELAY: &str = "[limits]\nfailed_login_delay_ms = 0\nmax_failed_logins = 100000\n";

fn server() -> TestServer {
    TestServer::with(opts(NO_LOGIN_DELAY))
}

fn users_file(s: &TestServer) -> std::path::PathBuf {
    s.root().join("users.toml")
}

/// Polls until a login of `user` with `pw` gets `want` (up to 5 s).
fn wait_login_code(s: &TestServer, user: &str, pw: &str, want: u64) {
    let mut last = json!(null);
    let ok = eventually(Duration::from_secs(5), || {
        last = try_login(s, user, pw);
        last["code"] == want
    });
    assert!(
        ok,
        "login {user}/{pw}: wanted {want}, got {last}\n{}",
        s.log()
    );
}

fn list_line(s: &TestServer, user: &str) -> Option<String> {
    let out = useradd_ok(&s.config, &["--list"], None);
    out.lines()
        .find(|l| l.split_whitespace().next() == Some(user))
        .map(str::to_owned)
}

#[test]
fn useradd_stores_an_argon2id_hash_in_an_owner_only_users_file() {
    let s = server();
    useradd_ok(
        &s.config,
        &["bob", "--quota", "500M", "--password-stdin"],
        Some("Bob-Plain-Secret-3\n"),
    );
    let path = users_file(&s);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("bob"), "{text}");
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(
        !text.contains("Bob-Plain-Secret-3"),
        "plain password in users file:\n{text}"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "users file mode {mode:o}");
    // The running server picks bob up.
    wait_login_code(&s, "bob", "Bob-Plain-Secret-3", 230);
    let mut w = s.login("bob", "Bob-Plain-Secret-3");
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(q["quota"]["total"], 500u64 << 20, "{q}");
    assert!(!s.log().contains("Bob-Plain-Secret-3"));
}

#[test]
fn useradd_list_shows_quota_and_used_space() {
    let s = server();
    s.add_user("bob", "bob-pw", "1G");
    let mut w = s.login("alice", "alice-pw");
    let body = util::data(2 << 20, 7);
    let r = w.put("two-mib.bin", &body);
    assert_eq!(r["code"], 226, "{r}");
    let alice = list_line(&s, "alice").expect("alice listed");
    assert!(alice.contains("100 MiB"), "quota not shown: {alice}");
    assert!(alice.contains("2 MiB"), "used space not shown: {alice}");
    assert!(alice.contains("2%"), "use% not shown: {alice}");
    let bob = list_line(&s, "bob").expect("bob listed");
    assert!(bob.contains("1 GiB"), "{bob}");
    assert!(bob.contains("0 B"), "{bob}");
}

#[test]
fn useradd_passwd_changes_the_password_for_a_running_server() {
    let s = server();
    let out = useradd_ok(
        &s.config,
        &["alice", "--passwd", "--password-stdin"],
        Some("New-Alice-Pw\n"),
    );
    assert!(out.contains("alice"), "{out}");
    wait_login_code(&s, "alice", "New-Alice-Pw", 230);
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 530);
    let text = std::fs::read_to_string(users_file(&s)).unwrap();
    assert!(!text.contains("New-Alice-Pw"));
}

#[test]
fn useradd_set_quota_is_seen_by_a_running_session() {
    let s = server();
    let mut w = s.login("alice", "alice-pw");
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(q["code"], 200, "{q}");
    assert_eq!(q["quota"]["total"], 100u64 << 20, "{q}");
    useradd_ok(&s.config, &["alice", "--set-quota", "5M"], None);
    let mut last = json!(null);
    let ok = eventually(Duration::from_secs(5), || {
        last = w.call(json!({"op": "quota"}));
        last["quota"]["total"] == json!(5u64 << 20)
    });
    assert!(ok, "quota not updated in the running session: {last}");
    assert_eq!(last["quota"]["free"], 5u64 << 20, "{last}");
    // And it is enforced.
    let r = w.put("big.bin", &vec![0u8; 6 << 20]);
    assert_eq!(r["code"], 552, "{r}");
    assert!(!s.home("alice").join("big.bin").exists());
    let r = w.put("small.bin", &vec![1u8; 1 << 20]);
    assert_eq!(r["code"], 226, "{r}");
}

#[test]
fn useradd_remove_keeps_the_home_unless_delete_home() {
    let s = server();
    s.add_user("bob", "bob-pw", "10M");
    s.add_user("carol", "carol-pw", "10M");
    for (u, pw) in [("bob", "bob-pw"), ("carol", "carol-pw")] {
        wait_login_code(&s, u, pw, 230);
        let mut w = s.login(u, pw);
        assert_eq!(w.put("f.txt", b"hello")["code"], 226);
        w.call(json!({"op": "quit"}));
    }
    let out = useradd_ok(&s.config, &["bob", "--remove"], None);
    assert!(out.contains("bob"), "{out}");
    assert!(
        s.home("bob").join("f.txt").exists(),
        "bob's home deleted without --delete-home"
    );
    useradd_ok(&s.config, &["carol", "--remove", "--delete-home"], None);
    assert!(
        !s.home("carol").exists(),
        "carol's home kept despite --delete-home"
    );
    assert!(list_line(&s, "bob").is_none());
    assert!(list_line(&s, "carol").is_none());
    assert!(list_line(&s, "alice").is_some());
    wait_login_code(&s, "bob", "bob-pw", 530);
    wait_login_code(&s, "carol", "carol-pw", 530);
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);
}

#[test]
fn useradd_refuses_bad_names_with_a_clear_message() {
    let s = server();
    let before = std::fs::read(users_file(&s)).unwrap();
    let long = "x".repeat(33);
    for bad in [
        "a/b",
        "..",
        "../evil",
        "with space",
        "ctl\u{7}x",
        &long,
        "-rf",
    ] {
        let out = useradd(&s.config, &["--password-stdin", "--", bad], Some("pw\n"));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "name {bad:?} accepted");
        assert_eq!(out.status.code(), Some(2), "name {bad:?}: {err}");
        assert!(
            err.contains("user name") && err.contains(&format!("{bad:?}")),
            "name {bad:?}: unclear message: {err}"
        );
    }
    assert_eq!(
        std::fs::read(users_file(&s)).unwrap(),
        before,
        "users file changed"
    );
    assert!(!s.root().join("evil").exists());
}

#[test]
fn useradd_refuses_duplicates_unknown_users_and_bad_input() {
    let s = server();
    let before = std::fs::read(users_file(&s)).unwrap();
    let out = useradd(&s.config, &["alice", "--password-stdin"], Some("other\n"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    for args in [
        &["ghost", "--passwd", "--password-stdin"][..],
        &["ghost", "--set-quota", "1G"],
        &["ghost", "--remove"],
        &["alice", "--set-quota", "lots"],
    ] {
        let out = useradd(&s.config, args, Some("pw\n"));
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(!out.stderr.is_empty(), "{args:?}: no message");
    }
    // An empty password.
    let out = useradd(&s.config, &["bob", "--password-stdin"], Some("\n"));
    assert!(!out.status.success(), "empty password accepted");
    assert_eq!(
        std::fs::read(users_file(&s)).unwrap(),
        before,
        "users file changed"
    );
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);
}

#[test]
fn useradd_works_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = dir.path().join("miniftp.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nroot = \"{}\"\n{CHEAP_AUTH}",
            root.display()
        ),
    )
    .unwrap();
    useradd_ok(
        &config,
        &["bob", "--quota", "1M", "--password-stdin"],
        Some("bob-pw\n"),
    );
    let out = useradd_ok(&config, &["--list"], None);
    assert!(out.contains("bob"), "{out}");
    let p = spawn_serve(
        &["--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("stderr.log"),
    )
    .expect("server starts");
    let mut w = Wire::connect(&p.addr);
    assert_eq!(w.recv()["code"], 220);
    assert_eq!(w.call(login_req("bob", "bob-pw"))["code"], 230);
    let q = w.call(json!({"op": "quota"}));
    assert_eq!(q["quota"]["total"], 1u64 << 20, "{q}");
    drop(w);
    drop(p);
    // Stopped again: a change now is there at the next start.
    useradd_ok(&config, &["bob", "--set-quota", "2M"], None);
    useradd_ok(&config, &["carol", "--password-stdin"], Some("carol-pw\n"));
    let p = spawn_serve(
        &["--config", config.to_str().unwrap()],
        dir.path(),
        &dir.path().join("stderr2.log"),
    )
    .expect("server restarts");
    let mut w = Wire::connect(&p.addr);
    assert_eq!(w.recv()["code"], 220);
    assert_eq!(w.call(login_req("bob", "bob-pw"))["code"], 230);
    assert_eq!(w.call(json!({"op": "quota"}))["quota"]["total"], 2u64 << 20);
    let mut c = Wire::connect(&p.addr);
    assert_eq!(c.recv()["code"], 220);
    assert_eq!(c.call(login_req("carol", "carol-pw"))["code"], 230);
}

#[test]
fn users_file_edited_into_invalid_toml_keeps_the_last_good_copy() {
    let s = TestServer::with(opts(&format!("{NO_LOGIN_DELAY}partial_max_age_secs = 2\n")));
    wait_housekeeping(&s);
    let path = users_file(&s);
    let good = std::fs::read_to_string(&path).unwrap();
    let mut session = s.login("alice", "alice-pw");
    std::fs::write(&path, "[[user]\nname = \"alice\n this is not toml").unwrap();
    let errors = || s.log().matches("keeping the last good users list").count();
    assert!(
        eventually(Duration::from_secs(5), || errors() >= 1),
        "no error logged for the broken users file:\n{}",
        s.log()
    );
    assert!(
        !log_lines_with(&s, &["ERROR", "users.toml is not valid"]).is_empty(),
        "not logged as an error:\n{}",
        s.log()
    );
    // Existing users still log in, live sessions go on.
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);
    assert_served(&mut session, "after the users file broke");
    // Valid TOML that isn't a users file is refused the same way.
    std::fs::write(&path, "[[user]]\nname = \"mallory\"\n").unwrap();
    assert!(
        eventually(Duration::from_secs(5), || errors() >= 2),
        "{}",
        s.log()
    );
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);
    // Fixed again: changes are picked up once more.
    std::fs::write(&path, &good).unwrap();
    useradd_ok(&s.config, &["bob", "--password-stdin"], Some("bob-pw\n"));
    wait_login_code(&s, "bob", "bob-pw", 230);
    assert_eq!(try_login(&s, "alice", "alice-pw")["code"], 230);
}

/// serve.rs loads users.toml, then computes a dummy hash at the configured
/// argon2 cost, then starts the watcher, which takes its reference
/// fingerprint of the file only then. A change made in between (an
/// operator running `useradd` while the server starts) is taken as the
/// reference and never loaded: the user can't log in until some later,
/// unrelated change to the file.
#[test]
fn users_file_changed_while_the_server_starts_is_picked_up() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let config = dir.path().join("miniftp.toml");
    // An expensive argon2 cost makes the startup window wide (the dummy
    // hash); bob's own hash is made cheaply elsewhere.
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\nroot = \"{}\"\n\
             [limits]\nfailed_login_delay_ms = 0\nmax_failed_logins = 100000\n\
             [auth]\nargon2_memory_kib = 65536\nargon2_iterations = 12\n\
             [tls]\nenabled = false\n",
            root.display()
        ),
    )
    .unwrap();
    let side = dir.path().join("side");
    let side_config = dir.path().join("side.toml");
    std::fs::write(
        &side_config,
        format!("root = \"{}\"\n{CHEAP_AUTH}", side.display()),
    )
    .unwrap();
    util::useradd(&side_config, "bob", "bob-pw", "1M");
    let stderr = dir.path().join("stderr.log");
    let p = spawn_serve_then(
        &["--config", config.to_str().unwrap()],
        dir.path(),
        &stderr,
        || {
            // The server has read its (empty) users file once it warns.
            let seen = eventually(Duration::from_secs(10), || {
                std::fs::read_to_string(&stderr)
                    .unwrap_or_default()
                    .contains("no users in")
            });
            assert!(seen, "no `no users` warning");
            std::fs::rename(side.join("users.toml"), root.join("users.toml")).unwrap();
        },
    )
    .expect("server starts");
    let t = std::time::Instant::now();
    let mut last = json!(null);
    let ok = eventually(Duration::from_secs(4), || {
        let mut w = Wire::connect(&p.addr);
        w.recv();
        last = w.call(login_req("bob", "bob-pw"));
        last["code"] == 230
    });
    assert!(
        ok,
        "bob, added while the server started, still can't log in after {:?}: {last}\n{}",
        t.elapsed(),
        p.log()
    );
}
