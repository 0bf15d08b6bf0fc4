//! `set_mtime PATH mtime`: sets a file's or directory's modification time,
//! for `sync`, which keeps the times of files whose content already
//! matches. A stored digest stays valid (the storage re-stores it).

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};

pub fn run(ctx: &Ctx, path: &str, mtime: i64) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    try_reply!(ctx.not_uploading(&target));
    try_reply!(ctx
        .account
        .storage
        .set_mtime(&target, mtime)
        .map_err(fs_reply));
    Reply::new(
        Status::Ok,
        format!("{target}: modification time set to {mtime}"),
    )
}
