//! `mv FROM TO`: rename or move (into TO when it is a directory). A file it
//! replaces frees its bytes.

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;

pub fn run(ctx: &Ctx, from: &str, to: &str) -> Reply {
    let from = try_reply!(ctx.resolve(from));
    let to = try_reply!(ctx.resolve(to));
    if from.is_root() {
        return Reply::new(Status::PathRefused, "/: the home directory can't be moved");
    }
    let storage = &ctx.account.storage;
    let target = try_reply!(storage.target_of(&from, &to).map_err(fs_reply));
    try_reply!(ctx.not_uploading(&target));
    try_reply!(ctx.no_upload_under(&from));
    let freed = try_reply!(storage.rename(&from, &to).map_err(fs_reply));
    ctx.account.sub_used(freed);
    audit::change(
        ctx,
        "mv",
        format_args!("from={:?} to={:?}", from.to_string(), target.to_string()),
    );
    Reply::new(Status::Ok, format!("{from} -> {target}"))
}
