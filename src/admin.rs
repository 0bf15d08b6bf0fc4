//! `miniftp admin who | kick USER | lockouts | unlock ADDR`: asks the
//! running server over its unix socket in the data directory (found with
//! `--root` or `--config`, like `useradd`), prints the answer for people.
//! The socket and its protocol are in crate::server::admin.

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::cli::RootArgs;
use crate::config::Config;
use crate::error::Result;
use crate::limits::MAX_ADMIN_REPLY;
use crate::server::admin::{socket_path, LockoutInfo, Reply, Request, SessionInfo};
use crate::size::human;

/// How long the server may take to answer: it answers from the loop, at
/// once, unless it is stuck.
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Args, Debug)]
pub struct AdminArgs {
    #[command(flatten)]
    pub root: RootArgs,
    #[command(subcommand)]
    pub action: AdminAction,
}

#[derive(Subcommand, Debug)]
pub enum AdminAction {
    /// One line per connection: user, address, listener, since, transfer.
    Who,
    /// Close every session of USER (they are told 421).
    Kick {
        #[arg(value_name = "USER")]
        user: String,
    },
    /// Addresses locked out after failed logins, with the time left.
    Lockouts,
    /// Lift the lockout of ADDR and forget its failed logins.
    Unlock {
        #[arg(value_name = "ADDR")]
        addr: IpAddr,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to {path}: {source} (is a server running with this data directory?)")]
    NoServer {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot connect to {path}: {source} (run as the server's user, or root)")]
    Denied {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("talking to the server on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the server on {path} answered something else than a reply: {message}")]
    BadReply { path: PathBuf, message: String },
    #[error("the server refused: {0}")]
    Refused(String),
}

pub fn run(args: AdminArgs) -> Result<()> {
    let mut config = Config::load(args.root.config.as_deref())?;
    if let Some(root) = &args.root.root {
        config.root = root.clone();
    }
    let request = match args.action {
        AdminAction::Who => Request::Who,
        AdminAction::Kick { user } => Request::Kick { user },
        AdminAction::Lockouts => Request::Lockouts,
        AdminAction::Unlock { addr } => Request::Unlock { addr },
    };
    let reply = call(&socket_path(&config.root), &request)?;
    print!("{}", show(&reply)?);
    Ok(())
}

/// One request, one reply.
pub fn call(path: &Path, request: &Request) -> Result<Reply, AdminError> {
    let mut stream = UnixStream::connect(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            AdminError::Denied {
                path: path.into(),
                source,
            }
        } else {
            AdminError::NoServer {
                path: path.into(),
                source,
            }
        }
    })?;
    let io = |source| AdminError::Io {
        path: path.into(),
        source,
    };
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(request).expect("requests always serialize");
    line.push(b'\n');
    stream.write_all(&line).map_err(io)?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ADMIN_REPLY as u64)
        .read_to_end(&mut answer)
        .map_err(io)?;
    let end = answer
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| AdminError::BadReply {
            path: path.into(),
            message: format!("no whole line in {} bytes", answer.len()),
        })?;
    serde_json::from_slice(&answer[..end]).map_err(|e| AdminError::BadReply {
        path: path.into(),
        message: e.to_string(),
    })
}

/// The reply as text for people; a refusal is an error.
fn show(reply: &Reply) -> Result<String> {
    Ok(match reply {
        Reply::Sessions { sessions } => sessions_table(sessions),
        Reply::Lockouts { lockouts } => lockouts_table(lockouts),
        Reply::Kicked { user, sessions: 0 } => format!("{user} has no sessions\n"),
        Reply::Kicked { user, sessions } => {
            format!("closing {sessions} session(s) of {user}\n")
        }
        Reply::Unlocked {
            addr,
            was_locked: true,
        } => format!("unlocked {addr}\n"),
        Reply::Unlocked { addr, .. } => format!("{addr} was not locked out\n"),
        Reply::Error { message } => return Err(AdminError::Refused(message.clone()).into()),
    })
}

fn sessions_table(sessions: &[SessionInfo]) -> String {
    if sessions.is_empty() {
        return "no connections\n".into();
    }
    let mut out = format!(
        "{:<20} {:<40} {:<8} {:<16}  TRANSFER\n",
        "USER", "ADDRESS", "LISTENER", "SINCE (UTC)"
    );
    for s in sessions {
        let transfer = s.transfer.as_ref().map_or(String::new(), |t| {
            let of = t
                .size
                .map_or(String::new(), |n| format!(" of {}", human(n)));
            format!("{} {:?} {}{of}", t.op, t.path, human(t.done))
        });
        out += &format!(
            "{:<20} {:<40} {:<8} {:<16}  {transfer}\n",
            s.user.as_deref().unwrap_or("-"),
            s.addr.to_string(),
            s.listener,
            crate::useradd::format_time(s.since),
        );
    }
    out
}

fn lockouts_table(lockouts: &[LockoutInfo]) -> String {
    if lockouts.is_empty() {
        return "no addresses locked out\n".into();
    }
    let mut out = format!("{:<40} {:>8} {:>10}\n", "ADDRESS", "FAILURES", "UNLOCKS IN");
    for l in lockouts {
        out += &format!(
            "{:<40} {:>8} {:>9}s\n",
            l.addr.to_string(),
            l.failures,
            l.remaining_secs
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::admin::{answer, encode, RequestBuf, Snapshot, TransferInfo};

    /// A stand-in for the loop: answers one request on `path` from `snap`
    /// with the server side's own code.
    fn serve_one(path: &Path, snap: Snapshot) -> std::thread::JoinHandle<()> {
        let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = RequestBuf::default();
            let mut chunk = [0u8; 64];
            let reply = loop {
                let n = s.read(&mut chunk).unwrap();
                match buf.feed(&chunk[..n]) {
                    Ok(Some(req)) => break answer(req, &snap).0,
                    Ok(None) => assert!(n > 0, "EOF before a request"),
                    Err(reply) => break reply,
                }
            };
            s.write_all(&encode(&reply)).unwrap();
        })
    }

    #[test]
    fn who_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let snap = Snapshot {
            sessions: vec![SessionInfo {
                user: Some("alice".into()),
                addr: "10.0.0.5:51234".parse().unwrap(),
                listener: "native".into(),
                since: 1_764_000_000,
                transfer: Some(TransferInfo {
                    op: "put".into(),
                    path: "/backups/db.tgz".into(),
                    done: 3 << 20,
                    size: Some(4 << 30),
                }),
            }],
            lockouts: vec![],
        };
        let server = serve_one(&path, snap);
        let reply = call(&path, &Request::Who).unwrap();
        server.join().unwrap();
        let text = show(&reply).unwrap();
        let line = text.lines().nth(1).unwrap();
        for part in [
            "alice",
            "10.0.0.5:51234",
            "native",
            "2025-11-24 16:00",
            "put \"/backups/db.tgz\" 3 MiB of 4 GiB",
        ] {
            assert!(line.contains(part), "{part} in {line:?}");
        }
    }

    #[test]
    fn refusals_and_a_missing_server_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let e = call(&path, &Request::Lockouts).unwrap_err();
        assert!(matches!(e, AdminError::NoServer { .. }), "{e}");
        assert!(e.to_string().contains("is a server running"), "{e}");
        let e = show(&Reply::Error {
            message: "nope".into(),
        })
        .unwrap_err();
        assert!(e.to_string().contains("nope"));
        assert_eq!(
            show(&Reply::Lockouts { lockouts: vec![] }).unwrap(),
            "no addresses locked out\n"
        );
    }
}
