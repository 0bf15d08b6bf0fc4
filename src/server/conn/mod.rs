//! One connection: its state ([`State`]), and one transition function,
//! [`Conn::on_event`]. Events come in (the socket is ready, a job finished,
//! a timer fired, a second passed, the server is shutting down); the
//! connection makes all the progress it can without blocking and hands the
//! loop [`Action`]s (run a job, arm a timer, close). The loop applies them
//! and makes no decisions of its own; it alone removes a connection.
//!
//! ```text
//!            greeting
//!               |
//!               v          request needing storage or a hash
//!   +------> Ready ------------------------------------------> Working
//!   |          | \  put / get begun (job)                        |
//!   |          |  +-----------------> Upload / Download <--------+
//!   |          |                         |  ^
//!   |          |          socket ready   v  | would block
//!   |          |                       Pumping (a job holds the socket)
//!   |          |                         |
//!   +----------+-------------------------+  transfer over / reply / timer
//!              |  failed login: Held --(timer)--> Ready
//!              |  login, its address's checks all in flight:
//!              |      LoginWait --(Turn)--> Working (checked) or Ready (429)
//!              v
//!   quit, error, timeout, shutdown: Closing -> Lingering -> (removed)
//! ```
//!
//! A transfer of a user with a bandwidth limit moves only what the loop's
//! throttle grants: when the grant is not due yet, the connection parks
//! (`throttled`, with a timer armed) and its pump starts when the timer
//! fires (`throttle.rs`).
//!
//! The files of this module: `drive.rs` (moving bytes and reading requests),
//! `request.rs` (what each request does first; the pre-login command set),
//! `done.rs` (what a finished job does to the connection), `throttle.rs`
//! (bandwidth grants), `ops.rs` (what the operator sees and does: `who`,
//! `kick`).

mod done;
mod drive;
mod ftp;
mod ops;
mod request;
mod throttle;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use super::front::Front;
use super::io::Io;
use super::limiter::Limiter;
use super::session::Session;
use super::throttle::{Direction, Throttle};
use super::transfer::progress::Watch;
use super::transfer::{Download, Upload};
use super::workers::{Job, Lane};
use super::{Outcome, Shared};
use crate::proto::{Reply, Status};
use ftp::FtpState;

/// Where a connection stands.
pub enum State {
    /// Reading and answering requests.
    Ready,
    /// A request's job runs on a worker; with `close`, the connection ends
    /// when it is back.
    Working { close: Option<&'static str> },
    /// A failed login's reply, held back until its timer fires.
    Held(Box<Reply>),
    /// A login waiting for its address to have a password check to spare
    /// (the limiter's `admit_login`); its job runs after [`Event::Turn`].
    LoginWait(Job),
    /// An upload: waiting for its body or trailer to arrive.
    Upload(Box<Upload>),
    /// A download: waiting for the socket to take more.
    Download(Box<Download>),
    /// A transfer job holds the socket; with `close`, the connection ends
    /// when it is back.
    Pumping { close: Option<&'static str> },
    /// Sending the last replies, then lingering.
    Closing(&'static str),
    /// Our side is shut: reading (and dropping) until the peer closes too,
    /// or `until`. Closing at once with unread input would make the kernel
    /// reset the connection, and the peer would lose replies it has not
    /// read yet.
    Lingering { why: &'static str, until: Instant },
}

/// What happened to a connection.
pub enum Event {
    /// One of its sockets is readable and/or writable (an edge). Channel 0
    /// is the connection itself; others are sockets a front-end registered
    /// (see [`Env::token`]).
    Ready {
        channel: usize,
        readable: bool,
        writable: bool,
    },
    /// Its job finished.
    Done(Outcome),
    /// The timer it armed fired.
    Timer,
    /// Its address may have a password check to spare for the login
    /// waiting in [`State::LoginWait`] (the limiter's `next_turn`).
    Turn,
    /// A second passed: timeouts.
    Tick,
    /// The server is shutting down: idle sessions are told and closed,
    /// transfers may finish.
    Shutdown,
    /// The shutdown's grace period is over: end whatever still runs.
    ForceClose,
    /// The operator ends this session (`miniftp admin kick`).
    Kick,
}

/// Which pool a job runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// Password hashing.
    Auth,
    /// Storage and transfers.
    Io,
}

/// What the loop does for a connection.
pub enum Action {
    /// Run a job; its outcome comes back as [`Event::Done`].
    Submit(PoolKind, Job),
    /// Run cleanup on the io pool; no answer (the connection may be gone).
    Cleanup(Box<dyn FnOnce() + Send>),
    /// Send [`Event::Timer`] at this instant.
    Arm(Instant),
    /// Remove the connection (the last action it asks for).
    Close(&'static str),
}

/// What a transition may use of the loop's state.
// `registry`, `slot` and `token` serve front-ends with sockets of their
// own (FTP data channels); the native front-end has none.
#[allow(dead_code)]
pub struct Env<'a> {
    pub shared: &'a Arc<Shared>,
    pub limiter: &'a mut Limiter,
    /// Bandwidth limits, per user and global.
    pub throttle: &'a mut Throttle,
    /// For sockets a front-end opens for this connection (data channels).
    pub registry: &'a mio::Registry,
    /// The connection's slot in the loop's table.
    pub slot: usize,
    pub now: Instant,
    pub shutting_down: bool,
}

#[allow(dead_code)]
impl Env<'_> {
    /// The token a socket of this connection registers with on `channel`
    /// (1 to `CHANNELS - 1`; 0 is the connection's own socket): its
    /// readiness comes back as [`Event::Ready`] with that channel.
    pub fn token(&self, channel: usize) -> mio::Token {
        debug_assert!(channel < super::CHANNELS);
        mio::Token(self.slot * super::CHANNELS + channel)
    }
}

pub struct Conn {
    pub id: u64,
    pub peer: SocketAddr,
    pub front: Front,
    /// None while a job holds it.
    io: Option<Box<Io>>,
    state: State,
    session: Option<Session>,
    opened: Instant,
    last_active: Instant,
    /// Edge-triggered readiness not yet used up (cleared on WouldBlock).
    readable: bool,
    writable: bool,
    /// The peer closed its sending side (EOF read).
    peer_closed: bool,
    /// The user name of a login in flight, for the log.
    trying: Option<String>,
    /// Counted in the connection limits (false: a refused TLS connection
    /// that only waits to be told so).
    pub admitted: bool,
    /// Tells a transfer job to hand the socket back at its next stop.
    cancel: Arc<AtomicBool>,
    /// The FTP front-end's state (session, data channel), on an FTP
    /// connection; the native front-end keeps none.
    ftp: Option<Box<FtpState>>,
    /// The transfer in flight, for `miniftp admin who`.
    watch: Watch,
    /// Bandwidth granted and not yet moved, and which way.
    granted: Option<(Direction, u64)>,
    /// Parked until the grant is due (a timer is armed for it).
    throttled: Option<Instant>,
    /// The operator's 421, to say once a running job is back.
    farewell: Option<Reply>,
}

impl Conn {
    /// A new connection; its first words (the greeting, or with `refusal`
    /// the reason it is turned away) are queued.
    pub fn open(
        id: u64,
        peer: SocketAddr,
        front: Front,
        mut io: Box<Io>,
        registration: &str,
        refusal: Option<Reply>,
        shared: &Shared,
    ) -> Conn {
        let now = Instant::now();
        let mut ftp = None;
        let (state, admitted) = match (refusal, front) {
            (None, Front::Native) => {
                io.send(&greeting(registration));
                (State::Ready, true)
            }
            (None, Front::Ftp { implicit_tls }) => {
                let (mut state, greeting) = FtpState::new(shared, peer, implicit_tls);
                if implicit_tls {
                    // Validated at start: implicit FTPS needs TLS on.
                    if let Some(tls) = state.control_tls(shared) {
                        io = Box::new((*io).start_tls(tls));
                    }
                }
                for o in greeting {
                    if let crate::server::front::ftp::session::Output::Reply(r) = o {
                        r.encode(&mut io.wbuf);
                    }
                }
                ftp = Some(Box::new(state));
                (State::Ready, true)
            }
            (Some(reply), _) => {
                io.send(&reply);
                (State::Closing("refused"), false)
            }
        };
        Conn {
            id,
            peer,
            front,
            io: Some(io),
            state,
            session: None,
            opened: now,
            last_active: now,
            readable: false,
            writable: true,
            peer_closed: false,
            trying: None,
            admitted,
            cancel: Arc::new(AtomicBool::new(false)),
            ftp,
            watch: Watch::default(),
            granted: None,
            throttled: None,
            farewell: None,
        }
    }

    /// The transition function: applies `ev`, then makes all the progress
    /// the connection can make without blocking.
    pub fn on_event(&mut self, ev: Event, env: &mut Env) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Ready {
                channel: 0,
                readable,
                writable,
            } => {
                self.readable |= readable;
                self.writable |= writable;
            }
            // Sockets a front-end registered (FTP's data channel).
            Event::Ready {
                readable, writable, ..
            } => self.ftp_ready(readable, writable),
            Event::Done(outcome) => self.on_done(outcome, env, &mut out),
            Event::Timer => self.on_timer(env.now),
            Event::Turn => self.on_turn(env, &mut out),
            Event::Tick => self.on_tick(env, &mut out),
            Event::Shutdown => {}
            Event::ForceClose => self.force_close(&mut out),
            Event::Kick => self.kick(&mut out),
        }
        if self.ftp.is_some() && !matches!(out.last(), Some(Action::Close(_))) {
            self.ftp_run(env, &mut out);
        }
        if !matches!(out.last(), Some(Action::Close(_))) {
            self.drive(env, &mut out);
        }
        out
    }

    /// Connection-limit places the connection holds besides its own (an
    /// FTP data channel): the loop gives them back when it removes it.
    pub fn extra_slots(&self) -> usize {
        self.ftp.as_ref().map_or(0, |f| f.slots())
    }

    /// The lane its jobs wait in on `pool`: password checks take turns by
    /// address, file work by user (all of a user's sessions together).
    pub fn lane(&self, pool: PoolKind) -> Lane {
        match (&self.session, pool) {
            (Some(s), PoolKind::Io) => Lane::User(s.user.clone()),
            _ => Lane::Addr(self.peer.ip()),
        }
    }

    /// The transport, when the loop holds it (for deregistering).
    pub fn io_mut(&mut self) -> Option<&mut Io> {
        self.io.as_deref_mut()
    }

    /// Ends the connection's business as it is removed: an upload in
    /// progress is kept for resuming (the returned cleanup does it off the
    /// loop), and the session's end is logged.
    pub fn finish(
        &mut self,
        why: &str,
        registry: &mio::Registry,
    ) -> Option<Box<dyn FnOnce() + Send>> {
        let state = std::mem::replace(&mut self.state, State::Closing("closed"));
        let cleanup = self.abandon(state);
        // Its data channel's sockets (a pump holding one drops it on its
        // return), and an FTP upload the loop held.
        self.cancel.store(true, Ordering::Relaxed);
        let cleanup = cleanup.or_else(|| self.ftp.as_mut()?.finish(registry));
        match &self.session {
            Some(s) => log::info!(
                "session end user={} peer={} secs={:.1} ({why})",
                s.user,
                self.peer,
                s.since.elapsed().as_secs_f64()
            ),
            None => log::debug!(
                "{} connection from {} closed ({why})",
                self.front.name(),
                self.peer
            ),
        }
        cleanup
    }

    fn user(&self) -> &str {
        self.session.as_ref().map_or("-", |s| s.user.as_str())
    }

    /// The logged-in user, if any.
    pub fn user_name(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.user.as_str())
    }

    /// Starts closing: the replies queued so far go out, then the
    /// connection lingers. What the state held is ended first.
    fn close_after_replies(&mut self, why: &'static str, out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.state, State::Closing(why)) {
            State::Working { .. } => self.state = State::Working { close: Some(why) },
            State::Pumping { .. } => self.state = State::Pumping { close: Some(why) },
            State::Lingering { why, until } => self.state = State::Lingering { why, until },
            other => {
                if let Some(cleanup) = self.abandon(other) {
                    out.push(Action::Cleanup(cleanup));
                }
            }
        }
    }

    /// Ends a transfer the connection gives up on (closing, or gone): its
    /// audit line says so, and an upload is kept for resuming (by the
    /// returned cleanup, off the loop).
    fn abandon(&mut self, state: State) -> Option<Box<dyn FnOnce() + Send>> {
        let log = match &state {
            // Refused before it began: logged as a refusal already.
            State::Upload(up) if !up.began() => None,
            State::Upload(up) => Some(up.log()),
            State::Download(down) => Some(down.log()),
            _ => return None,
        };
        if let Some(log) = log {
            let ended = super::audit::Ended {
                log,
                result: super::metrics::TransferResult::Aborted,
                status: None,
                sha256: None,
            };
            log_transfer(self, &ended);
        }
        self.watch.set(None);
        match state {
            State::Upload(mut up) => Some(Box::new(move || up.keep())),
            _ => None,
        }
    }

    /// A timer fired: a held failed-login reply goes out, or a parked
    /// transfer's grant is due.
    fn on_timer(&mut self, now: Instant) {
        if matches!(self.state, State::Held(_)) {
            if let State::Held(reply) = std::mem::replace(&mut self.state, State::Ready) {
                self.say(&reply);
            }
        }
        if self.throttled.is_some_and(|until| until <= now) {
            self.throttled = None;
        }
    }

    fn on_tick(&mut self, env: &Env, out: &mut Vec<Action>) {
        let limits = &env.shared.config.limits;
        let now = env.now;
        if let State::Lingering { why, until } = self.state {
            if now >= until {
                out.push(Action::Close(why));
            }
            return;
        }
        let login = std::time::Duration::from_secs(limits.login_timeout_secs);
        let idle = std::time::Duration::from_secs(limits.idle_timeout_secs);
        let why = if self.session.is_none() && now.duration_since(self.opened) > login {
            "login timed out"
        } else if now.duration_since(self.last_active) > idle
            // A request still running on a worker is not idleness, nor is
            // a transfer waiting for its bandwidth.
            && !matches!(self.state, State::Working { .. } | State::Pumping { .. })
            && self.throttled.is_none()
        {
            "idle timeout"
        } else {
            return;
        };
        self.expire(why, out);
    }

    /// Ends a connection for a timeout: a 421 when a reply can go out
    /// cleanly, else just close.
    fn expire(&mut self, why: &'static str, out: &mut Vec<Action>) {
        log::info!("closing {} ({why})", self.peer);
        let can_say = matches!(
            self.state,
            State::Ready
                | State::Working { .. }
                | State::Held(_)
                | State::LoginWait(_)
                | State::Upload(_)
        );
        let Some(io) = self.io.as_mut().filter(|_| can_say) else {
            return match self.state {
                State::Pumping { .. } => self.close_after_replies(why, out),
                _ => out.push(Action::Close(why)),
            };
        };
        io.send(&Reply::new(Status::Unavailable, format!("{why}, closing")));
        // A client that never reads can't hold us: close if the 421
        // doesn't go out at once, else linger briefly.
        if matches!(io.flush(), Ok(true)) {
            self.writable = true;
            self.close_after_replies(why, out);
        } else {
            out.push(Action::Close(why));
        }
    }

    fn force_close(&mut self, out: &mut Vec<Action>) {
        self.cancel.store(true, Ordering::Relaxed);
        let why = "shutdown: transfer aborted";
        if self.io.is_some() {
            out.push(Action::Close(why));
        } else {
            self.close_after_replies(why, out);
        }
    }
}

/// The first reply of every connection; it says the registration policy,
/// so a client offers `register` only where it can succeed.
fn greeting(registration: &str) -> Reply {
    let mut greeting = Reply::new(
        Status::Greeting,
        format!("miniftp {} ready", env!("CARGO_PKG_VERSION")),
    );
    greeting.protocol = Some(crate::proto::PROTOCOL_VERSION);
    greeting.server = Some(format!("miniftp/{}", env!("CARGO_PKG_VERSION")));
    greeting.registration = Some(registration.into());
    greeting
}

/// Writes the transfer's audit line (and counts it).
pub(super) fn log_transfer(conn: &Conn, ended: &super::audit::Ended) {
    super::audit::transfer(conn.user(), conn.peer, ended);
}
