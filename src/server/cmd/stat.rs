//! `stat PATH`: one entry's type, size and modification time.

use super::{fs_reply, try_reply, wire_entry, Ctx};
use crate::proto::{Reply, Status};

pub fn run(ctx: &Ctx, path: &str) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    let entry = try_reply!(ctx.account.storage.stat(&target).map_err(fs_reply));
    let mut reply = Reply::new(Status::Ok, target.to_string());
    reply.entry = Some(wire_entry(entry));
    reply
}
