//! What the FTP listener offers besides the client matrix: implicit FTPS,
//! TLS required before USER, HASH/XSHA256, APPE, MFMT, active mode and
//! its bounce protection, a shutdown during a transfer, and no socket left
//! behind by abandoned data channels.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::Command;
use std::time::Duration;

use super::through::plain_ftp;
use super::wire::Ftp;
use crate::util::*;

fn alice() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![("alice", "alice-pw", "50M")]
}

fn curl(args: &[&str]) -> std::process::Output {
    Command::new("curl")
        .args(["-sS", "--user", "alice:alice-pw"])
        .args(args)
        .output()
        .expect("run curl")
}

#[test]
fn implicit_ftps_with_tls_1_2_and_1_3() {
    let s = TestServer::with(Opts {
        toml: "[tls]\nenabled = true\n[ftp]\nlisten = \"127.0.0.1:0\"\n\
               implicit_tls_listen = \"127.0.0.1:0\"\n"
            .into(),
        users: alice(),
        ..Opts::default()
    });
    let ftps = s.ftps_addr.clone().expect("an `ftps listening on` line");
    let body = s.dir.path().join("body.bin");
    std::fs::write(&body, data(700_000, 7)).unwrap();
    for version in [["--tls-max", "1.2"], ["--tlsv1.3", "--tlsv1.3"]] {
        let url = format!("ftps://{ftps}/up-{}.bin", version[1]);
        let back = s.dir.path().join(format!("back-{}.bin", version[1]));
        let out = curl(
            &["-k", "-v", version[0], version[1], "-T"]
                .into_iter()
                .chain([body.to_str().unwrap(), &url])
                .collect::<Vec<_>>(),
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let want = if version[1] == "1.2" {
            "TLSv1.2"
        } else {
            "TLSv1.3"
        };
        assert!(stderr(&out).contains(&format!("SSL connection using {want}")));
        let out = curl(&[
            "-k",
            version[0],
            version[1],
            "-o",
            back.to_str().unwrap(),
            &url,
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&body).unwrap());
    }
    // The explicit listener beside it still starts in clear.
    let mut f = Ftp::connect(s.ftp_addr.as_deref().unwrap());
    let r = f.cmd("USER alice");
    assert_eq!(r.code, 530, "{r:?}");
    assert!(r.text.contains("TLS is required"), "{r:?}");
    f.expect("FEAT", 211).text.contains("AUTH TLS");
}

#[test]
fn hash_xsha256_mfmt_and_appe() {
    let s = plain_ftp("", alice());
    let home = s.home("alice");
    let mut f = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    assert_eq!(f.stor("a.txt", b"hello ").code, 226);
    // APPE continues the committed file; the old one is what readers see
    // until it is complete.
    assert_eq!(appe(&mut f, "a.txt", b"world"), 226);
    assert_eq!(f.retr("a.txt").unwrap(), b"hello world");
    let sha = sha256_hex(b"hello world");
    let r = f.expect("HASH a.txt", 213);
    assert!(
        r.text.contains(&format!("SHA-256 0-11 {sha} a.txt")),
        "{r:?}"
    );
    assert!(f.expect("XSHA256 a.txt", 250).text.contains(&sha));
    // APPE to a new name stores it.
    assert_eq!(appe(&mut f, "new.txt", b"fresh"), 226);
    assert_eq!(f.retr("new.txt").unwrap(), b"fresh");
    // A file put there behind the server's back has no stored digest: it
    // is hashed on request.
    std::fs::write(home.join("placed.bin"), data(300_000, 8)).unwrap();
    let r = f.expect("XSHA256 placed.bin", 250);
    assert!(r.text.contains(&sha256_hex(&data(300_000, 8))), "{r:?}");
    f.expect("HASH nothing.bin", 550);
    f.expect("MKD dir", 257);
    f.expect("HASH dir", 550);
    // MFMT sets the time MDTM and MLST show; the digest stays.
    f.expect("MFMT 20200102030405 a.txt", 213);
    assert!(f.expect("MDTM a.txt", 213).text.contains("20200102030405"));
    let mtime = std::fs::metadata(home.join("a.txt")).unwrap();
    assert_eq!(std::os::unix::fs::MetadataExt::mtime(&mtime), 1_577_934_245);
    assert!(f.expect("XSHA256 a.txt", 250).text.contains(&sha));
    f.expect("MFMT 20200102030405 nothing.txt", 550);
    assert_eq!(disk_usage(&home), 11 + 5 + 300_000);
}

/// APPE of `body`; the final reply's code.
fn appe(f: &mut Ftp, path: &str, body: &[u8]) -> u16 {
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect(&format!("APPE {path}"), 150);
    d.write_all(body).unwrap();
    drop(d);
    f.reply().code
}

#[test]
fn active_mode_is_off_by_default_and_never_bounces() {
    let s = plain_ftp("", alice());
    let mut f = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    f.expect("PORT 127,0,0,1,200,10", 502);
    f.expect("EPRT |1|127.0.0.1|51210|", 502);
    let s = plain_ftp("ftp.active_mode = true", alice());
    let addr = s.ftp_addr.clone().unwrap();
    let mut f = Ftp::login(&addr, "alice", "alice-pw");
    f.expect("EPRT |1|127.0.0.2|51210|", 501);
    f.expect("PORT 10,0,0,1,200,10", 501);
    f.expect("PORT 127,0,0,1,0,21", 501);
    // curl in active mode: the server connects back to it.
    let body = s.dir.path().join("body.bin");
    std::fs::write(&body, data(400_000, 9)).unwrap();
    let url = format!("ftp://{addr}/active.bin");
    let out = curl(&["-P", "127.0.0.1", "-T", body.to_str().unwrap(), &url]);
    assert!(out.status.success(), "{}\n{}", stderr(&out), s.log());
    let back = s.dir.path().join("back.bin");
    let out = curl(&["-P", "127.0.0.1", "-o", back.to_str().unwrap(), &url]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(back).unwrap(), std::fs::read(body).unwrap());
}

#[test]
fn a_transfer_running_at_shutdown_finishes() {
    let mut s = plain_ftp("[limits]\nshutdown_grace_secs = 30", alice());
    let mut f = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    let big = data(8 << 20, 10);
    assert_eq!(f.stor("big.bin", &big).code, 226);
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("RETR big.bin", 150);
    let mut got = vec![0u8; 1 << 20];
    d.read_exact(&mut got).unwrap();
    let mut idle = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    signal(&s.child, "TERM");
    // An idle session is told and closed; the transfer goes on.
    let r = idle.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(
        std::net::TcpStream::connect(s.ftp_addr.as_deref().unwrap()).is_err(),
        "the listener is closed"
    );
    d.read_to_end(&mut got).unwrap();
    assert_eq!(got, big);
    assert_eq!(f.reply().code, 226);
    assert!(s.terminate().success() || s.log().contains("stopped"));
}

#[test]
fn abandoned_data_channels_leave_no_socket_behind() {
    let s = plain_ftp("", alice());
    let addr = s.ftp_addr.clone().unwrap();
    let fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", s.child.id()))
            .unwrap()
            .count()
    };
    let mut f = Ftp::login(&addr, "alice", "alice-pw");
    assert_eq!(f.stor("x.bin", &data(16 << 20, 11)).code, 226);
    f.expect("QUIT", 221);
    assert!(eventually(Duration::from_secs(5), || fds() > 0));
    let before = fds();
    for _ in 0..10 {
        let mut f = Ftp::login(&addr, "alice", "alice-pw");
        // A listener never used, replaced, then dropped by ABOR.
        f.pasv();
        let port = f.pasv();
        f.expect("ABOR", 225);
        assert!(
            std::net::TcpStream::connect(&port).is_err(),
            "the data listener is closed at ABOR"
        );
        // A download cut by ABOR midway.
        let port = f.pasv();
        let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
        f.expect("RETR x.bin", 150);
        d.read_exact(&mut [0u8; 1000]).unwrap();
        // RFC 959 §4.1.3: 426 for the cut transfer, then 226 for ABOR; if
        // the socket buffers already held the rest, the transfer's own 226
        // comes first and ABOR finds nothing to abort.
        let first = f.cmd("ABOR").code;
        let second = f.reply().code;
        assert!(
            (first, second) == (426, 226) || (first == 226 && [225, 226].contains(&second)),
            "ABOR during RETR answered {first} then {second}"
        );
        drop(d);
        // A listener left open at QUIT.
        f.pasv();
        f.expect("QUIT", 221);
    }
    assert!(
        eventually(Duration::from_secs(10), || fds() <= before),
        "{} descriptors open, {before} before",
        fds()
    );
}
