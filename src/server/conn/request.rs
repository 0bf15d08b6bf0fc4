//! What a request does first, on the loop: answered at once (the few that
//! touch no storage), or handed to a worker job. Before login only `login`,
//! `register`, `noop` and `quit` exist, and they are listed here in one
//! place ([`Conn::before_login`]).

use std::sync::Arc;

use super::{Action, Conn, Env, PoolKind, State};
use crate::config::RegistrationPolicy;
use crate::proto::{Reply, Request, Status, PROTOCOL_VERSION};
use crate::server::audit;
use crate::server::cmd::{self, put};
use crate::server::front::ftp::session::Input;
use crate::server::limiter::{Admission, Penalty};
use crate::server::metrics::{self, LoginResult};
use crate::server::session;
use crate::server::throttle::Direction;
use crate::server::transfer::pump::{Route, UploadPump};
use crate::server::workers::Job;
use crate::server::Outcome;

impl Conn {
    pub(super) fn on_request(&mut self, req: Request, env: &mut Env, out: &mut Vec<Action>) {
        if self.revoked(env) {
            return;
        }
        match req {
            Request::Quit => {
                self.say(&Reply::new(Status::Bye, "goodbye"));
                self.state = State::Closing("quit");
            }
            Request::Noop => self.say(&Reply::new(Status::Ok, "ok")),
            req if self.session.is_none() => self.before_login(req, env, out),
            req => self.after_login(req, env, out),
        }
    }

    /// An account taken back on the server: the session ends (its reply
    /// queued) and nothing more is done. False while the grant holds.
    pub(super) fn revoked(&mut self, env: &Env) -> bool {
        let Some(end) = self
            .session
            .as_mut()
            .and_then(|s| s.check(env.shared, self.peer))
        else {
            return false;
        };
        self.say(&end);
        self.state = State::Closing(session::REVOKED);
        true
    }

    /// Queues a reply: on the wire, or for a front-end with a session of
    /// its own (FTP), to that session, which words it.
    pub(super) fn say(&mut self, reply: &Reply) {
        if let Some(ftp) = self.ftp.as_mut() {
            return ftp.tell(Input::Core(reply.clone()));
        }
        if let Some(io) = self.io.as_mut() {
            io.send(reply);
        }
    }

    /// Runs `job` on `pool`; the connection waits for it.
    fn submit(
        &mut self,
        pool: PoolKind,
        job: impl FnOnce() -> Outcome + Send + 'static,
        out: &mut Vec<Action>,
    ) {
        self.state = State::Working { close: None };
        out.push(Action::Submit(pool, Box::new(job)));
    }

    fn before_login(&mut self, req: Request, env: &mut Env, out: &mut Vec<Action>) {
        let ip = self.peer.ip();
        match req {
            Request::Login {
                protocol: Some(v), ..
            }
            | Request::Register {
                protocol: Some(v), ..
            } if v != PROTOCOL_VERSION => self.say(&Reply::new(
                Status::VersionMismatch,
                format!(
                    "this server speaks protocol {PROTOCOL_VERSION}, the client {v}; \
                     use a matching miniftp release"
                ),
            )),
            Request::Login { user, password, .. } => {
                self.trying = Some(user.clone());
                let shared = Arc::clone(env.shared);
                let check = move || cmd::login::run(&shared, &user, &password);
                self.check_password(Box::new(check), env, out);
            }
            Request::Register { user, password, .. } => {
                if env.shared.config.registration == RegistrationPolicy::Closed {
                    return self.say(&Reply::new(
                        Status::RegistrationRefused,
                        "registration is closed on this server; ask the operator for an account",
                    ));
                }
                // Each request costs an argon2 hash: registrations count
                // toward the per-address failure limit like failed logins.
                if let Err(locked) = env.limiter.gate(ip, env.now) {
                    if env.limiter.first_refusal(ip) {
                        audit::answered_by(&format!("{user:?}"), self.peer, "register", &locked);
                    }
                    return self.say(&locked);
                }
                let limits = &env.shared.config.limits;
                if let Penalty::LockedOut(d) = env.limiter.record_failure(ip, env.now, limits) {
                    log::warn!(
                        "registration user={user:?} peer={}: address locked out for {}s",
                        self.peer,
                        d.as_secs()
                    );
                    metrics::global().lockout();
                }
                let shared = Arc::clone(env.shared);
                let peer = self.peer;
                self.submit(
                    PoolKind::Auth,
                    move || cmd::register::run(&shared, &user, &password, peer),
                    out,
                );
            }
            Request::Put { eager: true, .. } => {
                // Its body is already on the way and can't be told apart
                // from requests: the stream is lost.
                self.say(&Reply::new(
                    Status::BadSequence,
                    "log in first (an eager put before login ends the connection)",
                ));
                self.state = State::Closing("eager put before login");
            }
            _ => self.say(&Reply::new(Status::BadSequence, "log in first")),
        }
    }

    /// Sends a login's password check to the auth pool if its address has
    /// one to spare; else the login waits for its turn (`Event::Turn`), or
    /// is refused because the address is locked out. The limiter decides
    /// (`Limiter::admit_login`).
    fn check_password(&mut self, check: Job, env: &mut Env, out: &mut Vec<Action>) {
        let me = (env.slot, self.id);
        let limits = &env.shared.config.limits;
        match env.limiter.admit_login(self.peer.ip(), me, env.now, limits) {
            Admission::Check => {
                self.state = State::Working { close: None };
                out.push(Action::Submit(PoolKind::Auth, check));
            }
            Admission::Wait => self.state = State::LoginWait(check),
            Admission::Refused(locked) => {
                metrics::global().login(LoginResult::LockedOut);
                let user = self.trying.take().unwrap_or_default();
                // One audit line per lockout, not one per refused attempt.
                if env.limiter.first_refusal(self.peer.ip()) {
                    audit::answered_by(&format!("{user:?}"), self.peer, "login", &locked);
                }
                self.say(&locked);
            }
        }
    }

    /// A login waiting in [`State::LoginWait`] asks for its check again.
    pub(super) fn on_turn(&mut self, env: &mut Env, out: &mut Vec<Action>) {
        match std::mem::replace(&mut self.state, State::Ready) {
            State::LoginWait(check) => self.check_password(check, env, out),
            other => self.state = other,
        }
    }

    fn after_login(&mut self, req: Request, env: &mut Env, out: &mut Vec<Action>) {
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let ctx = session.ctx(self.peer);
        match req {
            Request::Login { .. } | Request::Register { .. } => {
                self.say(&Reply::new(Status::BadSequence, "already logged in"))
            }
            Request::Done { .. } => {
                self.say(&Reply::new(Status::BadSequence, "no upload in progress"))
            }
            Request::Pwd => {
                let mut r = Reply::new(Status::Ok, ctx.cwd.to_string());
                r.cwd = Some(ctx.cwd.to_string());
                self.say(&r);
            }
            Request::Quota => self.say(&quota_reply(&ctx.account)),
            req @ Request::Put { eager: true, .. } => self.start_eager(ctx, req, env, out),
            Request::Put {
                path,
                size,
                offset,
                mkdirs,
                mtime,
                ..
            } => {
                let Some(io) = self.io.as_ref() else {
                    return;
                };
                let body = io.codec.body(size, offset);
                let trailer = io.codec.client_digest();
                let job = move || {
                    let args = put::PutArgs {
                        path: &path,
                        size,
                        offset,
                        mkdirs,
                        mtime,
                    };
                    Outcome::UploadBegun(put::begin(&ctx, &args, body, trailer))
                };
                self.submit(PoolKind::Io, job, out);
            }
            Request::Get { path, offset } => self.submit(
                PoolKind::Io,
                move || Outcome::DownloadBegun(cmd::get::begin(&ctx, &path, offset)),
                out,
            ),
            other => self.submit(PoolKind::Io, move || cmd::run(ctx, other), out),
        }
    }

    /// Small files in a row: one job opens each, takes its body and
    /// trailer, and goes on with the next while they are on the wire.
    fn start_eager(&mut self, ctx: cmd::Ctx, req: Request, env: &mut Env, out: &mut Vec<Action>) {
        let Request::Put {
            path,
            size,
            offset,
            mkdirs,
            mtime,
            ..
        } = req
        else {
            return;
        };
        let Some(gate) = self.session.as_ref().map(|s| s.gate(env.shared, self.peer)) else {
            return;
        };
        let Some(io) = self.io.take() else {
            return;
        };
        self.state = State::Pumping { close: None };
        let fsync = env.shared.config.storage.fsync;
        let cancel = Arc::clone(&self.cancel);
        let watch = self.watch.clone();
        // A limited user's run starts with an empty grant: the pump opens
        // the first file and comes back for bandwidth.
        let limited = env.throttle.limited(&ctx.account.name, Direction::Up);
        self.granted = Some((Direction::Up, 0));
        let job = move || {
            let (up, reply) = put::begin_eager(&ctx, &path, size, offset, mkdirs, mtime);
            let mut pump = UploadPump {
                io,
                up,
                ctx,
                gate,
                fsync,
                cancel,
                logs: Vec::new(),
                files: 0,
                moved: false,
                route: Route::Inline,
                said: Vec::new(),
                limit: limited.then_some(0),
                spent: 0,
                watch,
            };
            pump.io.send(&reply);
            pump.run()
        };
        out.push(Action::Submit(PoolKind::Io, Box::new(job)));
    }
}

fn quota_reply(account: &crate::server::quota::Account) -> Reply {
    let info = account.info();
    let human = crate::size::human;
    let mut r = Reply::new(
        Status::Ok,
        format!(
            "{} used of {}, {} free",
            human(info.used),
            human(info.total),
            human(info.free)
        ),
    );
    r.quota = Some(info);
    r
}
