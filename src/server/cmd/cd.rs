//! `cd PATH`: change the session's directory (it must exist and be one).

use super::{fs_reply, try_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::Outcome;
use crate::storage::EntryKind;

pub fn run(ctx: &Ctx, path: &str) -> Outcome {
    let target = try_reply!(ctx.resolve(path).map_err(Outcome::Reply));
    match ctx.account.storage.stat(&target) {
        Ok(e) if e.kind == EntryKind::Dir => {
            let mut reply = Reply::new(Status::Ok, format!("now in {target}"));
            reply.cwd = Some(target.to_string());
            Outcome::Cd { cwd: target, reply }
        }
        Ok(_) => Outcome::Reply(Reply::new(
            Status::WrongType,
            format!("{target}: not a directory"),
        )),
        Err(e) => Outcome::Reply(fs_reply(e)),
    }
}
