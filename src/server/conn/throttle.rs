//! Bandwidth grants for a connection's transfers. Before a pump job starts,
//! the connection asks the loop's throttle (server::throttle) for bytes;
//! the pump moves at most those and comes back. A grant that is not due
//! yet parks the connection: `throttled` is set and a timer armed, and the
//! pump starts when it fires. Nothing sleeps.

use super::{Action, Conn, Env};
use crate::limits::PUMP_BUDGET;
use crate::server::throttle::Direction;

impl Conn {
    /// The bytes the next pump in `dir` may move: `Some(None)` when no
    /// limit binds the user, `Some(Some(n))` a grant due now; None while
    /// parked (a timer is armed for the moment the grant is due).
    pub(super) fn grant(
        &mut self,
        dir: Direction,
        env: &mut Env,
        out: &mut Vec<Action>,
    ) -> Option<Option<u64>> {
        if self.throttled.is_some() {
            return None;
        }
        let Some(session) = self.session.as_ref() else {
            return Some(None);
        };
        match self.granted {
            Some((d, n)) if d == dir && n > 0 => return Some(Some(n)),
            _ => {}
        }
        if !env.throttle.limited(&session.user, dir) {
            self.granted = Some((dir, 0));
            return Some(None);
        }
        let g = env
            .throttle
            .grant(&session.user, dir, PUMP_BUDGET as u64, env.now);
        self.granted = Some((dir, g.bytes));
        if g.at > env.now {
            self.throttled = Some(g.at);
            out.push(Action::Arm(g.at));
            return None;
        }
        Some(Some(g.bytes))
    }

    /// A pump moved `spent` bytes: they come off the grant, and what went
    /// beyond it (body bytes that arrived with a request) is charged, so
    /// the next grant comes that much later.
    pub(super) fn spend(&mut self, spent: u64, env: &mut Env) {
        let (Some((dir, left)), Some(session)) = (self.granted.as_mut(), self.session.as_ref())
        else {
            return;
        };
        if spent <= *left {
            *left -= spent;
            return;
        }
        let over = spent - *left;
        *left = 0;
        if env.throttle.limited(&session.user, *dir) {
            env.throttle.charge(&session.user, *dir, over, env.now);
        }
    }

    /// The transfer is over: what is left of its grant goes back, so the
    /// user's other sessions may use it.
    pub(super) fn end_transfer(&mut self, env: &mut Env) {
        self.watch.set(None);
        self.throttled = None;
        if let (Some((dir, left)), Some(session)) = (self.granted.take(), self.session.as_ref()) {
            if left > 0 {
                env.throttle.refund(&session.user, dir, left);
            }
        }
    }
}
