//! The three operations FTP needs that the native protocol has no request
//! for ([`FtpOp`]), run as io jobs like `cmd::run`, over the same `Ctx`:
//! the jail, quotas and busy rules are the core's.
//!
//! - `MFMT`: [`Storage::set_mtime`](crate::storage::Storage::set_mtime)
//!   (a stored digest stays valid).
//! - `HASH`/`XSHA256`: the stored SHA-256; a file without one (put there
//!   by something other than an upload) is hashed here, up to
//!   `MAX_HASH_ON_REQUEST`, and the digest remembered.
//! - `APPE`: an ordinary upload whose body starts with a copy of the
//!   committed file, fed through the upload machine before the `150` (so
//!   it is hashed and counted against the quota like any body), then the
//!   data connection's bytes; the commit replaces the file atomically.
//!   Until then readers see the old file; a cut APPE keeps its partial.

use sha2::{Digest, Sha256};

use super::session::FtpOp;
use crate::limits::MAX_HASH_ON_REQUEST;
use crate::proto::{Reply, Status};
use crate::server::cmd::get::read_in_order;
use crate::server::cmd::{fs_reply, put, try_reply, Ctx};
use crate::server::front::Body;
use crate::server::transfer::Upload;
use crate::server::Outcome;
use crate::storage::{EntryKind, FsError, ReadHandle, VPath};

/// Runs `op` (on an io worker).
pub fn run(ctx: Ctx, op: FtpOp) -> Outcome {
    match op {
        FtpOp::SetMtime { path, mtime } => Outcome::Reply(set_mtime(&ctx, &path, mtime)),
        FtpOp::Sha256 { path } => Outcome::Reply(sha256(&ctx, &path)),
        FtpOp::Append { path } => Outcome::UploadBegun(append(&ctx, &path)),
    }
}

fn set_mtime(ctx: &Ctx, path: &str, mtime: i64) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    try_reply!(ctx
        .account
        .storage
        .set_mtime(&target, mtime)
        .map_err(fs_reply));
    Reply::new(Status::Ok, format!("{target}: modification time set"))
}

/// The file's SHA-256 (and size), stored or computed now.
fn sha256(ctx: &Ctx, path: &str) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    let storage = &ctx.account.storage;
    let entry = try_reply!(storage.stat(&target).map_err(fs_reply));
    if entry.kind != EntryKind::File {
        return Reply::new(Status::WrongType, format!("{target}: not a regular file"));
    }
    let mut handle = try_reply!(storage.open_read(&target).map_err(fs_reply));
    let size = handle.size();
    let digest = match handle.digest() {
        Some(d) => d,
        None if size > MAX_HASH_ON_REQUEST => {
            return Reply::new(
                Status::LocalError,
                format!(
                    "{target}: no SHA-256 is stored for this file, and at {size} bytes it is \
                     too big to hash on request; download it once and ask again"
                ),
            )
        }
        None => {
            let d = try_reply!(hash_all(handle.as_mut(), &target));
            handle.remember_digest(&d);
            d
        }
    };
    let mut r = Reply::new(Status::Ok, target.to_string());
    r.size = Some(size);
    r.sha256 = Some(hex::encode(digest));
    r
}

/// The SHA-256 of a whole file.
fn hash_all(handle: &mut dyn ReadHandle, path: &VPath) -> Result<[u8; 32], Reply> {
    let size = handle.size();
    let mut h = Sha256::new();
    read_in_order(handle, path, size, |bytes| {
        h.update(bytes);
        None
    })?;
    Ok(h.finalize().into())
}

/// `APPE`: an upload that starts as a copy of the committed file (when
/// there is one).
fn append(ctx: &Ctx, path: &str) -> Result<(Box<Upload>, Reply), Reply> {
    let target = ctx.resolve(path)?;
    let old = match ctx.account.storage.open_read(&target) {
        Ok(h) => Some(h),
        Err(FsError::NotFound(_)) => None,
        Err(e) => return Err(fs_reply(e)),
    };
    let args = put::PutArgs {
        path,
        size: None,
        offset: 0,
        mkdirs: false,
        mtime: None,
    };
    let (mut up, reply) = put::begin(ctx, &args, Body::UntilEof, false)?;
    if let Some(mut old) = old {
        let size = old.size();
        if let Err(r) = read_in_order(old.as_mut(), &target, size, |bytes| up.feed(bytes).1) {
            up.discard();
            return Err(r);
        }
    }
    Ok((up, reply))
}
