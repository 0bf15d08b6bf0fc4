//! Abandoned uploads of one home: multipart uploads nobody finished (S3 keeps
//! them, and their parts, for ever), their state records, and staging
//! objects a crash left between Complete and the copy to the file's key.
//! Everything older than the age and not in use by a transfer goes.

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
    /// Bytes their parts held (and staging objects removed).
    pub freed: u64,
    /// Records and staging objects removed.
    pub objects: u64,
}

/// Sweeps `home`: uploads initiated before `older_than` (seconds since the
/// epoch) whose staging key `in_use` does not claim.
pub fn sweep(
    client: &Client,
    home: &HomeKeys,
    older_than: i64,
    in_use: &dyn Fn(&str) -> bool,
) -> S3Result<Swept> {
    let mut swept = Swept::default();
    let mut live = HashSet::new();
    let mut marker = None;
    loop {
        let page = client.list_uploads(&home.stagings(), marker.as_ref())?;
        for u in page.uploads {
            if u.initiated >= older_than || in_use(&u.key) {
                live.insert(u.upload_id);
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
    sweep_records(client, home, &live, older_than, &mut swept)?;
    sweep_staging_objects(client, home, older_than, in_use, &mut swept)?;
    Ok(swept)
}

/// Records whose upload is no longer on the store (and that were not
/// written since the age: an upload begun during the sweep is not in
/// `live` but its record is new).
fn sweep_records(
    client: &Client,
    home: &HomeKeys,
    live: &HashSet<String>,
    older_than: i64,
    swept: &mut Swept,
) -> S3Result<()> {
    let mut token = None;
    loop {
        let page = client.list(&home.upload_records(), None, token.as_deref(), 1000)?;
        for o in page.objects {
            let alive = match client.get_small(&o.key) {
                Ok(bytes) => match UploadRecord::from_json(&bytes) {
                    Ok(r) => live.contains(&r.upload_id) || r.updated >= older_than,
                    Err(_) => o.mtime >= older_than,
                },
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e),
            };
            if !alive {
                client.delete(&o.key)?;
                swept.objects += 1;
            }
        }
        token = page.next;
        if token.is_none() {
            return Ok(());
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
