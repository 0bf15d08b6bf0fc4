//! One connection's state machine, fed arbitrary byte streams: a real
//! server (in this process, on loopback) gets each input on a fresh
//! connection — before login, or right after a login when the first byte
//! is odd — then the client half-closes. The server must answer and close
//! within seconds (no hang), never crash, and keep serving others.
#![no_main]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use miniftp::config::{Auth, Config};
use miniftp::server::{self, Shared};
use miniftp::users::{default_home, hash_password, User, UserDb};

fn server() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let mut config = Config::default();
        config.root = dir.join("data");
        config.tls.enabled = false;
        config.auth = Auth {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            ..Auth::default()
        };
        config.storage.fsync = false;
        config.limits.max_failed_logins = u32::MAX;
        config.limits.failed_login_delay_ms = 0;
        config.limits.max_connections_per_ip = 10_000;
        config.limits.login_timeout_secs = 5;
        config.limits.idle_timeout_secs = 5;
        std::fs::create_dir_all(config.homes_dir()).unwrap();
        let users = UserDb {
            users: vec![User {
                name: "fuzz".into(),
                password: hash_password("fuzz", &config.auth),
                quota: 16 << 20,
                home: default_home("fuzz"),
                max_entries: None,
                disabled: false,
                rate_up: 0,
                rate_down: 0,
            }],
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let backend = miniftp::storage::open(&config).unwrap();
        let shared = Arc::new(Shared::new(config, users, backend, None));
        let listeners = vec![server::Listener {
            socket: listener,
            front: server::front::Front::Native,
        }];
        std::thread::spawn(move || server::run(listeners, server::OpsListeners::default(), shared, None).unwrap());
        addr
    })
}

fn frame(json: &str) -> Vec<u8> {
    let mut v = (json.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(json.as_bytes());
    v
}

fn read_frame(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut len = [0u8; 8];
    s.read_exact(&mut len).ok()?;
    let len = u64::from_be_bytes(len);
    assert!(len > 0 && len <= 4 << 20, "reply frame of {len} bytes");
    let mut body = vec![0u8; len as usize];
    s.read_exact(&mut body).ok()?;
    Some(body)
}

fuzz_target!(|data: &[u8]| {
    let addr = server();
    let mut s = TcpStream::connect(addr).expect("server accepts");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let greeting = read_frame(&mut s).expect("greeting");
    assert!(greeting.starts_with(b"{\"code\":220"));
    let (first, rest) = data.split_first().unwrap_or((&0, &[]));
    if first & 1 == 1 {
        s.write_all(&frame(r#"{"op":"login","user":"fuzz","password":"fuzz"}"#))
            .unwrap();
        let reply = read_frame(&mut s).expect("login reply");
        assert!(reply.starts_with(b"{\"code\":230"), "{}", String::from_utf8_lossy(&reply));
    }
    let _ = s.write_all(rest);
    let _ = s.shutdown(std::net::Shutdown::Write);
    // Everything the server still says, then its close: a timeout here is
    // a hang.
    let mut sink = [0u8; 65536];
    loop {
        match s.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            // libFuzzer's own timers interrupt blocking calls.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => panic!("server did not close the connection: {e}"),
        }
    }
});
