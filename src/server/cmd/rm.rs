//! `rm PATH`: remove a file; a directory only with `recursive`. The bytes
//! freed leave the user's used space. With `force`, a path that does not
//! exist is not an error (`rm -f` in scripts: retention jobs).

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::size::human;

pub fn run(ctx: &Ctx, path: &str, recursive: bool, force: bool) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    if target.is_root() {
        return Reply::new(
            Status::PathRefused,
            "/: the home directory can't be removed",
        );
    }
    try_reply!(ctx.no_upload_under(&target));
    let freed = match ctx.account.storage.remove(&target, recursive) {
        Err(crate::storage::FsError::NotFound(_)) if force => {
            return Reply::new(Status::Ok, format!("{target}: nothing to remove"))
        }
        other => try_reply!(other.map_err(fs_reply)),
    };
    ctx.account.sub_used(freed);
    Reply::new(
        Status::Ok,
        format!("{target}: removed ({} freed)", human(freed)),
    )
}
