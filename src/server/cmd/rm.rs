//! `rm PATH`: remove a file; a directory only with `recursive`. The bytes
//! freed leave the user's used space.

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::size::human;

pub fn run(ctx: &Ctx, path: &str, recursive: bool) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    if target.is_root() {
        return Reply::new(
            Status::PathRefused,
            "/: the home directory can't be removed",
        );
    }
    try_reply!(ctx.no_upload_under(&target));
    let freed = try_reply!(ctx
        .account
        .storage
        .remove(&target, recursive)
        .map_err(fs_reply));
    ctx.account.sub_used(freed);
    Reply::new(
        Status::Ok,
        format!("{target}: removed ({} freed)", human(freed)),
    )
}
