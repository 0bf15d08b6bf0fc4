//! `rmdir PATH`: remove an empty directory.

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;

pub fn run(ctx: &Ctx, path: &str) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    if target.is_root() {
        return Reply::new(
            Status::PathRefused,
            "/: the home directory can't be removed",
        );
    }
    try_reply!(ctx.account.storage.rmdir(&target).map_err(fs_reply));
    audit::change(ctx, "rmdir", format_args!("path={:?}", target.to_string()));
    Reply::new(Status::Ok, format!("{target}: directory removed"))
}
