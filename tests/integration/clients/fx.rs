//! Helpers of the client tests: exit-status assertions with the output
//! shown, local trees, remote files seeded over the raw protocol, and
//! polling a condition with a deadline (never a fixed sleep).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::*;

pub const PW: &str = "alice-pw";

/// Asserts the exit status, showing both outputs otherwise.
#[track_caller]
pub fn exit_is(o: &Output, code: i32) {
    assert_eq!(
        o.status.code(),
        Some(code),
        "expected exit {code}\n--- stdout:\n{}\n--- stderr:\n{}",
        stdout(o),
        stderr(o)
    );
}

/// A path as &str (the tests only use UTF-8 paths).
pub fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A fresh local directory `name` in the test's temporary directory.
pub fn local(srv: &TestServer, name: &str) -> PathBuf {
    let d = srv.dir.path().join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a local file (creating its parents) and returns its path.
pub fn write(path: &Path, data: &[u8]) -> PathBuf {
    if let Some(p) = path.parent() {
        std::fs::create_dir_all(p).unwrap();
    }
    std::fs::write(path, data).unwrap();
    path.to_path_buf()
}

/// Reads a file, with the path in the panic message.
#[track_caller]
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Byte-equality without dumping megabytes into the failure message.
#[track_caller]
pub fn same(path: &Path, want: &[u8]) {
    let got = read(path);
    assert!(
        got == want,
        "{}: {} bytes (sha256 {}), expected {} bytes (sha256 {})",
        path.display(),
        got.len(),
        sha256_hex(&got),
        want.len(),
        sha256_hex(want)
    );
}

/// Sorted names in a local directory.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Uploads `data` to `path` over the raw protocol, creating parents.
#[track_caller]
pub fn seed_with(w: &mut Wire, path: &str, data: &[u8]) {
    let r = w.call(json!({"op": "put", "path": path, "size": data.len(), "mkdirs": true}));
    assert_eq!(r["code"], 150, "put {path}: {r}");
    w.send_raw(data);
    let r = w.call(json!({"op": "done", "sha256": sha256_hex(data)}));
    assert_eq!(r["code"], 226, "done {path}: {r}");
}

/// Seeds alice's remote files on one connection.
pub fn seed(srv: &TestServer, files: &[(&str, &[u8])]) {
    let mut w = srv.login("alice", PW);
    for (path, data) in files {
        seed_with(&mut w, path, data);
    }
    let _ = w.call(json!({"op": "quit"}));
}

/// A raw request with one `path` field.
pub fn op(w: &mut Wire, op: &str, path: &str) -> Value {
    w.call(json!({"op": op, "path": path}))
}

/// Hidden partial files (`.NAME.miniftp-part...`) anywhere under `dir`.
pub fn partials(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else if name.starts_with('.') && name.contains(".miniftp-part") {
                out.push(e.path());
            }
        }
    }
    out
}

/// Starts a sized upload of `body` to `path`, sends its first `sent`
/// bytes, and returns the open connection once the server holds them.
pub fn upload_partly(srv: &TestServer, path: &str, body: &[u8], sent: usize) -> Wire {
    let mut w = srv.login("alice", PW);
    let r = w.call(json!({"op": "put", "path": path, "size": body.len(), "mkdirs": true}));
    assert_eq!(r["code"], 150, "put {path}: {r}");
    w.send_raw(&body[..sent]);
    let (dir, name) = match path.rsplit_once('/') {
        Some((d, n)) => (srv.home("alice").join(d), n.to_string()),
        None => (srv.home("alice"), path.to_string()),
    };
    let part = dir.join(format!(".{name}.miniftp-part"));
    assert!(
        eventually(Duration::from_secs_f64(10.0), || std::fs::metadata(&part)
            .map(|m| m.len() == sent as u64)
            .unwrap_or(false)),
        "{path}: the server never stored the {sent} bytes sent"
    );
    w
}

/// Waits until the server reports a resumable partial of `path` holding
/// `size` bytes (after a dropped upload, once the server noticed).
pub fn wait_partial(srv: &TestServer, path: &str, size: usize) -> Value {
    let mut w = srv.login("alice", PW);
    let mut last = Value::Null;
    let ok = eventually(Duration::from_secs_f64(10.0), || {
        last = op(&mut w, "partial", path);
        last["code"] == 200 && last["size"] == size
    });
    assert!(ok, "partial {path} never settled at {size} bytes: {last}");
    last
}

/// The non-empty lines of a text.
pub fn lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// A 64-hex-digit SHA-256 after `sha256 ` in a line.
pub fn sha_in(line: &str) -> Option<&str> {
    let i = line.find("sha256 ")? + "sha256 ".len();
    let hex = line.get(i..i + 64)?;
    hex.bytes().all(|b| b.is_ascii_hexdigit()).then_some(hex)
}

/// Runs a client subcommand as alice (user and password from the
/// environment).
pub fn run(srv: &TestServer, args: &[&str]) -> Output {
    run_in(srv, args, None)
}

/// The same with bytes on standard input.
pub fn run_in(srv: &TestServer, args: &[&str], stdin: Option<&[u8]>) -> Output {
    srv.cli_env(
        args,
        &[("MINIFTP_USER", "alice"), ("MINIFTP_PASSWORD", PW)],
        stdin,
    )
}

/// A client command against `srv` set up the way `cli_env` does it (server
/// address, TLS trust or plain TCP as the server speaks, HOME), with no
/// credentials in the environment; stdio left to the caller.
pub fn client(srv: &TestServer) -> std::process::Command {
    let mut cmd = std::process::Command::new(BIN);
    cmd.env("MINIFTP_SERVER", &srv.addr)
        .env("HOME", srv.dir.path())
        .env_remove("MINIFTP_USER")
        .env_remove("MINIFTP_PASSWORD")
        .env_remove("MINIFTP_FINGERPRINT")
        .env_remove("MINIFTP_CA_FILE")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("NETRC")
        .env_remove("RUST_LOG");
    match &srv.fingerprint {
        Some(fp) => cmd
            .env("MINIFTP_FINGERPRINT", fp)
            .env_remove("MINIFTP_PLAINTEXT"),
        None => cmd.env("MINIFTP_PLAINTEXT", "1"),
    };
    cmd
}

/// A fake server on a free port: `serve` gets each of `n` connections.
pub fn fake_server(n: usize, serve: fn(TcpStream)) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for _ in 0..n {
            if let Ok((c, _)) = l.accept() {
                serve(c);
            }
        }
    });
    addr
}

pub fn frame(c: &mut TcpStream, v: serde_json::Value) {
    let payload = v.to_string();
    let mut buf = (payload.len() as u64).to_be_bytes().to_vec();
    buf.extend_from_slice(payload.as_bytes());
    let _ = c.write_all(&buf);
}

pub fn read_frame(c: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 8];
    c.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u64::from_be_bytes(len) as usize];
    c.read_exact(&mut buf).ok()?;
    Some(buf)
}
