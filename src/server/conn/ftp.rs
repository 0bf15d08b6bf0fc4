//! The FTP front-end inside a connection: the connection keeps the FTP
//! session and its data channel ([`FtpState`]) beside its own state, feeds
//! the session what happens and carries out what it asks for.
//!
//! - Command lines come in through the control connection's codec as
//!   [`Decoded::Ftp`](crate::server::front::Decoded::Ftp) and are read only
//!   while the session is ready for one.
//! - The session's core requests go through [`Conn::on_request`], exactly
//!   as native ones (pre-login set, lockout, revocation, jobs, logs); the
//!   core's replies, which [`Conn::say`] would write for a native client,
//!   come back to the session as [`Input::Core`] through the inbox.
//! - Transfers run the core's upload and download machines in the core's
//!   pump jobs, on the data connection, with their replies routed back
//!   ([`Route::Back`]); the data channel's sockets are registered on the
//!   connection's own channels.
//!
//! Inputs queue in an inbox and are handled one at a time by
//! [`Conn::ftp_run`], so carrying out an output never re-enters the
//! session.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::{Action, Conn, Env, PoolKind, State};
use crate::limits::FTP_DATA_TIMEOUT;
use crate::proto::{Reply, Status};
use crate::server::front::ftp::data::{DataChannel, Happened, Link, LISTENER, STREAM};
use crate::server::front::ftp::ops;
use crate::server::front::ftp::session::{
    DataAction, DataEnd, FtpOp, FtpSession, Input, Output, SessionConfig,
};
use crate::server::front::ftp::tls::{new_token, Owner, SessionTls, SessionToken, Verdict};
use crate::server::throttle::Direction;
use crate::server::transfer::pump::{After, DownloadPump, Pumped, Route, UploadPump};
use crate::server::transfer::{Download, Upload};
use crate::server::Shared;

/// An FTP connection's front-end state.
pub struct FtpState {
    session: FtpSession,
    /// Inputs for the session not yet handled, in order.
    inbox: VecDeque<Input>,
    /// The value this control connection's TLS sessions carry; its data
    /// connections must bring it back.
    token: SessionToken,
    /// `AUTH TLS` was answered: TLS starts once the `234` is out.
    start_tls: bool,
    /// This session's TLS configs, made when it first needs TLS.
    tls: Option<SessionTls>,
    /// The control connection's client.
    peer: std::net::IpAddr,
    /// Whose TLS session the data connection resumed, once its handshake
    /// is done; how long its verdict may wait for that session's login.
    resumed: Option<(Option<SessionToken>, std::time::Instant)>,
    data: DataChannel,
    /// A transfer the core accepted (its `150` on the way to the session).
    staged: Option<Work>,
    /// The running transfer's work while the loop holds it.
    work: Work,
    /// The running transfer's data connection is protected (PROT P).
    protected: bool,
    /// A pump job holds the data connection.
    pumping: Option<Moving>,
    /// The running transfer was told to stop (ABOR, QUIT).
    aborting: bool,
    /// The final reply of an upload its pump committed, for `Commit`.
    committed: Option<Reply>,
    /// How the transfer ended, told once its data connection is shut.
    ending: Option<DataEnd>,
    /// Body bytes the running transfer moved.
    bytes: u64,
}

/// What a transfer moves once its data connection is up.
pub enum Work {
    None,
    Upload(Box<Upload>),
    Download(Box<Download>),
    /// Listing pages the loop writes: `pending` not yet handed to the
    /// connection, `page` a page whose writing the session awaits,
    /// `finish` no more pages.
    Listing {
        pending: Vec<u8>,
        page: bool,
        finish: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Moving {
    Upload,
    Download,
}

impl FtpState {
    /// A new FTP connection's state and its greeting (to be sent).
    pub fn new(shared: &Shared, peer: SocketAddr, implicit_tls: bool) -> (FtpState, Vec<Output>) {
        let ftp = &shared.config.ftp;
        let cfg = SessionConfig {
            tls_available: shared.ftp.as_ref().is_some_and(|f| f.tls.is_some()),
            implicit_tls,
            require_tls: ftp.require_tls,
            active_mode: ftp.active_mode,
            peer: peer.ip(),
            greeting: format!("miniftp {} ready", env!("CARGO_PKG_VERSION")),
        };
        let (session, greeting) = FtpSession::new(cfg);
        let state = FtpState {
            session,
            inbox: VecDeque::new(),
            token: new_token(),
            start_tls: false,
            tls: None,
            peer: peer.ip(),
            resumed: None,
            data: DataChannel::default(),
            staged: None,
            work: Work::None,
            protected: false,
            pumping: None,
            aborting: false,
            committed: None,
            ending: None,
            bytes: 0,
        };
        (state, greeting)
    }

    /// The server side of TLS on the control connection, its sessions
    /// carrying this session's token; None when TLS is off.
    pub fn control_tls(&mut self, shared: &Shared) -> Option<rustls::ServerConnection> {
        let config = Arc::clone(&self.session_tls(shared)?.control);
        let mut conn = rustls::ServerConnection::new(config)
            .inspect_err(|e| log::error!("ftp: TLS set-up failed: {e}"))
            .ok()?;
        conn.set_resumption_data(&self.token);
        Some(conn)
    }

    /// This session's TLS configs (made on first use, when its token is
    /// recorded as this client's).
    fn session_tls(&mut self, shared: &Shared) -> Option<&SessionTls> {
        if self.tls.is_none() {
            let tls = shared.ftp.as_ref()?.tls.as_ref()?;
            let owner = Owner {
                ip: self.peer,
                user: None,
            };
            tls.set_owner(self.token, owner);
            self.tls = Some(tls.session(self.token));
        }
        self.tls.as_ref()
    }

    /// A transfer is under way (the control connection must stay up for
    /// its reply, e.g. during a shutdown's grace period).
    pub fn transferring(&self) -> bool {
        !matches!(self.work, Work::None) || self.pumping.is_some() || self.ending.is_some()
    }

    /// Tells the session something (handled by the next `Conn::ftp_run`).
    pub fn tell(&mut self, input: Input) {
        self.inbox.push_back(input);
    }

    /// Data-channel sockets counted in the connection limits.
    pub fn slots(&self) -> usize {
        usize::from(self.data.counted)
    }

    /// Closes the data channel as the connection is removed; an upload
    /// the loop held is kept for resuming by the returned cleanup.
    pub fn finish(&mut self, registry: &mio::Registry) -> Option<Box<dyn FnOnce() + Send>> {
        self.data.close(registry);
        let mut ups: Vec<Box<Upload>> = Vec::new();
        for w in [std::mem::replace(&mut self.work, Work::None)]
            .into_iter()
            .chain(self.staged.take())
        {
            if let Work::Upload(up) = w {
                ups.push(up);
            }
        }
        if ups.is_empty() {
            return None;
        }
        Some(Box::new(move || ups.iter_mut().for_each(|up| up.abandon())))
    }
}

impl Conn {
    /// An FTP command line (or a line too long to be one).
    pub(super) fn ftp_input(&mut self, input: Input, env: &mut Env, out: &mut Vec<Action>) {
        if let Some(ftp) = self.ftp.as_mut() {
            ftp.inbox.push_back(input);
        }
        self.ftp_run(env, out);
    }

    /// Hands the session its inputs and moves the data channel on, until
    /// neither has anything left to do.
    pub(super) fn ftp_run(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        loop {
            while let Some(input) = self.ftp.as_mut().and_then(|f| f.inbox.pop_front()) {
                let outputs = match self.ftp.as_mut() {
                    Some(ftp) => ftp.session.handle(input),
                    None => return,
                };
                for o in outputs {
                    self.ftp_output(o, env, out);
                }
            }
            if matches!(out.last(), Some(Action::Close(_))) {
                return;
            }
            self.data_step(env, out);
            if self.ftp.as_ref().is_none_or(|f| f.inbox.is_empty()) {
                return;
            }
        }
    }

    /// Carries out one of the session's outputs.
    fn ftp_output(&mut self, o: Output, env: &mut Env, out: &mut Vec<Action>) {
        match o {
            Output::Reply(r) => {
                if let Some(io) = self.io.as_mut() {
                    r.encode(&mut io.wbuf);
                }
            }
            Output::Core(req) => self.on_request(req, env, out),
            Output::Ftp(op) => self.on_ftp_op(op, env, out),
            Output::Data(action) => self.on_data_action(action, env, out),
            Output::StartTls => {
                if let Some(ftp) = self.ftp.as_mut() {
                    ftp.start_tls = true;
                }
            }
            Output::Close => {
                self.stop_transfer(env, out);
                self.close_after_replies("quit", out);
            }
        }
    }

    /// An operation the core has no request for: run like one.
    fn on_ftp_op(&mut self, op: FtpOp, env: &mut Env, out: &mut Vec<Action>) {
        if self.revoked(env) {
            return;
        }
        let Some(ctx) = self.session.as_ref().map(|s| s.ctx(self.peer)) else {
            return self.say(&Reply::new(Status::BadSequence, "log in first"));
        };
        self.state = State::Working { close: None };
        out.push(Action::Submit(
            PoolKind::Io,
            Box::new(move || ops::run(ctx, op)),
        ));
    }

    /// Whether the control connection may read the next command line; the
    /// moment to start TLS after `AUTH TLS`'s reply is out.
    pub(super) fn ftp_may_read(&mut self, env: &Env, out: &mut Vec<Action>) -> bool {
        let Some(ftp) = self.ftp.as_mut() else {
            return true;
        };
        if ftp.start_tls {
            let Some(io) = self.io.as_ref() else {
                return false;
            };
            if io.has_output() {
                return false;
            }
            let Some(tls) = ftp.control_tls(env.shared) else {
                out.push(Action::Close("TLS set-up failed"));
                return false;
            };
            ftp.start_tls = false;
            if let Some(io) = self.io.take() {
                self.io = Some(Box::new((*io).start_tls(tls)));
            }
            // The client's hello may be waiting already.
            self.readable = true;
        }
        self.ftp
            .as_ref()
            .is_some_and(|f| f.session.ready_for_command())
    }

    /// After a login: the control connection's TLS sessions now vouch for
    /// data connections of this user from this address (see `ftp::tls`).
    pub(super) fn ftp_logged_in(&mut self, env: &Env) {
        let (Some(ftp), Some(session)) = (self.ftp.as_ref(), self.session.as_ref()) else {
            return;
        };
        if let Some(tls) = env.shared.ftp.as_ref().and_then(|f| f.tls.as_ref()) {
            let owner = Owner {
                ip: self.peer.ip(),
                user: Some(session.user.clone()),
            };
            tls.set_owner(ftp.token, owner);
        }
    }

    /// A transfer the core accepted: held until the session says how to
    /// move it (its `150` goes to the session first). False for a native
    /// connection.
    pub(super) fn ftp_stage(&mut self, work: Work) -> Result<(), Work> {
        match self.ftp.as_mut() {
            Some(ftp) => {
                ftp.staged = Some(work);
                Ok(())
            }
            None => Err(work),
        }
    }

    /// Readiness on one of the data channel's sockets.
    pub(super) fn ftp_ready(&mut self, readable: bool, writable: bool) {
        if let Some(ftp) = self.ftp.as_mut() {
            ftp.data.on_ready(readable, writable);
        }
    }

    fn on_data_action(&mut self, action: DataAction, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        match action {
            DataAction::Listen => self.listen(env),
            DataAction::Connect(addr) => self.connect(addr, env),
            DataAction::Receive { protected } | DataAction::Send { protected } => {
                ftp.work = ftp.staged.take().unwrap_or(Work::None);
                ftp.protected = protected;
                ftp.bytes = 0;
                ftp.aborting = false;
            }
            DataAction::OpenListing { protected } => {
                ftp.work = Work::Listing {
                    pending: Vec::new(),
                    page: false,
                    finish: false,
                };
                ftp.protected = protected;
                ftp.bytes = 0;
                ftp.aborting = false;
            }
            DataAction::SendListing(bytes) => {
                if let Work::Listing { pending, page, .. } = &mut ftp.work {
                    ftp.bytes += bytes.len() as u64;
                    pending.extend_from_slice(&bytes);
                    *page = true;
                }
            }
            DataAction::FinishListing => {
                if let Work::Listing { finish, .. } = &mut ftp.work {
                    *finish = true;
                }
            }
            DataAction::Commit => {
                let reply = ftp.committed.take().unwrap_or_else(|| {
                    Reply::new(Status::LocalError, "internal: no upload to commit")
                });
                ftp.inbox.push_back(Input::Core(reply));
            }
            // A partial the pump kept is kept already; one the loop holds
            // is kept by `end_transfer`.
            DataAction::KeepPartial => {}
            DataAction::Abort => self.abort(env, out),
            DataAction::Close => {
                if !ftp.transferring() {
                    ftp.data.close(env.registry);
                }
            }
        }
    }

    /// PASV/EPSV: a listener on the address the client reached us at.
    fn listen(&mut self, env: &mut Env) {
        let local = self
            .io
            .as_mut()
            .and_then(|io| io.transport.stream_mut().local_addr().ok());
        let (Some(ftp), Some(local), Some(shared)) =
            (self.ftp.as_mut(), local, env.shared.ftp.as_ref())
        else {
            return;
        };
        let config = &env.shared.config;
        if !ftp.data.counted {
            if let Err(why) = env.limiter.admit(self.peer.ip(), &config.limits) {
                ftp.inbox.push_back(Input::PassiveFailed(why.into()));
                return;
            }
            ftp.data.counted = true;
        }
        let bound = ftp.data.listen(
            local.ip(),
            config.ftp.passive_range(),
            &shared.passive_cursor,
            env.registry,
            env.token(LISTENER),
            env.now,
        );
        let input = match bound {
            Ok(addr) => {
                let ip = config.ftp.passive_ip().map_or(local.ip(), Into::into);
                Input::PassiveReady(SocketAddr::new(ip, addr.port()))
            }
            Err(e) => {
                log::warn!("ftp: cannot open a passive port for {}: {e}", self.peer);
                Input::PassiveFailed(e.to_string())
            }
        };
        ftp.inbox.push_back(input);
    }

    /// PORT/EPRT (already checked to be the control peer's own address).
    fn connect(&mut self, addr: SocketAddr, env: &mut Env) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        if !ftp.data.counted {
            if let Err(why) = env.limiter.admit(self.peer.ip(), &env.shared.config.limits) {
                log::warn!("ftp: no active data connection for {}: {why}", self.peer);
                ftp.inbox.push_back(Input::DataEnded(DataEnd::NoConnection));
                return;
            }
            ftp.data.counted = true;
        }
        if let Err(e) = ftp
            .data
            .connect(addr, env.registry, env.token(STREAM), env.now)
        {
            log::info!("ftp: active data connection to {addr} failed: {e}");
            ftp.inbox.push_back(Input::DataEnded(DataEnd::NoConnection));
        }
    }

    /// ABOR (or QUIT) during a transfer: a pump is told to stop and ends
    /// the transfer when it is back; anything else ends now.
    fn abort(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        if ftp.ending.is_some() {
            // Over already: its end is told once the connection is shut.
            return;
        }
        ftp.aborting = true;
        if ftp.pumping.is_some() {
            self.cancel.store(true, Ordering::Relaxed);
            return;
        }
        let bytes = ftp.bytes;
        self.end_data(DataEnd::Aborted { bytes }, env, out);
    }

    /// Ends the running transfer from the loop's side: the data connection
    /// closes at once, an upload the loop holds ends (kept for resuming if
    /// it holds anything), and the session hears `end`.
    fn end_data(&mut self, end: DataEnd, env: &mut Env, out: &mut Vec<Action>) {
        self.end_transfer(env);
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        match end {
            // A refused data connection is closed cleanly and drained for
            // a moment, so the client finishes its side and reads the
            // reply (ftplib reads it only after sending its body).
            DataEnd::NotResumed | DataEnd::TlsFailed(_) => ftp.data.finish(env.now),
            _ => ftp.data.close(env.registry),
        }
        if let Work::Upload(mut up) = std::mem::replace(&mut ftp.work, Work::None) {
            out.push(Action::Cleanup(Box::new(move || up.abandon())));
        }
        ftp.inbox.push_back(Input::DataEnded(end));
    }

    /// The control connection is closing: nothing more is moved.
    fn stop_transfer(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        if ftp.pumping.is_some() {
            self.cancel.store(true, Ordering::Relaxed);
            return;
        }
        ftp.data.close(env.registry);
        if let Work::Upload(mut up) = std::mem::replace(&mut ftp.work, Work::None) {
            out.push(Action::Cleanup(Box::new(move || up.abandon())));
        }
    }

    /// Moves the data channel on as far as it goes without blocking.
    fn data_step(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        loop {
            let Some(ftp) = self.ftp.as_mut() else {
                return;
            };
            let happened = match &ftp.data.link {
                Link::Listening { .. } if ftp.data.expired(env.now) => Happened::NoConnection,
                Link::Listening { .. } if ftp.data.readable => {
                    ftp.data.readable = false;
                    ftp.data
                        .accept(self.peer.ip(), env.registry, env.token(STREAM))
                }
                Link::Connecting { .. } if ftp.data.expired(env.now) => Happened::NoConnection,
                Link::Connecting { .. } => ftp.data.connected(),
                Link::Open(_) if !matches!(ftp.work, Work::None) => {
                    return self.move_data(env, out);
                }
                Link::Closing { .. } => ftp.data.linger(env.registry, env.now),
                _ => Happened::Nothing,
            };
            match happened {
                Happened::Nothing => break,
                Happened::Connected => ftp.resumed = None,
                other => self.data_happened(other, env, out),
            }
        }
        self.release_slot(env);
    }

    /// What the data channel reported, for the running transfer.
    fn data_happened(&mut self, happened: Happened, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        let bytes = ftp.bytes;
        let end = match happened {
            Happened::Flushed => match ftp.ending.take() {
                Some(end) => end,
                None => return,
            },
            Happened::Broken if ftp.ending.is_some() => {
                ftp.ending = None;
                DataEnd::Cut { bytes }
            }
            Happened::Broken => DataEnd::Cut { bytes },
            Happened::NoConnection if matches!(ftp.work, Work::None) => {
                // A listener nobody used: no transfer waits on it.
                return ftp.data.close(env.registry);
            }
            Happened::NoConnection => DataEnd::NoConnection,
            Happened::NotResumed => DataEnd::NotResumed,
            Happened::TlsFailed(why) => DataEnd::TlsFailed(why),
            Happened::Nothing | Happened::Connected => return,
        };
        if matches!(end, DataEnd::Clean { .. }) {
            return ftp.inbox.push_back(Input::DataEnded(end));
        }
        self.end_data(end, env, out);
    }

    /// The data connection is up and a transfer waits: secure it, then
    /// hand it to a pump (or write the listing).
    fn move_data(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        if !ftp.data.is_secured() {
            match self.secure_data(env) {
                Ok(true) => {}
                Ok(false) => return,
                Err(h) => return self.data_happened(h, env, out),
            }
        }
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        match &ftp.work {
            Work::Upload(_) if ftp.data.readable => self.start_pump(env, out),
            Work::Download(_) if ftp.data.writable => self.start_pump(env, out),
            Work::Listing { .. } => self.write_listing(env, out),
            _ => {}
        }
    }

    /// Under PROT P: the data connection's TLS handshake, then whether it
    /// resumed a session it may use (`require_tls_session_reuse`).
    fn secure_data(&mut self, env: &mut Env) -> Result<bool, Happened> {
        let user = self.session.as_ref().map(|s| s.user.clone());
        let Some(ftp) = self.ftp.as_mut() else {
            return Ok(false);
        };
        let tls = match ftp.protected {
            true => ftp.session_tls(env.shared).map(|t| Arc::clone(&t.data)),
            false => None,
        };
        if !ftp.data.handshake(tls.as_ref())? {
            return Ok(false);
        }
        let ftp_tls = env.shared.ftp.as_ref().and_then(|f| f.tls.as_ref());
        let (Some(ftp_tls), Some(_)) = (ftp_tls, &tls) else {
            ftp.data.secured();
            return Ok(true);
        };
        if !env.shared.config.ftp.require_tls_session_reuse {
            ftp.data.secured();
            return Ok(true);
        }
        let (resumed, until) = match ftp.resumed {
            Some(r) => r,
            None => {
                let conn = ftp.data.tls_state();
                let session = ftp.tls.as_ref();
                let token = conn.zip(session).and_then(|(c, s)| ftp_tls.resumed(s, c));
                let r = (token, env.now + FTP_DATA_TIMEOUT);
                ftp.resumed = Some(r);
                r
            }
        };
        let owner = Owner { ip: ftp.peer, user };
        let why = match ftp_tls.verdict(resumed, &ftp.token, &owner) {
            Verdict::Accept => {
                ftp.resumed = None;
                ftp.data.secured();
                return Ok(true);
            }
            Verdict::Wait if env.now < until => return Ok(false),
            Verdict::Wait => "its session's control connection never logged in",
            Verdict::Reject(why) => why,
        };
        ftp.resumed = None;
        log::info!(
            "ftp: refused a data connection of {}: it did not resume its control \
             connection's TLS session ({why})",
            self.peer
        );
        Err(Happened::NotResumed)
    }

    /// Hands the data connection and the transfer to a pump job.
    fn start_pump(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let dir = match self.ftp.as_ref().map(|f| &f.work) {
            Some(Work::Upload(_)) => Direction::Up,
            Some(Work::Download(_)) => Direction::Down,
            _ => return,
        };
        // Parked until the user's bandwidth allows (a timer is armed).
        let Some(limit) = self.grant(dir, env, out) else {
            return;
        };
        let (Some(ftp), Some(session)) = (self.ftp.as_mut(), self.session.as_ref()) else {
            return;
        };
        let Some(io) = ftp.data.lend() else {
            return;
        };
        self.cancel.store(false, Ordering::Relaxed);
        let cancel = Arc::clone(&self.cancel);
        let job: crate::server::workers::Job = match std::mem::replace(&mut ftp.work, Work::None) {
            Work::Upload(up) => {
                ftp.data.readable = false;
                ftp.pumping = Some(Moving::Upload);
                let pump = UploadPump {
                    io,
                    up,
                    ctx: session.ctx(self.peer),
                    gate: session.gate(env.shared, self.peer),
                    fsync: env.shared.config.storage.fsync,
                    cancel,
                    logs: Vec::new(),
                    files: 0,
                    moved: false,
                    route: Route::Back,
                    said: Vec::new(),
                    limit,
                    spent: 0,
                    watch: self.watch.clone(),
                };
                Box::new(move || pump.run())
            }
            Work::Download(down) => {
                ftp.data.writable = false;
                ftp.pumping = Some(Moving::Download);
                let pump = DownloadPump {
                    io,
                    down,
                    cancel,
                    moved: false,
                    route: Route::Back,
                    limit,
                    spent: 0,
                };
                Box::new(move || pump.run())
            }
            other => {
                ftp.work = other;
                ftp.data.give_back(io);
                return;
            }
        };
        out.push(Action::Submit(PoolKind::Io, job));
    }

    /// Writes listing pages; tells the session when a page is out, and
    /// ends the connection cleanly after the last.
    fn write_listing(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        let Work::Listing {
            pending,
            page,
            finish,
        } = &mut ftp.work
        else {
            return;
        };
        if let Some(buf) = ftp.data.out_buf() {
            buf.append(pending);
        }
        match ftp.data.flush() {
            Ok(false) => {}
            Ok(true) if *page => {
                *page = false;
                ftp.inbox.push_back(Input::ListingSent);
            }
            Ok(true) if *finish => {
                ftp.work = Work::None;
                ftp.ending = Some(DataEnd::Clean { bytes: ftp.bytes });
                ftp.data.finish(env.now);
            }
            Ok(true) => {}
            Err(h) => self.data_happened(h, env, out),
        }
    }

    /// A pump job handed the data connection back.
    pub(super) fn on_data_pumped(&mut self, mut p: Pumped, env: &mut Env, out: &mut Vec<Action>) {
        if p.moved {
            self.last_active = env.now;
        }
        self.spend(p.spent, env);
        for ended in &p.logs {
            super::log_transfer(self, ended);
        }
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        let moving = ftp.pumping.take();
        ftp.bytes = p.bytes;
        if matches!(ftp.data.link, Link::Lent) {
            ftp.data.give_back(p.io);
        } else {
            // The channel was closed meanwhile (the connection is ending).
            let mut io = p.io;
            let _ = env.registry.deregister(io.transport.stream_mut());
        }
        let bytes = p.bytes;
        let said = p.said.pop();
        match p.after {
            After::Upload(up) => {
                ftp.data.readable |= !p.drained;
                ftp.work = Work::Upload(up);
                if ftp.aborting {
                    self.end_data(DataEnd::Aborted { bytes }, env, out);
                }
            }
            After::Download(down) => {
                ftp.data.writable |= !p.drained;
                ftp.work = Work::Download(down);
                if ftp.aborting {
                    self.end_data(DataEnd::Aborted { bytes }, env, out);
                }
            }
            After::Ready(_) => self.pump_ended(moving, said, env, out),
            After::Lost => self.end_data(DataEnd::Cut { bytes }, env, out),
            After::Close(why) => {
                if let (Some(io), Some(reply)) = (self.io.as_mut(), said) {
                    io.send(&reply);
                }
                self.stop_transfer(env, out);
                self.close_after_replies(why, out);
            }
        }
    }

    /// A transfer's body is over: an upload committed (or refused), a
    /// download all sent. The data connection is shut cleanly; the session
    /// hears of it once that is done.
    fn pump_ended(
        &mut self,
        moving: Option<Moving>,
        said: Option<Reply>,
        env: &mut Env,
        out: &mut Vec<Action>,
    ) {
        self.end_transfer(env);
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        let bytes = ftp.bytes;
        let committed = said
            .as_ref()
            .is_some_and(|r| r.status() == Some(Status::TransferComplete));
        if moving == Some(Moving::Upload) && !committed {
            let reply = said.unwrap_or_else(|| Reply::new(Status::LocalError, "upload failed"));
            return self.end_data(DataEnd::Failed(Box::new(reply)), env, out);
        }
        if moving == Some(Moving::Upload) {
            ftp.committed = said;
        }
        ftp.ending = Some(DataEnd::Clean { bytes });
        ftp.data.finish(env.now);
    }

    /// Gives the data channel's place in the connection limits back once
    /// it holds nothing.
    fn release_slot(&mut self, env: &mut Env) {
        let Some(ftp) = self.ftp.as_mut() else {
            return;
        };
        if ftp.data.counted && !ftp.data.is_set_up() && ftp.pumping.is_none() {
            ftp.data.counted = false;
            env.limiter.release(self.peer.ip());
        }
    }
}
