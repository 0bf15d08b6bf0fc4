//! `partial PATH`: size and SHA-256 of the resumable partial upload of PATH,
//! so a client can check its local file still starts with those bytes
//! before it resumes (`put` with `offset`).

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};

pub fn run(ctx: &Ctx, path: &str) -> Reply {
    let target = try_reply!(ctx.resolve(path));
    if ctx.account.partial_busy(&target) {
        return Reply::new(
            Status::Busy,
            format!("{target}: an upload to this name is in progress"),
        );
    }
    match ctx.account.storage.partial(&target) {
        Ok(Some(p)) => {
            let mut r = Reply::new(
                Status::Ok,
                format!("{target}: {} bytes uploaded so far", p.size),
            );
            r.size = Some(p.size);
            r.sha256 = Some(p.sha256);
            r
        }
        Ok(None) => Reply::new(
            Status::NotFound,
            format!("{target}: no partial upload to resume"),
        ),
        Err(e) => fs_reply(e),
    }
}
