//! `put PATH [size] [offset] [mkdirs]`: start an upload. Before the client
//! sends a byte: the path passes the jail, the target is not a directory,
//! the announced bytes are reserved against the quota, and the hidden
//! partial is opened (continued from `offset` when resuming). The reply is
//! `150` with the offset to send from; the body follows. With `mtime`, the
//! file gets that modification time when it is committed.

use std::sync::Arc;

use super::{fs_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;
use crate::server::front::Body;
use crate::server::metrics::TransferOp;
use crate::server::transfer::upload::{Opened, Upload};
use crate::storage::UploadOpts;

/// What a put asks for.
pub struct PutArgs<'a> {
    pub path: &'a str,
    pub size: Option<u64>,
    pub offset: u64,
    pub mkdirs: bool,
    /// The modification time the file gets when it is committed.
    pub mtime: Option<i64>,
}

/// Opens an upload; its body arrives as `body`, followed by a digest
/// trailer when `trailer`. The reply is the `150`, or the refusal.
pub fn begin(
    ctx: &Ctx,
    args: &PutArgs,
    body: Body,
    trailer: bool,
) -> Result<(Box<Upload>, Reply), Reply> {
    let opened =
        open(ctx, args).inspect_err(|r| audit::transfer_refused(ctx, TransferOp::Put, r))?;
    let mut reply = Reply::new(
        Status::Ready,
        format!("{}: send the body from byte {}", opened.path, args.offset),
    );
    reply.offset = Some(args.offset);
    Ok((Box::new(Upload::new(opened, body, trailer)), reply))
}

/// An eager put: its body (and trailer) are already on the way, so even a
/// refusal comes with an upload that reads and drops them.
pub fn begin_eager(
    ctx: &Ctx,
    path: &str,
    size: Option<u64>,
    offset: u64,
    mkdirs: bool,
    mtime: Option<i64>,
) -> (Box<Upload>, Reply) {
    let args = PutArgs {
        path,
        size,
        offset,
        mkdirs,
        mtime,
    };
    let body = native_body(size, offset);
    match begin(ctx, &args, body.clone(), true) {
        Ok(x) => x,
        Err(reply) => {
            let target = ctx.resolve(path).unwrap_or_default();
            let account = Arc::clone(&ctx.account);
            (
                Box::new(Upload::refused(account, target, body, &reply)),
                reply,
            )
        }
    }
}

/// An eager put's body: eager puts exist only in the native protocol.
fn native_body(size: Option<u64>, offset: u64) -> Body {
    use crate::server::front::Codec;
    crate::server::front::native::NativeCodec.body(size, offset)
}

/// Checks, reserves and opens the partial.
fn open(ctx: &Ctx, args: &PutArgs) -> Result<Opened, Reply> {
    let target = ctx.resolve(args.path)?;
    if target.is_root() {
        return Err(Reply::new(Status::WrongType, "/: is a directory"));
    }
    let offset = args.offset;
    if args.size.is_some_and(|size| offset > size) {
        return Err(Reply::new(
            Status::BadArguments,
            format!(
                "offset {offset} is beyond the announced size {}",
                args.size.unwrap_or_default()
            ),
        ));
    }
    let account = &ctx.account;
    // One transfer at a time owns the resumable partial of a path; a
    // concurrent upload of the same path writes a private partial instead,
    // and whichever completes last wins.
    let claimed = account.claim_upload(&target);
    if !claimed && offset > 0 {
        return Err(Reply::new(
            Status::Busy,
            format!("{target}: another transfer is writing the partial upload"),
        ));
    }
    let release = |r: Reply| {
        if claimed {
            account.release_upload(&target);
        }
        r
    };
    // Bytes of an older partial that starting at `offset` will truncate
    // away count as free; nothing is created (not even `mkdirs`' parents)
    // before the reservation succeeds.
    let credit = if claimed {
        let old = account.storage.partial_len(&target).unwrap_or(0);
        old.saturating_sub(offset)
    } else {
        0
    };
    // Unknown sizes reserve chunk by chunk as the body arrives.
    let needed = args.size.map_or(0, |s| s - offset);
    let reservation = account
        .reserve_with_credit(needed, credit)
        .map_err(|e| release(Reply::new(Status::QuotaExceeded, format!("{target}: {e}"))))?;
    let opts = UploadOpts {
        offset,
        mkdirs: args.mkdirs,
        resumable: claimed,
        size_hint: args.size,
        mtime: args.mtime,
    };
    let handle = account
        .storage
        .begin_upload(&target, opts)
        .map_err(|e| release(fs_reply(e)))?;
    account.sub_used(handle.truncated());
    account.upload_started(&target);
    Ok(Opened {
        account: Arc::clone(account),
        handle,
        reservation,
        path: target,
        offset,
        claimed,
    })
}
