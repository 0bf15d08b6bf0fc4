//! What the operator sees of a connection and does to it (`miniftp admin
//! who` and `kick`, served by server::ops).

use std::sync::atomic::Ordering;
use std::time::Instant;

use super::{Action, Conn, State};
use crate::proto::{Reply, Status};
use crate::server::admin::SessionInfo;

/// Why a kicked connection closes (its session-end log line says so).
pub const KICKED: &str = "closed by the operator";

impl Conn {
    /// The connection as `miniftp admin who` shows it; `now` and
    /// `unix_now` are the same moment on the two clocks.
    pub fn info(&self, now: Instant, unix_now: u64) -> SessionInfo {
        let age = now.saturating_duration_since(self.opened).as_secs();
        SessionInfo {
            user: self.user_name().map(str::to_string),
            addr: self.peer,
            listener: self.front.name().into(),
            since: unix_now.saturating_sub(age),
            transfer: self.watch.info(),
        }
    }

    /// Ends a logged-in session for the operator: a 421 that says so, then
    /// the close. A running job is told to stop (`cancel`) and the 421
    /// waits for it; an upload is kept for resuming. A download in the
    /// middle of its body is closed without a reply (a reply there would
    /// read as file bytes); the client resumes it later.
    pub(super) fn kick(&mut self, out: &mut Vec<Action>) {
        let Some(user) = self.user_name() else {
            return;
        };
        let closing = matches!(self.state, State::Closing(_) | State::Lingering { .. });
        if closing || self.farewell.is_some() {
            return;
        }
        log::warn!(
            "kick user={user} peer={}: session closed by the operator",
            self.peer
        );
        let reply = Reply::new(
            Status::Unavailable,
            "the server's operator closed this session, closing",
        );
        self.cancel.store(true, Ordering::Relaxed);
        match self.state {
            State::Working { .. } | State::Pumping { .. } => {
                self.farewell = Some(reply);
                self.close_after_replies(KICKED, out);
            }
            State::Download(_) => out.push(Action::Close(KICKED)),
            _ => {
                self.say(&reply);
                self.close_after_replies(KICKED, out);
            }
        }
    }

    /// A job is back on a connection that is to close: the operator's 421
    /// goes out first, if it was kicked (and is not in a download's body).
    /// False when the connection must close at once instead.
    pub(super) fn say_farewell(&mut self) -> bool {
        let Some(reply) = self.farewell.take() else {
            return true;
        };
        if matches!(self.state, State::Download(_)) {
            return false;
        }
        self.say(&reply);
        true
    }
}
