//! The FTP commands of issue 13 one by one over a real socket, with the
//! reply codes clients depend on: SIZE, MDTM, MLST and MLSD facts (and OPTS
//! MLST), REST+RETR, REST+STOR, RNFR/RNTO, SITE CHMOD, STAT, HELP, 550 for
//! what is missing, 450 while another transfer holds a name, 502 for the
//! rest.

use std::io::{Read, Write};
use std::net::Ipv4Addr;

use super::through::plain_ftp;
use super::wire::{Ftp, FtpReply};
use crate::util::*;

fn alice() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![("alice", "alice-pw", "50M")]
}

/// A listing command over a PASV data connection: its lines.
fn listing(f: &mut Ftp, line: &str) -> Vec<String> {
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect(line, 150);
    let mut body = String::new();
    d.read_to_string(&mut body).unwrap();
    f.expect_reply(226);
    body.lines().map(str::to_owned).collect()
}

impl Ftp {
    /// Reads the next reply and checks its code.
    fn expect_reply(&mut self, code: u16) -> FtpReply {
        let r = self.reply();
        assert_eq!(r.code, code, "{r:?}");
        r
    }
}

#[test]
fn size_mdtm_mlst_and_mlsd_show_committed_files() {
    let s = plain_ftp("", alice());
    let mut f = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    let body = data(1000, 1);
    assert_eq!(f.stor("a.bin", &body).code, 226);
    f.expect("MKD d", 257);
    assert_eq!(f.expect("SIZE a.bin", 213).text.trim(), "213 1000");
    f.expect("SIZE d", 550);
    f.expect("SIZE missing.bin", 550);
    let mdtm = f.expect("MDTM a.bin", 213).text;
    let stamp = mdtm.trim().trim_start_matches("213 ");
    assert!(
        stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()),
        "{mdtm}"
    );
    f.expect("MDTM missing.bin", 550);
    let r = f.expect("MLST a.bin", 250);
    let fact = r.text.lines().nth(1).expect("a fact line");
    assert!(fact.starts_with(' '), "RFC 3659 §7.2: {fact:?}");
    for want in [
        "type=file;",
        "size=1000;",
        &format!("modify={stamp};"),
        "perm=",
    ] {
        assert!(fact.contains(want), "{want} in {fact:?}");
    }
    assert!(fact.ends_with(" a.bin"), "{fact:?}");
    f.expect("MLST missing.bin", 550);
    // OPTS MLST picks the facts.
    f.expect("OPTS MLST type;size;", 200);
    let r = f.expect("MLST a.bin", 250);
    assert_eq!(
        r.text.lines().nth(1).unwrap(),
        " type=file;size=1000; a.bin"
    );
    f.expect("OPTS MLST type;size;modify;perm;unique;", 200);
    // An upload in progress is not listed: only committed files are.
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("STOR b.bin", 150);
    d.write_all(&data(5000, 2)).unwrap();
    let mut g = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    let lines = listing(&mut g, "MLSD");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines
        .iter()
        .any(|l| l.contains("type=dir;") && l.ends_with(" d")));
    assert!(lines
        .iter()
        .any(|l| l.contains("type=file;size=1000;") && l.ends_with(" a.bin")));
    g.expect("SIZE b.bin", 550);
    drop(d);
    assert_eq!(f.reply().code, 226);
    assert_eq!(g.expect("SIZE b.bin", 213).text.trim(), "213 5000");
    assert_eq!(listing(&mut g, "MLSD d"), Vec::<String>::new());
    assert_eq!(listing(&mut g, "NLST").len(), 3);
    // rclone maps only 550 and 450 to "not found".
    g.pasv();
    g.expect("MLSD missing", 550);
    g.pasv();
    g.expect("RETR missing.bin", 550);
}

#[test]
fn rest_rename_site_stat_help_and_unknown_verbs() {
    let s = plain_ftp("", alice());
    let home = s.home("alice");
    let mut f = Ftp::login(s.ftp_addr.as_deref().unwrap(), "alice", "alice-pw");
    let body = data(100_000, 3);
    assert_eq!(f.stor("a.bin", &body).code, 226);
    // REST+RETR at any offset.
    f.expect("REST 60000", 350);
    assert_eq!(f.retr("a.bin").unwrap(), body[60_000..]);
    f.expect("REST x", 501);
    // RNFR/RNTO.
    f.expect("RNTO b.bin", 503);
    f.expect("RNFR missing.bin", 550);
    f.expect("RNFR a.bin", 350);
    f.expect("RNTO b.bin", 250);
    assert_eq!(f.retr("b.bin").unwrap(), body);
    assert!(!home.join("a.bin").exists());
    f.expect("RNFR b.bin", 350);
    f.expect("RNTO ../../etc/passwd", 553);
    // SITE CHMOD is accepted and changes nothing.
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(home.join(p)).unwrap().permissions(),
        )
    };
    let before = mode("b.bin");
    f.expect("SITE CHMOD 777 b.bin", 202);
    assert_eq!(mode("b.bin"), before);
    f.expect("SITE EXEC ls", 504);
    // STAT: the session, or a listing on the control connection.
    let r = f.expect("STAT", 211);
    assert!(
        r.text.contains("logged in") && r.text.ends_with("211 End of status\r\n"),
        "{r:?}"
    );
    let r = f.expect("STAT .", 213);
    assert!(r.text.contains(" b.bin"), "{r:?}");
    f.expect("STAT missing", 550);
    // HELP names every verb.
    let r = f.expect("HELP", 214);
    for verb in [
        "MLSD", "MFMT", "HASH", "XSHA256", "APPE", "REST", "SITE", "EPSV",
    ] {
        assert!(r.text.contains(verb), "{verb}: {r:?}");
    }
    f.expect("XYZZY", 502);
    f.expect("SMNT /", 502);
    f.expect("DELE missing.bin", 550);
    f.expect("RMD missing", 550);
    f.expect("CWD missing", 550);
    f.expect("DELE b.bin", 250);
    assert_eq!(disk_usage(&home), 0);
}

#[test]
fn a_name_held_by_another_transfer_is_busy_450() {
    let s = plain_ftp("", alice());
    let addr = s.ftp_addr.clone().unwrap();
    let mut f = Ftp::login(&addr, "alice", "alice-pw");
    let old = data(10_000, 4);
    assert_eq!(f.stor("f.bin", &old).code, 226);
    let port = f.pasv();
    let mut d = Ftp::data_from(Ipv4Addr::LOCALHOST, &port);
    f.expect("STOR f.bin", 150);
    d.write_all(&data(50_000, 5)).unwrap();
    // While that upload runs, another session may neither remove nor
    // replace the name, nor resume the partial it writes.
    let mut g = Ftp::login(&addr, "alice", "alice-pw");
    let r = g.expect("DELE f.bin", 450);
    assert!(r.text.contains("upload"), "{r:?}");
    g.expect("RNFR f.bin", 350);
    g.expect("RNTO g.bin", 450);
    g.expect("REST 100", 350);
    g.pasv();
    g.expect("STOR f.bin", 450);
    assert_eq!(g.retr("f.bin").unwrap(), old, "readers see the old file");
    drop(d);
    assert_eq!(f.reply().code, 226);
    g.expect("DELE f.bin", 250);
}
