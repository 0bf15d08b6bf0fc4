//! The core's rules, reached through the FTP listener (issue 13, "Through
//! FTP"): quotas midway through an upload, the jail, the login lockout, data
//! connections from another address, uploads cut off and resumed, and the
//! data channel's place in the connection limits. Plain FTP, driven by the
//! small client in `wire.rs`, on a server whose native listener is there too.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

use super::wire::Ftp;
use crate::util::*;

/// A plain-FTP server (TLS off, not required) with `extra` TOML (which may
/// add to `[ftp]` and other sections) and `users`.
pub fn plain_ftp(
    extra: &str,
    users: Vec<(&'static str, &'static str, &'static str)>,
) -> TestServer {
    let mut toml = String::from("[ftp]\nlisten = \"127.0.0.1:0\"\nrequire_tls = false\n");
    let mut rest = String::new();
    for line in extra.lines() {
        match line.strip_prefix("ftp.") {
            Some(key) => toml.push_str(&format!("{key}\n")),
            None => rest.push_str(&format!("{line}\n")),
        }
    }
    toml.push_str(&rest);
    TestServer::with(Opts {
        toml,
        users,
        ..Opts::default()
    })
}

fn ftp_addr(s: &TestServer) -> String {
    s.ftp_addr.clone().expect("an `ftp listening on` line")
}

#[test]
fn quota_exceeded_midway_is_552_and_keeps_nothing() {
    let s = plain_ftp("", vec![("alice", "alice-pw", "1M")]);
    let mut f = Ftp::login(&ftp_addr(&s), "alice", "alice-pw");
    let big = data(3 << 20, 1);
    let r = f.stor("big.bin", &big);
    assert_eq!(r.code, 552, "{r:?}");
    assert!(r.text.contains("quota"), "{r:?}");
    let home = s.home("alice");
    assert!(!home.join("big.bin").exists());
    assert!(
        eventually(Duration::from_secs(5), || partials_on_disk(&home)
            .is_empty()),
        "{:?}",
        partials_on_disk(&home)
    );
    // The reservation was given back: what fits still goes in.
    let small = data(500 << 10, 2);
    assert_eq!(f.stor("small.bin", &small).code, 226);
    assert_eq!(f.retr("small.bin").unwrap(), small);
    assert_eq!(disk_usage(&home), small.len() as u64);
    f.expect("QUIT", 221);
}

#[test]
fn dotdot_and_symlinks_leading_out_are_refused() {
    let s = plain_ftp("", vec![("alice", "alice-pw", "10M")]);
    let home = s.home("alice");
    let mut f = Ftp::login(&ftp_addr(&s), "alice", "alice-pw");
    f.expect("CWD ..", 553);
    f.expect("CWD ../bob", 553);
    f.expect("SIZE ../../users.toml", 553);
    f.expect("MKD d", 257);
    f.expect("CWD d", 250);
    f.expect("CWD ../..", 553);
    f.expect("CDUP", 250);
    assert!(f.cmd("PWD").text.contains("\"/\""));
    assert_eq!(f.retr("../../users.toml").unwrap_err().code, 553);
    // Symlinks someone planted in the home, leading out of it.
    std::os::unix::fs::symlink("/etc", home.join("out")).unwrap();
    std::os::unix::fs::symlink(s.root().join("users.toml"), home.join("users")).unwrap();
    f.expect("CWD out", 553);
    f.expect("SIZE users", 553);
    assert_eq!(f.retr("users").unwrap_err().code, 553);
    assert_eq!(f.retr("out/passwd").unwrap_err().code, 553);
    assert_eq!(f.stor("out/x", b"x").code, 553);
    f.expect("QUIT", 221);
}

#[test]
fn failed_logins_lock_the_address_out() {
    let s = plain_ftp(
        "[limits]\nmax_failed_logins = 3\nfailed_login_delay_ms = 10\nlockout_secs = 60",
        vec![("alice", "alice-pw", "10M")],
    );
    let addr = ftp_addr(&s);
    let mut f = Ftp::connect(&addr);
    for i in 1..=3 {
        f.expect("USER alice", 331);
        let r = f.cmd("PASS wrong");
        assert_eq!(r.code, 530, "try {i}: {r:?}");
        assert_eq!(r.text.contains("too many"), i == 3, "try {i}: {r:?}");
    }
    // The right password is refused too, without a check, on any
    // connection from this address, and the native listener agrees.
    let mut g = Ftp::connect(&addr);
    g.expect("USER alice", 331);
    let r = g.cmd("PASS alice-pw");
    assert_eq!(r.code, 530, "{r:?}");
    assert!(r.text.contains("too many failed logins"), "{r:?}");
    let mut w = s.connect();
    let r = w.call(serde_json::json!({"op": "login", "user": "alice", "password": "alice-pw"}));
    assert_eq!(r["code"], 429, "{r}");
    // Another address is not locked out.
    let mut h = Ftp::connect_from(Ipv4Addr::new(127, 0, 0, 2), &addr);
    h.expect("USER alice", 331);
    h.expect("PASS alice-pw", 230);
    assert!(s.log().contains("locked out"), "{}", s.log());
}

#[test]
fn a_data_connection_from_another_address_is_refused() {
    let s = plain_ftp("", vec![("alice", "alice-pw", "10M")]);
    let mut f = Ftp::login(&ftp_addr(&s), "alice", "alice-pw");
    let port = f.pasv();
    // Someone else gets to the passive port first: closed at once.
    let mut intruder = Ftp::data_from(Ipv4Addr::new(127, 0, 0, 2), &port);
    let mut b = [0u8; 1];
    assert!(matches!(intruder.read(&mut b), Ok(0) | Err(_)));
    // The client's own connection still gets the file.
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("STOR x.bin", 150);
    let body = data(100_000, 3);
    d.write_all(&body).unwrap();
    drop(d);
    assert_eq!(f.reply().code, 226);
    assert_eq!(std::fs::read(s.home("alice").join("x.bin")).unwrap(), body);
    assert!(
        s.log().contains("refused a data connection from 127.0.0.2"),
        "{}",
        s.log()
    );
}

#[test]
fn an_upload_cut_off_keeps_the_old_file_then_resumes() {
    let s = plain_ftp("", vec![("alice", "alice-pw", "20M")]);
    let home = s.home("alice");
    let mut f = Ftp::login(&ftp_addr(&s), "alice", "alice-pw");
    let old = data(200_000, 4);
    assert_eq!(f.stor("f.bin", &old).code, 226);
    let new = data(3 << 20, 5);
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("STOR f.bin", 150);
    d.write_all(&new[..1 << 20]).unwrap();
    // A crash: a reset, no FIN.
    reset(d);
    let r = f.reply();
    assert_eq!(r.code, 426, "{r:?}");
    let held: usize = r
        .text
        .split("REST ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no REST offset in {r:?}"));
    assert!(held <= 1 << 20, "{held}");
    assert_eq!(f.retr("f.bin").unwrap(), old, "the old file is untouched");
    f.expect("SIZE f.bin", 213);
    // Resumed where the server says it has the bytes.
    f.expect(&format!("REST {held}"), 350);
    assert_eq!(f.stor("f.bin", &new[held..]).code, 226);
    assert_eq!(f.retr("f.bin").unwrap(), new);
    assert!(partials_on_disk(&home).is_empty());
    assert_eq!(disk_usage(&home), new.len() as u64);
}

#[test]
fn the_data_channel_counts_against_the_connection_limits() {
    let s = plain_ftp(
        "[limits]\nmax_connections_per_ip = 2",
        vec![("alice", "alice-pw", "10M")],
    );
    let addr = ftp_addr(&s);
    let mut f = Ftp::login(&addr, "alice", "alice-pw");
    let port = f.pasv();
    // The control connection and the passive port hold both places.
    assert_eq!(first_code(&addr), Some(421));
    // Once the transfer is over the place is free again.
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("STOR y", 150);
    d.write_all(b"y").unwrap();
    drop(d);
    assert_eq!(f.reply().code, 226);
    assert!(eventually(Duration::from_secs(5), || first_code(&addr) == Some(220)));
    // A second session at the limit gets no passive port.
    let mut h = Ftp::login(&addr, "alice", "alice-pw");
    let r = h.cmd("PASV");
    assert_eq!(r.code, 425, "{r:?}");
    assert!(r.text.contains("too many connections"), "{r:?}");
}

/// The code of the first reply a new connection gets (None: closed).
fn first_code(addr: &str) -> Option<u16> {
    let s = tcp_from(Ipv4Addr::LOCALHOST, addr).ok()?;
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).ok()?;
    line.get(..3)?.parse().ok()
}

/// Ends a TCP connection with a reset (SO_LINGER 0), as a crash does.
fn reset(s: std::net::TcpStream) {
    let fd = rustix::fd::OwnedFd::from(s);
    rustix::net::sockopt::set_socket_linger(&fd, Some(Duration::ZERO)).unwrap();
}

/// Bandwidth limits hold through FTP too: alice's transfers get the same
/// grants as native ones (1 MiB/s each way: 4 MiB take about 4 s, within
/// 15 %), and bob, unlimited, is not slowed down by them.
#[test]
fn bandwidth_limits_hold_through_ftp() {
    let mut s = plain_ftp(
        "",
        vec![("alice", "alice-pw", "100M"), ("bob", "bob-pw", "100M")],
    );
    let args = ["alice", "--rate-up", "1M", "--rate-down", "1M"];
    crate::server_core::common::useradd_ok(&s.config, &args, None);
    s.kill_and_restart();
    let body = data(4 << 20, 7);
    let timed = |f: &mut Ftp, up: bool| {
        let t = std::time::Instant::now();
        if up {
            assert_eq!(f.stor("x.bin", &body).code, 226);
        } else {
            assert_eq!(f.retr("x.bin").unwrap(), body);
        }
        t.elapsed().as_secs_f64()
    };
    let mut alice = Ftp::login(&ftp_addr(&s), "alice", "alice-pw");
    let (up, down) = (timed(&mut alice, true), timed(&mut alice, false));
    let mut bob = Ftp::login(&ftp_addr(&s), "bob", "bob-pw");
    let (bob_up, bob_down) = (timed(&mut bob, true), timed(&mut bob, false));
    eprintln!("alice 4 MiB up {up:.2} s, down {down:.2} s; bob {bob_up:.2} s, {bob_down:.2} s");
    for t in [up, down] {
        assert!(
            (4.0 / 1.15..=4.0 / 0.85).contains(&t),
            "alice at {:.3} of her limit",
            4.0 / t
        );
    }
    assert!(
        bob_up < 1.0 && bob_down < 1.0,
        "bob slowed down: {bob_up:.2} s, {bob_down:.2} s"
    );
}
