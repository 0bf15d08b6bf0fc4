//! Losing Garage nodes under a running server (replication factor 3, so
//! reads and writes need two of the three nodes): with one node killed,
//! uploads and downloads go on, verified; with two killed, the user hears
//! 451, the partial upload and every stored file are kept, and the upload
//! resumes once the nodes are back. Each test has a cluster of its own;
//! the server talks to node 1, which is never killed.

use std::time::{Duration, Instant};

use crate::files::fx::*;
use crate::s3::garage::Garage;
use crate::util::*;

const MIB: usize = 1 << 20;

fn server_on(g: &Garage) -> TestServer {
    TestServer::on_garage(
        g,
        Opts {
            users: vec![("alice", "alice-pw", "1G")],
            ..Opts::default()
        },
    )
}

/// Starts a sized put of `body` to `path` and sends its first `sent`
/// bytes; returns once the bucket holds the whole parts of them.
fn put_partly(s: &TestServer, path: &str, body: &[u8], sent: usize) -> Wire {
    let mut w = alice(s);
    code(
        &begin_put(&mut w, path, Some(body.len() as u64), 0, true),
        150,
    );
    w.send_raw(&body[..sent]);
    s.stored("alice").wait_partial(path, sent as u64, false);
    w
}

#[test]
fn uploads_and_downloads_go_on_with_one_node_killed() {
    let mut g = Garage::start();
    let s = server_on(&g);
    let home = s.stored("alice");
    let mut w = alice(&s);
    let before = data(12 * MIB + 5, 1);
    code(&put_mkdirs(&mut w, "before.bin", &before), 226);

    // Killed in the middle of an upload of several parts.
    let body = data(40 * MIB + 3, 2);
    let mut up = put_partly(&s, "d/big.bin", &body, 20 * MIB);
    g.kill(3);
    up.send_raw(&body[20 * MIB..]);
    let r = done(&mut up, &sha(&body));
    code(&r, 226);
    assert_eq!(r["sha256"], sha(&body));

    // Everything else with the node still down: a small put (one
    // PutObject), downloads of files written before and during the loss
    // (verified by digest), a copy, a listing.
    code(&put_mkdirs(&mut w, "small", b"hello"), 226);
    assert!(fetch(&mut w, "before.bin") == before);
    assert!(fetch(&mut w, "d/big.bin") == body);
    code(&cp(&mut w, "d/big.bin", "copy.bin"), 200);
    assert!(fetch(&mut w, "copy.bin") == body);
    assert_eq!(
        names(&ls(&mut w, "/")),
        ["before.bin", "copy.bin", "d", "small"]
    );
    assert!(home.partials().is_empty());
    assert_used_matches(&mut w, &home);

    // The node comes back: nothing it missed is lost.
    g.restart(3);
    assert!(fetch(&mut w, "d/big.bin") == body);
    assert_eq!(home.content("copy.bin").len(), body.len());
}

#[test]
fn two_nodes_lost_is_451_keeps_everything_and_the_upload_resumes() {
    let mut g = Garage::start();
    let s = server_on(&g);
    let home = s.stored("alice");
    let mut obs = alice(&s);
    let kept_file = data(3 * MIB, 3);
    code(&put_mkdirs(&mut obs, "kept.bin", &kept_file), 226);
    let used_before = used(&mut obs);

    let body = data(40 * MIB + 11, 4);
    let sent = 20 * MIB + 1000;
    let mut up = put_partly(&s, "big.bin", &body, sent);
    let kept = home.kept(sent as u64, false) as usize;
    assert!(kept >= 16 * MIB, "kept {kept}");

    g.kill(2);
    g.kill(3);
    // The rest of the body: the next part can't be stored. The server says
    // 451 (during the body or at `done`) in bounded time.
    let t = Instant::now();
    up.send_raw(&body[sent..]);
    let r = done(&mut up, &sha(&body));
    code(&r, 451);
    assert!(t.elapsed() < Duration::from_secs(120), "{:?}", t.elapsed());
    eprintln!("two nodes down: {r} after {:?}", t.elapsed());
    let msg = r["msg"].as_str().unwrap_or_default().to_string();
    assert!(msg.contains("object store unavailable"), "{r}");
    // The user hears what happened, not the server's own keys.
    assert!(!msg.contains("staging") && !msg.contains("t-srv-"), "{r}");
    drop(up);

    // Reading needs a quorum too: a clear 451, not a hang or a wrong answer.
    let mut w = alice(&s);
    let e = match get_at(&mut w, "kept.bin", 0) {
        Err(e) => e,
        Ok((r, ..)) => panic!("a get with two nodes down answered {r}"),
    };
    code(&e, 451);

    g.restart(2);
    g.restart(3);
    // Nothing lost: the stored file whole, the partial where it was, the
    // usage as it was plus the partial's whole parts.
    let mut w = alice(&s);
    assert!(fetch(&mut w, "kept.bin") == kept_file);
    let r = partial_settled(&mut w, "big.bin");
    code(&r, 200);
    assert_eq!(r["size"], kept);
    assert_eq!(r["sha256"], sha(&body[..kept]));
    assert_eq!(used(&mut w), used_before + kept as u64);

    // And it resumes from there to the verified whole.
    let r = begin_put(
        &mut w,
        "big.bin",
        Some(body.len() as u64),
        kept as u64,
        false,
    );
    code(&r, 150);
    w.send_raw(&body[kept..]);
    let r = done(&mut w, &sha(&body));
    code(&r, 226);
    assert!(fetch(&mut w, "big.bin") == body);
    assert!(home.partials().is_empty());
    assert_used_matches(&mut w, &home);
    assert_eq!(used(&mut w), used_before + body.len() as u64);
}
