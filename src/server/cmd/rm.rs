//! `rm PATH`: remove a file; a directory only with `recursive`. The bytes
//! freed leave the user's used space, also those a recursive remove freed
//! before something stopped it. With `force`, a path that does not exist
//! is not an error (`rm -f` in scripts: retention jobs).

use super::{fs_reply, fs_status, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;
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
    let removed = ctx.account.storage.remove(&target, recursive);
    ctx.account.sub_used(removed.freed);
    if removed.error.is_none() || removed.freed > 0 {
        let partly = if removed.error.is_some() {
            " complete=false"
        } else {
            ""
        };
        audit::change(
            ctx,
            "rm",
            format_args!(
                "path={:?} recursive={recursive} freed={}{partly}",
                target.to_string(),
                removed.freed
            ),
        );
    }
    match removed.error {
        None => Reply::new(
            Status::Ok,
            format!("{target}: removed ({} freed)", human(removed.freed)),
        ),
        Some(crate::storage::FsError::NotFound(_)) if force && removed.freed == 0 => {
            Reply::new(Status::Ok, format!("{target}: nothing to remove"))
        }
        Some(e) if removed.freed > 0 => Reply::new(
            fs_status(&e),
            format!("{e} (stopped there; {} freed before)", human(removed.freed)),
        ),
        Some(e) => fs_reply(e),
    }
}
