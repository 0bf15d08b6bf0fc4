//! Regression inputs for the fuzz targets (fuzz/, docs/FUZZING.md): every
//! input that ever crashed one is kept in `tests/fuzz_regressions/TARGET/`
//! and replayed here with the same checks, plus hand-made nasty ones. The
//! `connection` inputs go to the real server binary, as in the fuzzer.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use miniftp::limits::{FRAME_HEADER_LEN, MAX_REQUEST_FRAME};
use miniftp::proto::frame::{check, payload, read_frame, Check};
use miniftp::proto::message::decode_request;
use miniftp::proto::Reply;
use miniftp::server::front::ftp::replay::replay;
use miniftp::storage::VPath;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/fuzz_regressions")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| {
            let data = std::fs::read(&p).unwrap();
            (p, data)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

#[test]
fn frame_inputs() {
    for (path, data) in inputs("frame") {
        let mut buf = &data[..];
        loop {
            match check(buf, MAX_REQUEST_FRAME) {
                Ok(Check::Complete { end }) => {
                    assert!(end <= FRAME_HEADER_LEN + MAX_REQUEST_FRAME, "{path:?}");
                    let _ = payload(&buf[..end]);
                    buf = &buf[end..];
                }
                Ok(Check::Incomplete { needed }) => {
                    assert!(needed <= FRAME_HEADER_LEN + MAX_REQUEST_FRAME, "{path:?}");
                    break;
                }
                Err(_) => break,
            }
        }
        let mut reader = &data[..];
        while read_frame(&mut reader, MAX_REQUEST_FRAME).is_ok() {}
    }
}

#[test]
fn message_inputs() {
    for (path, data) in inputs("message") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        if let Ok(req) = decode_request(text) {
            assert_eq!(decode_request(&req.to_json()).unwrap(), req, "{path:?}");
        }
        let _ = Reply::from_json(text);
        if let Ok(p) = VPath::resolve(&VPath::root(), text) {
            assert!(
                p.components().iter().all(|c| c != ".." && c != "."),
                "{path:?}"
            );
        }
    }
}

#[test]
fn ftp_command_inputs() {
    for (path, data) in inputs("ftp_command") {
        let codes = replay(&data);
        let name = path.file_name().unwrap().to_string_lossy();
        // The seeds replay real clients' sequences: check they still get
        // where they went when they were recorded.
        let want: &[u16] = match &*name {
            "filezilla-sequence" => &[227, 350, 150, 226, 213, 221],
            "curl-appe-and-cwd" => &[213, 150, 226, 221],
            "upload-cut-is-kept" => &[150, 426, 229, 150, 426, 226, 200],
            "overlong-line" => &[220, 500],
            // Review find: a second end of the data connection while the
            // commit ran used to answer 426 and keep the partial too.
            "second-end-while-committing" => &[229, 150, 226, 200],
            // Review find: a listing page reported written twice asked the
            // core for the next page twice.
            "listing-sent-twice" => &[229, 150, 226, 200],
            "pre-login-probe" => &[530, 530, 530],
            _ => &[],
        };
        assert!(
            codes.ends_with(want) || codes.starts_with(want),
            "{name}: {codes:?}"
        );
    }
}

#[test]
fn connection_inputs() {
    let s = crate::util::TestServer::with(crate::util::Opts {
        toml: "[limits]\nmax_failed_logins = 100000\nfailed_login_delay_ms = 0\n\
               login_timeout_secs = 5\nidle_timeout_secs = 5\n"
            .into(),
        users: vec![("fuzz", "fuzz", "16M")],
        env: vec![],
    });
    for (path, data) in inputs("connection") {
        let mut w = s.connect();
        let (first, rest) = data.split_first().unwrap_or((&0, &[]));
        if first & 1 == 1 {
            let r = w.call(serde_json::json!({"op": "login", "user": "fuzz", "password": "fuzz"}));
            assert_eq!(r["code"], 230, "{path:?}");
        }
        let _ = w.stream.write_all(rest);
        let _ = w.stream.shutdown(std::net::Shutdown::Write);
        w.stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut sink = [0u8; 65536];
        loop {
            match w.stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
                Err(e) => panic!("{path:?}: the server did not close the connection: {e}"),
            }
        }
    }
    // Still serving.
    let mut w = s.login("fuzz", "fuzz");
    assert_eq!(w.call(serde_json::json!({"op": "pwd"}))["code"], 200);
    assert!(!s.log().contains("panicked"), "{}", s.log());
}
