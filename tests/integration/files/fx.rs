//! Helpers of the file-command tests: raw protocol steps (put in pieces,
//! chunked bodies, get from an offset, streaming hashes), and looks at the
//! disk (bytes used, hidden partial uploads) to compare with what the
//! server says.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::*;
pub use crate::util::{disk_usage, partials_on_disk};

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * 1024;
pub const GIB: u64 = 1024 * 1024 * 1024;

/// Asserts a reply's status code, showing the whole reply otherwise.
#[track_caller]
pub fn code(r: &Value, c: u64) {
    assert_eq!(r["code"].as_u64(), Some(c), "expected {c}, got {r}");
}

/// A server with alice at `quota` and extra config `toml`.
pub fn server(quota: &'static str, toml: &str) -> TestServer {
    TestServer::with(Opts {
        toml: toml.to_string(),
        users: vec![("alice", "alice-pw", quota)],
        env: vec![],
    })
}

pub fn alice(s: &TestServer) -> Wire {
    s.login("alice", "alice-pw")
}

/// Creates alice's home (before her first login) and returns it.
pub fn make_home(s: &TestServer) -> PathBuf {
    let h = s.home("alice");
    std::fs::create_dir_all(&h).unwrap();
    h
}

pub fn sha(data: &[u8]) -> String {
    sha256_hex(data)
}

pub fn noop_ok(w: &mut Wire) {
    let r = w.call(json!({"op": "noop"}));
    code(&r, 200);
}

/// Sends `put` and returns the reply (150 or an error).
pub fn begin_put(w: &mut Wire, path: &str, size: Option<u64>, offset: u64, mkdirs: bool) -> Value {
    let mut req = json!({"op": "put", "path": path, "offset": offset, "mkdirs": mkdirs});
    if let Some(s) = size {
        req["size"] = json!(s);
    }
    w.call(req)
}

pub fn done(w: &mut Wire, sha256: &str) -> Value {
    w.call(json!({"op": "done", "sha256": sha256}))
}

/// A sized put with `mkdirs`.
pub fn put_mkdirs(w: &mut Wire, path: &str, data: &[u8]) -> Value {
    let r = begin_put(w, path, Some(data.len() as u64), 0, true);
    if r["code"] != 150 {
        return r;
    }
    w.send_raw(data);
    done(w, &sha(data))
}

/// One chunk of a body of unknown length (a zero-length chunk ends it).
pub fn send_chunk(w: &mut Wire, bytes: &[u8]) {
    let mut buf = (bytes.len() as u64).to_be_bytes().to_vec();
    buf.extend_from_slice(bytes);
    w.send_raw(&buf);
}

pub fn end_chunks(w: &mut Wire) {
    w.send_raw(&0u64.to_be_bytes());
}

/// Sends `data` as chunks of the given sizes (cycled), then the end mark.
pub fn send_chunked(w: &mut Wire, data: &[u8], sizes: &[usize]) {
    let mut pos = 0;
    let mut i = 0;
    while pos < data.len() {
        let n = sizes[i % sizes.len()].max(1).min(data.len() - pos);
        send_chunk(w, &data[pos..pos + n]);
        pos += n;
        i += 1;
    }
    end_chunks(w);
}

/// A put of unknown size: chunked body, end mark, done. Returns the reply
/// to `done` (or the refusal of the put, or a failure sent mid-body).
pub fn put_chunked(w: &mut Wire, path: &str, data: &[u8], sizes: &[usize]) -> Value {
    let r = begin_put(w, path, None, 0, false);
    if r["code"] != 150 {
        return r;
    }
    send_chunked(w, data, sizes);
    done(w, &sha(data))
}

/// `get` from `offset`: (150 reply, the body sent, 226 trailer).
pub fn get_at(w: &mut Wire, path: &str, offset: u64) -> Result<(Value, Vec<u8>, Value), Value> {
    let r = w.call(json!({"op": "get", "path": path, "offset": offset}));
    if r["code"] != 150 {
        return Err(r);
    }
    let size = r["size"].as_u64().expect("150 carries the size");
    let mut body = vec![0u8; (size - offset) as usize];
    w.stream.read_exact(&mut body).expect("body");
    let t = w.recv();
    Ok((r, body, t))
}

/// A whole download: the content, checking the trailer's digest.
#[track_caller]
pub fn fetch(w: &mut Wire, path: &str) -> Vec<u8> {
    let (r, body, t) = match get_at(w, path, 0) {
        Ok(x) => x,
        Err(r) => panic!("get {path}: {r}"),
    };
    code(&t, 226);
    assert_eq!(
        t["sha256"].as_str(),
        Some(sha(&body).as_str()),
        "trailer of {path}"
    );
    if let Some(d) = r["sha256"].as_str() {
        assert_eq!(d, sha(&body), "digest announced in the 150 of {path}");
    }
    body
}

/// A download read in pieces and never kept whole: `each` sees every piece
/// with its file offset. Returns (150, bytes received, trailer).
pub fn get_streaming(
    w: &mut Wire,
    path: &str,
    offset: u64,
    each: &mut dyn FnMut(u64, &[u8]),
) -> Result<(Value, u64, Value), Value> {
    let r = w.call(json!({"op": "get", "path": path, "offset": offset}));
    if r["code"] != 150 {
        return Err(r);
    }
    let size = r["size"].as_u64().expect("150 carries the size");
    let mut left = size - offset;
    let mut pos = offset;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = w.stream.read(&mut buf[..want]).expect("body read");
        assert!(n > 0, "EOF with {left} bytes of {path} still due");
        each(pos, &buf[..n]);
        pos += n as u64;
        left -= n as u64;
    }
    let t = w.recv();
    Ok((r, size - offset, t))
}

/// Hex of a Sha256 state.
pub fn hex_of(h: &Sha256) -> String {
    hex::encode(h.clone().finalize())
}

pub fn quota(w: &mut Wire) -> (u64, u64, u64) {
    let r = w.call(json!({"op": "quota"}));
    code(&r, 200);
    let q = &r["quota"];
    (
        q["used"].as_u64().unwrap(),
        q["total"].as_u64().unwrap(),
        q["free"].as_u64().unwrap(),
    )
}

pub fn used(w: &mut Wire) -> u64 {
    quota(w).0
}

/// Size of the resumable partial of `dir/name` on disk, if any.
pub fn partial_size_on_disk(dir: &Path, name: &str) -> Option<u64> {
    std::fs::metadata(dir.join(format!(".{name}.miniftp-part")))
        .ok()
        .map(|m| m.len())
}

/// Waits until the server's used figure equals the bytes on disk (work
/// after a dropped connection runs in the background), then asserts it.
#[track_caller]
pub fn assert_used_matches_disk(w: &mut Wire, home: &Path) {
    let mut last = (0, 0);
    let ok = eventually(Duration::from_secs_f64(5.0), || {
        last = (used(w), disk_usage(home));
        last.0 == last.1
    });
    assert!(
        ok,
        "quota says {} bytes used, the home holds {} bytes",
        last.0, last.1
    );
}

/// `partial PATH`, retried while a finishing transfer still holds it (450).
pub fn partial_settled(w: &mut Wire, path: &str) -> Value {
    let mut r = Value::Null;
    eventually(Duration::from_secs_f64(5.0), || {
        r = w.call(json!({"op": "partial", "path": path}));
        r["code"] != 450
    });
    r
}

/// Names in an `ls` reply.
pub fn names(r: &Value) -> Vec<String> {
    r["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("no entries: {r}"))
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

pub fn ls(w: &mut Wire, path: &str) -> Value {
    w.call(json!({"op": "ls", "path": path}))
}

/// The entry called `name` in an `ls` reply.
#[track_caller]
pub fn entry<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap_or_else(|| panic!("{name:?} not listed in {r}"))
}

pub fn op1(w: &mut Wire, op: &str, path: &str) -> Value {
    w.call(json!({"op": op, "path": path}))
}

pub fn mv(w: &mut Wire, from: &str, to: &str) -> Value {
    w.call(json!({"op": "mv", "from": from, "to": to}))
}

pub fn cp(w: &mut Wire, from: &str, to: &str) -> Value {
    w.call(json!({"op": "cp", "from": from, "to": to}))
}

pub fn rm(w: &mut Wire, path: &str, recursive: bool) -> Value {
    w.call(json!({"op": "rm", "path": path, "recursive": recursive}))
}

pub fn mkdir(w: &mut Wire, path: &str, parents: bool) -> Value {
    w.call(json!({"op": "mkdir", "path": path, "parents": parents}))
}

/// Human free space as the server words it (binary units).
pub fn human(bytes: u64) -> String {
    humansize::format_size(bytes, humansize::BINARY)
}

/// The SHA-256 of `len` zero bytes, with `tail` written over its end.
pub fn zeros_sha(len: u64, tail: &[u8]) -> String {
    let mut h = Sha256::new();
    let z = vec![0u8; 1 << 20];
    let mut left = len - tail.len() as u64;
    while left > 0 {
        let n = left.min(z.len() as u64) as usize;
        h.update(&z[..n]);
        left -= n as u64;
    }
    h.update(tail);
    hex::encode(h.finalize())
}

/// Puts `user`'s home (before the first login) on tmpfs when the machine
/// has one at /dev/shm: holes in sparse files read as fast as memory
/// there, while on ext4 reading 4 GiB of holes costs seconds of kernel
/// time. The home path becomes a symlink to a private directory, removed
/// when the returned guard drops. None: the home stays where it was.
pub fn home_on_tmpfs(s: &TestServer, user: &str) -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("miniftp-files-test")
        .tempdir_in(shm)
        .ok()?;
    let home = s.home(user);
    std::fs::create_dir_all(home.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(dir.path(), &home).unwrap();
    Some(dir)
}
