//! What a finished worker job does to its connection: the reply goes out,
//! the session or the transfer moves on, a failed login is held back by its
//! delay, a dropped transfer is cleaned up. Jobs for connections that are
//! gone are disposed of here too.

use std::time::Instant;

use super::conn::{locked_out, log_transfer, State};
use super::limiter::Verdict;
use super::transfer::eager::BatchEnd;
use super::transfer::{PumpStatus, Transfer};
use super::{Outcome, Server};
use crate::proto::Status;

impl Server {
    /// Called by `on_completion` (logins.rs), which also settles the
    /// password check a completion may end.
    pub(super) fn complete(&mut self, c: super::workers::Completion) {
        if c.conn_id == 0 {
            self.orphans -= 1;
            return;
        }
        let token = c.token;
        let Some(conn) = self.conns.get_mut(token.0).filter(|x| x.id == c.conn_id) else {
            self.dispose(c.outcome);
            return;
        };
        let now = Instant::now();
        // An answer is activity (a long request must not count as
        // idleness); a transfer step that moved nothing is not.
        if !matches!(c.outcome, Outcome::Pumped { moved: 0, .. }) {
            conn.last_active = now;
        }
        let peer = conn.peer;
        match c.outcome {
            Outcome::Pumped {
                io,
                transfer,
                status,
                moved,
            } => {
                conn.io = Some(io);
                if moved > 0 {
                    conn.last_active = now;
                }
                match (status, transfer) {
                    (PumpStatus::Yield, Transfer::Up(u)) => {
                        conn.readable = true;
                        conn.state = State::Upload(u);
                    }
                    (PumpStatus::Yield, Transfer::Down(d)) => {
                        conn.writable = true;
                        conn.state = State::Download(d);
                    }
                    (PumpStatus::WouldBlock, Transfer::Up(u)) => conn.state = State::Upload(u),
                    (PumpStatus::WouldBlock, Transfer::Down(d)) => conn.state = State::Download(d),
                    // Only WouldBlock proves the socket drained: after any
                    // other stop, assume it is ready again (the trailer may
                    // already sit in the receive buffer, and no new edge
                    // will announce it).
                    (PumpStatus::Done, Transfer::Up(u)) => {
                        conn.readable = true;
                        conn.state = State::Trailer(u);
                    }
                    (PumpStatus::Done, Transfer::Down(d)) => {
                        conn.writable = true;
                        log_transfer(conn, "get", &d.path.to_string(), d.sent(), d.started, "ok");
                        conn.state = State::Ready;
                    }
                    (PumpStatus::Closed, Transfer::Up(mut u)) => {
                        log_transfer(
                            conn,
                            "put",
                            &u.path.to_string(),
                            u.received,
                            u.started,
                            "interrupted (partial kept for resume)",
                        );
                        conn.state = State::Ready;
                        self.submit_orphan(move || u.abandon());
                        return self.close(token, "connection lost during upload");
                    }
                    (PumpStatus::Closed, Transfer::Down(d)) => {
                        log_transfer(
                            conn,
                            "get",
                            &d.path.to_string(),
                            d.sent(),
                            d.started,
                            "interrupted",
                        );
                        conn.state = State::Ready;
                        return self.close(token, "connection lost during download");
                    }
                }
            }
            Outcome::Batch { io, end, logs } => {
                conn.io = Some(io);
                // The job may have stopped with input still unread.
                conn.readable = true;
                for log in &logs {
                    log_transfer(conn, log.op, &log.path, log.bytes, log.started, "ok");
                }
                match end {
                    BatchEnd::Ready => conn.state = State::Ready,
                    BatchEnd::Upload(u) => conn.state = State::Upload(u),
                    BatchEnd::Trailer(u) => conn.state = State::Trailer(u),
                    BatchEnd::Closed(up) => {
                        conn.state = State::Ready;
                        if let Some(mut u) = up {
                            self.submit_orphan(move || u.abandon());
                        }
                        return self.close(token, "connection lost during upload");
                    }
                }
            }
            Outcome::Panicked => {
                log::error!("a job for {peer} panicked; closing that connection");
                if conn.io.is_some() {
                    conn.state = State::Ready;
                    return self.close(token, "internal error");
                }
                // The transport died with the job: nothing to deregister.
                let conn = self.conns.remove(token.0);
                self.forget(&conn);
                return;
            }
            outcome => {
                let Some(io) = conn.io.as_mut() else {
                    return;
                };
                conn.state = State::Ready;
                match outcome {
                    Outcome::Reply(r) => io.send(&r),
                    Outcome::Cd { cwd, reply } => {
                        if let Some(s) = conn.session.as_mut() {
                            s.cwd = cwd;
                        }
                        io.send(&reply);
                    }
                    Outcome::Login(Ok((_, _))) if self.limiter.locked(peer.ip(), now).is_some() => {
                        // Other logins from this address failed while this
                        // one was hashing, and locked it out: it loses too.
                        let left = self.limiter.locked(peer.ip(), now).unwrap_or_default();
                        conn.trying = None;
                        io.send(&locked_out(left));
                    }
                    Outcome::Login(Ok((session, reply))) => {
                        self.limiter.record_success(peer.ip());
                        log::info!("login user={} peer={peer}", session.user);
                        conn.session = Some(*session);
                        conn.trying = None;
                        conn.last_active = now;
                        io.send(&reply);
                    }
                    Outcome::Login(Err(reply)) => {
                        let user = conn.trying.take().unwrap_or_default();
                        if reply.status() == Some(Status::AuthFailed) {
                            let limits = &self.shared.config.limits;
                            match self.limiter.record_failure(peer.ip(), now, limits) {
                                Verdict::Delay(d) => {
                                    log::warn!("failed login user={user:?} peer={peer}");
                                    conn.held = Some(reply);
                                    conn.state = State::Busy;
                                    self.timers.push(std::cmp::Reverse((
                                        now + d,
                                        token.0,
                                        conn.id,
                                    )));
                                }
                                Verdict::LockedOut(d) => {
                                    log::warn!(
                                        "failed login user={user:?} peer={peer}: address locked out for {}s",
                                        d.as_secs()
                                    );
                                    io.send(&locked_out(d));
                                }
                            }
                        } else {
                            io.send(&reply);
                        }
                    }
                    Outcome::UploadBegun(Ok((up, reply))) => {
                        io.send(&reply);
                        conn.state = if up.body_done() {
                            State::Trailer(up)
                        } else {
                            State::Upload(up)
                        };
                    }
                    Outcome::DownloadBegun(Ok((down, reply))) => {
                        io.send(&reply);
                        conn.state = State::Download(down);
                    }
                    Outcome::UploadBegun(Err(r)) | Outcome::DownloadBegun(Err(r)) => io.send(&r),
                    Outcome::Finished {
                        reply,
                        log,
                        leftover,
                    } => {
                        if let Some(old) = leftover {
                            // Freed after the reply goes out.
                            self.submit_orphan(move || old.remove());
                        }
                        let conn = &mut self.conns[token.0];
                        let Some(io) = conn.io.as_mut() else {
                            return;
                        };
                        let result = if reply.is_success() {
                            "ok".to_string()
                        } else {
                            format!("failed ({})", reply.code)
                        };
                        io.send(&reply);
                        log_transfer(conn, log.op, &log.path, log.bytes, log.started, &result);
                    }
                    Outcome::Nothing
                    | Outcome::Pumped { .. }
                    | Outcome::Batch { .. }
                    | Outcome::Panicked => {}
                }
            }
        }
        self.drive(token);
    }

    /// Cleans up what a job returned for a connection that no longer exists.
    fn dispose(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Pumped {
                transfer: Transfer::Up(mut u),
                ..
            } => self.submit_orphan(move || u.abandon()),
            Outcome::UploadBegun(Ok((mut u, _)))
            | Outcome::Batch {
                end:
                    BatchEnd::Upload(mut u) | BatchEnd::Trailer(mut u) | BatchEnd::Closed(Some(mut u)),
                ..
            } => self.submit_orphan(move || u.abandon()),
            _ => {}
        }
    }
}
