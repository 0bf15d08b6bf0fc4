//! The operator's control socket, `ROOT/admin.sock` (a unix socket, mode
//! 0600 in the owner-only data directory: nothing listens on the network
//! for this, and only the server's user and root may connect). One request
//! per connection: a JSON line in, a JSON line out, then the server closes.
//!
//! This module is the server's side, sans I/O: [`RequestBuf`] collects a
//! request line (bounded), [`answer`] turns it into a reply from a
//! [`Snapshot`] of the loop's state, plus the [`Action`] the loop must apply
//! (kick a user's sessions, lift a lockout). `miniftp admin` is the client
//! (src/admin.rs).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::limits::MAX_ADMIN_REQUEST;

/// The socket's name in the data directory.
pub const SOCKET_NAME: &str = "admin.sock";

pub fn socket_path(root: &Path) -> PathBuf {
    root.join(SOCKET_NAME)
}

/// What the operator asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum Request {
    /// Every connection: user, address, listener, since, transfer.
    Who,
    /// Close every session of `user` (told 421 first).
    Kick { user: String },
    /// Every address locked out after failed logins.
    Lockouts,
    /// Lift the lockout of `addr` and forget its failures.
    Unlock { addr: IpAddr },
}

/// One connection, as `who` shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// None until the connection has logged in.
    pub user: Option<String>,
    pub addr: SocketAddr,
    /// "native" or "ftp" (see server::metrics::Listener).
    pub listener: String,
    /// Unix seconds when the connection was accepted.
    pub since: u64,
    pub transfer: Option<TransferInfo>,
}

/// A transfer in progress.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferInfo {
    /// "put" or "get".
    pub op: String,
    pub path: String,
    /// Bytes moved so far, and the total when known.
    pub done: u64,
    pub size: Option<u64>,
}

/// A locked-out address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockoutInfo {
    pub addr: IpAddr,
    pub failures: u32,
    /// Seconds until the lockout ends by itself.
    pub remaining_secs: u64,
}

/// The server's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "lowercase")]
pub enum Reply {
    Sessions {
        sessions: Vec<SessionInfo>,
    },
    Lockouts {
        lockouts: Vec<LockoutInfo>,
    },
    /// `sessions` of `user` are being closed.
    Kicked {
        user: String,
        sessions: usize,
    },
    /// Whether `addr` was locked out (or had failures counted) before.
    Unlocked {
        addr: IpAddr,
        was_locked: bool,
    },
    Error {
        message: String,
    },
}

/// What the loop must do after answering.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Close every session of this user (421, then close).
    Kick(String),
    /// Forget the failures and lockout of this address.
    Unlock(IpAddr),
}

/// The loop's state at the moment a request arrives; the loop builds it
/// from its connection table and limiter (phase 2 of issue 14).
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    pub sessions: Vec<SessionInfo>,
    pub lockouts: Vec<LockoutInfo>,
}

/// A request being read: bytes up to the first newline, at most
/// [`MAX_ADMIN_REQUEST`].
#[derive(Default)]
pub struct RequestBuf {
    buf: Vec<u8>,
}

impl RequestBuf {
    /// Adds bytes read from the socket. `Ok(None)`: no whole line yet.
    /// `Err(reply)`: send it and close (too long, or not a request).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<Request>, Reply> {
        let room = MAX_ADMIN_REQUEST + 1 - self.buf.len().min(MAX_ADMIN_REQUEST + 1);
        self.buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        let Some(end) = self.buf.iter().position(|&b| b == b'\n') else {
            if self.buf.len() > MAX_ADMIN_REQUEST {
                return Err(error(format!(
                    "request longer than {MAX_ADMIN_REQUEST} bytes"
                )));
            }
            return Ok(None);
        };
        serde_json::from_slice(&self.buf[..end])
            .map(Some)
            .map_err(|e| error(format!("not a request: {e}")))
    }
}

fn error(message: String) -> Reply {
    Reply::Error { message }
}

/// The reply to `request` from `snapshot`, and what the loop must then do.
pub fn answer(request: Request, snapshot: &Snapshot) -> (Reply, Option<Action>) {
    match request {
        Request::Who => (
            Reply::Sessions {
                sessions: snapshot.sessions.clone(),
            },
            None,
        ),
        Request::Lockouts => (
            Reply::Lockouts {
                lockouts: snapshot.lockouts.clone(),
            },
            None,
        ),
        Request::Kick { user } => {
            let sessions = snapshot
                .sessions
                .iter()
                .filter(|s| s.user.as_deref() == Some(user.as_str()))
                .count();
            let action = (sessions > 0).then(|| Action::Kick(user.clone()));
            (Reply::Kicked { user, sessions }, action)
        }
        Request::Unlock { addr } => {
            let addr = addr.to_canonical();
            let was_locked = snapshot.lockouts.iter().any(|l| l.addr == addr);
            (
                Reply::Unlocked { addr, was_locked },
                Some(Action::Unlock(addr)),
            )
        }
    }
}

/// A reply as the line written to the socket.
pub fn encode(reply: &Reply) -> Vec<u8> {
    let mut line = serde_json::to_vec(reply).expect("replies always serialize");
    line.push(b'\n');
    line
}

/// Binds the socket in the data directory, owner-only. A socket file left
/// by a server that died is replaced; one a live server answers on is not
/// (two servers on one data directory would corrupt each other's state).
pub fn bind(root: &Path) -> std::io::Result<std::os::unix::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::net::{UnixListener, UnixStream};
    let path = socket_path(root);
    if UnixStream::connect(&path).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("another server answers on {}", path.display()),
        ));
    }
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> Snapshot {
        let session = |user: Option<&str>, port: u16| SessionInfo {
            user: user.map(str::to_string),
            addr: SocketAddr::from(([10, 0, 0, 5], port)),
            listener: "native".into(),
            since: 1_764_000_000,
            transfer: None,
        };
        Snapshot {
            sessions: vec![
                session(Some("alice"), 1000),
                session(None, 1001),
                session(Some("alice"), 1002),
                session(Some("bob"), 1003),
            ],
            lockouts: vec![LockoutInfo {
                addr: "192.0.2.7".parse().unwrap(),
                failures: 5,
                remaining_secs: 120,
            }],
        }
    }

    #[test]
    fn requests_from_lines_in_pieces() {
        let mut b = RequestBuf::default();
        assert_eq!(b.feed(br#"{"op":"ki"#), Ok(None));
        assert_eq!(
            b.feed(b"ck\",\"user\":\"alice\"}\n"),
            Ok(Some(Request::Kick {
                user: "alice".into()
            }))
        );
        let mut b = RequestBuf::default();
        assert_eq!(
            b.feed(b"{\"op\":\"unlock\",\"addr\":\"::ffff:192.0.2.7\"}\n"),
            Ok(Some(Request::Unlock {
                addr: "::ffff:192.0.2.7".parse().unwrap()
            }))
        );
        for bad in [
            &b"{\"op\":\"reboot\"}\n"[..],
            b"who\n",
            b"{\"op\":\"kick\"}\n",
        ] {
            let mut b = RequestBuf::default();
            assert!(matches!(b.feed(bad), Err(Reply::Error { .. })), "{bad:?}");
        }
    }

    #[test]
    fn a_request_without_end_is_capped() {
        let mut b = RequestBuf::default();
        let chunk = vec![b' '; 1000];
        for _ in 0..4 {
            assert_eq!(b.feed(&chunk), Ok(None));
        }
        assert!(matches!(b.feed(&chunk), Err(Reply::Error { .. })));
        assert!(b.buf.len() <= MAX_ADMIN_REQUEST + 1, "bounded");
    }

    #[test]
    fn answers_and_actions() {
        let snap = snapshot();
        let (r, a) = answer(Request::Who, &snap);
        assert_eq!(
            r,
            Reply::Sessions {
                sessions: snap.sessions.clone()
            }
        );
        assert_eq!(a, None);
        let (r, a) = answer(
            Request::Kick {
                user: "alice".into(),
            },
            &snap,
        );
        assert_eq!(
            r,
            Reply::Kicked {
                user: "alice".into(),
                sessions: 2
            }
        );
        assert_eq!(a, Some(Action::Kick("alice".into())));
        let (r, a) = answer(
            Request::Kick {
                user: "carol".into(),
            },
            &snap,
        );
        assert_eq!(
            r,
            Reply::Kicked {
                user: "carol".into(),
                sessions: 0
            }
        );
        assert_eq!(a, None);
        let (r, a) = answer(Request::Lockouts, &snap);
        assert_eq!(
            r,
            Reply::Lockouts {
                lockouts: snap.lockouts.clone()
            }
        );
        assert_eq!(a, None);
        // An IPv4-mapped address is the IPv4 one.
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let (r, a) = answer(Request::Unlock { addr: mapped }, &snap);
        assert_eq!(
            r,
            Reply::Unlocked {
                addr: v4,
                was_locked: true
            }
        );
        assert_eq!(a, Some(Action::Unlock(v4)));
        let line = encode(&r);
        assert_eq!(
            line,
            b"{\"reply\":\"unlocked\",\"addr\":\"192.0.2.7\",\"was_locked\":true}\n"
        );
    }

    #[test]
    fn the_socket_is_owner_only_and_not_stolen_from_a_live_server() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let first = bind(dir.path()).unwrap();
        let mode = std::fs::metadata(socket_path(dir.path()))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let e = bind(dir.path()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
        drop(first);
        // The file of a server that is gone is replaced.
        bind(dir.path()).unwrap();
    }
}
