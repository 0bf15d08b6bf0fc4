//! What a packager and an operator do, end to end: `make install
//! DESTDIR=...`, the service user from the installed sysusers.d file, the
//! data directory from the installed tmpfiles.d file, `useradd` as root
//! with the installed config, the installed server run as the service
//! user, and a transfer with the installed client.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::server_core::common::wait_timeout;
use crate::util::{self, BIN};

/// The build directory the test binary came from: `make` must find the
/// binary there (and so honour CARGO_TARGET_DIR).
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .and_then(Path::parent)
        .expect("BIN is TARGET/debug/miniftp")
        .to_owned()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        util::stdout(&out),
        util::stderr(&out)
    );
    out
}

/// `make install` of the debug build into `destdir` with PREFIX=/usr.
fn make_install(destdir: &Path) {
    run_ok(
        make()
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args(["install", "PROFILE=debug", "PREFIX=/usr"])
            .arg(format!("DESTDIR={}", destdir.display()))
            .env("CARGO_TARGET_DIR", target_dir()),
    );
}

/// `make`, without the variables cargo set for this test: some crates'
/// build scripts rerun when those change (ring watches
/// CARGO_MANIFEST_DIR...), and the nested `cargo build` would rebuild the
/// binary the other tests are running.
fn make() -> Command {
    let mut cmd = Command::new("make");
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && key != "CARGO_HOME" || key == "RUST_RECURSION_COUNT" {
            cmd.env_remove(&*key);
        }
    }
    cmd
}

/// The service user, made the way a package makes it (systemd-sysusers on
/// the installed file), or with useradd(8) where systemd is missing.
/// Returns its (uid, gid).
fn service_user(destdir: &Path) -> (u32, u32) {
    let conf = destdir.join("usr/lib/sysusers.d/miniftp.conf");
    let sysusers = Command::new("systemd-sysusers").arg(&conf).output();
    if !sysusers.is_ok_and(|o| o.status.success()) {
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg("miniftp")
            .status();
    }
    let id = |flag: &str| -> u32 {
        let out = run_ok(Command::new("id").args([flag, "miniftp"]));
        util::stdout(&out).trim().parse().expect("numeric id")
    };
    (id("-u"), id("-g"))
}

/// The data directory from the installed tmpfiles.d line, moved to `data`
/// (systemd-tmpfiles on a copy with the path replaced), or by hand.
fn data_dir(destdir: &Path, data: &Path, ids: (u32, u32)) {
    let conf = std::fs::read_to_string(destdir.join("usr/lib/tmpfiles.d/miniftp.conf")).unwrap();
    assert!(conf.contains("d     /var/lib/miniftp 0700 miniftp miniftp"));
    let copy = destdir.join("tmpfiles-test.conf");
    let data_str = data.to_str().unwrap();
    std::fs::write(&copy, conf.replace("/var/lib/miniftp", data_str)).unwrap();
    let made = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(&copy)
        .status();
    if !made.is_ok_and(|s| s.success()) {
        std::fs::create_dir(data).unwrap();
        std::fs::set_permissions(data, std::fs::Permissions::from_mode(0o700)).unwrap();
        rustix::fs::chown(
            data,
            Some(rustix::fs::Uid::from_raw(ids.0)),
            Some(rustix::fs::Gid::from_raw(ids.1)),
        )
        .unwrap();
    }
    let md = std::fs::metadata(data).unwrap();
    assert_eq!((md.uid(), md.gid()), ids, "data directory owner");
    assert_eq!(md.mode() & 0o777, 0o700);
}

/// A staged install: the installed binary and config, the data directory
/// and the service user's ids.
struct Installed {
    stage: tempfile::TempDir,
    bin: PathBuf,
    config: PathBuf,
    data: PathBuf,
    ids: (u32, u32),
}

impl Installed {
    /// The installed `miniftp` with ARGS, the installed config and the
    /// data directory (as the caller: root in CI), `stdin` on its input.
    fn run(&self, args: &[&str], stdin: &str) -> Output {
        let mut child = Command::new(&self.bin)
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--root")
            .arg(&self.data)
            .env_remove("MINIFTP_CONFIG")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// `miniftp serve` on port 0 as the service user (root drops to it
    /// with setpriv), its log in `log`.
    fn serve(&self, log: &Path) -> Child {
        let (uid, gid) = self.ids;
        let mut cmd = if is_root() {
            let mut c = Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg(&self.bin);
            c
        } else {
            Command::new(&self.bin)
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--root")
            .arg(&self.data)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("MINIFTP_CONFIG")
            .env("RUST_LOG", "info")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap());
        cmd.spawn().expect("spawn the installed server")
    }

    /// The installed client as carol, trusting the printed fingerprint.
    fn client(&self, addr: &str, fingerprint: &str, args: &[&str]) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("MINIFTP_SERVER", addr)
            .env("MINIFTP_USER", "carol")
            .env("MINIFTP_PASSWORD", "carol-password")
            .env("MINIFTP_FINGERPRINT", fingerprint)
            .env("HOME", self.stage.path())
            .env_remove("MINIFTP_PLAINTEXT")
            .env_remove("XDG_CONFIG_HOME")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", util::stderr(&out));
    }
}

/// `make install` into a staging directory, and the layout a package
/// ships: unit, config, sample, man page, a stripped binary.
fn install() -> Installed {
    let stage = tempfile::tempdir().unwrap();
    // The service user walks to its data directory through here.
    std::fs::set_permissions(stage.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let destdir = stage.path().join("destdir");
    make_install(&destdir);
    let bin = destdir.join("usr/bin/miniftp");
    let unit = std::fs::read_to_string(destdir.join("usr/lib/systemd/system/miniftp.service"))
        .expect("unit in PREFIX/lib/systemd/system");
    assert!(
        unit.contains("\nExecStart=/usr/bin/miniftp serve --config /etc/miniftp.toml\n"),
        "ExecStart follows PREFIX:\n{unit}"
    );
    assert!(unit.contains("\nStateDirectory=miniftp\n"));
    let config = destdir.join("etc/miniftp.toml");
    let toml = std::fs::read_to_string(&config).expect("config in SYSCONFDIR");
    assert!(toml.contains("\nroot = \"/var/lib/miniftp\"\n"), "{toml}");
    assert!(destdir
        .join("usr/share/miniftp/miniftp.toml.sample")
        .is_file());
    assert!(destdir.join("usr/share/man/man1/miniftp.1").is_file());
    let installed_size = std::fs::metadata(&bin).unwrap().len();
    let built_size = std::fs::metadata(BIN).unwrap().len();
    assert!(
        installed_size * 2 < built_size,
        "installed binary not stripped: {installed_size} bytes, built {built_size}"
    );
    let data = stage.path().join("var-lib-miniftp");
    let ids = if is_root() {
        let ids = service_user(&destdir);
        data_dir(&destdir, &data, ids);
        ids
    } else {
        std::fs::create_dir(&data).unwrap();
        let me = rustix::process::geteuid().as_raw();
        (me, rustix::process::getegid().as_raw())
    };
    Installed {
        stage,
        bin,
        config,
        data,
        ids,
    }
}

/// A users file left to root, as `useradd` used to leave it: the server
/// refuses to start, naming the file and the fix; any `useradd` change as
/// root hands the file back.
fn refuses_a_root_owned_users_file(inst: &Installed) {
    let users = inst.data.join("users.toml");
    let root = (Some(rustix::fs::Uid::ROOT), Some(rustix::fs::Gid::ROOT));
    rustix::fs::chown(&users, root.0, root.1).unwrap();
    let log = inst.stage.path().join("refused.log");
    let mut child = inst.serve(&log);
    let status = wait_timeout(&mut child, Duration::from_secs(20)).expect("server exits");
    assert_eq!(status.code(), Some(6), "exit code for a wrong owner");
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&users.display().to_string()), "{text}");
    let fix = format!("chown -R miniftp: {}", inst.data.display());
    assert!(text.contains(&fix), "the fix is named: {text}");
    let out = inst.run(&["useradd", "carol", "--set-quota", "20M"], "");
    assert!(out.status.success(), "useradd: {}", util::stderr(&out));
    assert_eq!(std::fs::metadata(&users).unwrap().uid(), inst.ids.0);
}

/// Root here (CI): the installed sysusers.d file makes a real `miniftp`
/// system user on this machine, as a package's post-install would.
#[test]
fn packaged_install_serves_as_its_own_user() {
    let inst = install();
    // useradd as root with the installed config: the files it writes keep
    // the data directory's owner, and it says so.
    let out = inst.run(
        &["useradd", "carol", "--quota", "10M", "--password-stdin"],
        "carol-password\n",
    );
    assert!(out.status.success(), "useradd: {}", util::stderr(&out));
    for name in ["users.toml", ".users.lock"] {
        let md = std::fs::metadata(inst.data.join(name)).unwrap();
        assert_eq!((md.uid(), md.gid()), inst.ids, "owner of {name}");
        assert_eq!(md.mode() & 0o077, 0, "{name} is owner-only");
    }
    if is_root() {
        let said = util::stdout(&out);
        assert!(said.contains("are given to"), "useradd says so: {said}");
        refuses_a_root_owned_users_file(&inst);
    }

    let mut server = inst.serve(&inst.stage.path().join("serve.log"));
    let (addr, fingerprint) = util::read_listen_line(&mut server);
    let fingerprint = fingerprint.expect("the packaged config serves TLS");
    let body = util::data(300_000, 14);
    let local = inst.stage.path().join("upload.bin");
    std::fs::write(&local, &body).unwrap();
    inst.client(
        &addr,
        &fingerprint,
        &["put", "-q", local.to_str().unwrap(), "/upload.bin"],
    );
    let back = inst.stage.path().join("back.bin");
    inst.client(
        &addr,
        &fingerprint,
        &["get", "-q", "/upload.bin", back.to_str().unwrap()],
    );
    assert_eq!(std::fs::read(&back).unwrap(), body);
    // The upload is the service user's, in the data directory.
    let stored = inst.data.join("home/carol/upload.bin");
    assert_eq!(std::fs::metadata(&stored).unwrap().uid(), inst.ids.0);
    let _ = server.kill();
    let _ = server.wait();
}
