//! `[metrics] listen`: the Prometheus text exposition at `/metrics`,
//! scraped with curl during a download (held to 1 MiB/s, so it is still
//! running), after it, and after a failed login, a refused upload and a
//! registration request.

use std::thread;
use std::time::Duration;

use serde_json::json;

use super::ox::*;
use crate::server_core::common::register_req;
use crate::util::{data, eventually};

#[test]
fn metrics_scraped_with_curl_during_and_after_a_transfer() {
    let s = rated(
        &[
            ("alice", "alice-pw", "0", "1M"),
            ("bob", "bob-pw", "0", "0"),
        ],
        "registration = \"approval\"\n[limits]\nfailed_login_delay_ms = 1\n\
         [metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    let file = data(3 * MIB as usize, 7);
    let mut w = session(&s.addr, "alice", "alice-pw");
    assert_eq!(w.put("f.bin", &file)["code"], 226);
    drop(w);

    let (addr, want) = (s.addr.clone(), file.clone());
    let get = thread::spawn(move || timed_get(&addr, "alice", "alice-pw", "f.bin", &want));
    let sent = |m: &str| sample(m, "miniftp_sent_bytes_total").unwrap_or(0.0);
    let mut during = String::new();
    assert!(
        eventually(Duration::from_secs(10), || {
            during = scrape(&s);
            sent(&during) > 0.0
        }),
        "no bytes sent in:\n{during}"
    );
    assert!(sent(&during) < file.len() as f64, "{during}");
    assert!(
        sample(&during, "miniftp_sessions{listener=\"miniftp\"}") >= Some(1.0),
        "{during}"
    );
    assert_eq!(
        sample(&during, "miniftp_transfers_total{op=\"get\",result=\"ok\"}"),
        None,
        "{during}"
    );
    assert!(
        sample(&during, "miniftp_worker_queue_depth{pool=\"io\"}").is_some(),
        "{during}"
    );
    get.join().unwrap();

    let after = scrape(&s);
    let expect = [
        ("miniftp_sent_bytes_total", file.len() as f64),
        ("miniftp_received_bytes_total", file.len() as f64),
        ("miniftp_transfers_total{op=\"put\",result=\"ok\"}", 1.0),
        ("miniftp_transfers_total{op=\"get\",result=\"ok\"}", 1.0),
        ("miniftp_logins_total{result=\"ok\"}", 2.0),
        ("miniftp_pending_registrations", 0.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&after, series), Some(value), "{series} in\n{after}");
    }
    assert!(sample(&after, "miniftp_replies_total{status=\"226\"}") >= Some(2.0));
    assert!(sample(&after, "miniftp_request_duration_seconds_count") >= Some(4.0));

    // A wrong password, a put beyond the quota, a registration request.
    let mut w = s.connect();
    let r = w.call(json!({"op": "login", "user": "bob", "password": "wrong"}));
    assert_eq!(r["code"], 530, "{r}");
    let mut w = session(&s.addr, "bob", "bob-pw");
    let r = w.call(json!({"op": "put", "path": "huge", "size": 300 * MIB}));
    assert_eq!(r["code"], 552, "{r}");
    assert_eq!(
        s.connect().call(register_req("carol", "carol-pw"))["code"],
        202
    );
    let last = scrape(&s);
    let expect = [
        ("miniftp_logins_total{result=\"failed\"}", 1.0),
        ("miniftp_transfers_total{op=\"put\",result=\"quota\"}", 1.0),
        ("miniftp_replies_total{status=\"552\"}", 1.0),
        ("miniftp_pending_registrations", 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&last, series), Some(value), "{series} in\n{last}");
    }
    for line in last
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        assert!(line.starts_with("miniftp_"), "{line}");
    }
}

/// Only `GET` and `HEAD` of `/metrics` are served; anything else gets a
/// clear HTTP error, and the server goes on serving.
#[test]
fn the_metrics_listener_serves_only_metrics() {
    let s = rated(
        &[("alice", "alice-pw", "0", "0")],
        "[metrics]\nlisten = \"127.0.0.1:0\"\n",
    );
    assert_eq!(curl(&s, "/", &[]).0, 404);
    assert_eq!(curl(&s, "/metrics", &["-X", "POST"]).0, 405);
    let (code, body) = curl(&s, "/metrics", &["-I"]);
    assert_eq!(code, 200);
    assert!(body.contains("text/plain; version=0.0.4"), "{body}");
    assert!(
        !body.contains("miniftp_sessions"),
        "HEAD with a body: {body}"
    );
    // A client that sends half a request and stalls holds nothing up.
    let addr = s.metrics.clone().unwrap();
    let mut stalled = std::net::TcpStream::connect(&addr).unwrap();
    std::io::Write::write_all(&mut stalled, b"GET /metr").unwrap();
    assert!(scrape(&s).contains("miniftp_sessions"));
    let mut w = session(&s.addr, "alice", "alice-pw");
    assert_eq!(w.call(json!({"op": "pwd"}))["code"], 200);
}
