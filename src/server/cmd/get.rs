//! `get PATH [offset]`: start a download. The reply is `150` with the
//! file's size (and its SHA-256 when the storage already knows it); the
//! body follows from `offset`, then a `226` trailer with the digest.

use std::sync::Arc;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::{fs_reply, Ctx};
use crate::proto::{Reply, Status};
use crate::server::audit;
use crate::server::metrics::TransferOp;
use crate::server::transfer::progress::Progress;
use crate::server::transfer::Download;
use crate::server::workers::with_scratch;
use crate::storage::{FsError, ReadHandle, VPath};

pub fn begin(ctx: &Ctx, path: &str, offset: u64) -> Result<(Box<Download>, Reply), Reply> {
    open(ctx, path, offset).inspect_err(|r| audit::transfer_refused(ctx, TransferOp::Get, r))
}

fn open(ctx: &Ctx, path: &str, offset: u64) -> Result<(Box<Download>, Reply), Reply> {
    let target = ctx.resolve(path)?;
    let mut handle = ctx.account.storage.open_read(&target).map_err(fs_reply)?;
    let size = handle.size();
    if offset > size {
        return Err(Reply::new(
            Status::BadArguments,
            format!("offset {offset} is beyond the end of {target} ({size} bytes)"),
        ));
    }
    // Without a stored digest the whole file is hashed as it is sent; a
    // resumed download first hashes the part the client already has.
    let hasher = match handle.digest() {
        Some(_) => None,
        None => Some(hash_prefix(handle.as_mut(), offset, &target)?),
    };
    let mut reply = Reply::new(
        Status::Ready,
        format!("{target}: {size} bytes follow from byte {offset}"),
    );
    reply.size = Some(size);
    reply.offset = Some(offset);
    reply.sha256 = handle.digest().map(hex::encode);
    let progress = Progress::new(TransferOp::Get, target.to_string(), Some(size), offset);
    let down = Download {
        account: Arc::clone(&ctx.account),
        progress,
        path: target,
        pos: offset,
        offset,
        hasher,
        handle,
        started: Instant::now(),
    };
    Ok((Box::new(down), reply))
}

/// The hashing state over the first `len` bytes of a file.
fn hash_prefix(handle: &mut dyn ReadHandle, len: u64, path: &VPath) -> Result<Sha256, Reply> {
    let mut h = Sha256::new();
    read_in_order(handle, path, len, |bytes| {
        h.update(bytes);
        None
    })?;
    Ok(h)
}

/// Reads `len` bytes of `handle` in order, handing each buffer to `sink`;
/// stops at the first reply `sink` returns.
pub fn read_in_order(
    handle: &mut dyn ReadHandle,
    path: &VPath,
    len: u64,
    mut sink: impl FnMut(&[u8]) -> Option<Reply>,
) -> Result<(), Reply> {
    with_scratch(|buf| {
        let mut pos = 0;
        while pos < len {
            let want = buf.len().min((len - pos) as usize);
            let n = match handle.read_at(&mut buf[..want], pos) {
                Ok(0) => {
                    return Err(Reply::new(
                        Status::LocalError,
                        format!("{path}: the file shrank while it was read; try again"),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(fs_reply(FsError::from_io(e, path))),
            };
            if let Some(r) = sink(&buf[..n]) {
                return Err(r);
            }
            pos += n as u64;
        }
        Ok(())
    })
}
