//! `get PATH [offset]`: start a download. The reply is `150` with the
//! file's size (and its SHA-256 when the storage already knows it); the
//! body follows from `offset`, then a `226` trailer with the digest.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{fs_reply, Ctx};
use crate::digest::HashWriter;
use crate::proto::{Reply, Status};
use crate::server::transfer::Download;
use crate::server::Outcome;

pub fn begin(ctx: &Ctx, path: &str, offset: u64) -> Outcome {
    let fail = |r: Reply| Outcome::DownloadBegun(Err(r));
    let target = match ctx.resolve(path) {
        Ok(t) => t,
        Err(r) => return fail(r),
    };
    let handle = match ctx.account.storage.open_read(&target) {
        Ok(h) => h,
        Err(e) => return fail(fs_reply(e)),
    };
    if offset > handle.size {
        return fail(Reply::new(
            Status::BadArguments,
            format!(
                "offset {offset} is beyond the end of {target} ({} bytes)",
                handle.size
            ),
        ));
    }
    // Without a remembered digest the whole file is hashed as it is sent;
    // a resumed download first hashes the part the client already has.
    let hasher = match handle.digest {
        Some(_) => None,
        None => {
            let mut h = Sha256::new();
            if offset > 0 {
                let mut prefix = (&handle.file).take(offset);
                if let Err(e) = std::io::copy(&mut prefix, &mut HashWriter(&mut h)) {
                    return fail(fs_reply(crate::storage::FsError::from_io(e, &target)));
                }
            }
            Some(h)
        }
    };
    let mut reply = Reply::new(
        Status::Ready,
        format!("{target}: {} bytes follow from byte {offset}", handle.size),
    );
    reply.size = Some(handle.size);
    reply.offset = Some(offset);
    reply.sha256 = handle.digest.map(hex::encode);
    Outcome::DownloadBegun(Ok((
        Box::new(Download {
            account: Arc::clone(&ctx.account),
            path: target,
            pos: offset,
            offset,
            hasher,
            handle,
            started: Instant::now(),
        }),
        reply,
    )))
}
