//! The audit log: one line for every change a user makes (`mkdir`,
//! `rmdir`, `rm`, `mv`, `cp`), every transfer, every refusal an operator
//! should see (quota, jail, busy, lockout) and every server-side failure
//! (disk full, I/O error, the server's own files not writable). Changes and
//! finished transfers are logged at info, refusals at warn, failures at
//! error. Lines are `key=value`; what a client chose (paths, messages
//! naming them) is quoted with `{:?}`, so it can't forge a line.
//!
//! Everything here is keyed on what every front-end has: the command's
//! [`Ctx`] (user and peer) and the reply's status. Other errors (a missing
//! file, a bad argument) are the client's business and not logged.
//! docs/OPERATIONS.md shows a line of each kind.

use std::fmt::Arguments;
use std::net::SocketAddr;

use super::cmd::Ctx;
use super::metrics::{self, TransferOp, TransferResult};
use super::TransferLog;
use crate::proto::{Reply, Status};

/// Why a reply is worth an audit line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Refused by a rule (warn): the reason word.
    Refusal(&'static str),
    /// The server failed (error): what failed.
    Failure(&'static str),
}

/// The audit kind of a status, if it has one.
pub fn classify(status: Status) -> Option<Kind> {
    Some(match status {
        Status::QuotaExceeded => Kind::Refusal("quota"),
        Status::PathRefused => Kind::Refusal("jail"),
        Status::Busy => Kind::Refusal("busy"),
        Status::TooManyFailures => Kind::Refusal("lockout"),
        Status::DiskFull => Kind::Failure("disk full"),
        Status::LocalError => Kind::Failure("I/O error"),
        Status::PermissionDenied => Kind::Failure("permission denied"),
        _ => return None,
    })
}

/// A change a command made; `what` names its paths (`path="/a"`).
pub fn change(ctx: &Ctx, op: &str, what: Arguments) {
    log::info!(
        "change op={op} user={} peer={} {what}",
        ctx.account.name,
        ctx.peer
    );
}

/// A command's reply: logged if it is a refusal or a failure. Returns its
/// kind.
pub fn answered(ctx: &Ctx, op: &str, reply: &Reply) -> Option<Kind> {
    answered_by(&ctx.account.name, ctx.peer, op, reply)
}

/// [`answered`] for a reply given before there is a session (`user` is
/// then the name tried, quoted).
pub fn answered_by(user: &str, peer: SocketAddr, op: &str, reply: &Reply) -> Option<Kind> {
    let kind = reply.status().and_then(classify)?;
    match kind {
        Kind::Refusal(reason) => log::warn!(
            "refused op={op} user={user} peer={peer} status={} reason={reason} msg={:?}",
            reply.code,
            reply.msg
        ),
        Kind::Failure(what) => {
            if reply.status() == Some(Status::DiskFull) {
                metrics::global().disk_full();
            }
            log::error!(
                "failure op={op} user={user} peer={peer} status={} error={what:?} msg={:?}",
                reply.code,
                reply.msg
            );
        }
    }
    Some(kind)
}

/// A transfer refused before its first byte (the `put` or `get` itself):
/// its audit line, and counted as a transfer when it is a refusal or a
/// failure (not a missing file).
pub fn transfer_refused(ctx: &Ctx, op: TransferOp, reply: &Reply) {
    if answered(ctx, op.as_str(), reply).is_some() {
        metrics::global().transfer(op, result_of(reply.status()));
    }
}

/// How a transfer ended, for its log line and the metrics.
pub struct Ended {
    pub log: TransferLog,
    pub result: TransferResult,
    /// Why, when it did not end well.
    pub status: Option<Status>,
    /// The file's SHA-256, when it was stored or sent whole.
    pub sha256: Option<String>,
}

/// The result word of a transfer that ended with `status` (None: the
/// client went away).
pub fn result_of(status: Option<Status>) -> TransferResult {
    match status {
        None => TransferResult::Aborted,
        Some(s) if s.is_success() => TransferResult::Ok,
        Some(Status::IntegrityFailure) => TransferResult::Integrity,
        Some(Status::QuotaExceeded) => TransferResult::Quota,
        Some(s) if matches!(classify(s), Some(Kind::Failure(_))) => TransferResult::Error,
        Some(_) => TransferResult::Refused,
    }
}

/// The transfer line: user, address, path, bytes, seconds, SHA-256 and
/// result; info when it went well or the client stopped it, warn when it
/// was refused, error when the server failed.
pub fn transfer(user: &str, peer: SocketAddr, t: &Ended) {
    let log = &t.log;
    metrics::global().transfer(log.op, t.result);
    let level = match t.result {
        TransferResult::Ok | TransferResult::Aborted => log::Level::Info,
        TransferResult::Error => log::Level::Error,
        _ => log::Level::Warn,
    };
    if t.status == Some(Status::DiskFull) {
        metrics::global().disk_full();
    }
    let status = match t.status.filter(|_| t.result != TransferResult::Ok) {
        Some(s) => format!(" status={}", s.code()),
        None => String::new(),
    };
    log::log!(
        level,
        "transfer op={} user={user} peer={peer} path={:?} bytes={} secs={:.3} sha256={} result={}{status}",
        log.op.as_str(),
        log.path,
        log.bytes,
        log.started.elapsed().as_secs_f64(),
        t.sha256.as_deref().unwrap_or("-"),
        t.result.as_str(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_results() {
        assert_eq!(
            classify(Status::QuotaExceeded),
            Some(Kind::Refusal("quota"))
        );
        assert_eq!(classify(Status::DiskFull), Some(Kind::Failure("disk full")));
        assert_eq!(classify(Status::NotFound), None);
        assert_eq!(result_of(None), TransferResult::Aborted);
        assert_eq!(
            result_of(Some(Status::TransferComplete)),
            TransferResult::Ok
        );
        assert_eq!(
            result_of(Some(Status::IntegrityFailure)),
            TransferResult::Integrity
        );
        assert_eq!(
            result_of(Some(Status::QuotaExceeded)),
            TransferResult::Quota
        );
        assert_eq!(result_of(Some(Status::LocalError)), TransferResult::Error);
        assert_eq!(
            result_of(Some(Status::PathRefused)),
            TransferResult::Refused
        );
    }
}
