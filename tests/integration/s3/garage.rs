//! A real three-node Garage cluster on loopback (replication factor 3) for
//! the S3 tests: free ports, a temporary directory, a key and a bucket.
//! [`Garage::start`] gives a cluster of one's own (killed and removed on
//! drop; nodes can be killed and restarted); [`Garage::shared`] one cluster
//! for all the tests of this run that leave the nodes alone (each test then
//! works under its own key prefix, [`unique_prefix`]).
//!
//! The binary: `$MINIFTP_GARAGE`, else `garage` on PATH, else
//! `$CARGO_HOME/bin/garage` (`make garage` installs it there).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use miniftp::storage::s3::{Client, ClientConfig};

use crate::util::eventually;

/// How long the cluster may take to come up or to heal after a restart.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

pub const REGION: &str = "garage";
pub const BUCKET: &str = "miniftp-test";

struct Node {
    config: PathBuf,
    log: PathBuf,
    s3_port: u16,
    child: Option<Child>,
}

pub struct Garage {
    /// Removed on drop (None for the shared cluster, see `shared`).
    dir: Option<tempfile::TempDir>,
    root: PathBuf,
    bin: PathBuf,
    nodes: Vec<Node>,
    /// The nodes' ids (full hex), in node order.
    ids: Vec<String>,
    pub key_id: String,
    pub secret: String,
}

impl Garage {
    /// A cluster of one's own, ready: layout applied, key and bucket made.
    pub fn start() -> Garage {
        let dir = tempfile::Builder::new()
            .prefix("miniftp-garage-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        let mut g = Garage::launch(root);
        g.dir = Some(dir);
        g
    }

    /// One cluster for the whole test run. Its nodes are started from a
    /// thread that lives as long as the process and die with it
    /// (PR_SET_PDEATHSIG); its directory is removed by the next run.
    pub fn shared() -> &'static Garage {
        static SHARED: OnceLock<Garage> = OnceLock::new();
        SHARED.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::Builder::new()
                .name("garage-keeper".into())
                .spawn(move || {
                    let root = shared_dir();
                    let started = std::panic::catch_unwind(|| Garage::launch(root));
                    let ok = started.is_ok();
                    let _ = tx.send(started);
                    if ok {
                        // The nodes die with this thread: keep it for good.
                        loop {
                            std::thread::park();
                        }
                    }
                })
                .expect("spawn garage keeper");
            match rx.recv().expect("garage keeper") {
                Ok(g) => g,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    fn launch(root: PathBuf) -> Garage {
        let bin = garage_bin();
        let mut last = String::new();
        // Ports are found free, then bound by Garage: another process may
        // take one in between. Start over with new ports if so.
        for _ in 0..3 {
            let mut g = Garage {
                dir: None,
                root: root.clone(),
                bin: bin.clone(),
                nodes: Vec::new(),
                ids: Vec::new(),
                key_id: String::new(),
                secret: String::new(),
            };
            match g.bootstrap() {
                Ok(()) => return g,
                Err(e) => {
                    last = format!("{e}\n{}", g.logs());
                    g.stop_all();
                    let _ = std::fs::remove_dir_all(&root);
                }
            }
        }
        panic!("could not start a Garage cluster: {last}");
    }

    fn bootstrap(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.root).map_err(|e| e.to_string())?;
        let ports = free_ports(9);
        let secret: [u8; 32] = rand::random();
        let secret = hex::encode(secret);
        for n in 0..3 {
            let (rpc, s3, admin) = (ports[n], ports[3 + n], ports[6 + n]);
            let config = self.root.join(format!("g{}.toml", n + 1));
            let data = self.root.join(format!("g{}", n + 1));
            std::fs::write(&config, node_config(&data, rpc, s3, admin, &secret))
                .map_err(|e| e.to_string())?;
            self.nodes.push(Node {
                log: self.root.join(format!("g{}.log", n + 1)),
                config,
                s3_port: s3,
                child: None,
            });
            self.spawn(n + 1);
        }
        self.wait_for("node 1 to answer", || self.cli(1, &["status"]).is_ok())?;
        for n in 2..=3 {
            let id = self.cli(n, &["node", "id", "-q"])?;
            self.cli(1, &["node", "connect", id.trim()])?;
        }
        self.assign_layout()?;
        self.make_key_and_bucket()?;
        self.wait_for("the bucket to take writes", || self.probe_write())
    }

    fn assign_layout(&mut self) -> Result<(), String> {
        for n in 1..=3 {
            let id = self.cli(n, &["node", "id", "-q"])?;
            // `node id -q` prints `<full id>@<address>`.
            let id = id.trim().split('@').next().unwrap_or_default().to_string();
            if id.len() < 16 {
                return Err(format!("node {n}: unexpected id {id:?}"));
            }
            self.ids.push(id);
        }
        self.wait_for("all three nodes to be connected", || {
            (1..=3).all(|n| self.node_up(n))
        })?;
        for id in &self.ids {
            self.cli(1, &["layout", "assign", "-z", "dc1", "-c", "1G", id])?;
        }
        self.cli(1, &["layout", "apply", "--version", "1"])?;
        Ok(())
    }

    fn make_key_and_bucket(&mut self) -> Result<(), String> {
        let out = self.cli(1, &["key", "create", "miniftp-test"])?;
        let words: Vec<&str> = out.split(|c: char| !c.is_ascii_alphanumeric()).collect();
        self.key_id = words
            .iter()
            .find(|w| w.starts_with("GK") && w.len() > 20)
            .ok_or_else(|| format!("no key id in: {out}"))?
            .to_string();
        self.secret = words
            .iter()
            .find(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit()))
            .ok_or_else(|| format!("no secret in: {out}"))?
            .to_string();
        self.cli(1, &["bucket", "create", BUCKET])?;
        self.cli(
            1,
            &[
                "bucket",
                "allow",
                "--read",
                "--write",
                "--owner",
                BUCKET,
                "--key",
                "miniftp-test",
            ],
        )?;
        Ok(())
    }

    /// The S3 endpoint of node 1 (which the tests never kill).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.nodes[0].s3_port)
    }

    /// A client config for this cluster's bucket and key.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig {
            endpoint: self.endpoint(),
            region: REGION.into(),
            bucket: BUCKET.into(),
            access_key_id: self.key_id.clone(),
            secret_access_key: self.secret.clone(),
            path_style: true,
            ca_bundle: None,
        }
    }

    pub fn client(&self) -> Client {
        Client::new(&self.client_config()).expect("client")
    }

    /// SIGKILL node `n` (1..=3).
    pub fn kill(&mut self, n: usize) {
        if let Some(mut c) = self.nodes[n - 1].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts node `n` again on its data and waits until node 1 sees it up.
    pub fn restart(&mut self, n: usize) {
        assert!(self.nodes[n - 1].child.is_none(), "node {n} is running");
        self.spawn(n);
        let ready = self.wait_for("the restarted node to rejoin", || self.node_up(n));
        if let Err(e) = ready {
            panic!("{e}\n{}", self.logs());
        }
    }

    /// Whether node 1 lists node `n` among its healthy nodes (`garage
    /// status` prints the first 16 hex digits of each id, healthy nodes
    /// first, then a `FAILED NODES` table).
    fn node_up(&self, n: usize) -> bool {
        let Ok(status) = self.cli(1, &["status"]) else {
            return false;
        };
        let healthy = status.split("FAILED NODES").next().unwrap_or_default();
        healthy.contains(&self.ids[n - 1][..16])
    }

    fn spawn(&mut self, n: usize) {
        let node = &mut self.nodes[n - 1];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("garage log");
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-c")
            .arg(&node.config)
            .arg("server")
            .env("RUST_LOG", "garage=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        die_with_parent(&mut cmd);
        node.child = Some(cmd.spawn().expect("spawn garage"));
    }

    /// Runs the garage CLI against node `n`; its stdout, or an error with
    /// its stderr.
    fn cli(&self, n: usize, args: &[&str]) -> Result<String, String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.nodes[n - 1].config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("garage {args:?}: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "garage {args:?}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn probe_write(&self) -> bool {
        let Ok(c) = Client::new(&self.client_config()) else {
            return false;
        };
        c.put("probe", b"ok", None, &[]).is_ok() && c.delete("probe").is_ok()
    }

    fn wait_for(&self, what: &str, ready: impl FnMut() -> bool) -> Result<(), String> {
        if eventually(READY_TIMEOUT, ready) {
            Ok(())
        } else {
            Err(format!("timed out waiting for {what}"))
        }
    }

    /// The end of each node's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let mut text = String::new();
            if let Ok(mut f) = std::fs::File::open(&node.log) {
                let _ = f.read_to_string(&mut text);
            }
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {}\n", node.log.display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }

    fn stop_all(&mut self) {
        for n in 1..=self.nodes.len() {
            self.kill(n);
        }
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// A key prefix no other test uses: `t-<name>-<random>`.
pub fn unique_prefix(name: &str) -> String {
    let r: u64 = rand::random();
    format!("t-{name}-{r:016x}")
}

fn node_config(data: &Path, rpc: u16, s3: u16, admin: u16, secret: &str) -> String {
    format!(
        "metadata_dir = \"{d}/meta\"\n\
         data_dir = \"{d}/data\"\n\
         db_engine = \"lmdb\"\n\
         replication_factor = 3\n\
         rpc_bind_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_public_addr = \"127.0.0.1:{rpc}\"\n\
         rpc_secret = \"{secret}\"\n\
         bootstrap_peers = []\n\
         [s3_api]\n\
         s3_region = \"{REGION}\"\n\
         api_bind_addr = \"127.0.0.1:{s3}\"\n\
         root_domain = \".s3.garage.localhost\"\n\
         [admin]\n\
         api_bind_addr = \"127.0.0.1:{admin}\"\n",
        d = data.display()
    )
}

/// `n` ports that were free a moment ago (all bound at once, so distinct).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

fn garage_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MINIFTP_GARAGE") {
        return PathBuf::from(p);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("garage");
            if p.is_file() {
                return p;
            }
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .unwrap_or_default();
    let p = cargo_home.join("bin").join("garage");
    assert!(
        p.is_file(),
        "the S3 tests need Garage: run `make garage` (or set MINIFTP_GARAGE to its binary)"
    );
    p
}

/// `$TMPDIR/miniftp-garage-shared-<pid>`; directories of earlier runs whose
/// process is gone are removed first.
fn shared_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(pid) = name.strip_prefix("miniftp-garage-shared-") else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    tmp.join(format!("miniftp-garage-shared-{}", std::process::id()))
}

/// The node gets SIGKILL when the thread that started it ends (for the
/// shared cluster: when the test process exits), so no node outlives the
/// tests even if they crash.
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs between fork and exec; it only makes one
    // prctl system call, which is async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}
