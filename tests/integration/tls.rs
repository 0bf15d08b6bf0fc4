//! TLS end to end: the real server with TLS on, the real clients, and a
//! recording relay between them.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::util::*;

fn tls_server(extra: &str) -> TestServer {
    TestServer::with(Opts {
        toml: format!("[tls]\nenabled = true\n{extra}"),
        ..Opts::default()
    })
}

fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn server_prints_its_fingerprint_and_keeps_the_key_private() {
    let s = tls_server("");
    let fp = s.fingerprint.clone().expect("a fingerprint line");
    let hex = fp.strip_prefix("SHA256:").expect("SHA256: prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
    use std::os::unix::fs::PermissionsExt;
    let key = s.root().join("tls/key.pem");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "key.pem is owner-only");
    // The same certificate (and fingerprint) after a restart.
    let mut s = s;
    s.kill_and_restart();
    assert_eq!(s.fingerprint.as_deref(), Some(fp.as_str()));
}

#[test]
fn full_session_over_tls() {
    let s = tls_server("");
    let dir = s.dir.path();
    let body = data(3 << 20, 7);
    std::fs::write(dir.join("up.bin"), &body).unwrap();
    let up = s.cli(
        &[
            "put",
            "-u",
            "alice",
            dir.join("up.bin").to_str().unwrap(),
            "/x.bin",
        ],
        "alice-pw",
    );
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    let got = dir.join("down.bin");
    let down = s.cli(
        &["get", "-u", "alice", "/x.bin", got.to_str().unwrap()],
        "alice-pw",
    );
    assert_eq!(code(&down), 0, "{}", stderr(&down));
    assert_eq!(std::fs::read(&got).unwrap(), body);
    let script = b"mkdir -p a/b\ncd a\npwd\nls /\nquota\n";
    let sh = s.cli_env(
        &["shell", "-u", "alice"],
        &[("MINIFTP_PASSWORD", "alice-pw")],
        Some(script),
    );
    assert_eq!(code(&sh), 0, "{}", stderr(&sh));
    let out = stdout(&sh);
    assert!(out.contains("/a\n"), "{out}");
    assert!(out.contains("x.bin"), "{out}");
}

#[test]
fn unknown_certificate_without_a_terminal_fails_with_the_fingerprint() {
    let s = tls_server("");
    let fp = s.fingerprint.clone().unwrap();
    let o = s.cli_env(
        &["get", "-u", "alice", "/nothing", "-"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", ""),
        ],
        None,
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&fp),
        "the message shows the fingerprint: {err}"
    );
    assert!(err.contains("--fingerprint"), "and how to trust it: {err}");
}

#[test]
fn wrong_fingerprint_is_refused() {
    let s = tls_server("");
    let wrong = format!("SHA256:{}", "ab".repeat(32));
    let o = s.cli_env(
        &["get", "-u", "alice", "/nothing", "-"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", &wrong),
        ],
        None,
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing"), "{}", stderr(&o));
}

#[test]
fn colon_separated_fingerprint_is_accepted() {
    let s = tls_server("");
    let hex = s.fingerprint.clone().unwrap()["SHA256:".len()..].to_uppercase();
    let colons: Vec<&str> = (0..32).map(|i| &hex[2 * i..2 * i + 2]).collect();
    let fp = colons.join(":");
    let o = s.cli_env(
        &["shell", "-u", "alice"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", &fp),
        ],
        Some(b"pwd\n"),
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn known_servers_file_pins_and_a_changed_certificate_is_refused_loudly() {
    let mut s = tls_server("");
    let fp = s.fingerprint.clone().unwrap();
    let known = s.dir.path().join(".config/miniftp/known_servers");
    std::fs::create_dir_all(known.parent().unwrap()).unwrap();
    std::fs::write(&known, format!("{} {fp}\n", s.addr)).unwrap();
    let ok = s.cli_env(
        &["shell", "-u", "alice"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", ""),
        ],
        Some(b"pwd\n"),
    );
    assert_eq!(code(&ok), 0, "known server accepted: {}", stderr(&ok));
    // A new certificate on the same address.
    std::fs::remove_dir_all(s.root().join("tls")).unwrap();
    let _ = s.child.kill();
    let _ = s.child.wait();
    let port = s.addr.rsplit(':').next().unwrap().to_string();
    let cfg = std::fs::read_to_string(&s.config)
        .unwrap()
        .replace("127.0.0.1:0", &format!("127.0.0.1:{port}"));
    std::fs::write(&s.config, cfg).unwrap();
    s.kill_and_restart();
    assert_ne!(s.fingerprint.as_deref(), Some(fp.as_str()));
    let o = s.cli_env(
        &["shell", "-u", "alice"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", ""),
        ],
        Some(b"pwd\n"),
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("CHANGED"), "{}", stderr(&o));
}

#[test]
fn plaintext_client_against_a_tls_server_fails_clearly() {
    let s = tls_server("");
    let o = s.cli_env(
        &[
            "get",
            "-u",
            "alice",
            "/x",
            "-",
            "--plaintext",
            "--retries",
            "0",
        ],
        &[("MINIFTP_PASSWORD", "alice-pw")],
        None,
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("TLS"), "{}", stderr(&o));
    // And a raw plaintext frame gets the connection closed, not served.
    let mut w = Wire::connect(&s.addr);
    w.send(serde_json::json!({"op": "noop"}));
    assert!(
        w.try_recv().is_none(),
        "a TLS server must not answer plaintext"
    );
}

#[test]
fn tls_client_against_a_plaintext_server_fails_clearly() {
    let s = TestServer::start();
    let o = s.cli_env(
        &["get", "-u", "alice", "/x", "-", "--retries", "0"],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_PLAINTEXT", "0"),
            (
                "MINIFTP_FINGERPRINT",
                &format!("SHA256:{}", "00".repeat(32)),
            ),
        ],
        None,
    );
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("--plaintext"), "{}", stderr(&o));
}

/// A relay between client and server that records every byte both ways.
fn recording_relay(target: &str) -> (String, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let log = Arc::new(Mutex::new(Vec::new()));
    let target = target.to_string();
    let rec = Arc::clone(&log);
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(&target) else {
                return;
            };
            for (mut from, mut to) in [
                (client.try_clone().unwrap(), server.try_clone().unwrap()),
                (server, client),
            ] {
                let rec = Arc::clone(&rec);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    loop {
                        match from.read(&mut buf) {
                            Ok(0) | Err(_) => {
                                let _ = to.shutdown(std::net::Shutdown::Write);
                                return;
                            }
                            Ok(n) => {
                                rec.lock().unwrap().extend_from_slice(&buf[..n]);
                                if to.write_all(&buf[..n]).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        }
    });
    (addr, log)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn recorded_tls_session_shows_neither_password_nor_content() {
    let s = tls_server("");
    let (relay, log) = recording_relay(&s.addr);
    let password = "alice-pw";
    let secret = b"TOP-SECRET-PAYLOAD-0123456789-".repeat(2000);
    let file = s.dir.path().join("secret.txt");
    std::fs::write(&file, &secret).unwrap();
    let up = s.cli_env(
        &[
            "put",
            "-u",
            "alice",
            "-s",
            &relay,
            file.to_str().unwrap(),
            "/secret.txt",
        ],
        &[("MINIFTP_PASSWORD", password)],
        None,
    );
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    let down = s.cli_env(
        &["get", "-u", "alice", "-s", &relay, "/secret.txt", "-"],
        &[("MINIFTP_PASSWORD", password)],
        None,
    );
    assert_eq!(code(&down), 0, "{}", stderr(&down));
    assert_eq!(down.stdout, secret);
    let bytes = log.lock().unwrap().clone();
    assert!(
        bytes.len() > secret.len() * 2,
        "the relay saw both transfers"
    );
    assert!(
        !contains(&bytes, password.as_bytes()),
        "password visible on the wire"
    );
    assert!(
        !contains(&bytes, b"TOP-SECRET-PAYLOAD"),
        "content visible on the wire"
    );
    assert!(
        !contains(&bytes, b"\"op\""),
        "protocol frames visible on the wire"
    );
    // The same session in plaintext would show both: the check can fail.
    let p = TestServer::start();
    let (relay, log) = recording_relay(&p.addr);
    let up = p.cli_env(
        &[
            "put",
            "-u",
            "alice",
            "-s",
            &relay,
            file.to_str().unwrap(),
            "/secret.txt",
        ],
        &[("MINIFTP_PASSWORD", password)],
        None,
    );
    assert_eq!(code(&up), 0, "{}", stderr(&up));
    let bytes = log.lock().unwrap().clone();
    assert!(contains(&bytes, password.as_bytes()));
    assert!(contains(&bytes, b"TOP-SECRET-PAYLOAD"));
}

/// A CA, and server certificates it signs, written as PEM files.
struct Pki {
    ca_pem: String,
    ca: rcgen::CertifiedKey,
}

impl Pki {
    fn new() -> Pki {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "miniftp test CA");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Pki {
            ca_pem: cert.pem(),
            ca: rcgen::CertifiedKey {
                cert,
                key_pair: key,
            },
        }
    }

    /// A server certificate for `names`; `expired` puts its validity in
    /// the past. Writes cert.pem, key.pem and ca.pem into `dir`.
    fn issue(&self, dir: &Path, names: &[&str], expired: bool) {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params
            .signed_by(&key, &self.ca.cert, &self.ca.key_pair)
            .unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
    }
}

fn ca_server(names: &[&str], expired: bool) -> (TestServer, tempfile::TempDir) {
    let pki_dir = tempfile::tempdir().unwrap();
    Pki::new().issue(pki_dir.path(), names, expired);
    let s = tls_server(&format!(
        "cert = \"{}\"\nkey = \"{}\"\n",
        pki_dir.path().join("cert.pem").display(),
        pki_dir.path().join("key.pem").display()
    ));
    (s, pki_dir)
}

fn via_ca(s: &TestServer, ca: &Path) -> std::process::Output {
    let port = s.addr.rsplit(':').next().unwrap();
    s.cli_env(
        &[
            "shell",
            "-u",
            "alice",
            "-s",
            &format!("localhost:{port}"),
            "--ca-file",
            ca.to_str().unwrap(),
        ],
        &[
            ("MINIFTP_PASSWORD", "alice-pw"),
            ("MINIFTP_FINGERPRINT", ""),
        ],
        Some(b"pwd\n"),
    )
}

#[test]
fn certificate_from_a_ca_verifies_with_the_bundle() {
    let (s, pki) = ca_server(&["localhost"], false);
    let o = via_ca(&s, &pki.path().join("ca.pem"));
    assert_eq!(code(&o), 0, "{}", stderr(&o));
}

#[test]
fn expired_ca_certificate_is_refused() {
    let (s, pki) = ca_server(&["localhost"], true);
    let o = via_ca(&s, &pki.path().join("ca.pem"));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(
        stderr(&o).to_lowercase().contains("expired"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wrong_host_ca_certificate_is_refused() {
    let (s, pki) = ca_server(&["files.example.com"], false);
    let o = via_ca(&s, &pki.path().join("ca.pem"));
    assert_eq!(code(&o), 3, "{}", stderr(&o));
    assert!(stderr(&o).contains("NotValidForName"), "{}", stderr(&o));
}

#[test]
fn only_one_of_cert_and_key_is_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "listen = \"127.0.0.1:0\"\nroot = \"{}\"\n[tls]\ncert = \"/nonexistent.pem\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let o = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tls.cert"));
}

#[test]
fn a_refused_connection_hears_why_over_tls() {
    let s = tls_server("[limits]\nmax_connections = 1\n");
    // A bare TCP connection takes the one slot (it never handshakes).
    let _hog = TcpStream::connect(&s.addr).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let o = s.cli_env(
        &["get", "-u", "alice", "/x", "-", "--retries", "0"],
        &[("MINIFTP_PASSWORD", "alice-pw")],
        None,
    );
    assert_eq!(code(&o), 10, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("too many connections"),
        "{}",
        stderr(&o)
    );
}
