//! The audit log: a line for every change (mkdir, rmdir, rm, mv, cp), every
//! transfer (with its SHA-256 and result, aborted ones too) and every
//! refusal (quota, jail, busy) at warn. Server-side failures (disk full)
//! are checked in tests/integration/hardening/faults.rs, which can fill a
//! disk; lockouts in ops::admin.

use serde_json::json;

use crate::server_core::common::{log_lines_with, wait_for_log};
use crate::util::{data, sha256_hex, TestServer};

/// The one log line with every one of `parts` (waiting for it): panics
/// when there is none or more than one.
fn line(s: &TestServer, parts: &[&str]) -> String {
    assert!(
        wait_for_log(s, parts),
        "no line with {parts:?}:\n{}",
        s.log()
    );
    let lines = log_lines_with(s, parts);
    assert_eq!(lines.len(), 1, "{parts:?}: {lines:#?}");
    lines[0].clone()
}

#[test]
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
fn changes_transfers_and_refusals_are_logged_one_line_each() {
    let s = TestServer::with(crate::util::Opts {
        users: vec![("alice", "alice-pw", "1M"), ("bob", "bob-pw", "100M")],
        ..Default::default()
    });
    let mut w = s.login("alice", "alice-pw");
    let who = format!(
        "user=alice peer=127.0.0.1:{}",
        w.stream.local_addr().unwrap().port()
    );
    let ok = |r: serde_json::Value| assert_eq!(r["code"], 200, "{r}");
    ok(w.call(json!({"op": "mkdir", "path": "d"})));
    ok(w.call(json!({"op": "mkdir", "path": "d", "parents": true})));
    let body = data(1000, 1);
    let sha = sha256_hex(&body);
    assert_eq!(w.put("d/a.txt", &body)["code"], 226);
    let (_, got, _) = w.get("d/a.txt").unwrap();
    assert_eq!(got, body);
    ok(w.call(json!({"op": "cp", "from": "d/a.txt", "to": "d/b.txt"})));
    ok(w.call(json!({"op": "mv", "from": "d/b.txt", "to": "c.txt"})));
    ok(w.call(json!({"op": "rm", "path": "c.txt"})));
    ok(w.call(json!({"op": "rm", "path": "d/a.txt"})));
    ok(w.call(json!({"op": "rmdir", "path": "d"})));

    for (parts, level) in [
        (vec!["change op=mkdir", &who, "path=\"/d\""], "INFO"),
        (
            vec![
                "change op=cp",
                &who,
                "from=\"/d/a.txt\" to=\"/d/b.txt\" bytes=1000",
            ],
            "INFO",
        ),
        (
            vec!["change op=mv", &who, "from=\"/d/b.txt\" to=\"/c.txt\""],
            "INFO",
        ),
        (
            vec!["change op=rm", &who, "path=\"/c.txt\"", "freed=1000"],
            "INFO",
        ),
        (vec!["change op=rmdir", &who, "path=\"/d\""], "INFO"),
        (
            vec![
                "transfer op=put",
                &who,
                "path=\"/d/a.txt\" bytes=1000",
                &sha,
                "result=ok",
            ],
            "INFO",
        ),
        (
            vec![
                "transfer op=get",
                &who,
                "path=\"/d/a.txt\" bytes=1000",
                &sha,
                "result=ok",
            ],
            "INFO",
        ),
    ] {
        let l = line(&s, &parts);
        assert!(l.contains(&format!(" {level} ")), "{l}");
    }
    // `mkdir -p` of a directory that exists changes nothing: one line.
    assert_eq!(log_lines_with(&s, &["change op=mkdir"]).len(), 1);

    // Refusals: quota, jail, busy.
    let r = w.call(json!({"op": "put", "path": "big.bin", "size": 2 << 20}));
    assert_eq!(r["code"], 552, "{r}");
    let r = w.call(json!({"op": "mkdir", "path": "../outside"}));
    assert_eq!(r["code"], 553, "{r}");
    let mut other = s.login("alice", "alice-pw");
    assert_eq!(other.put("x.txt", b"x")["code"], 226);
    let r = w.call(json!({"op": "put", "path": "busy.txt", "size": 10}));
    assert_eq!(r["code"], 150, "{r}");
    let r = other.call(json!({"op": "mv", "from": "x.txt", "to": "busy.txt"}));
    assert_eq!(r["code"], 450, "{r}");
    for parts in [
        ["refused op=put", "status=552", "reason=quota"],
        ["refused op=mkdir", "status=553", "reason=jail"],
        ["refused op=mv", "status=450", "reason=busy"],
    ] {
        let l = line(&s, &parts);
        assert!(l.contains(" WARN ") && l.contains("user=alice"), "{l}");
    }
    assert_eq!(
        log_lines_with(&s, &["transfer op=put", "result=quota"]).len(),
        0,
        "a put refused before its body is a refusal, not a transfer"
    );

    // Transfers cut short: the upload waiting for its body, a download
    // whose client goes away (more than the sockets' buffers hold).
    let mut bob = s.login("bob", "bob-pw");
    let big = data(32 << 20, 2);
    assert_eq!(bob.put("big.bin", &big)["code"], 226);
    let r = bob.call(json!({"op": "get", "path": "big.bin"}));
    assert_eq!(r["code"], 150, "{r}");
    drop(bob);
    drop(w);
    line(
        &s,
        &[
            "transfer op=get",
            "path=\"/big.bin\"",
            "sha256=-",
            "result=aborted",
        ],
    );
    line(
        &s,
        &[
            "transfer op=put",
            "path=\"/busy.txt\" bytes=0",
            "result=aborted",
        ],
    );
}
