//! Drives an FTP session from arbitrary bytes and checks what must hold
//! whatever a client sends: shared by the `ftp_command` fuzz target and
//! its regression tests (tests/integration/fuzz_regressions), so both check
//! the same things.
//!
//! Input layout: the first byte picks the session's configuration; the
//! rest is split into lines by [`split_line`]. A line starting with 0x01
//! is an event from the loop or the core (built from its next bytes), any
//! other line is a command line, fed only when the session is ready for
//! one (as the loop will).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use super::command::{parse, split_line, Split};
use super::session::{DataAction, DataEnd, FtpSession, Input, Output, SessionConfig};
use crate::limits::MAX_FTP_LINE;
use crate::proto::{Entry, EntryKind, Reply, Request, Status};

/// Replays `data` and panics if an invariant breaks; returns the codes of
/// every reply sent, in order.
pub fn replay(data: &[u8]) -> Vec<u16> {
    let mut codes = Vec::new();
    let Some((&flags, mut rest)) = data.split_first() else {
        return codes;
    };
    let (mut session, greeting) = FtpSession::new(config(flags));
    let mut closed = check(&greeting, false, &mut codes);
    let mut committing = false;
    let mut calling = false;
    loop {
        match split_line(rest) {
            Split::Incomplete => break,
            Split::TooLong => {
                assert!(rest.len() >= MAX_FTP_LINE);
                let out = session.handle(Input::LineTooLong);
                assert!(closed || out.last() == Some(&Output::Close));
                check(&out, false, &mut codes);
                break;
            }
            Split::Line { text_end, consumed } => {
                assert!(text_end < consumed && consumed <= MAX_FTP_LINE);
                let line = &rest[..text_end];
                rest = &rest[consumed..];
                let input = match line.split_first() {
                    Some((1, event)) => event_from(event),
                    _ if session.ready_for_command() => Input::Command(parse(line)),
                    _ => continue,
                };
                let clean_end = matches!(input, Input::DataEnded(DataEnd::Clean { .. }));
                let core_reply = matches!(input, Input::Core(_));
                let was_logged_in = session.logged_in();
                let out = session.handle(input);
                if closed {
                    assert!(out.is_empty(), "output after Close: {out:?}");
                }
                closed |= check(&out, clean_end, &mut codes);
                // Once an upload is being committed, nothing may also keep
                // it as a partial or commit it again before the core's
                // reply.
                if committing {
                    assert!(
                        !out.iter().any(|o| matches!(
                            o,
                            Output::Data(DataAction::KeepPartial | DataAction::Commit)
                        )),
                        "an upload committed and ended again: {out:?}"
                    );
                }
                committing =
                    (committing && !core_reply) || out.contains(&Output::Data(DataAction::Commit));
                // One core call in flight at a time, across inputs too.
                let calls_now = out.iter().any(|o| {
                    matches!(
                        o,
                        Output::Core(_) | Output::Ftp(_) | Output::Data(DataAction::Commit)
                    )
                });
                assert!(
                    !(calling && !core_reply && calls_now),
                    "a second core call before the first one's reply: {out:?}"
                );
                calling = (calling && !core_reply) || calls_now;
                if !was_logged_in && !session.logged_in() {
                    check_before_login(&out);
                }
                let calls = out
                    .iter()
                    .filter(|o| matches!(o, Output::Core(_) | Output::Ftp(_)))
                    .count();
                assert!(calls <= 1, "two core calls at once: {out:?}");
                if calls == 1 {
                    assert!(!session.ready_for_command(), "a command while a call runs");
                }
            }
        }
    }
    codes
}

fn config(flags: u8) -> SessionConfig {
    SessionConfig {
        tls_available: flags & 1 != 0,
        implicit_tls: flags & 2 != 0,
        require_tls: flags & 4 != 0,
        active_mode: flags & 8 != 0,
        peer: if flags & 16 != 0 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        },
        greeting: "fuzz".into(),
    }
}

/// Checks one batch of outputs and notes its reply codes; returns whether
/// it closed the session.
fn check(out: &[Output], clean_end: bool, codes: &mut Vec<u16>) -> bool {
    let mut closed = false;
    for o in out {
        assert!(!closed, "output after Close: {out:?}");
        match o {
            Output::Reply(r) => {
                check_reply_wire(&r.to_wire(), r.code);
                codes.push(r.code);
            }
            // Never commit an upload whose data connection did not end
            // cleanly (the FTPS truncation trap).
            Output::Data(DataAction::Commit) => assert!(clean_end, "commit without a clean end"),
            Output::Close => closed = true,
            _ => {}
        }
    }
    closed
}

/// A reply is lines of `code-`/`code ` text ending CR LF, the last one
/// `code text`, with no stray CR or LF.
fn check_reply_wire(wire: &str, code: u16) {
    assert!((100..600).contains(&code), "{code}");
    assert!(wire.ends_with("\r\n"));
    let lines: Vec<&str> = wire[..wire.len() - 2].split("\r\n").collect();
    for l in &lines {
        assert!(!l.contains(['\r', '\n']), "{wire:?}");
    }
    let last = lines.last().expect("a reply has a line");
    assert!(last.starts_with(&format!("{code} ")), "{wire:?}");
    for l in &lines[..lines.len() - 1] {
        assert!(
            !l.starts_with(&format!("{code} ")),
            "early last line: {wire:?}"
        );
    }
}

/// Before login the session asks the core for nothing but a login, and
/// touches no data channel.
fn check_before_login(out: &[Output]) {
    for o in out {
        match o {
            Output::Core(Request::Login { .. }) | Output::Reply(_) => {}
            Output::StartTls | Output::Close => {}
            other => panic!("before login: {other:?}"),
        }
    }
}

/// An event for the session, from the bytes after the 0x01 marker.
fn event_from(bytes: &[u8]) -> Input {
    let (&kind, rest) = bytes.split_first().unwrap_or((&0, &[]));
    let n = rest
        .iter()
        .take(8)
        .fold(0u64, |n, &b| n << 8 | u64::from(b));
    match kind % 10 {
        0 => Input::Core(reply_from(rest)),
        1 => {
            let ip = if n & 1 == 0 {
                IpAddr::V4(Ipv4Addr::LOCALHOST)
            } else {
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            };
            Input::PassiveReady(SocketAddr::new(ip, n as u16))
        }
        2 => Input::PassiveFailed(String::from_utf8_lossy(rest).into_owned()),
        3 => Input::ListingSent,
        4 => Input::DataEnded(DataEnd::Clean { bytes: n }),
        5 => Input::DataEnded(DataEnd::Cut { bytes: n }),
        6 => Input::DataEnded(DataEnd::Aborted { bytes: n }),
        7 => Input::DataEnded(DataEnd::NoConnection),
        8 => Input::DataEnded(DataEnd::NotResumed),
        _ => Input::DataEnded(DataEnd::Failed(Box::new(reply_from(rest)))),
    }
}

/// A core reply with every optional field filled from `bytes`: the first
/// byte picks the status (low 5 bits), the entries' kind (next 2) and how
/// many entries (top bit); the rest is the text, and an odd first text
/// byte asks for a next page.
fn reply_from(bytes: &[u8]) -> Reply {
    let (&pick, rest) = bytes.split_first().unwrap_or((&0, &[]));
    let status = Status::ALL[usize::from(pick & 31) % Status::ALL.len()];
    let kinds = [
        EntryKind::File,
        EntryKind::Dir,
        EntryKind::Symlink,
        EntryKind::Other,
    ];
    let text = String::from_utf8_lossy(rest).into_owned();
    let n = rest
        .iter()
        .take(8)
        .fold(0u64, |n, &b| n << 8 | u64::from(b));
    let entry = Entry {
        name: text.clone(),
        kind: kinds[usize::from(pick >> 5 & 3)],
        size: n,
        mtime: n as i64,
        escaped: false,
    };
    Reply {
        msg: text.clone(),
        cwd: Some(text.clone()),
        entries: Some(vec![entry.clone(); 1 + usize::from(pick >> 7)]),
        next: rest.first().is_some_and(|b| b % 2 == 1).then_some(n),
        entry: Some(entry),
        size: Some(n),
        sha256: Some(text),
        ..Reply::new(status, "")
    }
}
