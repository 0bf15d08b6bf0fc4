//! The session against the command sequences real clients send (as
//! recorded in the lab, /work/shared/notes/ftp-and-s3.md A1), with the
//! core's replies played by hand.

use std::net::SocketAddr;

use super::*;
use crate::proto::{Entry, EntryKind, Status};
use crate::server::front::ftp::command::parse;

fn config() -> SessionConfig {
    SessionConfig {
        tls_available: true,
        implicit_tls: false,
        require_tls: true,
        active_mode: false,
        peer: "127.0.0.1".parse().unwrap(),
        greeting: "miniftp ready".into(),
    }
}

/// A session and a terse way to drive it.
struct Client {
    s: FtpSession,
}

impl Client {
    fn new(cfg: SessionConfig) -> Client {
        let (s, out) = FtpSession::new(cfg);
        assert_eq!(codes(&out), [220]);
        Client { s }
    }

    fn send(&mut self, line: &str) -> Vec<Output> {
        assert!(self.s.ready_for_command(), "not ready for {line:?}");
        self.s.handle(Input::Command(parse(line.as_bytes())))
    }

    /// Sends `line` and expects exactly these reply codes, nothing else.
    fn expect(&mut self, line: &str, want: &[u16]) -> Vec<Output> {
        let out = self.send(line);
        assert_eq!(codes(&out), want, "{line}: {out:?}");
        out
    }

    fn core(&mut self, r: Reply) -> Vec<Output> {
        self.s.handle(Input::Core(r))
    }

    fn input(&mut self, i: Input) -> Vec<Output> {
        self.s.handle(i)
    }

    /// AUTH TLS, USER, PASS and the core's 230.
    fn login(&mut self) {
        let out = self.expect("AUTH TLS", &[234]);
        assert_eq!(out[1], Output::StartTls);
        self.expect("USER alice", &[331]);
        let out = self.send("PASS secret");
        assert!(matches!(&out[..], [Output::Core(Request::Login { user, .. })] if user == "alice"));
        assert!(!self.s.ready_for_command());
        let out = self.core(logged_in());
        assert_eq!(codes(&out), [230]);
        assert!(self.s.logged_in());
    }

    /// PASV (or EPSV) and the loop's listener at port 40001.
    fn passive(&mut self, verb: &str) -> Vec<Output> {
        let out = self.send(verb);
        assert_eq!(out, [Output::Data(DataAction::Listen)]);
        assert!(!self.s.ready_for_command());
        self.input(Input::PassiveReady(addr("127.0.0.1:40001")))
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn codes(out: &[Output]) -> Vec<u16> {
    out.iter()
        .filter_map(|o| match o {
            Output::Reply(r) => Some(r.code),
            _ => None,
        })
        .collect()
}

fn text(out: &[Output]) -> String {
    out.iter()
        .filter_map(|o| match o {
            Output::Reply(r) => Some(r.to_wire()),
            _ => None,
        })
        .collect()
}

fn data(out: &[Output]) -> Vec<&DataAction> {
    out.iter()
        .filter_map(|o| match o {
            Output::Data(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn logged_in() -> Reply {
    Reply {
        cwd: Some("/".into()),
        ..Reply::new(Status::LoggedIn, "logged in as alice")
    }
}

fn ok() -> Reply {
    Reply::new(Status::Ok, "ok")
}

fn ready(size: Option<u64>) -> Reply {
    Reply {
        size,
        ..Reply::new(Status::Ready, "go")
    }
}

fn committed(size: u64) -> Reply {
    Reply {
        size: Some(size),
        sha256: Some("ab".repeat(32)),
        ..Reply::new(Status::TransferComplete, "stored")
    }
}

fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.into(),
        kind: EntryKind::File,
        size,
        mtime: 1_795_946_400,
        escaped: false,
    }
}

fn stat_reply(e: Entry) -> Reply {
    Reply {
        entry: Some(e),
        ..ok()
    }
}

fn page(entries: Vec<Entry>, next: Option<u64>) -> Reply {
    Reply {
        entries: Some(entries),
        next,
        ..ok()
    }
}

fn failed(status: Status, msg: &str) -> Reply {
    Reply::new(status, msg)
}

/// A whole upload after the 150: clean end, commit, 226.
fn upload_commits(c: &mut Client, bytes: u64) -> String {
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes }));
    assert_eq!(out, [Output::Data(DataAction::Commit)]);
    assert!(!c.s.ready_for_command());
    let out = c.core(committed(bytes));
    assert_eq!(codes(&out), [226]);
    text(&out)
}

#[test]
fn filezilla_sequence() {
    let mut c = Client::new(config());
    c.login();
    c.expect("SYST", &[215]);
    let feat = text(&c.expect("FEAT", &[211]));
    for line in [
        " MLST type*;size*;modify*;perm*;unique*;\r\n",
        " REST STREAM\r\n",
        " UTF8\r\n",
        " AUTH TLS\r\n",
        " EPSV\r\n",
        " MFMT\r\n",
        " HASH SHA-256*\r\n",
    ] {
        assert!(feat.contains(line), "{line:?} missing from {feat}");
    }
    assert!(!feat.contains("EPRT"), "active mode is off: {feat}");
    c.expect("CLNT FileZilla 3.66.4", &[200]);
    c.expect("OPTS UTF8 ON", &[200]);
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    let out = c.expect("OPTS MLST type;size;modify;", &[200]);
    assert!(text(&out).contains("type;size;modify;"));
    let out = c.expect("PWD", &[257]);
    assert_eq!(text(&out), "257 \"/\" is the current directory\r\n");

    let out = c.passive("PASV");
    assert_eq!(
        text(&out),
        "227 entering passive mode (127,0,0,1,156,65)\r\n"
    );
    let out = c.send("MLSD");
    assert_eq!(
        out,
        [Output::Core(Request::Ls {
            path: None,
            start: 0
        })]
    );
    let out = c.core(page(vec![file("a.txt", 5)], None));
    assert_eq!(codes(&out), [150]);
    let DataAction::SendListing(bytes) = data(&out)[1] else {
        panic!("{out:?}")
    };
    assert_eq!(
        String::from_utf8_lossy(bytes),
        "type=file;size=5;modify=20261129100000; a.txt\r\n"
    );
    assert_eq!(data(&out)[0], &DataAction::OpenListing { protected: true });
    let out = c.input(Input::ListingSent);
    assert_eq!(out, [Output::Data(DataAction::FinishListing)]);
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes: 48 }));
    assert_eq!(codes(&out), [226]);

    // Resume an upload: REST + STOR (FEAT has REST STREAM).
    c.passive("PASV");
    c.expect("REST 3", &[350]);
    let out = c.send("STOR big.bin");
    assert!(matches!(
        &out[..],
        [Output::Core(Request::Put { path, offset: 3, size: None, .. })] if path == "big.bin"
    ));
    let out = c.core(ready(None));
    assert_eq!(codes(&out), [150]);
    assert_eq!(data(&out), [&DataAction::Receive { protected: true }]);
    let done = upload_commits(&mut c, 7);
    assert!(done.contains(&"ab".repeat(32)), "{done}");

    let out = c.send("MFMT 20260101120000 big.bin");
    assert_eq!(
        out,
        [Output::Ftp(FtpOp::SetMtime {
            path: "big.bin".into(),
            mtime: 1_767_268_800
        })]
    );
    let out = c.core(ok());
    assert_eq!(text(&out), "213 Modify=20260101120000; big.bin\r\n");
    let out = c.expect("QUIT", &[221]);
    assert_eq!(out.last(), Some(&Output::Close));
    assert!(!c.s.ready_for_command());
}

#[test]
fn curl_sequence() {
    let mut c = Client::new(config());
    // curl tries AUTH SSL first.
    let out = c.expect("AUTH SSL", &[234]);
    assert_eq!(out[1], Output::StartTls);
    c.expect("USER alice", &[331]);
    c.send("PASS secret");
    c.core(logged_in());
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.expect("PWD", &[257]);
    // One CWD per path part.
    for (part, cwd) in [("d", "/d"), ("e", "/d/e")] {
        let out = c.send(&format!("CWD {part}"));
        assert_eq!(out, [Output::Core(Request::Cd { path: part.into() })]);
        let out = c.core(Reply {
            cwd: Some(cwd.into()),
            ..ok()
        });
        assert_eq!(codes(&out), [250]);
    }
    c.expect("PWD", &[257]);
    let out = c.passive("EPSV");
    assert_eq!(
        text(&out),
        "229 entering extended passive mode (|||40001|)\r\n"
    );
    c.expect("TYPE I", &[200]);
    // -C - upload: SIZE then APPE.
    c.send("SIZE f");
    let out = c.core(stat_reply(file("f", 300)));
    assert_eq!(text(&out), "213 300\r\n");
    let out = c.send("APPE f");
    assert_eq!(out, [Output::Ftp(FtpOp::Append { path: "f".into() })]);
    c.core(ready(None));
    upload_commits(&mut c, 100);
    // curl's LIST runs under TYPE A.
    c.passive("EPSV");
    c.expect("TYPE A", &[200]);
    c.send("LIST");
    let out = c.core(page(vec![file("f", 400)], None));
    let DataAction::SendListing(bytes) = data(&out)[1] else {
        panic!()
    };
    assert!(
        String::from_utf8_lossy(bytes).starts_with("-rw-r--r--    1 ftp      ftp           400 ")
    );
    c.input(Input::ListingSent);
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes: 60 }));
    assert_eq!(codes(&out), [226]);
}

#[test]
fn zero_byte_upload_with_a_clean_end_is_committed() {
    // curl #6149/#13556: a 0-byte upload must be stored as 0 bytes, and
    // only when the end was clean.
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.passive("EPSV");
    c.send("STOR empty");
    c.core(ready(None));
    upload_commits(&mut c, 0);
}

#[test]
fn an_upload_cut_short_is_never_committed() {
    // The TLS 1.3 truncation trap: EOF without close_notify.
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.passive("EPSV");
    c.expect("REST 100", &[350]);
    c.send("STOR f");
    c.core(ready(None));
    let out = c.input(Input::DataEnded(DataEnd::Cut { bytes: 50 }));
    assert_eq!(codes(&out), [426]);
    assert_eq!(data(&out), [&DataAction::KeepPartial]);
    assert!(text(&out).contains("REST 150 and STOR"), "{}", text(&out));
    assert!(!out.contains(&Output::Data(DataAction::Commit)));
    // The session is usable afterwards; REST was used up.
    c.passive("EPSV");
    let out = c.send("STOR f");
    assert!(matches!(
        &out[..],
        [Output::Core(Request::Put { offset: 0, .. })]
    ));
}

#[test]
fn lftp_sequence() {
    let mut c = Client::new(config());
    // FEAT and OPTS before login.
    c.expect("FEAT", &[211]);
    c.expect("AUTH TLS", &[234]);
    c.expect("OPTS UTF8 ON", &[200]);
    c.expect("USER alice", &[331]);
    c.send("PASS secret");
    c.core(logged_in());
    let out = c.expect(
        "OPTS MLST type;size;modify;UNIX.mode;UNIX.owner;UNIX.group;",
        &[200],
    );
    assert!(text(&out).contains("MLST OPTS type;size;modify;"));
    c.expect("PWD", &[257]);
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    // cls / mirror: MLSD over two pages.
    c.passive("PASV");
    c.send("MLSD d");
    let out = c.core(page(vec![file("a", 1)], Some(1000)));
    assert_eq!(codes(&out), [150]);
    let out = c.input(Input::ListingSent);
    assert_eq!(
        out,
        [Output::Core(Request::Ls {
            path: Some("d".into()),
            start: 1000
        })]
    );
    let out = c.core(page(vec![file("b", 2)], None));
    let DataAction::SendListing(bytes) = data(&out)[0] else {
        panic!("{out:?}")
    };
    assert!(String::from_utf8_lossy(bytes).ends_with("; b\r\n"));
    let out = c.input(Input::ListingSent);
    assert_eq!(out, [Output::Data(DataAction::FinishListing)]);
    assert_eq!(
        codes(&c.input(Input::DataEnded(DataEnd::Clean { bytes: 9 }))),
        [226]
    );
    // mirror -R sends SITE CHMOD; mv; rm; mkdir; rmdir.
    c.expect("SITE CHMOD 644 a", &[202]);
    let out = c.send("RNFR a");
    assert_eq!(out, [Output::Core(Request::Stat { path: "a".into() })]);
    assert_eq!(codes(&c.core(stat_reply(file("a", 1)))), [350]);
    let out = c.send("RNTO b c");
    assert_eq!(
        out,
        [Output::Core(Request::Mv {
            from: "a".into(),
            to: "b c".into()
        })]
    );
    assert_eq!(codes(&c.core(ok())), [250]);
    c.send("DELE b c");
    assert_eq!(codes(&c.core(ok())), [250]);
    c.send("MKD new");
    assert_eq!(text(&c.core(ok())), "257 \"new\" created\r\n");
    c.send("RMD new");
    assert_eq!(codes(&c.core(ok())), [250]);
    // put -c: SIZE says 550 (only committed files count), upload from 0.
    c.send("SIZE f");
    assert_eq!(
        codes(&c.core(failed(Status::NotFound, "f: no such file"))),
        [550]
    );
}

#[test]
fn ftplib_sequence_in_plaintext() {
    let mut c = Client::new(SessionConfig {
        require_tls: false,
        ..config()
    });
    c.expect("USER alice", &[331]);
    c.send("PASS secret");
    c.core(logged_in());
    // REST + RETR, ftplib connects before sending the command.
    c.passive("PASV");
    c.expect("REST 5", &[350]);
    let out = c.send("RETR f");
    assert_eq!(
        out,
        [Output::Core(Request::Get {
            path: "f".into(),
            offset: 5
        })]
    );
    let out = c.core(ready(Some(12)));
    assert!(text(&out).contains("(12 bytes)"));
    assert_eq!(data(&out), [&DataAction::Send { protected: false }]);
    assert_eq!(
        codes(&c.input(Input::DataEnded(DataEnd::Clean { bytes: 7 }))),
        [226]
    );
    c.passive("PASV");
    c.send("NLST");
    let out = c.core(page(vec![file("f", 12), file("g h", 1)], None));
    let DataAction::SendListing(bytes) = data(&out)[1] else {
        panic!()
    };
    assert_eq!(bytes, b"f\r\ng h\r\n");
    let out = c.send("CDUP");
    assert!(out.is_empty(), "a listing runs: CDUP waits for it");
    assert!(!c.s.ready_for_command());
    c.input(Input::ListingSent);
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes: 8 }));
    assert_eq!(codes(&out), [226]);
    assert_eq!(out[1], Output::Core(Request::Cd { path: "..".into() }));
}

#[test]
fn ftplib_without_session_reuse_gets_522() {
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.passive("PASV");
    c.send("STOR f");
    c.core(ready(None));
    let out = c.input(Input::DataEnded(DataEnd::NotResumed));
    assert_eq!(codes(&out), [522]);
    assert_eq!(data(&out), [&DataAction::KeepPartial]);
}

#[test]
fn rclone_sequence() {
    let mut c = Client::new(config());
    c.login();
    c.expect("FEAT", &[211]);
    c.expect("TYPE I", &[200]);
    c.expect("OPTS UTF8 ON", &[200]);
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    // A missing directory must be 550 (rclone's translateErrorDir).
    c.passive("EPSV");
    c.send("MLSD new/dir");
    let out = c.core(failed(Status::NotFound, "/new/dir: no such directory"));
    assert_eq!(codes(&out), [550]);
    assert_eq!(data(&out), [&DataAction::Close]);
    c.send("MKD new");
    assert_eq!(
        codes(&c.core(failed(Status::AlreadyExists, "exists"))),
        [550]
    );
    c.passive("EPSV");
    c.send("STOR new/f");
    c.core(ready(None));
    upload_commits(&mut c, 300_000);
    c.send("MFMT 20261129100000 new/f");
    assert_eq!(codes(&c.core(ok())), [213]);
    // Byte ranges: REST + RETR, then ABOR once it has enough.
    c.passive("EPSV");
    c.expect("REST 1000", &[350]);
    c.send("RETR new/f");
    c.core(ready(Some(300_000)));
    let out = c.expect("ABOR", &[]);
    assert_eq!(out, [Output::Data(DataAction::Abort)]);
    let out = c.input(Input::DataEnded(DataEnd::Aborted { bytes: 4096 }));
    assert_eq!(codes(&out), [426, 226]);
}

#[test]
fn the_pre_login_command_set_is_small() {
    let mut c = Client::new(config());
    for line in [
        "PWD", "CWD /", "PASV", "LIST", "RETR f", "DELE f", "STAT", "ABOR",
    ] {
        c.expect(line, &[530]);
    }
    // PBSZ/PROT need AUTH first, then work before login (libunftp #327).
    c.expect("PBSZ 0", &[503]);
    c.expect("PROT P", &[503]);
    c.expect("AUTH TLS", &[234]);
    c.expect("PROT P", &[503]);
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.expect("SYST", &[215]);
    c.expect("NOOP", &[200]);
    c.expect("XYZZY", &[502]);
    c.expect("PASS x", &[503]);
}

#[test]
fn tls_is_required_before_user() {
    let mut c = Client::new(config());
    let out = c.expect("USER alice", &[530]);
    assert!(text(&out).contains("AUTH TLS"));
    c.expect("PASS secret", &[503]);
    // PROT C is refused where TLS is required; transfers need PROT P.
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT C", &[534]);
    c.passive("PASV");
    c.expect("RETR f", &[521]);
}

#[test]
fn implicit_tls_implies_prot_p() {
    let mut c = Client::new(SessionConfig {
        implicit_tls: true,
        ..config()
    });
    c.expect("AUTH TLS", &[503]);
    c.expect("USER alice", &[331]);
    c.send("PASS x");
    c.core(logged_in());
    c.passive("EPSV");
    c.send("RETR f");
    let out = c.core(ready(Some(1)));
    assert_eq!(data(&out), [&DataAction::Send { protected: true }]);
}

#[test]
fn failed_logins() {
    let mut c = Client::new(config());
    c.expect("AUTH TLS", &[234]);
    c.expect("USER alice", &[331]);
    c.send("PASS wrong");
    assert_eq!(
        codes(&c.core(failed(Status::AuthFailed, "login incorrect"))),
        [530]
    );
    assert!(!c.s.logged_in());
    c.expect("PASS again", &[503]);
    c.expect("USER alice", &[331]);
    c.send("PASS wrong");
    let out = c.core(failed(
        Status::TooManyFailures,
        "too many failed logins from this address; retry in 60 s",
    ));
    assert_eq!(codes(&out), [530]);
    assert!(text(&out).contains("too many"));
    c.expect("PWD", &[530]);
}

#[test]
fn transfers_need_a_data_channel() {
    let mut c = Client::new(SessionConfig {
        require_tls: false,
        ..config()
    });
    c.expect("USER a", &[331]);
    c.send("PASS b");
    c.core(logged_in());
    for line in ["STOR f", "APPE f", "RETR f", "LIST", "NLST", "MLSD"] {
        c.expect(line, &[425]);
    }
    // A data channel serves one transfer.
    c.passive("PASV");
    c.send("RETR f");
    c.core(ready(Some(1)));
    c.input(Input::DataEnded(DataEnd::Clean { bytes: 1 }));
    c.expect("RETR f", &[425]);
    // A refused transfer drops its data channel.
    c.passive("PASV");
    c.send("RETR missing");
    let out = c.core(failed(Status::NotFound, "missing: no such file"));
    assert_eq!(codes(&out), [550]);
    assert_eq!(data(&out), [&DataAction::Close]);
    c.expect("RETR f", &[425]);
    // No listener could be bound.
    c.send("EPSV");
    let out = c.input(Input::PassiveFailed("no free port in 50000-50009".into()));
    assert_eq!(codes(&out), [425]);
    // PASV can't show IPv6.
    c.send("PASV");
    let out = c.input(Input::PassiveReady(addr("[::1]:40001")));
    assert_eq!(codes(&out), [425]);
    assert_eq!(data(&out), [&DataAction::Close]);
}

#[test]
fn upload_endings() {
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    // Quota exceeded midway: the core already removed the partial.
    c.passive("EPSV");
    c.send("STOR big");
    c.core(ready(None));
    let out = c.input(Input::DataEnded(DataEnd::Failed(Box::new(failed(
        Status::QuotaExceeded,
        "quota exceeded",
    )))));
    assert_eq!(codes(&out), [552]);
    assert!(data(&out).is_empty());
    // The client never connected.
    c.passive("EPSV");
    c.send("STOR f");
    c.core(ready(None));
    let out = c.input(Input::DataEnded(DataEnd::NoConnection));
    assert_eq!(codes(&out), [425]);
    assert_eq!(data(&out), [&DataAction::KeepPartial]);
    // ABOR during an upload keeps the partial: 426, then ABOR's 226.
    c.passive("EPSV");
    c.send("STOR f");
    c.core(ready(None));
    assert_eq!(c.expect("ABOR", &[]), [Output::Data(DataAction::Abort)]);
    let out = c.input(Input::DataEnded(DataEnd::Aborted { bytes: 10 }));
    assert_eq!(codes(&out), [426, 226]);
    assert_eq!(data(&out), [&DataAction::KeepPartial]);
    // ABOR that lost the race with a clean end: commit, then ABOR's 226.
    c.passive("EPSV");
    c.send("STOR f");
    c.core(ready(None));
    c.expect("ABOR", &[]);
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes: 10 }));
    assert_eq!(out, [Output::Data(DataAction::Commit)]);
    assert_eq!(codes(&c.core(committed(10))), [226, 226]);
    // The commit itself can fail (disk full at rename); a second end of
    // the data connection meanwhile changes nothing.
    c.passive("EPSV");
    c.send("STOR f");
    c.core(ready(None));
    c.input(Input::DataEnded(DataEnd::Clean { bytes: 10 }));
    assert!(c
        .input(Input::DataEnded(DataEnd::Cut { bytes: 10 }))
        .is_empty());
    assert_eq!(codes(&c.core(failed(Status::DiskFull, "disk full"))), [452]);
    // The core refuses the STOR itself: jail.
    c.passive("EPSV");
    c.send("STOR ../../etc/passwd");
    assert_eq!(
        codes(&c.core(failed(Status::PathRefused, "escapes"))),
        [553]
    );
}

#[test]
fn a_listing_that_fails_midway() {
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.passive("EPSV");
    c.send("LIST d");
    c.core(page(vec![file("a", 1)], Some(1000)));
    c.input(Input::ListingSent);
    let out = c.core(failed(Status::NotFound, "d: no such directory"));
    assert_eq!(out, [Output::Data(DataAction::Abort)]);
    let out = c.input(Input::DataEnded(DataEnd::Aborted { bytes: 60 }));
    assert_eq!(codes(&out), [550]);
    // The data connection ends while the next page is fetched.
    c.passive("EPSV");
    c.send("LIST d");
    c.core(page(vec![file("a", 1)], Some(1000)));
    c.input(Input::ListingSent);
    assert!(c
        .input(Input::DataEnded(DataEnd::Cut { bytes: 60 }))
        .is_empty());
    assert_eq!(codes(&c.core(page(vec![], None))), [426]);
    assert!(c.s.ready_for_command());
}

#[test]
fn commands_during_a_transfer() {
    let mut c = Client::new(config());
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    c.passive("EPSV");
    c.send("RETR f");
    c.core(ready(Some(1 << 30)));
    c.expect("NOOP", &[200]);
    c.expect("STAT", &[211]);
    // Anything else waits for the transfer, and the loop stops reading.
    assert!(c.expect("PWD", &[]).is_empty());
    assert!(!c.s.ready_for_command());
    let out = c.input(Input::DataEnded(DataEnd::Clean { bytes: 1 << 30 }));
    assert_eq!(codes(&out), [226, 257]);
    // QUIT stops an upload and keeps its partial.
    c.passive("EPSV");
    c.send("STOR f");
    c.core(ready(None));
    let out = c.expect("QUIT", &[221]);
    assert_eq!(data(&out), [&DataAction::Abort, &DataAction::KeepPartial]);
    assert_eq!(out.last(), Some(&Output::Close));
    assert!(c
        .s
        .handle(Input::DataEnded(DataEnd::Aborted { bytes: 0 }))
        .is_empty());
}

#[test]
fn rename_needs_rnfr_right_before() {
    let mut c = Client::new(config());
    c.login();
    c.expect("RNTO b", &[503]);
    c.send("RNFR a");
    c.core(stat_reply(file("a", 1)));
    c.expect("NOOP", &[200]);
    c.expect("RNTO b", &[503]);
    c.send("RNFR missing");
    assert_eq!(codes(&c.core(failed(Status::NotFound, "missing"))), [550]);
    c.expect("RNTO b", &[503]);
}

#[test]
fn active_mode() {
    let off = text(&Client::new(config()).expect_after_login("PORT 127,0,0,1,200,10", &[502]));
    assert!(off.contains("PASV"));
    let mut c = Client::new(SessionConfig {
        active_mode: true,
        ..config()
    });
    c.login();
    c.expect("PBSZ 0", &[200]);
    c.expect("PROT P", &[200]);
    // RFC 2577: only to the control peer, never to a privileged port.
    c.expect("PORT 10,0,0,1,200,10", &[501]);
    c.expect("EPRT |1|127.0.0.1|80|", &[501]);
    c.expect("EPRT |1|127.0.0.1|51210|", &[200]);
    c.send("RETR f");
    let out = c.core(ready(Some(3)));
    assert_eq!(
        data(&out),
        [
            &DataAction::Connect(addr("127.0.0.1:51210")),
            &DataAction::Send { protected: true }
        ]
    );
    c.input(Input::DataEnded(DataEnd::Clean { bytes: 3 }));
    // EPSV ALL shuts out the others.
    c.expect("EPSV ALL", &[200]);
    c.expect("PASV", &[503]);
    c.expect("PORT 127,0,0,1,200,10", &[503]);
    c.expect("EPSV 2", &[522]);
}

impl Client {
    fn expect_after_login(&mut self, line: &str, want: &[u16]) -> Vec<Output> {
        self.login();
        self.expect(line, want)
    }
}

#[test]
fn path_commands() {
    let mut c = Client::new(config());
    c.login();
    c.send("SIZE d");
    let dir = Entry {
        kind: EntryKind::Dir,
        ..file("d", 4096)
    };
    assert_eq!(codes(&c.core(stat_reply(dir.clone()))), [550]);
    c.send("MDTM f");
    assert_eq!(
        text(&c.core(stat_reply(file("f", 1)))),
        "213 20261129100000\r\n"
    );
    c.send("MLST d");
    let out = c.core(stat_reply(dir));
    let t = text(&out);
    assert!(t.starts_with("250-listing d\r\n type=dir;modify=20261129100000;perm=cdeflmp;unique="));
    assert!(t.ends_with("; d\r\n250 End\r\n"), "{t}");
    c.send("HASH f");
    let out = c.core(Reply {
        size: Some(5),
        sha256: Some("cd".repeat(32)),
        ..ok()
    });
    assert_eq!(
        text(&out),
        format!("213 SHA-256 0-5 {} f\r\n", "cd".repeat(32))
    );
    c.send("XSHA256 f");
    assert_eq!(
        codes(&c.core(Reply {
            sha256: Some("cd".repeat(32)),
            ..ok()
        })),
        [250]
    );
    c.send("STAT d");
    let out = c.core(page(vec![file("a", 1)], Some(1000)));
    let t = text(&out);
    assert!(t.starts_with("213-status of d:\r\n-rw-r--r--"), "{t}");
    assert!(t.contains("first page only"));
    c.send("DELE d");
    assert_eq!(
        codes(&c.core(failed(Status::WrongType, "d is a directory"))),
        [550]
    );
    c.send("RMD d");
    assert_eq!(codes(&c.core(failed(Status::NotEmpty, "not empty"))), [550]);
    c.send("DELE f");
    assert_eq!(
        codes(&c.core(failed(Status::Busy, "upload in progress"))),
        [450]
    );
}

#[test]
fn malformed_lines_and_shutdown() {
    let mut c = Client::new(config());
    c.expect("", &[500]);
    c.expect("REST abc", &[501]);
    c.expect("OPTS UTF8 OFF", &[504]);
    c.expect("AUTH KERBEROS_V4", &[504]);
    c.login();
    c.expect("TYPE E", &[504]);
    c.expect("MODE B", &[504]);
    c.expect("STRU R", &[504]);
    c.send("CWD x");
    let out = c.core(failed(Status::Unavailable, "server shutting down"));
    assert_eq!(codes(&out), [421]);
    assert_eq!(out.last(), Some(&Output::Close));
    assert!(c.s.handle(Input::Command(parse(b"NOOP"))).is_empty());

    let mut c = Client::new(config());
    let out = c.input(Input::LineTooLong);
    assert_eq!(codes(&out), [500]);
    assert_eq!(out.last(), Some(&Output::Close));
}

#[test]
fn inputs_out_of_turn_are_ignored() {
    let mut c = Client::new(config());
    for i in [
        Input::Core(ok()),
        Input::PassiveReady(addr("127.0.0.1:1")),
        Input::PassiveFailed("x".into()),
        Input::ListingSent,
        Input::DataEnded(DataEnd::Clean { bytes: 1 }),
    ] {
        assert!(c.input(i).is_empty());
    }
    assert!(c.s.ready_for_command());
}
