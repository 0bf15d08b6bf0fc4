//! `mkdir PATH`: create a directory; with `parents`, like `mkdir -p`.

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;

pub fn run(ctx: &Ctx, path: &str, parents: bool) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    let existed = parents
        && ctx
            .account
            .storage
            .stat(&target)
            .is_ok_and(|e| e.kind == crate::storage::EntryKind::Dir);
    try_reply!(ctx
        .account
        .storage
        .mkdir(&target, parents)
        .map_err(fs_reply));
    let done = if existed {
        "directory exists"
    } else {
        let parents = if parents { " parents=true" } else { "" };
        audit::change(
            ctx,
            "mkdir",
            format_args!("path={:?}{parents}", target.to_string()),
        );
        "directory created"
    };
    Reply::new(Status::Ok, format!("{target}: {done}"))
}
