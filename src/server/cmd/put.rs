//! `put PATH [size] [offset] [mkdirs]`: start an upload. Before the client
//! sends a byte: the path passes the jail, the target is not a directory,
//! the announced bytes are reserved against the quota, and the hidden
//! partial is opened (continued from `offset` when resuming). The reply is
//! `150` with the offset to send from; the body follows. With `mtime`, the
//! file gets that modification time when it is committed.

use std::sync::Arc;
use std::time::Instant;

use super::{fs_reply, Ctx};
use crate::limits::FRAME_HEADER_LEN;
use crate::proto::{Reply, Status};
use crate::server::transfer::upload::Body;
use crate::server::transfer::Upload;
use crate::server::Outcome;

pub fn begin(
    ctx: &Ctx,
    path: &str,
    size: Option<u64>,
    offset: u64,
    mkdirs: bool,
    eager: bool,
    mtime: Option<i64>,
) -> Outcome {
    // Refused: an eager client is already sending the body, which must be
    // read and discarded to keep the stream in step.
    let fail = |r: Reply| {
        if eager {
            let body = body_of(size, offset);
            let up = Upload::discarding(Arc::clone(&ctx.account), path, body, &r);
            Outcome::UploadBegun(Ok((Box::new(up), r)))
        } else {
            Outcome::UploadBegun(Err(r))
        }
    };
    let target = match ctx.resolve(path) {
        Ok(t) => t,
        Err(r) => return fail(r),
    };
    if target.is_root() {
        return fail(Reply::new(Status::WrongType, "/: is a directory"));
    }
    if let Some(size) = size {
        if offset > size {
            return fail(Reply::new(
                Status::BadArguments,
                format!("offset {offset} is beyond the announced size {size}"),
            ));
        }
    }
    let account = &ctx.account;
    // One transfer at a time owns the resumable partial of a path; a
    // concurrent upload of the same path writes a private partial instead,
    // and whichever completes last wins.
    let claimed = account.claim_upload(&target);
    if !claimed && offset > 0 {
        return fail(Reply::new(
            Status::Busy,
            format!("{target}: another transfer is writing the partial upload"),
        ));
    }
    // Bytes of an older partial that starting at `offset` will truncate
    // away count as free; nothing is created (not even `mkdirs`' parents)
    // before the reservation succeeds.
    let credit = if claimed {
        account
            .storage
            .partial_len(&target)
            .unwrap_or(0)
            .saturating_sub(offset)
    } else {
        0
    };
    // Unknown sizes reserve chunk by chunk as the body arrives.
    let needed = size.map_or(0, |s| s - offset);
    let reservation = match account.reserve_with_credit(needed, credit) {
        Ok(r) => r,
        Err(e) => {
            if claimed {
                account.release_upload(&target);
            }
            return fail(Reply::new(Status::QuotaExceeded, format!("{target}: {e}")));
        }
    };
    let mut handle = match account
        .storage
        .begin_upload(&target, offset, mkdirs, claimed)
    {
        Ok(h) => h,
        Err(e) => {
            if claimed {
                account.release_upload(&target);
            }
            return fail(fs_reply(e));
        }
    };
    handle.mtime = mtime;
    account.sub_used(handle.truncated);
    account.begin_upload(&target);
    let body = body_of(size, offset);
    let mut reply = Reply::new(
        Status::Ready,
        format!("{target}: send the body from byte {offset}"),
    );
    reply.offset = Some(offset);
    Outcome::UploadBegun(Ok((
        Box::new(Upload {
            account: Arc::clone(account),
            hasher: handle.prefix.clone(),
            handle: Some(handle),
            body,
            received: 0,
            reservation: Some(reservation),
            path: target,
            offset,
            claimed,
            started: Instant::now(),
            failure: None,
            ended: false,
        }),
        reply,
    )))
}

/// The body a put announces: `size - offset` raw bytes, or chunks.
fn body_of(size: Option<u64>, offset: u64) -> Body {
    match size {
        Some(s) if s <= offset => Body::Done,
        Some(s) => Body::Sized {
            remaining: s - offset,
        },
        None => Body::ChunkHeader {
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        },
    }
}
