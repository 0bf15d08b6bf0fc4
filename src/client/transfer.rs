//! put and get over a [`Client`]: the body streamed with constant memory,
//! SHA-256 computed in the same pass (on a second thread for large files,
//! so hashing overlaps the copy), checked against the server's digest, and
//! resumable. Downloads to a file land under a hidden `.NAME.miniftp-part`
//! beside it and are renamed only once verified.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::progress::Progress;
use super::Client;
use crate::digest::HashWriter;
use crate::error::{Error, Result};
use crate::limits::FRAME_HEADER_LEN;
use crate::partial::partial_name;
use crate::proto::{Request, Status};

/// Set by a process running many transfers at once (the bench's load
/// generator): they already keep every core busy, and a hashing thread per
/// transfer would only add switches.
pub static INLINE_HASHING: AtomicBool = AtomicBool::new(false);

/// Set by Ctrl-C in the interactive shell: the running transfer stops at
/// its next chunk (the connection is then out of step and is dropped).
static INTERRUPT: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// The flag a SIGINT handler sets to stop the running transfer.
pub fn interrupt_flag() -> Arc<AtomicBool> {
    Arc::clone(INTERRUPT.get_or_init(Default::default))
}

fn interrupted() -> Result<()> {
    if INTERRUPT.get().is_some_and(|f| f.load(Ordering::Relaxed)) {
        return Err(Error::Interrupted);
    }
    Ok(())
}

/// Bytes per read/write of a body.
const CHUNK: usize = 1 << 20;
/// Bodies below this are hashed inline (a thread costs more than it saves).
const PIPELINE_MIN: u64 = 4 << 20;

/// What one finished transfer did.
#[derive(Debug, Clone)]
pub struct Done {
    /// Bytes that crossed the wire in this transfer.
    pub bytes: u64,
    /// Size of the whole file.
    pub size: u64,
    /// Where it resumed from (0 for a fresh transfer).
    pub offset: u64,
    pub sha256: String,
}

/// Copies a body in chunks from `fill` to `drain`, hashing every byte.
/// Large bodies hash on a second thread while the next chunk is copied.
fn copy_hashed(
    mut hasher: Sha256,
    len_hint: Option<u64>,
    fill: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    drain: &mut dyn FnMut(&[u8]) -> Result<()>,
) -> Result<(Sha256, u64)> {
    if len_hint.is_some_and(|n| n < PIPELINE_MIN) || INLINE_HASHING.load(Ordering::Relaxed) {
        let mut buf = vec![0u8; CHUNK.min(len_hint.unwrap_or(0) as usize).max(1)];
        let mut total = 0u64;
        loop {
            let n = fill(&mut buf)?;
            if n == 0 {
                return Ok((hasher, total));
            }
            hasher.update(&buf[..n]);
            drain(&buf[..n])?;
            total += n as u64;
        }
    }
    std::thread::scope(|s| {
        // Full buffers go to the hasher with their length and come back
        // for reuse; a buffer keeps its size, so nothing is re-zeroed.
        let (tx, rx) = crossbeam_channel::bounded::<(Arc<Vec<u8>>, usize)>(4);
        let (back_tx, back_rx) = crossbeam_channel::unbounded::<Arc<Vec<u8>>>();
        let worker = s.spawn(move || {
            for (chunk, n) in rx {
                hasher.update(&chunk[..n]);
                let _ = back_tx.send(chunk);
            }
            hasher
        });
        let mut allocated = 0;
        let mut total = 0u64;
        let result = loop {
            let mut buf = match back_rx.try_recv() {
                Ok(a) => Arc::try_unwrap(a).unwrap_or_else(|_| vec![0; CHUNK]),
                Err(_) if allocated < 6 => {
                    allocated += 1;
                    vec![0; CHUNK]
                }
                Err(_) => match back_rx.recv() {
                    Ok(a) => Arc::try_unwrap(a).unwrap_or_else(|_| vec![0; CHUNK]),
                    Err(_) => vec![0; CHUNK],
                },
            };
            let (n, eof) = match fill_most(fill, &mut buf) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            if n == 0 {
                break Ok(());
            }
            let chunk = Arc::new(buf);
            if tx.send((Arc::clone(&chunk), n)).is_err() {
                break Err(Error::Other("hashing thread stopped".into()));
            }
            if let Err(e) = drain(&chunk[..n]) {
                break Err(e);
            }
            total += n as u64;
            if eof {
                break Ok(());
            }
        };
        drop(tx);
        let hasher = worker
            .join()
            .map_err(|_| Error::Other("hashing thread panicked".into()))?;
        result.map(|()| (hasher, total))
    })
}

/// Fills at least a quarter of `buf` (a socket read may return a single
/// TLS record, and a chunk per record costs more than it moves): the bytes
/// filled, and whether the source ended.
fn fill_most(
    fill: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    buf: &mut [u8],
) -> Result<(usize, bool)> {
    let mut n = 0;
    while n < buf.len() / 4 {
        match fill(&mut buf[n..])? {
            0 => return Ok((n, true)),
            k => n += k,
        }
    }
    Ok((n, false))
}

/// Like [`copy_hashed`], for downloads: `drain` (the local write) runs on
/// a third thread, after the hash, so the receiving thread only reads (and
/// over TLS decrypts) while the previous chunks are hashed and written.
/// Measured: a TLS download's receiving thread was the critical path with
/// the write on it.
fn copy_hashed_to(
    mut hasher: Sha256,
    len: u64,
    fill: &mut dyn FnMut(&mut [u8]) -> Result<usize>,
    drain: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
) -> Result<(Sha256, u64)> {
    if len < PIPELINE_MIN || INLINE_HASHING.load(Ordering::Relaxed) {
        return copy_hashed(hasher, Some(len), fill, drain);
    }
    std::thread::scope(|s| {
        type Chunk = (Vec<u8>, usize);
        let (hash_tx, hash_rx) = crossbeam_channel::bounded::<Chunk>(4);
        let (write_tx, write_rx) = crossbeam_channel::bounded::<Chunk>(4);
        let (back_tx, back_rx) = crossbeam_channel::unbounded::<Vec<u8>>();
        let hashing = s.spawn(move || {
            for (chunk, n) in hash_rx {
                hasher.update(&chunk[..n]);
                if write_tx.send((chunk, n)).is_err() {
                    break; // the writer failed; its error is the one to report
                }
            }
            hasher
        });
        let writing = s.spawn(move || -> Result<()> {
            for (chunk, n) in write_rx {
                drain(&chunk[..n])?;
                let _ = back_tx.send(chunk);
            }
            Ok(())
        });
        let mut allocated = 0;
        let mut total = 0u64;
        let read: Result<()> = loop {
            let mut buf = match back_rx.try_recv() {
                Ok(b) => b,
                Err(_) if allocated < 8 => {
                    allocated += 1;
                    vec![0; CHUNK]
                }
                Err(_) => match back_rx.recv() {
                    Ok(b) => b,
                    // The writer stopped: its error is reported below.
                    Err(_) => break Ok(()),
                },
            };
            let (n, eof) = match fill_most(fill, &mut buf) {
                Ok(r) => r,
                Err(e) => break Err(e),
            };
            if n > 0 {
                total += n as u64;
                if hash_tx.send((buf, n)).is_err() {
                    break Ok(()); // the writer failed: reported below
                }
            }
            if eof {
                break Ok(());
            }
        };
        drop(hash_tx);
        drop(back_rx);
        let hasher = hashing
            .join()
            .map_err(|_| Error::Other("hashing thread panicked".into()))?;
        let written = writing
            .join()
            .map_err(|_| Error::Other("writing thread panicked".into()))?;
        // A local write error explains a stop better than what reading saw.
        written?;
        read?;
        Ok((hasher, total))
    })
}

/// Hashes the first `len` bytes of `file`.
fn hash_prefix(file: &mut File, len: u64, path: &Path) -> Result<Sha256> {
    let mut h = Sha256::new();
    file.seek(SeekFrom::Start(0))
        .map_err(|e| Error::local(path, e))?;
    let copied = io::copy(&mut file.take(len), &mut HashWriter(&mut h))
        .map_err(|e| Error::local(path, e))?;
    if copied != len {
        return Err(Error::local(path, io::ErrorKind::UnexpectedEof.into()));
    }
    Ok(h)
}

/// Sends the `done` trailer of an upload and checks the server's answer.
fn done(client: &mut Client, ours: &str, remote: &str) -> Result<String> {
    client.send(&Request::Done {
        sha256: ours.to_string(),
    })?;
    finish(client, ours, remote)
}

/// Reads the `226` that ends a transfer and checks its digest.
fn finish(client: &mut Client, ours: &str, what: &str) -> Result<String> {
    let reply = client.recv()?;
    if reply.status() != Some(Status::TransferComplete) {
        return Err(Error::remote(&reply));
    }
    match reply.sha256 {
        Some(theirs) if theirs.eq_ignore_ascii_case(ours) => Ok(theirs),
        Some(theirs) => Err(Error::Integrity(format!(
            "{what}: SHA-256 mismatch: local {ours}, server {theirs}"
        ))),
        None => Err(Error::Protocol(format!(
            "{what}: the server sent no digest"
        ))),
    }
}

/// How an upload is asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct PutOpts {
    /// Create missing parent directories on the server.
    pub mkdirs: bool,
    /// Continue the server's partial upload when it matches.
    pub resume: bool,
    /// Give the remote file the local file's modification time.
    pub keep_mtime: bool,
}

/// A local file opened for upload: its size and modification time.
struct Opened {
    file: File,
    size: u64,
    mtime: i64,
}

/// Opens a local file for upload; directories are refused.
fn open_local(local: &Path) -> Result<Opened> {
    let file = File::open(local).map_err(|e| Error::local(local, e))?;
    let md = file.metadata().map_err(|e| Error::local(local, e))?;
    if md.is_dir() {
        return Err(Error::Usage(format!(
            "{}: is a directory (use -r)",
            local.display()
        )));
    }
    Ok(Opened {
        file,
        size: md.len(),
        mtime: std::os::unix::fs::MetadataExt::mtime(&md),
    })
}

/// Streams bytes `offset..size` of `file` as a put body; `hasher` has seen
/// the bytes before `offset`. Returns the whole file's digest and the bytes
/// sent.
fn send_body(
    client: &mut Client,
    file: &mut File,
    local: &Path,
    size: u64,
    offset: u64,
    hasher: Sha256,
    progress: &Progress,
) -> Result<(String, u64)> {
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| Error::local(local, e))?;
    let mut remaining = size - offset;
    let mut sent = offset;
    let mut fill = |buf: &mut [u8]| -> Result<usize> {
        interrupted()?;
        let want = buf.len().min(remaining as usize);
        if want == 0 {
            return Ok(0);
        }
        let n = file
            .read(&mut buf[..want])
            .map_err(|e| Error::local(local, e))?;
        if n == 0 {
            return Err(Error::Other(format!(
                "{}: the file shrank during the upload",
                local.display()
            )));
        }
        remaining -= n as u64;
        Ok(n)
    };
    let throttle = client.throttle.clone();
    let writer = client.writer();
    let mut drain = |chunk: &[u8]| -> Result<()> {
        writer.write_all(chunk).map_err(Error::ConnectionLost)?;
        if let Some(t) = &throttle {
            t.take(chunk.len());
        }
        sent += chunk.len() as u64;
        progress.set(sent);
        Ok(())
    };
    let (hasher, moved) = copy_hashed(hasher, Some(size - offset), &mut fill, &mut drain)?;
    Ok((hex::encode(hasher.finalize()), moved))
}

/// Asks the server what its partial upload of `remote` holds; when that is
/// the start of `file`, the offset to go on from and the hash state there.
fn resume_point(
    client: &mut Client,
    file: &mut File,
    local: &Path,
    size: u64,
    remote: &str,
) -> Result<Option<(u64, Sha256)>> {
    let reply = client.request(&Request::Partial {
        path: remote.to_string(),
    })?;
    match reply.status() {
        Some(Status::Ok) => {
            let k = reply.size.unwrap_or(0);
            if k == 0 || k > size {
                return Ok(None);
            }
            let h = hash_prefix(file, k, local)?;
            let ours = hex::encode(h.clone().finalize());
            let same = reply
                .sha256
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(&ours));
            Ok(same.then_some((k, h)))
        }
        Some(Status::NotFound) => Ok(None),
        _ => Err(Error::remote(&reply)),
    }
}

/// Uploads a local regular file to `remote`. With `resume`, continues the
/// server's partial upload when its bytes match the start of the local file.
pub fn put_file(
    client: &mut Client,
    local: &Path,
    remote: &str,
    opts: PutOpts,
    progress: &Progress,
) -> Result<Done> {
    let Opened {
        mut file,
        size,
        mtime,
    } = open_local(local)?;
    let mut offset = 0;
    let mut hasher = Sha256::new();
    if opts.resume {
        if let Some((k, h)) = resume_point(client, &mut file, local, size, remote)? {
            offset = k;
            hasher = h;
        }
    }
    let reply = client.request(&Request::Put {
        path: remote.to_string(),
        size: Some(size),
        offset,
        mkdirs: opts.mkdirs,
        eager: false,
        mtime: opts.keep_mtime.then_some(mtime),
    })?;
    if reply.status() != Some(Status::Ready) {
        return Err(Error::remote(&reply));
    }
    let (ours, moved) = send_body(client, &mut file, local, size, offset, hasher, progress)?;
    let sha256 = done(client, &ours, remote)?;
    Ok(Done {
        bytes: moved,
        size,
        offset,
        sha256,
    })
}

/// Files up to this size go out `eager` (body right behind the request).
const EAGER_MAX: u64 = 1 << 20;
/// Eager uploads in flight before the client stops to read replies; the
/// replies of a full window fit easily in the socket buffers, so neither
/// side can block the other.
const WINDOW: usize = 64;

/// An eager upload whose replies are not read yet.
struct InFlight {
    index: usize,
    sha256: String,
    size: u64,
}

/// Eager uploads sent and not yet confirmed, oldest first.
type Window = std::collections::VecDeque<InFlight>;

/// Reads the replies of the oldest eager uploads until at most `keep` are
/// left unconfirmed, reporting each.
fn confirm(
    client: &mut Client,
    items: &[(PathBuf, String)],
    inflight: &mut Window,
    keep: usize,
    report: &mut dyn FnMut(usize, Result<Done>),
) -> Result<()> {
    while inflight.len() > keep {
        let f = inflight.pop_front().expect("non-empty");
        let reply = client.recv()?;
        let result = if reply.status() == Some(Status::Ready) {
            match finish(client, &f.sha256, &items[f.index].1) {
                Err(e) if e.ends_connection() => return Err(e),
                r => r.map(|sha256| Done {
                    bytes: f.size,
                    size: f.size,
                    offset: 0,
                    sha256,
                }),
            }
        } else {
            Err(Error::remote(&reply))
        };
        report(f.index, result);
    }
    Ok(())
}

/// Reads a small file whole, for an eager upload; None for a large one.
fn read_small(local: &Path) -> Result<(Opened, Option<Vec<u8>>)> {
    let mut opened = open_local(local)?;
    if opened.size > EAGER_MAX {
        return Ok((opened, None));
    }
    let mut body = Vec::with_capacity(opened.size as usize);
    opened
        .file
        .read_to_end(&mut body)
        .map_err(|e| Error::local(local, e))?;
    Ok((opened, Some(body)))
}

/// Sends one eager upload (request, body and `done` in one write) and
/// returns its digest.
fn send_eager(
    client: &mut Client,
    remote: &str,
    body: &[u8],
    opts: PutOpts,
    mtime: i64,
    frame: &mut Vec<u8>,
) -> Result<String> {
    let sha256 = hex::encode(Sha256::digest(body));
    let put = Request::Put {
        path: remote.to_string(),
        size: Some(body.len() as u64),
        offset: 0,
        mkdirs: opts.mkdirs,
        eager: true,
        mtime: opts.keep_mtime.then_some(mtime),
    };
    frame.clear();
    crate::proto::frame::encode(put.to_json().as_bytes(), frame);
    frame.extend_from_slice(body);
    let done = Request::Done {
        sha256: sha256.clone(),
    };
    crate::proto::frame::encode(done.to_json().as_bytes(), frame);
    client
        .writer()
        .write_all(frame)
        .map_err(Error::ConnectionLost)?;
    if let Some(t) = &client.throttle {
        t.take(frame.len());
    }
    Ok(sha256)
}

/// Uploads many files over one connection without a round trip per file:
/// small files go `eager` (request, body and `done` in one write, up to
/// `WINDOW` files ahead of their replies); larger ones go one by one.
/// `report` gets each file's result in order; a failed file doesn't stop
/// the others, a lost connection does.
pub fn put_files(
    client: &mut Client,
    items: &[(PathBuf, String)],
    opts: PutOpts,
    report: &mut dyn FnMut(usize, Result<Done>),
) -> Result<()> {
    let mut inflight = Window::new();
    let mut frame = Vec::new();
    for (i, (local, remote)) in items.iter().enumerate() {
        let (opened, body) = match read_small(local) {
            Ok(x) => x,
            Err(e) => {
                confirm(client, items, &mut inflight, 0, report)?;
                report(i, Err(e));
                continue;
            }
        };
        let Some(body) = body else {
            confirm(client, items, &mut inflight, 0, report)?;
            let one = PutOpts {
                resume: false,
                ..opts
            };
            match put_file(client, local, remote, one, &Progress::hidden()) {
                Err(e) if e.ends_connection() => return Err(e),
                r => report(i, r),
            }
            continue;
        };
        let sha256 = send_eager(client, remote, &body, opts, opened.mtime, &mut frame)?;
        inflight.push_back(InFlight {
            index: i,
            sha256,
            size: body.len() as u64,
        });
        confirm(client, items, &mut inflight, WINDOW - 1, report)?;
    }
    confirm(client, items, &mut inflight, 0, report)
}

/// Uploads a stream of unknown length (standard input) in chunks.
pub fn put_stream(
    client: &mut Client,
    input: &mut dyn Read,
    remote: &str,
    mkdirs: bool,
    progress: &Progress,
) -> Result<Done> {
    let reply = client.request(&Request::Put {
        path: remote.to_string(),
        size: None,
        offset: 0,
        mkdirs,
        eager: false,
        mtime: None,
    })?;
    if reply.status() != Some(Status::Ready) {
        return Err(Error::remote(&reply));
    }
    let mut sent = 0u64;
    let (hasher, total) = {
        let mut fill = |buf: &mut [u8]| -> Result<usize> {
            loop {
                match input.read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::local("standard input", e)),
                }
            }
        };
        let writer = client.writer();
        let mut drain = |chunk: &[u8]| -> Result<()> {
            let mut framed = Vec::with_capacity(FRAME_HEADER_LEN);
            framed.extend_from_slice(&(chunk.len() as u64).to_be_bytes());
            writer.write_all(&framed).map_err(Error::ConnectionLost)?;
            writer.write_all(chunk).map_err(Error::ConnectionLost)?;
            sent += chunk.len() as u64;
            progress.set(sent);
            Ok(())
        };
        copy_hashed(Sha256::new(), None, &mut fill, &mut drain)?
    };
    client
        .writer()
        .write_all(&0u64.to_be_bytes())
        .map_err(Error::ConnectionLost)?;
    let ours = hex::encode(hasher.finalize());
    let sha256 = done(client, &ours, remote)?;
    Ok(Done {
        bytes: total,
        size: total,
        offset: 0,
        sha256,
    })
}

/// Receives a body into `sink` after a `get` from `offset`; `prefix` has
/// hashed the bytes before it. Returns the verified digest.
fn receive(
    client: &mut Client,
    remote: &str,
    offset: u64,
    prefix: Sha256,
    sink: &mut (dyn FnMut(&[u8]) -> Result<()> + Send),
    progress: &Progress,
) -> Result<Done> {
    let reply = client.request(&Request::Get {
        path: remote.to_string(),
        offset,
    })?;
    if reply.status() != Some(Status::Ready) {
        return Err(Error::remote(&reply));
    }
    let size = reply
        .size
        .ok_or_else(|| Error::Protocol("the server announced no size".into()))?;
    let mut remaining = size.saturating_sub(offset);
    let mut got = offset;
    let throttle = client.throttle.clone();
    let (hasher, moved) = {
        let reader = client.reader();
        let mut fill = |buf: &mut [u8]| -> Result<usize> {
            interrupted()?;
            let want = buf.len().min(remaining as usize);
            if want == 0 {
                return Ok(0);
            }
            let n = loop {
                match reader.read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(Error::ConnectionLost(e)),
                }
            };
            if n == 0 {
                return Err(Error::ConnectionLost(io::ErrorKind::UnexpectedEof.into()));
            }
            if let Some(t) = &throttle {
                t.take(n);
            }
            remaining -= n as u64;
            Ok(n)
        };
        let mut drain = |chunk: &[u8]| -> Result<()> {
            sink(chunk)?;
            got += chunk.len() as u64;
            progress.set(got);
            Ok(())
        };
        copy_hashed_to(prefix, size - offset, &mut fill, &mut drain)?
    };
    let ours = hex::encode(hasher.finalize());
    let sha256 = finish(client, &ours, remote)?;
    Ok(Done {
        bytes: moved,
        size,
        offset,
        sha256,
    })
}

/// Downloads `remote` to standard output or any writer, which errors name
/// as `dest`. Not atomic: a digest mismatch is reported after the bytes
/// went out.
pub fn get_stream(
    client: &mut Client,
    remote: &str,
    out: &mut (dyn Write + Send),
    dest: &Path,
    progress: &Progress,
) -> Result<Done> {
    let mut sink = |chunk: &[u8]| out.write_all(chunk).map_err(|e| Error::local(dest, e));
    let done = receive(client, remote, 0, Sha256::new(), &mut sink, progress)?;
    out.flush().map_err(|e| Error::local(dest, e))?;
    Ok(done)
}

/// The hidden file a download to `local` is written to until verified.
pub fn local_partial(local: &Path) -> PathBuf {
    let name = local
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".into());
    local.with_file_name(partial_name(&name))
}

/// Downloads `remote` to the file `local`, atomically: the content goes to
/// a hidden partial beside it and is renamed into place once verified. With
/// `resume`, a partial left by an interrupted download is continued.
pub fn get_file(
    client: &mut Client,
    remote: &str,
    local: &Path,
    resume: bool,
    mtime: Option<i64>,
    progress: &Progress,
) -> Result<Done> {
    // A device or FIFO (say /dev/null) is written in place: renaming a file
    // over it would replace the device itself.
    if let Ok(md) = std::fs::metadata(local) {
        if !md.is_file() && !md.is_dir() {
            let mut out = OpenOptions::new()
                .write(true)
                .open(local)
                .map_err(|e| Error::local(local, e))?;
            return get_stream(client, remote, &mut out, local, progress);
        }
    }
    let part = local_partial(local);
    if resume && part.exists() {
        match fetch_into(client, remote, local, &part, (true, mtime), progress) {
            // The partial is not the start of the remote file (it changed,
            // or the partial is longer): start over, once.
            Err(Error::Integrity(_)) => {}
            Err(Error::Remote { code, .. }) if code == Status::BadArguments.code() => {}
            other => return other,
        }
        log::warn!(
            "{}: the partial download doesn't match {remote}; starting over",
            part.display()
        );
    }
    fetch_into(client, remote, local, &part, (false, mtime), progress)
}

/// One download attempt into `part`, renamed to `local` once verified
/// (with its modification time set first, when one is given).
fn fetch_into(
    client: &mut Client,
    remote: &str,
    local: &Path,
    part: &Path,
    (resume, mtime): (bool, Option<i64>),
    progress: &Progress,
) -> Result<Done> {
    let mut offset = 0;
    let mut prefix = Sha256::new();
    let mut file = if resume {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(part)
            .map_err(|e| Error::local(part, e))?;
        offset = f.metadata().map_err(|e| Error::local(part, e))?.len();
        prefix = hash_prefix(&mut f, offset, part)?;
        f.seek(SeekFrom::Start(offset))
            .map_err(|e| Error::local(part, e))?;
        f
    } else {
        File::create(part).map_err(|e| Error::local(part, e))?
    };
    let result = {
        let mut sink = |chunk: &[u8]| file.write_all(chunk).map_err(|e| Error::local(part, e));
        receive(client, remote, offset, prefix, &mut sink, progress)
    };
    let result = result.and_then(|done| {
        if let Some(secs) = mtime {
            file.set_modified(system_time(secs))
                .map_err(|e| Error::local(part, e))?;
        }
        Ok(done)
    });
    drop(file);
    let result = result.and_then(|done| {
        std::fs::rename(part, local).map_err(|e| Error::local(local, e))?;
        Ok(done)
    });
    if let Err(e) = &result {
        // Keep what arrived for `-c` when the connection broke; anything
        // else means these bytes are of no use.
        if !matches!(e, Error::ConnectionLost(_) | Error::Interrupted) {
            let _ = std::fs::remove_file(part);
        }
    }
    result
}

/// Seconds since the epoch (possibly before it) as a `SystemTime`.
pub fn system_time(secs: i64) -> std::time::SystemTime {
    let d = std::time::Duration::from_secs(secs.unsigned_abs());
    if secs >= 0 {
        std::time::UNIX_EPOCH + d
    } else {
        std::time::UNIX_EPOCH - d
    }
}
