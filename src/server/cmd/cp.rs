//! `cp FROM TO`: a server-side copy of a file. Its size is reserved against
//! the quota before a byte is written, like any other write.

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;
use crate::storage::EntryKind;

pub fn run(ctx: &Ctx, from: &str, to: &str) -> Reply {
    let from = try_reply!(ctx.resolve(from));
    let to = try_reply!(ctx.resolve(to));
    let storage = &ctx.account.storage;
    let target = try_reply!(storage.target_of(&from, &to).map_err(fs_reply));
    try_reply!(ctx.not_uploading(&target));
    let src = try_reply!(storage.stat(&from).map_err(fs_reply));
    if src.kind == EntryKind::Dir {
        return Reply::new(
            Status::WrongType,
            format!("{from}: is a directory (cp copies files)"),
        );
    }
    let reservation = match ctx.account.reserve(src.size) {
        Ok(r) => r,
        Err(e) => return Reply::new(Status::QuotaExceeded, format!("{from}: {e}")),
    };
    // Counted before the copy appears under its name (see upload::finish),
    // taken back if it fails.
    reservation.commit(src.size);
    let delta = match storage.copy(&from, &to) {
        Ok(d) => d,
        Err(e) => {
            ctx.account.sub_used(src.size);
            return fs_reply(e);
        }
    };
    // The source may have changed between the stat and the copy.
    if delta.added > src.size {
        ctx.account.add_used(delta.added - src.size);
    } else {
        ctx.account.sub_used(src.size - delta.added);
    }
    ctx.account.sub_used(delta.freed);
    audit::change(
        ctx,
        "cp",
        format_args!(
            "from={:?} to={:?} bytes={}",
            from.to_string(),
            target.to_string(),
            delta.added
        ),
    );
    let mut reply = Reply::new(Status::Ok, format!("{from} copied to {target}"));
    reply.size = Some(delta.added);
    reply
}
