//! Abandoned uploads of one home: multipart uploads nobody finished (S3 keeps
//! them, and their parts, for ever), their state records, and staging
//! objects a crash left between Complete and the copy to the file's key.
//! Everything older than the age and not in use by a transfer goes.
//!
//! A resumable upload's age is its record's last write (a part stored), as
//! a local partial's is its file's mtime; an upload without a record (a
//! private one, or one whose record was never written) goes by when it was
//! initiated.

use std::collections::HashSet;

use super::client::Client;
use super::error::S3Result;
use super::keys::HomeKeys;
use super::record::UploadRecord;

/// What a sweep removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Multipart uploads aborted.
    pub uploads: u64,
    /// Bytes their parts held, and staging objects removed, on the store.
    pub freed: u64,
    /// Records and staging objects removed.
    pub objects: u64,
    /// Records of resumable uploads removed with their upload, and the
    /// bytes they described: what the home's usage counted for them.
    pub records: u64,
    pub counted: u64,
}

/// Sweeps `home`: what was last written before `older_than` (seconds since
/// the epoch) and whose staging key `in_use` does not claim.
pub fn sweep(
    client: &Client,
    home: &HomeKeys,
    older_than: i64,
    in_use: &dyn Fn(&str) -> bool,
) -> S3Result<Swept> {
    let mut swept = Swept::default();
    let live = sweep_records(client, home, older_than, in_use, &mut swept)?;
    let mut marker = None;
    loop {
        let page = client.list_uploads(&home.stagings(), marker.as_ref())?;
        for u in page.uploads {
            if live.contains(&u.upload_id) || u.initiated >= older_than || in_use(&u.key) {
                continue;
            }
            let parts = client
                .list_parts(&u.key, &u.upload_id, 0)
                .unwrap_or_default();
            match client.abort_upload(&u.key, &u.upload_id) {
                Ok(()) => {
                    swept.uploads += 1;
                    swept.freed += parts.iter().map(|p| p.size).sum::<u64>();
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        marker = page.next;
        if marker.is_none() {
            break;
        }
    }
    sweep_staging_objects(client, home, older_than, in_use, &mut swept)?;
    Ok(swept)
}

/// Records not written since the age and not in use: their upload is
/// aborted and they go. Returns the upload ids of the records kept.
fn sweep_records(
    client: &Client,
    home: &HomeKeys,
    older_than: i64,
    in_use: &dyn Fn(&str) -> bool,
    swept: &mut Swept,
) -> S3Result<HashSet<String>> {
    let mut live = HashSet::new();
    let mut token = None;
    loop {
        let page = client.list(&home.upload_records(), None, token.as_deref(), 1000)?;
        for o in page.objects {
            let bytes = match client.get_small(&o.key) {
                Ok(b) => b,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            let Ok(r) = UploadRecord::from_json(&bytes) else {
                // Unreadable: never counted, never resumable.
                if o.mtime < older_than {
                    client.delete(&o.key)?;
                    swept.objects += 1;
                }
                continue;
            };
            if r.updated >= older_than || in_use(&r.staging) {
                live.insert(r.upload_id);
                continue;
            }
            let parts = client
                .list_parts(&r.staging, &r.upload_id, 0)
                .unwrap_or_default();
            match client.abort_upload(&r.staging, &r.upload_id) {
                Ok(()) => {
                    swept.uploads += 1;
                    swept.freed += parts.iter().map(|p| p.size).sum::<u64>();
                }
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
            client.delete(&o.key)?;
            swept.objects += 1;
            swept.records += 1;
            swept.counted += r.bytes;
        }
        token = page.next;
        if token.is_none() {
            return Ok(live);
        }
    }
}

/// Completed uploads a crash left under their staging key.
fn sweep_staging_objects(
    client: &Client,
    home: &HomeKeys,
    older_than: i64,
    in_use: &dyn Fn(&str) -> bool,
    swept: &mut Swept,
) -> S3Result<()> {
    let mut token = None;
    loop {
        let page = client.list(&home.stagings(), None, token.as_deref(), 1000)?;
        for o in page.objects {
            if o.mtime < older_than && !in_use(&o.key) {
                client.delete(&o.key)?;
                swept.objects += 1;
                swept.freed += o.size;
            }
        }
        token = page.next;
        if token.is_none() {
            return Ok(());
        }
    }
}
