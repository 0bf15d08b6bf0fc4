//! The basics end to end: greeting, login, a put and a get.

use serde_json::json;

use crate::util::*;

#[test]
fn greeting_login_put_get() {
    let s = TestServer::start();
    let mut w = s.connect();
    let r = w.call(json!({"op": "login", "user": "alice", "password": "alice-pw"}));
    assert_eq!(r["code"], 230);
    let body = data(100_000, 1);
    let r = w.put("a.bin", &body);
    assert_eq!(r["code"], 226, "{r}");
    assert_eq!(r["sha256"], sha256_hex(&body));
    let (_, got, trailer) = w.get("a.bin").unwrap();
    assert_eq!(got, body);
    assert_eq!(trailer["sha256"], sha256_hex(&body));
    assert_eq!(std::fs::read(s.home("alice").join("a.bin")).unwrap(), body);
}
