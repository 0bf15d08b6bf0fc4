//! Bandwidth limits in the users file: `useradd --rate-up/--rate-down`
//! with the same size suffixes as `--quota`, for a new user, an approved
//! one, and alone to change an existing user. (The server's enforcement
//! comes with the loop's timers; its tests will drive transfers.)

use std::time::Duration;

use crate::server_core::common::{register_req, try_login, useradd, useradd_ok};
use crate::util::eventually;
use crate::util::{self, TestServer};

fn users_file(s: &TestServer) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(s.root().join("users.toml")).unwrap()).unwrap()
}

/// The `rate_up` and `rate_down` of `name` in the users file (0 when
/// absent, as the server reads it).
fn rates(s: &TestServer, name: &str) -> (i64, i64) {
    let file = users_file(s);
    let user = file["user"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in the users file"))
        .clone();
    let get = |k: &str| user.get(k).and_then(|v| v.as_integer()).unwrap_or(0);
    (get("rate_up"), get("rate_down"))
}

#[test]
fn useradd_sets_and_changes_rates() {
    let s = TestServer::start();
    let out = useradd_ok(
        &s.config,
        &[
            "bob",
            "--quota",
            "1G",
            "--rate-up",
            "5M",
            "--password-stdin",
        ],
        Some("bob-pw\n"),
    );
    assert!(out.contains("rates up 5 MiB/s, down unlimited"), "{out}");
    assert_eq!(rates(&s, "bob"), (5 << 20, 0));

    // Alone on an existing user: a change, no password asked.
    let out = useradd_ok(&s.config, &["bob", "--rate-down", "1.5M"], None);
    assert!(
        out.contains("rates of bob: up 5 MiB/s, down 1.50 MiB/s"),
        "{out}"
    );
    assert_eq!(rates(&s, "bob"), (5 << 20, 3 << 19));
    let out = useradd_ok(&s.config, &["bob", "--rate-up", "0"], None);
    assert!(out.contains("up unlimited"), "{out}");
    assert_eq!(rates(&s, "bob"), (0, 3 << 19));
    // The server reads the file with the rates: bob logs in.
    assert!(
        eventually(Duration::from_secs(5), || try_login(&s, "bob", "bob-pw")
            ["code"]
            == 230),
        "{}",
        s.log()
    );

    // Bad values are usage errors that change nothing.
    let out = useradd(&s.config, &["bob", "--rate-up", "fast"], None);
    assert_eq!(out.status.code(), Some(2), "{}", util::stderr(&out));
    assert!(
        util::stderr(&out).contains("fast"),
        "{}",
        util::stderr(&out)
    );
    assert_eq!(rates(&s, "bob"), (0, 3 << 19));
    let out = useradd(&s.config, &["nobody", "--rate-up", "1M"], None);
    assert!(!out.status.success());
}

#[test]
fn an_approved_registration_takes_its_rates() {
    let s = TestServer::with(crate::server_core::common::opts(
        "registration = \"approval\"\n",
    ));
    let mut w = s.connect();
    assert_eq!(w.call(register_req("carol", "carol-pw"))["code"], 202);
    let out = useradd_ok(
        &s.config,
        &["carol", "--approve", "--rate-down", "2G"],
        None,
    );
    assert!(out.contains("down 2 GiB/s"), "{out}");
    assert_eq!(rates(&s, "carol"), (0, 2 << 30));
}
