//! Commands: one file per request type, each a function that runs on a
//! worker thread against the storage interface and returns an [`Outcome`]
//! for the loop. Parsing is done (proto::message), so a command only checks
//! its arguments, asks the jail, and words the reply.
//!
//! Before login only `login`, `register`, `noop` and `quit` exist (see
//! `server::conn`); everything here needs a session.

pub mod cd;
pub mod cp;
pub mod get;
pub mod login;
pub mod ls;
pub mod mkdir;
pub mod mv;
pub mod partial;
pub mod put;
pub mod register;
pub mod rm;
pub mod rmdir;
pub mod set_mtime;
pub mod stat;
pub mod tree;

use std::net::SocketAddr;
use std::sync::Arc;

use super::quota::Account;
use super::Outcome;
use crate::proto::{Reply, Request, Status};
use crate::storage::path::PathError;
use crate::storage::{FsError, VPath};

/// What a command job gets: the session's account (its `name` is the
/// user's) and cwd, and the client's address for the audit log (see
/// server::audit).
pub struct Ctx {
    pub account: Arc<Account>,
    pub cwd: VPath,
    pub peer: SocketAddr,
}

impl Ctx {
    /// Resolves a client path against the cwd, refusing what the jail never
    /// needs to see (NUL bytes, `..` above home, reserved names).
    pub fn resolve(&self, path: &str) -> Result<VPath, Reply> {
        VPath::resolve(&self.cwd, path).map_err(path_reply)
    }
}

impl Ctx {
    /// Refuses (450) a write to `target` while an upload to it runs: the
    /// upload's rename would silently undo it.
    pub fn not_uploading(&self, target: &VPath) -> Result<(), Reply> {
        if self.account.upload_in_progress(target) {
            return Err(Reply::new(
                Status::Busy,
                format!("{target}: an upload to this name is in progress"),
            ));
        }
        Ok(())
    }
}

impl Ctx {
    /// Refuses (450) removing or moving `path` while an upload to it, or
    /// into a directory below it, runs.
    pub fn no_upload_under(&self, path: &VPath) -> Result<(), Reply> {
        if !self.account.upload_under(path) {
            return Ok(());
        }
        let what = if self.account.upload_in_progress(path) {
            "an upload to it is in progress"
        } else {
            "an upload into it is in progress"
        };
        Err(Reply::new(Status::Busy, format!("{path}: {what}")))
    }
}

pub fn path_reply(e: PathError) -> Reply {
    let status = match e {
        PathError::Empty => Status::BadArguments,
        _ => Status::PathRefused,
    };
    Reply::new(status, e.to_string())
}

/// The status a storage failure is reported with.
pub fn fs_status(e: &FsError) -> Status {
    match e {
        FsError::NotFound(_) => Status::NotFound,
        FsError::WrongType { .. } => Status::WrongType,
        FsError::Refused { .. } => Status::PathRefused,
        FsError::Exists(_) => Status::AlreadyExists,
        FsError::NotEmpty(_) => Status::NotEmpty,
        FsError::Permission(_) => Status::PermissionDenied,
        FsError::DiskFull(_) => Status::DiskFull,
        FsError::Busy(_) => Status::Busy,
        FsError::Invalid { .. } => Status::BadArguments,
        FsError::Io { .. } => Status::LocalError,
        FsError::TooManyEntries { .. } => Status::QuotaExceeded,
    }
}

pub fn fs_reply(e: FsError) -> Reply {
    Reply::new(fs_status(&e), e.to_string())
}

/// A storage entry as the protocol shows it.
pub fn wire_entry(e: crate::storage::Entry) -> crate::proto::Entry {
    use crate::proto::EntryKind as Wire;
    use crate::storage::EntryKind as Kind;
    crate::proto::Entry {
        name: e.name,
        kind: match e.kind {
            Kind::File => Wire::File,
            Kind::Dir => Wire::Dir,
            Kind::Symlink => Wire::Symlink,
            Kind::Other => Wire::Other,
        },
        size: e.size,
        mtime: e.mtime,
        escaped: e.escaped,
    }
}

/// Runs a post-login request that needs storage and answers with a
/// reply; a refusal or a failure gets its audit line (server::audit).
/// (Inline requests such as `pwd` and `quota`, and transfers, never get
/// here.)
pub fn run(ctx: Ctx, req: Request) -> Outcome {
    let op = req.op();
    let outcome = answer(&ctx, req);
    if let Outcome::Reply(reply) | Outcome::Cd { reply, .. } = &outcome {
        super::audit::answered(&ctx, op, reply);
    }
    outcome
}

fn answer(ctx: &Ctx, req: Request) -> Outcome {
    let reply = match req {
        Request::Cd { path } => return cd::run(ctx, &path),
        Request::Ls { path, start } => ls::run(ctx, path.as_deref(), start),
        Request::Stat { path } => stat::run(ctx, &path),
        Request::Mkdir { path, parents } => mkdir::run(ctx, &path, parents),
        Request::Rmdir { path } => rmdir::run(ctx, &path),
        Request::Rm {
            path,
            recursive,
            force,
        } => rm::run(ctx, &path, recursive, force),
        Request::Mv { from, to } => mv::run(ctx, &from, &to),
        Request::Cp { from, to } => cp::run(ctx, &from, &to),
        Request::Partial { path } => partial::run(ctx, &path),
        Request::Tree {
            path,
            recursive,
            after,
        } => tree::run(ctx, path.as_deref(), recursive, after.as_deref()),
        Request::SetMtime { path, mtime } => set_mtime::run(ctx, &path, mtime),
        other => Reply::new(
            Status::BadSequence,
            format!("{} is not valid here", other.op()),
        ),
    };
    Outcome::Reply(reply)
}

/// `?` for functions that build a Reply.
macro_rules! try_reply {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r.into(),
        }
    };
}
pub(crate) use try_reply;
