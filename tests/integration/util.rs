//! Test helpers: start the real `miniftp serve` on port 0 in a temporary
//! data directory, talk the wire protocol to it over TCP, and run the
//! client subcommands as processes. The server is killed on drop.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

pub use crate::stored::Stored;

pub const BIN: &str = env!("CARGO_BIN_EXE_miniftp");

/// Cheap argon2 settings so tests don't spend seconds hashing, short test
/// passwords allowed (a test of the length rule sets its own), and TLS off
/// (tests speak raw frames; a test opts in with `[tls] enabled = true`).
pub const CHEAP_AUTH: &str = "[auth]\nargon2_memory_kib = 256\nargon2_iterations = 1\n\
                              min_password_len = 1\n[tls]\nenabled = false\n";

pub struct TestServer {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub addr: String,
    pub config: PathBuf,
    /// `SHA256:...` when the server runs TLS.
    pub fingerprint: Option<String>,
    /// HOST:PORT of the metrics listener, when the config has `[metrics]`.
    pub metrics: Option<String>,
    /// The FTP listener's `HOST:PORT`, when the config sets `[ftp] listen`
    /// (its `ftp listening on` line comes after the native one).
    pub ftp_addr: Option<String>,
    /// The implicit-FTPS listener's, with `[ftp] implicit_tls_listen`
    /// (`ftps listening on`).
    pub ftps_addr: Option<String>,
    stderr_path: PathBuf,
    /// Where the homes are.
    pub store: Store,
    /// The key prefix of this server's homes in a Garage bucket, and how
    /// to reach that bucket.
    s3: Option<(String, miniftp::storage::s3::ClientConfig)>,
}

/// Where a test server keeps its users' homes: the data directory, or the
/// test run's shared three-node Garage cluster (`crate::s3::garage`), under
/// a key prefix of the server's own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Local,
    S3,
}

/// How to start a server.
pub struct Opts {
    /// Extra TOML appended to the config (sections allowed).
    pub toml: String,
    /// (user, password, quota) created before start.
    pub users: Vec<(&'static str, &'static str, &'static str)>,
    /// Environment for the server process.
    pub env: Vec<(&'static str, String)>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            toml: String::new(),
            users: vec![("alice", "alice-pw", "100M")],
            env: vec![],
        }
    }
}

impl TestServer {
    pub fn start() -> TestServer {
        TestServer::with(Opts::default())
    }

    pub fn with(opts: Opts) -> TestServer {
        TestServer::with_umask(opts, None)
    }

    /// Like `with`, the server started under `umask` (its files' modes
    /// must not depend on it).
    pub fn with_umask(opts: Opts, umask: Option<u32>) -> TestServer {
        TestServer::launch(Store::Local, opts, umask)
    }

    /// Like `with`, with the homes in `store`.
    pub fn on(store: Store, opts: Opts) -> TestServer {
        TestServer::launch(store, opts, None)
    }

    /// Like `with`, with the homes in the bucket of `garage` (a cluster of
    /// the test's own, whose nodes it may kill).
    pub fn on_garage(garage: &crate::s3::garage::Garage, opts: Opts) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let (toml, prefix) = s3_storage_toml(garage, dir.path());
        let s3 = Some((prefix, garage.client_config()));
        TestServer::launch_in(dir, (toml, s3), Store::S3, opts, None)
    }

    fn launch(store: Store, opts: Opts, umask: Option<u32>) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let storage = match store {
            Store::Local => (String::new(), None),
            Store::S3 => {
                let garage = crate::s3::garage::Garage::shared();
                let (toml, prefix) = s3_storage_toml(garage, dir.path());
                (toml, Some((prefix, garage.client_config())))
            }
        };
        TestServer::launch_in(dir, storage, store, opts, umask)
    }

    fn launch_in(
        dir: tempfile::TempDir,
        (storage, s3): (String, Option<(String, miniftp::storage::s3::ClientConfig)>),
        store: Store,
        opts: Opts,
        umask: Option<u32>,
    ) -> TestServer {
        let root = dir.path().join("data");
        let config = dir.path().join("miniftp.toml");
        let toml = format!(
            "listen = \"127.0.0.1:0\"\nroot = \"{}\"\n{}\n{}",
            root.display(),
            top_level(&opts.toml),
            merge_sections(&merge_sections(CHEAP_AUTH, &storage), &sections(&opts.toml)),
        );
        std::fs::write(&config, toml).unwrap();
        for (user, pw, quota) in &opts.users {
            useradd(&config, user, pw, quota);
        }
        let mut s = TestServer {
            child: spawn_server(&config, &dir.path().join("stderr.log"), &opts.env, umask),
            addr: String::new(),
            fingerprint: None,
            metrics: None,
            ftp_addr: None,
            ftps_addr: None,
            stderr_path: dir.path().join("stderr.log"),
            dir,
            config,
            store,
            s3,
        };
        s.read_lines();
        s
    }

    /// The lines the server prints once it listens.
    fn read_lines(&mut self) {
        let toml = std::fs::read_to_string(&self.config).unwrap_or_default();
        let (ftp, ftps) = ftp_listeners(&toml);
        let want = Expect {
            metrics: toml.lines().any(|l| l.trim() == "[metrics]"),
            ftp,
            ftps,
        };
        let l = read_listen_lines(&mut self.child, want);
        (self.addr, self.fingerprint, self.metrics) = (l.addr, l.fingerprint, l.metrics);
        (self.ftp_addr, self.ftps_addr) = (l.ftp, l.ftps);
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The key prefix of this server's homes in the shared bucket (S3).
    pub fn s3_prefix(&self) -> Option<&str> {
        self.s3.as_ref().map(|(p, _)| p.as_str())
    }

    /// A client of the bucket this server's homes are in (S3).
    pub fn s3_client(&self) -> Option<miniftp::storage::s3::Client> {
        let (_, cfg) = self.s3.as_ref()?;
        Some(miniftp::storage::s3::Client::new(cfg).expect("client"))
    }

    /// What `user`'s home holds, on whichever backend the server uses.
    pub fn stored(&self, user: &str) -> Stored {
        match (&self.s3, self.s3_client()) {
            (Some((prefix, _)), Some(client)) => Stored::s3_with(client, prefix, user),
            _ => Stored::Local(self.home(user)),
        }
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.root().join("home").join(user)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Adds a user with `miniftp useradd` (the server picks it up live).
    pub fn add_user(&self, user: &str, pw: &str, quota: &str) {
        useradd(&self.config, user, pw, quota);
    }

    /// A raw protocol connection, greeting already read.
    pub fn connect(&self) -> Wire {
        let mut w = Wire::connect(&self.addr);
        let g = w.recv();
        assert_eq!(g["code"], 220, "greeting: {g}");
        w
    }

    /// A connection logged in as `user`.
    pub fn login(&self, user: &str, pw: &str) -> Wire {
        let mut w = self.connect();
        let r = w.call(json!({"op": "login", "user": user, "password": pw}));
        assert_eq!(r["code"], 230, "login: {r}");
        w
    }

    /// Runs a client subcommand against this server with the password in
    /// the environment.
    pub fn cli(&self, args: &[&str], pw: &str) -> Output {
        self.cli_env(args, &[("MINIFTP_PASSWORD", pw)], None)
    }

    pub fn cli_env(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&[u8]>) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("MINIFTP_SERVER", &self.addr)
            .env_remove("MINIFTP_USER")
            .env_remove("MINIFTP_PASSWORD")
            .env_remove("MINIFTP_FINGERPRINT")
            .env_remove("XDG_CONFIG_HOME");
        // The client speaks what the server speaks: TLS trusting the
        // printed fingerprint, or plain TCP.
        match &self.fingerprint {
            Some(fp) => cmd
                .env("MINIFTP_FINGERPRINT", fp)
                .env_remove("MINIFTP_PLAINTEXT"),
            None => cmd.env("MINIFTP_PLAINTEXT", "1"),
        };
        cmd.env("HOME", self.dir.path())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn client");
        if let Some(data) = stdin {
            let mut si = child.stdin.take().unwrap();
            let data = data.to_vec();
            std::thread::spawn(move || {
                let _ = si.write_all(&data);
            });
        }
        child.wait_with_output().expect("client output")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        signal(&self.child, "TERM");
        self.child.wait().unwrap()
    }

    /// SIGKILL, then start again on the same data directory (new port).
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_server(&self.config, &self.stderr_path, &[], None);
        self.read_lines();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn signal(child: &Child, sig: &str) {
    Command::new("kill")
        .args([&format!("-{sig}"), &child.id().to_string()])
        .status()
        .unwrap();
}

/// The `[storage]` section of a server whose homes are in `g`'s bucket
/// under a prefix of its own (the secret in a file in `dir`).
fn s3_storage_toml(g: &crate::s3::garage::Garage, dir: &Path) -> (String, String) {
    let prefix = crate::s3::garage::unique_prefix("srv");
    let secret = dir.join("s3-secret");
    std::fs::write(&secret, format!("{}\n", g.secret)).unwrap();
    let toml = format!(
        "[storage]\nbackend = \"s3\"\nendpoint = \"{}\"\nregion = \"{}\"\n\
         bucket = \"{}\"\nprefix = \"{prefix}\"\naccess_key_id = \"{}\"\n\
         secret_access_key_file = \"{}\"\npath_style = true\n",
        g.endpoint(),
        crate::s3::garage::REGION,
        crate::s3::garage::BUCKET,
        g.key_id,
        secret.display()
    );
    (toml, prefix)
}

fn top_level(toml: &str) -> String {
    toml.lines()
        .take_while(|l| !l.trim_start().starts_with('['))
        .collect::<Vec<_>>()
        .join("\n")
}

fn sections(toml: &str) -> String {
    let mut out = Vec::new();
    let mut on = false;
    for l in toml.lines() {
        if l.trim_start().starts_with('[') {
            on = true;
        }
        if on {
            out.push(l);
        }
    }
    out.join("\n")
}

/// Puts `extra`'s keys into `base`'s sections (so tests can add to [auth]).
fn merge_sections(base: &str, extra: &str) -> String {
    let mut table: toml::Table = toml::from_str(base).unwrap();
    let extra: toml::Table = toml::from_str(extra).expect("test TOML");
    for (k, v) in extra {
        match (table.get_mut(&k), v) {
            (Some(toml::Value::Table(t)), toml::Value::Table(e)) => t.extend(e),
            (_, v) => {
                table.insert(k, v);
            }
        }
    }
    toml::to_string(&table).unwrap()
}

pub fn useradd(config: &Path, user: &str, pw: &str, quota: &str) {
    useradd_with(config, user, pw, quota, &[]);
}

/// `miniftp useradd USER --quota QUOTA EXTRA...` on `config`, the password
/// on standard input; asserts success.
pub fn useradd_with(config: &Path, user: &str, pw: &str, quota: &str, extra: &[&std::ffi::OsStr]) {
    let mut child = Command::new(BIN)
        .args([
            "useradd",
            user,
            "--quota",
            quota,
            "--password-stdin",
            "--config",
        ])
        .arg(config)
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{pw}\n").as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "useradd {user}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn_server(
    config: &Path,
    stderr: &Path,
    env: &[(&'static str, String)],
    umask: Option<u32>,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stderr)
        .unwrap();
    // A umask for the server alone: the shell sets it and execs the server
    // (same process), so the test process's own umask is left alone.
    let mut cmd = match umask {
        None => Command::new(BIN),
        Some(m) => {
            let mut c = Command::new("sh");
            c.args(["-c", &format!("umask {m:03o} && exec \"$0\" \"$@\""), BIN]);
            c
        }
    };
    cmd.args(["serve", "--config"])
        .arg(config)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.spawn().expect("spawn server")
}

/// Which FTP listeners a test's TOML turns on: (`listen`,
/// `implicit_tls_listen`).
fn ftp_listeners(toml: &str) -> (bool, bool) {
    let table: toml::Table = toml::from_str(&sections(toml)).unwrap_or_default();
    let ftp = table.get("ftp").and_then(|f| f.as_table());
    let has = |k| ftp.is_some_and(|f| f.contains_key(k));
    (has("listen"), has("implicit_tls_listen"))
}

/// Reads stdout up to the `listening on HOST:PORT` line; also returns the
/// `fingerprint SHA256:...` line's value when TLS is on.
pub fn read_listen_line(child: &mut Child) -> (String, Option<String>) {
    let l = read_listen_lines(child, Expect::default());
    (l.addr, l.fingerprint)
}

/// The listeners besides the native one whose lines a start prints.
#[derive(Clone, Copy, Debug, Default)]
pub struct Expect {
    pub metrics: bool,
    pub ftp: bool,
    pub ftps: bool,
}

/// What a server printed once it listens.
pub struct Listening {
    pub addr: String,
    pub fingerprint: Option<String>,
    /// `metrics listening on HOST:PORT`, printed after the main line.
    pub metrics: Option<String>,
    /// `ftp listening on HOST:PORT` and `ftps listening on HOST:PORT`.
    pub ftp: Option<String>,
    pub ftps: Option<String>,
}

/// Reads the server's start-up lines up to its `listening on` line, and
/// then the lines of the other listeners `want` names.
pub fn read_listen_lines(child: &mut Child, want: Expect) -> Listening {
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let mut fingerprint = None;
    let (mut addr, mut metrics, mut ftp_addr, mut ftps_addr) = (None, None, None, None);
    loop {
        line.clear();
        let n = reader.read_line(&mut line).unwrap();
        assert!(n > 0, "server exited before listening");
        let l = line.trim();
        if let Some(fp) = l.strip_prefix("fingerprint ") {
            fingerprint = Some(fp.to_string());
        } else if let Some(a) = l.strip_prefix("ftp listening on ") {
            ftp_addr = Some(a.to_string());
        } else if let Some(a) = l.strip_prefix("ftps listening on ") {
            ftps_addr = Some(a.to_string());
        } else if let Some(a) = l.strip_prefix("metrics listening on ") {
            metrics = Some(a.to_string());
        } else if let Some(i) = l.find("listening on ") {
            addr = Some(l[i + "listening on ".len()..].to_string());
        }
        let done = addr.is_some()
            && metrics.is_some() == want.metrics
            && ftp_addr.is_some() == want.ftp
            && ftps_addr.is_some() == want.ftps;
        if let (true, Some(addr)) = (done, addr.clone()) {
            // Keep draining stdout so the server never blocks on it.
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = reader.read_to_end(&mut sink);
            });
            return Listening {
                addr,
                fingerprint,
                metrics,
                ftp: ftp_addr,
                ftps: ftps_addr,
            };
        }
    }
}

/// A raw protocol connection: 8-byte big-endian length, then JSON.
pub struct Wire {
    pub stream: TcpStream,
}

impl Wire {
    pub fn connect(addr: &str) -> Wire {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Wire { stream }
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn send_frame(&mut self, payload: &[u8]) {
        let mut buf = (payload.len() as u64).to_be_bytes().to_vec();
        buf.extend_from_slice(payload);
        self.send_raw(&buf);
    }

    pub fn send(&mut self, v: Value) {
        self.send_frame(v.to_string().as_bytes());
    }

    /// Reads one reply frame; panics on EOF or timeout.
    pub fn recv(&mut self) -> Value {
        self.try_recv().expect("reply frame")
    }

    /// Reads one reply frame, or None if the server closed the connection.
    pub fn try_recv(&mut self) -> Option<Value> {
        let mut len = [0u8; 8];
        self.stream.read_exact(&mut len).ok()?;
        let len = u64::from_be_bytes(len) as usize;
        assert!(len > 0 && len < 64 << 20, "reply length {len}");
        let mut buf = vec![0u8; len];
        self.stream.read_exact(&mut buf).ok()?;
        Some(serde_json::from_slice(&buf).expect("reply is JSON"))
    }

    pub fn call(&mut self, v: Value) -> Value {
        self.send(v);
        self.recv()
    }

    /// True once the server has closed the connection (EOF).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0) | Err(_))
    }

    /// Uploads `data` to `path`; returns the final reply.
    pub fn put(&mut self, path: &str, data: &[u8]) -> Value {
        let r = self.call(json!({"op": "put", "path": path, "size": data.len()}));
        if r["code"] != 150 {
            return r;
        }
        self.send_raw(data);
        self.call(json!({"op": "done", "sha256": sha256_hex(data)}))
    }

    /// Downloads `path`; returns (150 reply, body, 226 trailer) or the error.
    pub fn get(&mut self, path: &str) -> Result<(Value, Vec<u8>, Value), Value> {
        let r = self.call(json!({"op": "get", "path": path}));
        if r["code"] != 150 {
            return Err(r);
        }
        let size = r["size"].as_u64().unwrap() as usize;
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).unwrap();
        let t = self.recv();
        Ok((r, body, t))
    }
}

/// The one polling helper: calls `f` every 10 ms until it is true (then
/// true) or `timeout` has passed (then false). Tests wait for conditions,
/// never for fixed times.
pub fn eventually(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if std::time::Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(data))
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Deterministic pseudo-random bytes.
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407)
        | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A TCP connection whose local address is `src` (any port), so one test
/// can speak from many loopback addresses. std can't bind before connect,
/// so the socket is made with rustix, close-on-exec like every socket std
/// makes: the tests run in parallel and spawn servers and clients, and a
/// child that inherited this socket would keep the connection open after
/// the test dropped it (the server would never see it close).
pub fn tcp_from(src: Ipv4Addr, addr: &str) -> std::io::Result<TcpStream> {
    use rustix::net::{bind, connect, sockopt};
    let dst: SocketAddr = addr.parse().expect("server address");
    let fd = cloexec_socket()?;
    // Many short connections from one address: don't run out of ports.
    let _ = sockopt::set_socket_reuseaddr(&fd, true);
    bind(&fd, &SocketAddrV4::new(src, 0))?;
    connect(&fd, &dst)?;
    let stream = TcpStream::from(fd);
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A new IPv4 stream socket, close-on-exec (see [`tcp_from`]).
pub fn cloexec_socket() -> std::io::Result<rustix::fd::OwnedFd> {
    use rustix::net::{socket_with, AddressFamily, SocketFlags, SocketType};
    Ok(socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )?)
}

/// Bytes of regular files below `dir` (hidden partials included), not
/// following symlinks: what the quota should say is used.
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    for e in rd.flatten() {
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if md.is_dir() {
            total += disk_usage(&e.path());
        } else if md.is_file() {
            total += md.len();
        }
    }
    total
}

/// Every hidden partial upload below `dir`: (path, size).
pub fn partials_on_disk(dir: &Path) -> Vec<(PathBuf, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(md) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        if md.is_dir() {
            out.extend(partials_on_disk(&e.path()));
        } else if e
            .file_name()
            .as_bytes()
            .windows(13)
            .any(|w| w == b".miniftp-part")
        {
            out.push((e.path(), md.len()));
        }
    }
    out
}
