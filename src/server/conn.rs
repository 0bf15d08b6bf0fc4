//! One connection's state machine, driven by the loop: read a frame, decode
//! it, answer inline (the few requests that touch no storage) or hand it to
//! a worker, and move file bodies through pump jobs. The pre-login command
//! set is tiny and listed here in one place: `login`, `register`, `noop`,
//! `quit`. What a finished job does next is in `complete.rs`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Token;

use super::cmd::{self, Ctx};
use super::io::{Fill, Io};
use super::session::Session;
use super::transfer::{eager, upload, Download, Transfer, Upload};
use super::{Outcome, Server};
use crate::config::RegistrationPolicy;
use crate::limits::{FRAME_HEADER_LEN, MAX_PENDING_REPLY_BYTES, MAX_REQUEST_FRAME};
use crate::proto::frame::{self, Check, FrameError};
use crate::proto::message::{decode_request, DecodeError};
use crate::proto::{Reply, Request, Status, PROTOCOL_VERSION};

/// How long a closing connection waits for its peer to close too.
const LINGER: Duration = Duration::from_secs(2);

/// Where a connection stands.
pub enum State {
    /// Reading and answering requests.
    Ready,
    /// A command job is in flight (or a reply is held back by a timer).
    Busy,
    /// Receiving an upload body; waiting for the socket to have bytes.
    Upload(Box<Upload>),
    /// The body is in; waiting for the `done` trailer.
    Trailer(Box<Upload>),
    /// Sending a download; waiting for the socket to take bytes.
    Download(Box<Download>),
    /// A pump job holds the transport and the transfer.
    Pumping,
}

pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    /// None while a pump job holds it.
    pub io: Option<Box<Io>>,
    pub state: State,
    pub session: Option<Session>,
    pub opened: Instant,
    pub last_active: Instant,
    /// Edge-triggered readiness not yet used up (cleared on WouldBlock).
    pub readable: bool,
    pub writable: bool,
    /// Close once the queued replies are written.
    pub closing: bool,
    /// Set once our side is shut: when the lingering close gives up.
    pub linger_until: Option<Instant>,
    /// Why the connection is closing, for the session-end log line.
    pub why: &'static str,
    /// The peer closed its sending side (EOF read).
    pub peer_closed: bool,
    /// A reply held back until a timer fires (failed-login delay).
    pub held: Option<Reply>,
    /// The user name of a login in flight, for the log.
    pub trying: Option<String>,
    /// Counted in the connection limits (false: a refused TLS connection
    /// that only waits to be told so).
    pub admitted: bool,
}

impl Conn {
    pub fn new(id: u64, peer: SocketAddr, io: Box<Io>) -> Conn {
        let now = Instant::now();
        Conn {
            id,
            peer,
            io: Some(io),
            state: State::Ready,
            session: None,
            opened: now,
            last_active: now,
            readable: false,
            writable: true,
            closing: false,
            linger_until: None,
            why: "closed",
            peer_closed: false,
            held: None,
            trying: None,
            admitted: true,
        }
    }

    fn user(&self) -> &str {
        self.session.as_ref().map_or("-", |s| s.user.as_str())
    }
}

impl Server {
    /// Makes all the progress a connection can make without blocking.
    pub(super) fn drive(&mut self, token: Token) {
        loop {
            let shutting_down = self.shutdown.is_some();
            let Some(conn) = self.conns.get_mut(token.0) else {
                return;
            };
            let Some(io) = conn.io.as_mut() else {
                return;
            };
            if io.has_output() && conn.writable {
                match io.flush() {
                    Ok(true) => {}
                    Ok(false) => conn.writable = false,
                    Err(_) => return self.close(token, "connection lost"),
                }
            }
            if conn.closing {
                if !io.has_output() {
                    self.linger(token);
                } else if io.transport.is_handshaking() && conn.peer_closed {
                    // The peer stopped before the handshake ended: nothing
                    // can be said to it any more.
                    return self.close(token, "closed");
                } else if io.transport.is_handshaking() && conn.readable {
                    // A refused TLS connection: its 421 waits for the keys,
                    // so the handshake must go on (input is discarded).
                    let mut sink = [0u8; 4096];
                    match io.transport.read(&mut sink) {
                        Ok(0) | Err(_) if !io.transport.is_handshaking() => {}
                        Ok(0) => return self.close(token, "closed"),
                        Ok(_) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            conn.readable = false;
                        }
                        Err(_) => return self.close(token, "closed"),
                    }
                    conn.writable = true;
                    continue;
                }
                return;
            }
            match &conn.state {
                State::Busy | State::Pumping => return,
                State::Upload(_) => {
                    if conn.readable || !io.rbuf.is_empty() {
                        self.start_pump(token);
                    }
                    return;
                }
                State::Download(_) => {
                    if conn.writable {
                        self.start_pump(token);
                    }
                    return;
                }
                State::Ready | State::Trailer(_) => {}
            }
            if shutting_down && matches!(conn.state, State::Ready) {
                io.send(&Reply::new(
                    Status::Unavailable,
                    "server shutting down, closing",
                ));
                conn.closing = true;
                continue;
            }
            // Backpressure: a client that doesn't read its replies gets no
            // more requests served.
            if io.wbuf.len() > MAX_PENDING_REPLY_BYTES {
                return;
            }
            match frame::check(&io.rbuf, MAX_REQUEST_FRAME) {
                Ok(Check::Complete { end }) => {
                    let text = frame::payload(&io.rbuf[..end]).map(str::to_owned);
                    io.consume(end);
                    conn.last_active = Instant::now();
                    match text {
                        Ok(text) => self.handle_frame(token, &text),
                        Err(e) => io.send(&Reply::new(Status::BadFrame, e.to_string())),
                    }
                }
                Ok(Check::Incomplete { .. }) => {
                    if !conn.readable {
                        // The peer half-closed: what it sent is answered,
                        // then the connection ends.
                        if conn.peer_closed {
                            conn.closing = true;
                            continue;
                        }
                        return;
                    }
                    match io.fill(MAX_REQUEST_FRAME + FRAME_HEADER_LEN) {
                        Ok(Fill::Data) => conn.readable = false,
                        Ok(Fill::Full) => {}
                        Ok(Fill::WouldBlock) => {
                            conn.readable = false;
                            return;
                        }
                        Ok(Fill::Eof) => {
                            conn.peer_closed = true;
                            conn.readable = false;
                        }
                        Err(_) => return self.close(token, "connection lost"),
                    }
                }
                Err(FrameError::Empty) => {
                    io.consume(FRAME_HEADER_LEN);
                    io.send(&Reply::new(Status::BadFrame, FrameError::Empty.to_string()));
                }
                Err(e) => {
                    // The stream can't be resynchronised after a bad length.
                    log::warn!("{}: {e}; disconnecting", conn.peer);
                    io.send(&Reply::new(Status::BadFrame, format!("{e}; closing")));
                    io.rbuf.clear();
                    conn.closing = true;
                }
            }
        }
    }

    fn handle_frame(&mut self, token: Token, text: &str) {
        match decode_request(text) {
            Ok(req) => self.handle_request(token, req),
            Err(e) => {
                // After an upload's body, a frame that names an op other
                // than `done` (one we don't know, or with bad arguments)
                // ends the upload like any other request would; a frame
                // with no op to go by, or a bad `done`, gets its error and
                // the trailer is still awaited.
                let other_op = match &e {
                    DecodeError::UnknownOp(op) | DecodeError::BadArguments { op, .. }
                        if op != "done" =>
                    {
                        Some(op.clone())
                    }
                    _ => None,
                };
                let conn = &mut self.conns[token.0];
                if let (Some(op), State::Trailer(_)) = (other_op, &conn.state) {
                    let State::Trailer(up) = std::mem::replace(&mut conn.state, State::Ready)
                    else {
                        unreachable!()
                    };
                    if up.failure.is_none() {
                        return self.abandon_upload(token, *up, &op);
                    }
                    // A failed upload is over: this frame is a new request.
                }
                let conn = &mut self.conns[token.0];
                if let Some(io) = conn.io.as_mut() {
                    io.send(&Reply::new(e.status(), e.to_string()));
                }
            }
        }
    }

    /// Ends a live upload whose trailer was expected because `op` came
    /// instead: `503`, the partial kept for a resume.
    fn abandon_upload(&mut self, token: Token, mut up: Upload, op: &str) {
        self.conns[token.0].state = State::Busy;
        let msg = format!(
            "expected the done trailer after the body, got {op}; \
             the upload was kept for resuming"
        );
        let job = move || {
            up.abandon();
            Outcome::Reply(Reply::new(Status::BadSequence, msg))
        };
        self.submit(false, token, Box::new(job));
    }

    fn handle_request(&mut self, token: Token, req: Request) {
        if self.end_revoked(token) {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let conn = &mut self.conns[token.0];
        let peer = conn.peer;
        let Some(io) = conn.io.as_mut() else {
            return;
        };
        if matches!(conn.state, State::Trailer(_)) {
            let State::Trailer(mut up) = std::mem::replace(&mut conn.state, State::Ready) else {
                unreachable!()
            };
            match req {
                // Already answered when it failed: the trailer only closes
                // the body.
                Request::Done { .. } if up.failure.is_some() => {}
                // A failed upload is over; anything else is a new request.
                req if up.failure.is_some() => {
                    drop(up);
                    self.handle_request(token, req);
                }
                Request::Quit => {
                    self.submit_orphan(move || up.abandon());
                    let conn = &mut self.conns[token.0];
                    if let Some(io) = conn.io.as_mut() {
                        io.send(&Reply::new(
                            Status::Bye,
                            "goodbye (the unfinished upload was kept for resuming)",
                        ));
                    }
                    conn.closing = true;
                }
                Request::Done { sha256 } => {
                    conn.state = State::Busy;
                    let fsync = shared.config.storage.fsync;
                    let job = move || {
                        let log = up.log();
                        let (reply, leftover) = upload::finish(up, &sha256, fsync);
                        Outcome::Finished {
                            reply,
                            log,
                            leftover,
                        }
                    };
                    self.submit(false, token, Box::new(job));
                }
                other => self.abandon_upload(token, *up, other.op()),
            }
            return;
        }
        let logged_in = conn.session.is_some();
        match req {
            Request::Quit => {
                io.send(&Reply::new(Status::Bye, "goodbye"));
                conn.closing = true;
            }
            Request::Noop => io.send(&Reply::new(Status::Ok, "ok")),
            Request::Login { .. } | Request::Register { .. } if logged_in => {
                io.send(&Reply::new(Status::BadSequence, "already logged in"));
            }
            Request::Login {
                protocol: Some(v), ..
            }
            | Request::Register {
                protocol: Some(v), ..
            } if v != PROTOCOL_VERSION => {
                io.send(&Reply::new(
                    Status::VersionMismatch,
                    format!(
                        "this server speaks protocol {PROTOCOL_VERSION}, the client {v}; \
                         use a matching miniftp release"
                    ),
                ));
            }
            Request::Login { user, password, .. } => {
                if let Some(left) = self.limiter.locked(peer.ip(), Instant::now()) {
                    io.send(&locked_out(left));
                    return;
                }
                conn.state = State::Busy;
                conn.trying = Some(user.clone());
                let job = move || cmd::login::run(&shared, &user, &password);
                self.submit_login(token, Box::new(job));
            }
            Request::Register { user, password, .. } => {
                if shared.config.registration == RegistrationPolicy::Closed {
                    io.send(&Reply::new(
                        Status::RegistrationRefused,
                        "registration is closed on this server; ask the operator for an account",
                    ));
                    return;
                }
                // Each request costs an argon2 hash: registrations count
                // toward the per-address failure limit like failed logins.
                let now = Instant::now();
                if let Some(left) = self.limiter.locked(peer.ip(), now) {
                    io.send(&locked_out(left));
                    return;
                }
                let _ = self
                    .limiter
                    .record_failure(peer.ip(), now, &shared.config.limits);
                conn.state = State::Busy;
                let job = move || cmd::register::run(&shared, &user, &password, peer);
                self.submit(true, token, Box::new(job));
            }
            Request::Put { eager: true, .. } if !logged_in => {
                // Its body is already on the way and can't be told apart
                // from requests: the stream is lost.
                io.send(&Reply::new(
                    Status::BadSequence,
                    "log in first (an eager put before login ends the connection)",
                ));
                conn.closing = true;
            }
            _ if !logged_in => {
                io.send(&Reply::new(Status::BadSequence, "log in first"));
            }
            Request::Pwd => {
                let session = conn.session.as_ref().expect("logged in");
                let mut r = Reply::new(Status::Ok, session.cwd.to_string());
                r.cwd = Some(session.cwd.to_string());
                io.send(&r);
            }
            Request::Quota => {
                let session = conn.session.as_ref().expect("logged in");
                let info = session.account.info();
                let mut r = Reply::new(
                    Status::Ok,
                    format!(
                        "{} used of {}, {} free",
                        crate::size::human(info.used),
                        crate::size::human(info.total),
                        crate::size::human(info.free)
                    ),
                );
                r.quota = Some(info);
                io.send(&r);
            }
            Request::Done { .. } => {
                io.send(&Reply::new(Status::BadSequence, "no upload in progress"));
            }
            eager @ Request::Put { eager: true, .. } => {
                // Small files in a row: one job for the whole run.
                let session = conn.session.as_ref().expect("logged in");
                let ctx = Ctx {
                    account: Arc::clone(&session.account),
                    cwd: session.cwd.clone(),
                };
                let Some(mut io) = conn.io.take() else {
                    return;
                };
                conn.state = State::Pumping;
                let fsync = shared.config.storage.fsync;
                let job = move || {
                    let (end, logs) = eager::run(&ctx, &mut io, eager, fsync);
                    Outcome::Batch { io, end, logs }
                };
                self.submit(false, token, Box::new(job));
            }
            other => {
                let session = conn.session.as_ref().expect("logged in");
                let ctx = Ctx {
                    account: Arc::clone(&session.account),
                    cwd: session.cwd.clone(),
                };
                conn.state = State::Busy;
                self.submit(false, token, Box::new(move || cmd::run(ctx, other)));
            }
        }
    }

    /// Hands the transport and the transfer to a worker.
    fn start_pump(&mut self, token: Token) {
        let conn = &mut self.conns[token.0];
        let Some(mut io) = conn.io.take() else {
            return;
        };
        let mut transfer = match std::mem::replace(&mut conn.state, State::Pumping) {
            State::Upload(u) => {
                conn.readable = false;
                Transfer::Up(u)
            }
            State::Download(d) => {
                conn.writable = false;
                Transfer::Down(d)
            }
            other => {
                conn.state = other;
                conn.io = Some(io);
                return;
            }
        };
        let job = move || {
            let before = transfer.moved();
            let status = match &mut transfer {
                Transfer::Up(u) => u.pump(&mut io),
                Transfer::Down(d) => d.pump(&mut io),
            };
            let moved = transfer.moved() - before;
            Outcome::Pumped {
                io,
                transfer,
                status,
                moved,
            }
        };
        self.submit(false, token, Box::new(job));
    }

    /// The end of a connection we close: once the replies are out, shut our
    /// sending side and read (and discard) until the peer closes too, for at
    /// most `LINGER`. Closing at once with unread input would make the
    /// kernel send a reset, and the peer would lose the replies it has not
    /// read yet (say the end of a download, or a 421).
    fn linger(&mut self, token: Token) {
        let conn = &mut self.conns[token.0];
        let why = conn.why;
        let Some(io) = conn.io.as_mut() else {
            return;
        };
        if conn.linger_until.is_none() {
            io.transport.shutdown_write();
            conn.linger_until = Some(Instant::now() + LINGER);
        }
        let mut sink = [0u8; 16 * 1024];
        loop {
            match io.transport.read(&mut sink) {
                Ok(0) => return self.close(token, why),
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    conn.readable = false;
                    return;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return self.close(token, why),
            }
        }
    }

    /// Removes a connection whose transport the loop holds.
    pub(super) fn close(&mut self, token: Token, why: &str) {
        let mut conn = self.conns.remove(token.0);
        self.forget(&conn);
        if let Some(io) = conn.io.as_mut() {
            let _ = self.poll.registry().deregister(io.transport.stream_mut());
        }
        match std::mem::replace(&mut conn.state, State::Ready) {
            State::Upload(mut u) | State::Trailer(mut u) => self.submit_orphan(move || u.abandon()),
            _ => {}
        }
        match &conn.session {
            Some(s) => log::info!(
                "session end user={} peer={} secs={:.1} ({why})",
                s.user,
                conn.peer,
                s.since.elapsed().as_secs_f64()
            ),
            None => log::debug!("connection from {} closed ({why})", conn.peer),
        }
    }
}

pub(super) fn locked_out(left: Duration) -> Reply {
    // Rounded up: a client that waits exactly this long is let in.
    let secs = left.as_millis().div_ceil(1000).max(1) as u64;
    let mut r = Reply::new(
        Status::TooManyFailures,
        format!("too many failed logins from your address; try again in {secs}s"),
    );
    r.retry_after = Some(secs);
    r
}

pub(super) fn log_transfer(
    conn: &Conn,
    op: &str,
    path: &str,
    bytes: u64,
    started: Instant,
    result: &str,
) {
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "transfer op={op} user={} peer={} path={path:?} bytes={bytes} secs={secs:.3} result={result}",
        conn.user(),
        conn.peer,
    );
}
