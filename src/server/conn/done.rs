//! What a finished job does to its connection: the reply goes out, the
//! session or the transfer moves on, a failed login is held back by its
//! delay (the lockout rule itself is the limiter's, in one place).

use super::ftp::Work;
use super::{log_transfer, Action, Conn, Env, State};
use crate::proto::{Reply, Status};
use crate::server::limiter::Judgement;
use crate::server::metrics::{self, LoginResult};
use crate::server::transfer::pump::{After, Pumped};
use crate::server::Outcome;

impl Conn {
    pub(super) fn on_done(&mut self, outcome: Outcome, env: &mut Env, out: &mut Vec<Action>) {
        let close = match self.state {
            State::Working { close } | State::Pumping { close } => close,
            _ => None,
        };
        match outcome {
            Outcome::Pumped(p) => self.on_pumped(*p, env, out),
            Outcome::Panicked => {
                log::error!("a job for {} panicked; closing that connection", self.peer);
                return out.push(Action::Close("internal error"));
            }
            other => {
                self.last_active = env.now;
                self.state = State::Ready;
                self.on_answer(other, env, out);
            }
        }
        if let Some(why) = close {
            if !self.say_farewell() {
                return out.push(Action::Close(why));
            }
            self.close_after_replies(why, out);
        }
    }

    /// A transfer job handed the socket back.
    fn on_pumped(&mut self, p: Pumped, env: &mut Env, out: &mut Vec<Action>) {
        if self.ftp.is_some() {
            // An FTP connection's pumps all run on its data channel.
            return self.on_data_pumped(p, env, out);
        }
        self.io = Some(p.io);
        if p.moved {
            self.last_active = env.now;
        }
        self.spend(p.spent, env);
        for ended in &p.logs {
            log_transfer(self, ended);
        }
        // Only a drained socket proves there is nothing to read (or no room
        // to write): after any other stop, assume it is ready again, since
        // no new edge will announce what is already there. After a drained
        // one, keep what edges came while the job ran (the flag was cleared
        // when the job took the socket).
        match p.after {
            After::Upload(up) => {
                self.readable |= !p.drained;
                self.state = State::Upload(up);
            }
            After::Download(down) => {
                self.writable |= !p.drained;
                self.state = State::Download(down);
            }
            After::Ready(next) => {
                self.end_transfer(env);
                self.readable = true;
                self.writable = true;
                self.state = State::Ready;
                if let Some(next) = next {
                    self.handle(next, env, out);
                }
            }
            After::Lost => {
                self.end_transfer(env);
                out.push(Action::Close("connection lost during a transfer"));
            }
            After::Close(why) => {
                self.end_transfer(env);
                // The job is back: the connection is no longer Pumping
                // (which close_after_replies would keep, waiting for a job).
                self.state = State::Ready;
                self.close_after_replies(why, out);
            }
        }
    }

    /// A command's answer.
    fn on_answer(&mut self, outcome: Outcome, env: &mut Env, out: &mut Vec<Action>) {
        match outcome {
            Outcome::Reply(r) => self.say(&r),
            Outcome::Cd { cwd, reply } => {
                if let Some(s) = self.session.as_mut() {
                    s.cwd = cwd;
                }
                self.say(&reply);
            }
            Outcome::Login(result) => self.on_login(result, env, out),
            // A front-end with a data channel (FTP) takes the transfer
            // there; the connection itself stays free for commands.
            Outcome::UploadBegun(Ok((up, reply))) => {
                self.watch.set(Some(&up.progress));
                if let Err(Work::Upload(up)) = self.ftp_stage(Work::Upload(up)) {
                    self.state = State::Upload(up);
                }
                self.say(&reply);
            }
            Outcome::DownloadBegun(Ok((down, reply))) => {
                self.watch.set(Some(&down.progress));
                if let Err(Work::Download(down)) = self.ftp_stage(Work::Download(down)) {
                    self.state = State::Download(down);
                }
                self.say(&reply);
            }
            Outcome::UploadBegun(Err(r)) | Outcome::DownloadBegun(Err(r)) => self.say(&r),
            Outcome::Pumped(_) | Outcome::Again(_) | Outcome::Nothing | Outcome::Panicked => {}
        }
    }

    fn on_login(
        &mut self,
        result: Result<(Box<crate::server::session::Session>, Reply), Reply>,
        env: &mut Env,
        out: &mut Vec<Action>,
    ) {
        let user = self.trying.take().unwrap_or_default();
        let limits = &env.shared.config.limits;
        let m = metrics::global();
        match env.limiter.judge(self.peer.ip(), env.now, limits, &result) {
            Judgement::Pass => {
                if let Ok((session, reply)) = result {
                    log::info!("login user={} peer={}", session.user, self.peer);
                    m.login(LoginResult::Ok);
                    self.join_throttle(&session, env);
                    self.session = Some(*session);
                    self.ftp_logged_in(env);
                    self.say(&reply);
                }
            }
            Judgement::Answer(reply) => {
                if reply.status() == Some(Status::TooManyFailures) {
                    m.login(LoginResult::LockedOut);
                    if env.limiter.first_refusal(self.peer.ip()) {
                        let user = format!("{user:?}");
                        crate::server::audit::answered_by(&user, self.peer, "login", &reply);
                    }
                } else {
                    m.login(LoginResult::Error);
                }
                self.say(&reply);
            }
            Judgement::Hold { reply, until } => {
                log::warn!("failed login user={user:?} peer={}", self.peer);
                m.login(LoginResult::Failed);
                self.state = State::Held(Box::new(reply));
                out.push(Action::Arm(until));
            }
            Judgement::LockOut { reply, secs } => {
                log::warn!(
                    "failed login user={user:?} peer={}: address locked out for {secs}s",
                    self.peer
                );
                m.login(LoginResult::Failed);
                m.lockout();
                self.say(&reply);
            }
        }
    }
}

impl Conn {
    /// A new session takes its user's bandwidth limits from the users file.
    fn join_throttle(&self, session: &crate::server::session::Session, env: &mut Env) {
        let rates = env
            .shared
            .users()
            .get(&session.user)
            .map(|u| crate::server::throttle::Rates {
                up: u.rate_up,
                down: u.rate_down,
            })
            .unwrap_or_default();
        env.throttle.join(&session.user, rates, env.now);
    }
}
