//! `ls [PATH]`: a directory's entries sorted by name, `MAX_LIST_PAGE` at a
//! time (`next` says where to continue); for a file, that one entry.

use super::{fs_reply, try_reply, wire_entry, Ctx};
use crate::limits::MAX_LIST_PAGE;
use crate::proto::{Reply, Status};
use crate::storage::EntryKind;

pub fn run(ctx: &Ctx, path: Option<&str>, start: u64) -> Reply {
    let target = match path {
        Some(p) => try_reply!(ctx.resolve(p)),
        None => ctx.cwd.clone(),
    };
    let storage = &ctx.account.storage;
    let entry = try_reply!(storage.stat(&target).map_err(fs_reply));
    let mut reply = Reply::new(Status::Ok, format!("listing of {target}"));
    if entry.kind != EntryKind::Dir {
        reply.entries = Some(vec![wire_entry(entry)]);
        return reply;
    }
    let all = try_reply!(storage.list(&target).map_err(fs_reply));
    let start = (start as usize).min(all.len());
    let end = (start + MAX_LIST_PAGE).min(all.len());
    if end < all.len() {
        reply.next = Some(end as u64);
    }
    reply.entries = Some(all[start..end].iter().cloned().map(wire_entry).collect());
    reply
}
