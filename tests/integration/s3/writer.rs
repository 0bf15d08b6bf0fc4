//! One upload below the storage interface (src/storage/s3/writer.rs)
//! against a real Garage cluster: small and multipart files, the whole-file
//! digest, an interrupted upload resumed from its record, a lost node.

use std::sync::Arc;

use miniftp::limits::s3::MIN_PART_SIZE;
use miniftp::storage::s3::budget::BufferBudget;
use miniftp::storage::s3::record::UploadRecord;
use miniftp::storage::s3::writer::{record_digest, PartWriter, Target, UploadError};
use miniftp::storage::s3::Client;
use sha2::{Digest, Sha256};

use super::garage::{unique_prefix, Garage};
use crate::util::data;

const PART: u64 = MIN_PART_SIZE;

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

fn target(p: &str, resumable: bool) -> Target {
    Target {
        path: "/f".into(),
        staging: format!("{p}/state/staging/f.1"),
        record: resumable.then(|| format!("{p}/state/uploads/f")),
    }
}

fn writer(c: &Arc<Client>, t: Target, hint: Option<u64>) -> PartWriter {
    PartWriter::new(Arc::clone(c), BufferBudget::new(64 << 20), t, PART, hint)
}

/// Writes in odd-sized pieces, as a network would deliver them.
fn feed(w: &mut PartWriter, body: &[u8]) {
    for chunk in body.chunks(777_777) {
        w.write(chunk).expect("write");
    }
}

/// A whole object, streamed (get_small stops at 8 MiB).
fn fetch(c: &Client, key: &str) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    c.get_range(key, 0, None)
        .expect("get")
        .read_to_end(&mut out)
        .expect("read");
    out
}

fn nothing_left_behind(c: &Client, p: &str) {
    let uploads = c
        .list_uploads(&format!("{p}/"), None)
        .expect("list uploads");
    assert!(uploads.uploads.is_empty(), "{:?}", uploads.uploads);
    let state = c
        .list(&format!("{p}/state/"), None, None, 10)
        .expect("list");
    assert!(state.objects.is_empty(), "{:?}", state.objects);
}

#[test]
fn a_small_file_is_one_verified_put() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let p = unique_prefix("w-small");
    let body = data(300_000, 11);
    let mut w = writer(&c, target(&p, true), Some(body.len() as u64));
    feed(&mut w, &body);
    assert_eq!(w.stored(), 0, "nothing reaches the store before the end");
    let key = format!("{p}/homes/u/f");
    let done = w.finish(&key, &sha(&body)).expect("finish");
    assert_eq!(done.size, body.len() as u64);
    let info = c.head(&key).expect("head");
    assert_eq!(info.meta("sha256"), Some(hex::encode(sha(&body)).as_str()));
    assert_eq!(fetch(&c, &key), body);
    nothing_left_behind(&c, &p);
}

#[test]
fn a_multipart_file_is_completed_and_copied_with_its_digest() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let p = unique_prefix("w-multi");
    let body = data(2 * PART as usize + 12345, 12);
    let mut w = writer(&c, target(&p, true), None);
    feed(&mut w, &body);
    assert_eq!(w.stored(), 2 * PART);
    let key = format!("{p}/homes/u/big");
    w.finish(&key, &sha(&body)).expect("finish");
    let info = c.head(&key).expect("head");
    assert_eq!(info.size, body.len() as u64);
    assert_eq!(info.meta("sha256"), Some(hex::encode(sha(&body)).as_str()));
    assert_eq!(fetch(&c, &key), body);
    nothing_left_behind(&c, &p);

    // Exactly two parts: no empty last part.
    let body = data(2 * PART as usize, 13);
    let mut w = writer(&c, target(&p, false), Some(body.len() as u64));
    feed(&mut w, &body);
    w.finish(&key, &sha(&body)).expect("finish");
    assert_eq!(fetch(&c, &key), body);
    nothing_left_behind(&c, &p);
}

#[test]
fn a_wrong_digest_commits_nothing_and_aborts() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let p = unique_prefix("w-mismatch");
    let body = data(PART as usize + 10, 14);
    let mut w = writer(&c, target(&p, true), None);
    feed(&mut w, &body);
    let key = format!("{p}/homes/u/f");
    let e = w.finish(&key, &sha(b"other")).unwrap_err();
    assert!(matches!(e, UploadError::Mismatch { .. }), "{e}");
    assert!(c.head(&key).unwrap_err().is_not_found());
    nothing_left_behind(&c, &p);
}

#[test]
fn an_interrupted_upload_resumes_from_its_record() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let p = unique_prefix("w-resume");
    let body = data(3 * PART as usize + 999, 15);
    let t = target(&p, true);
    let mut w = writer(&c, t.clone(), Some(body.len() as u64));
    // Two parts and a bit: the bit is lost with the connection.
    feed(&mut w, &body[..2 * PART as usize + 5000]);
    assert_eq!(w.abandon(true), 2 * PART);

    let record_key = t.record.clone().unwrap();
    let record = UploadRecord::from_json(&c.get_small(&record_key).expect("record"))
        .expect("a valid record");
    assert_eq!(record.bytes, 2 * PART);
    assert_eq!(record.path, "/f");
    // `partial` tells the client the digest of what is stored.
    assert_eq!(
        record_digest(&record).unwrap(),
        sha(&body[..2 * PART as usize])
    );

    let budget = BufferBudget::new(64 << 20);
    let mut w = PartWriter::resume(Arc::clone(&c), budget, t, &record).expect("resume");
    assert_eq!(w.stored(), 2 * PART);
    feed(&mut w, &body[2 * PART as usize..]);
    let key = format!("{p}/homes/u/f");
    w.finish(&key, &sha(&body)).expect("finish");
    assert_eq!(fetch(&c, &key), body);
    nothing_left_behind(&c, &p);
}

#[test]
fn a_swept_upload_cannot_be_resumed() {
    let g = Garage::shared();
    let c = Arc::new(g.client());
    let p = unique_prefix("w-gone");
    let body = data(PART as usize + 1, 16);
    let t = target(&p, true);
    let mut w = writer(&c, t.clone(), None);
    feed(&mut w, &body);
    w.abandon(true);
    let record =
        UploadRecord::from_json(&c.get_small(t.record.as_ref().unwrap()).unwrap()).unwrap();
    c.abort_upload(&record.staging, &record.upload_id)
        .expect("abort");
    let budget = BufferBudget::new(64 << 20);
    let e = PartWriter::resume(Arc::clone(&c), budget, t, &record)
        .err()
        .expect("resume must fail");
    assert!(matches!(e, UploadError::Gone(_)), "{e}");
}

#[test]
fn an_upload_completes_with_one_node_killed_halfway() {
    let mut g = Garage::start();
    let c = Arc::new(g.client());
    let body = data(4 * PART as usize + 7, 17);
    let mut w = writer(&c, target("n", true), Some(body.len() as u64));
    feed(&mut w, &body[..2 * PART as usize]);
    g.kill(2);
    feed(&mut w, &body[2 * PART as usize..]);
    w.finish("n/homes/u/f", &sha(&body))
        .expect("finish with a node down");
    assert_eq!(fetch(&c, "n/homes/u/f"), body);
}
