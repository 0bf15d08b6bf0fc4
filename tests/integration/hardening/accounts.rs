//! Accounts that change under the server (issue 12): a removed user's
//! home must not pass to whoever registers the name next.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::hardening::hx::*;
use crate::util::{Opts, TestServer, BIN};

fn useradd(s: &TestServer, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(BIN)
        .arg("useradd")
        .args(args)
        .arg("--config")
        .arg(&s.config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut si = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        std::io::Write::write_all(&mut si, text.as_bytes()).unwrap();
    }
    drop(si);
    child.wait_with_output().unwrap()
}

#[track_caller]
fn useradd_ok(s: &TestServer, args: &[&str], stdin: Option<&str>) {
    let out = useradd(s, args, stdin);
    assert!(
        out.status.success(),
        "useradd {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// How many times the server has loaded the users file so far.
fn reloads(s: &TestServer) -> usize {
    s.log().matches("reloaded ").count()
}

/// Waits until the server has loaded the users file more than `n` times.
#[track_caller]
fn wait_reload(s: &TestServer, n: usize) {
    assert!(
        eventually(Duration::from_secs(10), || reloads(s) > n),
        "the users file was not reloaded:\n{}",
        tail(&s.log(), 20)
    );
}

fn server(policy: &str) -> TestServer {
    TestServer::with(Opts {
        toml: format!(
            "registration = \"{policy}\"\n[limits]\nfailed_login_delay_ms = 0\n\
             max_failed_logins = 1000\n"
        ),
        users: vec![("alice", "alice-pw", "10M"), ("carol", "carol-pw", "10M")],
        env: vec![],
    })
}

/// The reproduction from the review: `useradd --remove carol` kept the
/// home by default; a stranger registered `carol` (accepted under `open`,
/// filed and then approvable under `approval`), logged in and downloaded
/// carol's files. Now a name whose home still exists can't be registered:
/// `531` under both policies, and `useradd --approve` refuses it too, until
/// the operator deletes or moves the old home.
#[test]
fn removed_users_files_do_not_pass_to_whoever_registers_the_name() {
    for policy in ["open", "approval"] {
        let s = server(policy);
        let mut c = s.login("carol", "carol-pw");
        want(&c.put("secret.txt", b"carol's secret"), 226);
        want(&c.call(json!({"op": "quit"})), 221);
        let n = reloads(&s);
        useradd_ok(&s, &["carol", "--remove"], None);
        wait_reload(&s, n);
        assert!(s.home("carol").join("secret.txt").exists(), "home kept");

        let mut w = s.connect();
        let r = w.call(json!({"op": "register", "user": "carol", "password": "stranger"}));
        want(&r, 531);
        let msg = r["msg"].as_str().unwrap_or_default();
        assert!(msg.contains("carol"), "{policy}: {r}");
        let r = w.call(login_req("carol", "stranger"));
        want(&r, 530);
        // Nothing was filed for the operator to approve by mistake.
        let out = useradd(&s, &["carol", "--approve"], None);
        assert!(!out.status.success(), "{policy}: approved");

        // A request filed while the name was free is refused at approval
        // time once a home of that name exists.
        if policy == "approval" {
            let r = w.call(json!({"op": "register", "user": "dave", "password": "dave-pw"}));
            want(&r, 202);
            std::fs::create_dir_all(s.home("dave")).unwrap();
            std::fs::write(s.home("dave").join("old.txt"), b"old").unwrap();
            let out = useradd(&s, &["dave", "--approve"], None);
            assert!(!out.status.success(), "dave approved over an old home");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("home"), "{err}");
        }
        // Once the operator deletes the old home, the name is free again
        // and the newcomer starts empty.
        std::fs::remove_dir_all(s.home("carol")).unwrap();
        let r = w.call(json!({"op": "register", "user": "carol", "password": "newcomer"}));
        if policy == "approval" {
            want(&r, 202);
            useradd_ok(&s, &["carol", "--approve"], None);
        } else {
            want(&r, 201);
        }
        let mut ok = Value::Null;
        assert!(eventually(Duration::from_secs(10), || {
            ok = w.call(login_req("carol", "newcomer"));
            ok["code"] == 230
        }));
        let r = w.call(json!({"op": "ls", "path": "/"}));
        assert_eq!(names(&r), Vec::<String>::new(), "{policy}: {r}");
    }
}
