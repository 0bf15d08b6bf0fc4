//! Crash safety: SIGKILL while 50 clients are in the middle of their upload
//! bodies, and SIGKILL in the middle of a storm of uploads being
//! committed. After a restart nothing half-written is visible under a real
//! name (old versions intact), the users file is untouched, every
//! interrupted upload resumes to a verified 226, and every user's quota
//! equals the bytes on disk.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::hardening::hx::*;
use crate::util::{data, Opts, TestServer, Wire};

const USERS: [(&str, &str, &str); 5] = [
    ("u0", "pw-u0", "1G"),
    ("u1", "pw-u1", "1G"),
    ("u2", "pw-u2", "1G"),
    ("u3", "pw-u3", "1G"),
    ("u4", "pw-u4", "1G"),
];

fn crash_server() -> TestServer {
    let mut users = USERS.to_vec();
    users.push(("bob", "bob-pw", "100M"));
    TestServer::with(Opts {
        toml: "[limits]\nmax_connections_per_ip = 500\nmax_connections = 1000\n".into(),
        users,
        env: vec![],
    })
}

fn user_of(k: usize) -> (&'static str, &'static str) {
    let (u, p, _) = USERS[k % USERS.len()];
    (u, p)
}

/// The users file's names, and its bytes.
fn users_file(s: &TestServer) -> (BTreeSet<String>, Vec<u8>) {
    let bytes = std::fs::read(s.root().join("users.toml")).expect("users.toml");
    let text = String::from_utf8(bytes.clone()).expect("users.toml is UTF-8");
    let table: toml::Table = toml::from_str(&text).expect("users.toml parses");
    let mut names = BTreeSet::new();
    for (_, v) in table {
        if let toml::Value::Array(items) = v {
            for it in items {
                if let Some(n) = it.get("name").and_then(|n| n.as_str()) {
                    names.insert(n.to_string());
                }
            }
        }
    }
    (names, bytes)
}

/// Where the resumable partial of `path` (relative to `home`) lives.
fn partial_path(home: &Path, path: &str) -> PathBuf {
    let p = home.join(path);
    let name = p.file_name().unwrap().to_str().unwrap().to_string();
    p.with_file_name(format!(".{name}.miniftp-part"))
}

struct Upload {
    k: usize,
    path: String,
    body: Vec<u8>,
    sent: usize,
    chunked: bool,
    old: Option<Vec<u8>>,
}

/// SIGKILL while 50 clients (5 users) are in their upload bodies: sized and
/// chunked, new files and replacements, in subdirectories with odd names.
/// After the restart: only old versions are visible, each partial holds
/// exactly what was received, the users file is byte-for-byte the same,
/// the quota of every user equals the bytes on disk; all 50 resume (in
/// parallel) to a verified 226, and the books balance again.
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn sigkill_while_fifty_clients_upload_then_every_upload_resumes() {
    let mut s = crash_server();
    let (names_before, users_bytes) = users_file(&s);
    let mut uploads = Vec::new();
    for k in 0..50 {
        let path = if k % 5 == 2 {
            format!("dir {k}/ünï cödé {k}.bin")
        } else {
            format!("f{k}.bin")
        };
        let len = 200_000 + k * 37_003;
        uploads.push(Upload {
            k,
            path,
            body: data(len, 1000 + k as u64),
            sent: len * (k % 10 + 1) / 12,
            chunked: k % 4 == 1,
            old: (k % 3 == 0).then(|| data(10_000 + k * 101, 2000 + k as u64)),
        });
    }
    // Old versions first.
    for u in &uploads {
        if let Some(old) = &u.old {
            let (user, pw) = user_of(u.k);
            let mut w = s.login(user, pw);
            let r = w.call(json!({"op": "put", "path": u.path, "size": old.len(), "mkdirs": true}));
            want(&r, 150);
            w.send_raw(old);
            want(&w.call(json!({"op": "done", "sha256": sha(old)})), 226);
        }
    }
    // 50 uploads, each stopped in its body.
    let mut conns = Vec::new();
    for u in &uploads {
        let (user, pw) = user_of(u.k);
        let mut w = s.login(user, pw);
        let mut req = json!({"op": "put", "path": u.path, "mkdirs": true});
        if !u.chunked {
            req["size"] = json!(u.body.len());
        }
        want(&w.call(req), 150);
        if u.chunked {
            for piece in u.body[..u.sent].chunks(10_000) {
                w.send_raw(&chunk(piece));
            }
        } else {
            w.send_raw(&u.body[..u.sent]);
        }
        conns.push(w);
    }
    for u in &uploads {
        let home = s.home(user_of(u.k).0);
        let p = partial_path(&home, &u.path);
        let stored = eventually(Duration::from_secs(10), || {
            std::fs::metadata(&p).is_ok_and(|m| m.len() == u.sent as u64)
        });
        assert!(
            stored,
            "upload {}: the server never stored the {} bytes sent",
            u.k, u.sent
        );
    }

    s.kill_and_restart();
    drop(conns);

    let (names_after, bytes_after) = users_file(&s);
    assert_eq!(names_after, names_before, "users in users.toml changed");
    assert!(
        bytes_after == users_bytes,
        "users.toml was rewritten by the crash or the restart"
    );
    for (user, pw, _) in USERS {
        let home = s.home(user);
        let mut w = s.login(user, pw);
        let mine: Vec<&Upload> = uploads.iter().filter(|u| user_of(u.k).0 == user).collect();
        for u in &mine {
            match &u.old {
                Some(old) => {
                    assert!(
                        std::fs::read(home.join(&u.path)).unwrap() == *old,
                        "{user}/{}",
                        u.path
                    );
                    assert!(fetch(&mut w, &u.path) == *old, "{user}/{}", u.path);
                }
                None => {
                    assert!(!home.join(&u.path).exists(), "{user}/{} visible", u.path);
                    want(&w.call(json!({"op": "stat", "path": u.path})), 550);
                }
            }
            let p = w.call(json!({"op": "partial", "path": u.path}));
            want(&p, 200);
            assert_eq!(p["size"], u.sent, "{user}/{}: {p}", u.path);
            assert_eq!(p["sha256"], sha(&u.body[..u.sent]), "{user}/{}", u.path);
        }
        // The listing shows the old versions (and directories) only.
        let want_names: BTreeSet<String> = mine
            .iter()
            .filter(|u| u.old.is_some() || u.path.contains('/'))
            .map(|u| u.path.split('/').next().unwrap().to_string())
            .collect();
        let got: BTreeSet<String> = names(&w.call(json!({"op": "ls", "path": "/"})))
            .into_iter()
            .collect();
        assert_eq!(got, want_names, "{user}");
        assert_books_balance(&mut w, &home);
        let expect: usize = mine
            .iter()
            .map(|u| u.sent + u.old.as_ref().map_or(0, Vec::len))
            .sum();
        assert_eq!(quota(&mut w).0, expect as u64, "{user}");
    }

    // Every upload resumes, all at once.
    let addr = s.addr.clone();
    let uploads = Arc::new(uploads);
    let handles: Vec<_> = (0..uploads.len())
        .map(|i| {
            let (addr, uploads) = (addr.clone(), Arc::clone(&uploads));
            std::thread::spawn(move || {
                let u = &uploads[i];
                let (user, pw) = user_of(u.k);
                let mut w = connect_from(std::net::Ipv4Addr::LOCALHOST, &addr);
                want(&w.call(login_req(user, pw)), 230);
                let p = w.call(json!({"op": "partial", "path": u.path}));
                want(&p, 200);
                let offset = p["size"].as_u64().unwrap() as usize;
                assert_eq!(p["sha256"], sha(&u.body[..offset]));
                let mut req = json!({"op": "put", "path": u.path, "offset": offset});
                if !u.chunked {
                    req["size"] = json!(u.body.len());
                }
                let r = w.call(req);
                want(&r, 150);
                if u.chunked {
                    for piece in u.body[offset..].chunks(77_777) {
                        w.send_raw(&chunk(piece));
                    }
                    w.send_raw(&header(0));
                } else {
                    w.send_raw(&u.body[offset..]);
                }
                let r = w.call(json!({"op": "done", "sha256": sha(&u.body)}));
                want(&r, 226);
                assert_eq!(r["size"], u.body.len());
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        h.join()
            .unwrap_or_else(|_| panic!("resume of upload {i} failed"));
    }
    for (user, pw, _) in USERS {
        let home = s.home(user);
        let mut w = s.login(user, pw);
        for u in uploads.iter().filter(|u| user_of(u.k).0 == user) {
            assert!(
                std::fs::read(home.join(&u.path)).unwrap() == u.body,
                "{user}/{}",
                u.path
            );
        }
        assert!(
            partials_on_disk(&home).is_empty(),
            "{:?}",
            partials_on_disk(&home)
        );
        assert_books_balance(&mut w, &home);
        let expect: usize = uploads
            .iter()
            .filter(|u| user_of(u.k).0 == user)
            .map(|u| u.body.len())
            .sum();
        assert_eq!(quota(&mut w).0, expect as u64, "{user}");
    }
    assert_no_panic_in_log(&s);
}

/// A put that reports instead of panicking when the server vanishes:
/// Ok(final reply) or Err(what broke).
fn try_put(w: &mut Wire, path: &str, body: &[u8]) -> Result<Value, String> {
    let req = json!({"op": "put", "path": path, "size": body.len()}).to_string();
    w.stream
        .write_all(&frame(req.as_bytes()))
        .map_err(|e| e.to_string())?;
    let r = w.try_recv().ok_or("closed before 150")?;
    if r["code"] != 150 {
        return Ok(r);
    }
    w.stream.write_all(body).map_err(|e| e.to_string())?;
    let done = json!({"op": "done", "sha256": sha(body)}).to_string();
    w.stream
        .write_all(&frame(done.as_bytes()))
        .map_err(|e| e.to_string())?;
    w.try_recv()
        .ok_or_else(|| "closed before the final reply".into())
}

fn version(k: usize, v: usize) -> Vec<u8> {
    data(
        5_000 + (k * 7919 + v * 104_729) % 300_000,
        (k * 1_000_003 + v) as u64,
    )
}

/// 30 clients upload new versions of their file back to back; the server
/// is killed in the middle. After the restart each file is whole: the last
/// version acknowledged with 226, or the one in flight (its rename may
/// have happened before the reply went out) — never a mix, never a
/// shorter one; a partial left behind is a prefix of the version in
/// flight; the quota equals the bytes on disk.
#[allow(clippy::too_many_lines)] // one scenario, step by step: easier to read whole
#[test]
fn sigkill_during_a_storm_of_commits_leaves_only_whole_versions() {
    let mut s = crash_server();
    let clients = 30;
    let stop = Arc::new(AtomicBool::new(false));
    let handles: Vec<_> = (0..clients)
        .map(|k| {
            let addr = s.addr.clone();
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (user, pw) = user_of(k);
                let mut w = connect_from(std::net::Ipv4Addr::LOCALHOST, &addr);
                want(&w.call(login_req(user, pw)), 230);
                // (last acknowledged version, version in flight)
                let mut acked: Option<usize> = None;
                for v in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return (acked, None);
                    }
                    match try_put(&mut w, &format!("s{k}.bin"), &version(k, v)) {
                        Ok(r) if r["code"] == 226 => acked = Some(v),
                        Ok(r) => panic!("client {k} version {v}: {r}"),
                        Err(_) => return (acked, Some(v)),
                    }
                }
                unreachable!()
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    s.kill_and_restart();
    stop.store(true, Ordering::Relaxed);
    let results: Vec<(Option<usize>, Option<usize>)> = handles
        .into_iter()
        .map(|h| h.join().expect("storm client"))
        .collect();
    let commits: usize = results.iter().map(|(a, _)| a.map_or(0, |a| a + 1)).sum();
    eprintln!("{commits} versions acknowledged before the kill");
    assert!(
        commits >= clients,
        "the storm hardly ran: {commits} commits"
    );
    for (k, (acked, inflight)) in results.iter().enumerate() {
        let home = s.home(user_of(k).0);
        let name = format!("s{k}.bin");
        let on_disk = std::fs::read(home.join(&name)).ok();
        let ok_versions: Vec<usize> = acked.iter().chain(inflight.iter()).copied().collect();
        match &on_disk {
            Some(bytes) => assert!(
                ok_versions.iter().any(|v| version(k, *v) == *bytes),
                "client {k}: {name} ({} bytes) is none of versions {ok_versions:?}",
                bytes.len()
            ),
            None => assert!(
                acked.is_none(),
                "client {k}: acknowledged version {acked:?} is gone"
            ),
        }
        if let Ok(part) = std::fs::read(partial_path(&home, &name)) {
            let v = inflight
                .unwrap_or_else(|| panic!("client {k}: a partial without an upload in flight"));
            let full = version(k, v);
            assert!(
                part.len() <= full.len() && full[..part.len()] == part[..],
                "client {k}: the partial is not a prefix of version {v}"
            );
        }
    }
    for (user, pw, _) in USERS {
        let home = s.home(user);
        let mut w = s.login(user, pw);
        assert_books_balance(&mut w, &home);
        // And the files are served whole.
        for k in (0..clients).filter(|k| user_of(*k).0 == user) {
            let name = format!("s{k}.bin");
            if home.join(&name).exists() {
                let got = fetch(&mut w, &name);
                let mut disk = Vec::new();
                std::fs::File::open(home.join(&name))
                    .unwrap()
                    .read_to_end(&mut disk)
                    .unwrap();
                assert!(got == disk);
            }
        }
    }
    assert_no_panic_in_log(&s);
}
