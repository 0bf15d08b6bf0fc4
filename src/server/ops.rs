//! The operator's doors, served by the loop like everything else:
//! Prometheus scrapes on `[metrics] listen` (the HTTP is in [`super::http`])
//! and `miniftp admin` requests on the unix socket in the data directory
//! (the protocol is in [`super::admin`]). Each is a small connection that
//! sends one request, gets one answer and is closed. Nothing here blocks:
//! the sockets are non-blocking and the answers come from the loop's own
//! state. Each connection's input is bounded (`MAX_HTTP_REQUEST_HEAD`,
//! `MAX_ADMIN_REQUEST`), at most `MAX_OPS_CONNS` are open at once (more are
//! closed on arrival) and one still open after `OPS_TIMEOUT` is dropped.

use std::io::{ErrorKind, Read, Write};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Token};
use slab::Slab;

use super::admin::{self, LockoutInfo, RequestBuf, Snapshot};
use super::conn::Event;
use super::metrics::{self, Pool};
use super::{http, Server};
use crate::limits::{MAX_HTTP_REQUEST_HEAD, MAX_OPS_CONNS, OPS_TIMEOUT};

/// The operator's listeners, bound by `serve` before it announces them.
#[derive(Default)]
pub struct OpsListeners {
    /// `[metrics] listen`.
    pub metrics: Option<std::net::TcpListener>,
    /// ROOT/admin.sock (see [`admin::bind`]).
    pub admin: Option<std::os::unix::net::UnixListener>,
}

/// Tokens: the two listeners just below `BASE`, connections from `BASE`
/// up (far from the clients' slab keys and the client listeners' tokens).
const BASE: usize = usize::MAX / 2;
const METRICS: Token = Token(BASE - 1);
const ADMIN: Token = Token(BASE - 2);

/// Whether a token is one of ours.
pub(super) fn owns(token: Token) -> bool {
    (BASE - 2..BASE + MAX_OPS_CONNS).contains(&token.0)
}

pub(super) struct Ops {
    metrics: Option<TcpListener>,
    admin: Option<UnixListener>,
    conns: Slab<OpsConn>,
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn source(&mut self) -> &mut dyn mio::event::Source {
        match self {
            Stream::Tcp(s) => s,
            Stream::Unix(s) => s,
        }
    }
}

/// What an operator's connection asks.
enum Asking {
    /// An HTTP request head, collected up to `MAX_HTTP_REQUEST_HEAD`.
    Http(Vec<u8>),
    Admin(RequestBuf),
}

struct OpsConn {
    stream: Stream,
    asking: Asking,
    /// The answer, once there is one, and how much of it went out.
    answer: Option<(Vec<u8>, usize)>,
    deadline: Instant,
}

/// What a whole request needs from the loop.
enum Wants {
    Metrics(http::Request),
    Admin(admin::Request),
    /// Answered without the loop (an error).
    Ready(Vec<u8>),
}

impl Ops {
    pub(super) fn new(listeners: OpsListeners, registry: &mio::Registry) -> std::io::Result<Ops> {
        let mut ops = Ops {
            metrics: None,
            admin: None,
            conns: Slab::new(),
        };
        if let Some(l) = listeners.metrics {
            l.set_nonblocking(true)?;
            let mut l = TcpListener::from_std(l);
            registry.register(&mut l, METRICS, Interest::READABLE)?;
            ops.metrics = Some(l);
        }
        if let Some(l) = listeners.admin {
            l.set_nonblocking(true)?;
            let mut l = UnixListener::from_std(l);
            registry.register(&mut l, ADMIN, Interest::READABLE)?;
            ops.admin = Some(l);
        }
        Ok(ops)
    }

    /// Accepts what waits on a listener.
    fn accept(&mut self, token: Token, registry: &mio::Registry) {
        loop {
            let accepted = match token {
                METRICS => self.metrics.as_ref().map(|l| {
                    l.accept().map(|(s, _)| {
                        let head = Vec::new();
                        (Stream::Tcp(s), Asking::Http(head))
                    })
                }),
                _ => self.admin.as_ref().map(|l| {
                    l.accept()
                        .map(|(s, _)| (Stream::Unix(s), Asking::Admin(RequestBuf::default())))
                }),
            };
            let (mut stream, asking) = match accepted {
                Some(Ok(x)) => x,
                Some(Err(e)) if e.kind() == ErrorKind::Interrupted => continue,
                Some(Err(e)) if e.kind() == ErrorKind::WouldBlock => return,
                Some(Err(e)) => {
                    log::warn!("operator's listener: accept failed: {e}");
                    return;
                }
                None => return,
            };
            if self.conns.len() >= MAX_OPS_CONNS {
                continue; // dropped: closed at once
            }
            let entry = self.conns.vacant_entry();
            let interest = Interest::READABLE | Interest::WRITABLE;
            let token = Token(BASE + entry.key());
            if registry.register(stream.source(), token, interest).is_ok() {
                entry.insert(OpsConn {
                    stream,
                    asking,
                    answer: None,
                    deadline: Instant::now() + OPS_TIMEOUT,
                });
            }
        }
    }

    /// Reads a connection's request; what it wants once it is whole. Err:
    /// the connection is to close.
    fn read(&mut self, key: usize) -> Result<Option<Wants>, ()> {
        let conn = self.conns.get_mut(key).ok_or(())?;
        let mut buf = [0u8; 4096];
        loop {
            let n = match conn.stream.read(&mut buf) {
                Ok(0) => return Err(()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(_) => return Err(()),
            };
            let wants = match &mut conn.asking {
                Asking::Http(head) => {
                    let room = MAX_HTTP_REQUEST_HEAD + 1 - head.len().min(MAX_HTTP_REQUEST_HEAD);
                    head.extend_from_slice(&buf[..n.min(room)]);
                    match http::parse(head) {
                        Ok(None) => continue,
                        Ok(Some(req)) => Wants::Metrics(req),
                        Err(e) => Wants::Ready(e.response()),
                    }
                }
                Asking::Admin(req) => match req.feed(&buf[..n]) {
                    Ok(None) => continue,
                    Ok(Some(req)) => Wants::Admin(req),
                    Err(reply) => Wants::Ready(admin::encode(&reply)),
                },
            };
            return Ok(Some(wants));
        }
    }

    /// Writes what is left of the answer; true once it is all out (or the
    /// peer is gone): then the connection closes.
    fn write(&mut self, key: usize) -> bool {
        let Some(conn) = self.conns.get_mut(key) else {
            return true;
        };
        let Some((out, sent)) = conn.answer.as_mut() else {
            return false;
        };
        while *sent < out.len() {
            match conn.stream.write(&out[*sent..]) {
                Ok(0) => return true,
                Ok(n) => *sent += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return true,
            }
        }
        true
    }

    fn close(&mut self, key: usize, registry: &mio::Registry) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = registry.deregister(conn.stream.source());
            if let Stream::Tcp(s) = &conn.stream {
                let _ = s.shutdown(std::net::Shutdown::Write);
            }
        }
    }
}

impl Server {
    /// Readiness on one of the operator's sockets.
    pub(super) fn ops_ready(&mut self, token: Token) {
        if token == METRICS || token == ADMIN {
            return self.ops.accept(token, self.poll.registry());
        }
        let key = token.0 - BASE;
        if self.ops.conns.get(key).is_some_and(|c| c.answer.is_none()) {
            match self.ops.read(key) {
                Ok(None) => return,
                Ok(Some(wants)) => {
                    let answer = self.ops_answer(wants);
                    if let Some(conn) = self.ops.conns.get_mut(key) {
                        conn.answer = Some((answer, 0));
                    }
                }
                Err(()) => return self.ops.close(key, self.poll.registry()),
            }
        }
        if self.ops.write(key) {
            self.ops.close(key, self.poll.registry());
        }
    }

    /// Drops the operator's connections that took too long.
    pub(super) fn ops_tick(&mut self, now: Instant) {
        let late: Vec<usize> = self
            .ops
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(k, _)| k)
            .collect();
        for key in late {
            self.ops.close(key, self.poll.registry());
        }
    }

    fn ops_answer(&mut self, wants: Wants) -> Vec<u8> {
        match wants {
            Wants::Ready(bytes) => bytes,
            Wants::Metrics(req) => http::answer(&req, || {
                let m = metrics::global();
                m.set_queue_depth(Pool::Io, self.io_pool.queued());
                m.set_queue_depth(Pool::Auth, self.auth_pool.queued());
                m.render()
            }),
            Wants::Admin(req) => {
                let (reply, action) = admin::answer(req, &self.snapshot());
                match action {
                    Some(admin::Action::Kick(user)) => self.kick(&user),
                    Some(admin::Action::Unlock(addr)) => {
                        let had = self.limiter.unlock(addr);
                        log::info!("admin: unlocked {addr} (failures counted: {had})");
                    }
                    None => {}
                }
                admin::encode(&reply)
            }
        }
    }

    /// The loop's state as `miniftp admin` shows it.
    fn snapshot(&self) -> Snapshot {
        let now = Instant::now();
        let unix_now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let sessions = self
            .conns
            .iter()
            .filter(|(_, c)| c.admitted)
            .map(|(_, c)| c.info(now, unix_now))
            .collect();
        let lockouts = self
            .limiter
            .lockouts(now)
            .into_iter()
            .map(|(addr, failures, left)| LockoutInfo {
                addr,
                failures,
                remaining_secs: left.as_millis().div_ceil(1000) as u64,
            })
            .collect();
        Snapshot { sessions, lockouts }
    }

    /// Ends every session of `user` (`miniftp admin kick`).
    fn kick(&mut self, user: &str) {
        let tokens: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| c.user_name() == Some(user))
            .map(|(k, _)| k)
            .collect();
        log::info!("admin: kicking {} session(s) of {user:?}", tokens.len());
        for k in tokens {
            self.dispatch(Token(k), Event::Kick);
        }
    }
}
