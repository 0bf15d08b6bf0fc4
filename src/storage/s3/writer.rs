//! One upload to the store, below the storage interface: bytes in, parts
//! out. Bytes fill a part buffer; each full part goes up with its own
//! SHA-256 (the multipart upload is created with the first part, so a file
//! smaller than a part is one PutObject at the end), and the state record
//! is rewritten after it. `finish` checks the whole-file digest, completes
//! the upload under its hidden staging key and copies it to the file's key
//! with the digest as metadata; `abandon` keeps it for a resume or aborts it.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::budget::{BufferBudget, NoRoom, Permit};
use super::client::Client;
use super::error::S3Error;
use super::hashstate::{self, BadState};
use super::record::{BadRecord, UploadRecord, RECORD_VERSION};
use crate::limits::s3::{BUFFER_WAIT, MAX_PARTS, MAX_PART_SIZE};

/// Metadata name of a file's SHA-256 (hex): `x-amz-meta-sha256`.
pub const META_SHA256: &str = "sha256";

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Store(#[from] S3Error),
    #[error(transparent)]
    NoRoom(#[from] NoRoom),
    #[error(transparent)]
    Record(#[from] BadRecord),
    #[error(transparent)]
    State(#[from] BadState),
    /// The digest of the bytes this writer stored differs from the one the
    /// server checked (a bug, or damage in memory): nothing was committed.
    #[error("the stored bytes have SHA-256 {ours}, not the expected {expected}")]
    Mismatch { ours: String, expected: String },
    /// The store no longer has the upload (aborted or swept meanwhile), or
    /// holds other parts than the record says.
    #[error("the partial upload is gone or damaged on the store: {0}")]
    Gone(String),
    /// More bytes than S3's 10,000 parts of this upload's part size hold.
    #[error("too large for the object store: at most {limit} bytes in parts of {part_size} bytes")]
    TooLarge { limit: u64, part_size: u64 },
}

impl UploadError {
    /// Whether the store was only unreachable (the upload may go on later).
    pub fn is_transient(&self) -> bool {
        matches!(self, UploadError::Store(e) if e.is_transient())
    }
}

/// Where an upload goes.
#[derive(Debug, Clone)]
pub struct Target {
    /// The client path (for records and messages).
    pub path: String,
    /// The hidden key of the multipart upload.
    pub staging: String,
    /// The state record's key: Some for the resumable upload of a path.
    pub record: Option<String>,
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub size: u64,
    pub sha256: [u8; 32],
}

pub struct PartWriter {
    client: Arc<Client>,
    budget: Arc<BufferBudget>,
    target: Target,
    part_size: u64,
    /// Room taken for `buf` (at most one part).
    want: u64,
    upload_id: Option<String>,
    /// Parts stored, all of `part_size` bytes.
    parts: u32,
    /// Parts the state record on the store describes (where a resume
    /// would continue).
    recorded: u32,
    /// SHA-256 state over the stored parts.
    hasher: Sha256,
    created: i64,
    buf: Vec<u8>,
    permit: Option<Permit>,
    /// The file's modification time to store with it (`put.mtime`).
    mtime: Option<i64>,
}

impl PartWriter {
    /// A new upload of a file of `size_hint` bytes (None: unknown) in parts
    /// of `part_size` ([`super::record::part_size`]).
    pub fn new(
        client: Arc<Client>,
        budget: Arc<BufferBudget>,
        target: Target,
        part_size: u64,
        size_hint: Option<u64>,
    ) -> PartWriter {
        PartWriter {
            client,
            budget,
            target,
            part_size,
            want: size_hint.map_or(part_size, |s| s.min(part_size)),
            upload_id: None,
            parts: 0,
            recorded: 0,
            hasher: Sha256::new(),
            created: now(),
            buf: Vec::new(),
            permit: None,
            mtime: None,
        }
    }

    /// Continues the upload `record` describes, after checking that the
    /// store still holds its parts.
    pub fn resume(
        client: Arc<Client>,
        budget: Arc<BufferBudget>,
        target: Target,
        record: &UploadRecord,
    ) -> Result<PartWriter, UploadError> {
        let hasher = hashstate::restore(&record.sha256_state)?;
        let held = list_all_parts(&client, &record.staging, &record.upload_id, record.parts)
            .map_err(|e| match e {
                e if e.is_not_found() => UploadError::Gone("no such upload".into()),
                e => UploadError::Store(e),
            })?;
        let whole = held
            .iter()
            .take(record.parts as usize)
            .enumerate()
            .all(|(i, p)| p.number == i as u32 + 1 && p.size == record.part_size);
        if held.len() < record.parts as usize || !whole {
            return Err(UploadError::Gone(format!(
                "the store holds {} parts, the record says {} of {} bytes",
                held.len(),
                record.parts,
                record.part_size
            )));
        }
        let target = Target {
            staging: record.staging.clone(),
            ..target
        };
        Ok(PartWriter {
            client,
            budget,
            target,
            part_size: record.part_size,
            want: record.part_size,
            upload_id: Some(record.upload_id.clone()),
            parts: record.parts,
            recorded: record.parts,
            hasher,
            created: record.created,
            buf: Vec::new(),
            permit: None,
            mtime: None,
        })
    }

    /// The hidden key the multipart upload is made under.
    pub fn staging(&self) -> &str {
        &self.target.staging
    }

    /// Bytes stored on the store in whole parts.
    pub fn stored(&self) -> u64 {
        u64::from(self.parts) * self.part_size
    }

    /// Bytes received in all (stored and buffered).
    pub fn received(&self) -> u64 {
        self.stored() + self.buf.len() as u64
    }

    /// SHA-256 state over the stored bytes.
    pub fn stored_hasher(&self) -> &Sha256 {
        &self.hasher
    }

    pub fn write(&mut self, mut data: &[u8]) -> Result<(), UploadError> {
        while !data.is_empty() {
            if self.permit.is_none() {
                self.permit = Some(self.budget.take(self.want, BUFFER_WAIT)?);
            }
            let room = (self.part_size as usize).saturating_sub(self.buf.len());
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() as u64 == self.part_size {
                self.put_part()?;
                self.parts += 1;
                self.buf.clear();
                self.save_record()?;
            }
        }
        Ok(())
    }

    /// Sends `buf` as part `parts + 1` (creating the upload with the
    /// first); the caller counts it and clears the buffer.
    fn put_part(&mut self) -> Result<(), UploadError> {
        let id = match &self.upload_id {
            Some(id) => id.clone(),
            None => {
                let id = self.client.create_upload(&self.target.staging, &[])?;
                self.upload_id = Some(id.clone());
                id
            }
        };
        let number = self.parts + 1;
        if u64::from(number) > MAX_PARTS {
            return Err(UploadError::TooLarge {
                limit: MAX_PARTS * self.part_size,
                part_size: self.part_size,
            });
        }
        let sha = hashstate::digest(&self.buf);
        self.client
            .upload_part(&self.target.staging, &id, number, &self.buf, &sha)?;
        self.hasher.update(&self.buf);
        Ok(())
    }

    fn save_record(&mut self) -> Result<(), UploadError> {
        let (Some(key), Some(id)) = (&self.target.record, &self.upload_id) else {
            return Ok(());
        };
        let record = UploadRecord {
            v: RECORD_VERSION,
            path: self.target.path.clone(),
            staging: self.target.staging.clone(),
            upload_id: id.clone(),
            part_size: self.part_size,
            parts: self.parts,
            bytes: self.stored(),
            sha256_state: hashstate::save(&self.hasher),
            created: self.created,
            updated: now(),
        };
        self.client.put(key, &record.to_json(), None, &[])?;
        self.recorded = self.parts;
        Ok(())
    }

    /// Bytes a resume of this upload would find stored (the record's).
    pub fn recorded(&self) -> u64 {
        u64::from(self.recorded) * self.part_size
    }

    /// The modification time the file gets at [`PartWriter::finish`]
    /// (`x-amz-meta-mtime`), rather than the store's time of the commit.
    pub fn set_mtime(&mut self, mtime: Option<i64>) {
        self.mtime = mtime;
    }

    /// Makes the upload the object `key` if its digest is `expected`. On a
    /// mismatch the upload is aborted. On a store error the upload stays
    /// as it was before the call (its record describes the whole parts
    /// stored before the last one): the caller keeps it for a resume or
    /// [`PartWriter::abandon`]s it.
    pub fn finish(&mut self, key: &str, expected: &[u8; 32]) -> Result<Finished, UploadError> {
        let mut whole = self.hasher.clone();
        whole.update(&self.buf);
        let ours: [u8; 32] = whole.finalize().into();
        if &ours != expected {
            self.abort_quietly();
            return Err(UploadError::Mismatch {
                ours: hex::encode(ours),
                expected: hex::encode(expected),
            });
        }
        let size = self.received();
        let hexd = hex::encode(ours);
        let mtime = self.mtime.map(|t| t.to_string());
        let mut meta = vec![(META_SHA256, hexd.as_str())];
        if let Some(t) = &mtime {
            meta.push((super::home::META_MTIME, t.as_str()));
        }
        let result = match self.upload_id.clone() {
            None => self
                .client
                .put(key, &self.buf, Some(&ours), &meta)
                .map(drop)
                .map_err(UploadError::from),
            Some(id) => self.complete_and_copy(&id, key, size, &meta),
        };
        result?;
        self.upload_id = None;
        self.permit = None;
        if let Some(record) = &self.target.record {
            let _ = self.client.delete(record);
        }
        Ok(Finished { size, sha256: ours })
    }

    fn complete_and_copy(
        &mut self,
        id: &str,
        key: &str,
        size: u64,
        meta: &[(&str, &str)],
    ) -> Result<(), UploadError> {
        // The tail goes up as the last part, but `parts` keeps counting
        // whole parts only: a resume after a failure here starts after them.
        let full_parts = self.parts;
        let all_parts = full_parts + u32::from(!self.buf.is_empty());
        if !self.buf.is_empty() {
            self.put_part()?;
        }
        let staging = self.target.staging.clone();
        let held = list_all_parts(&self.client, &staging, id, all_parts)?;
        let tail = size - u64::from(full_parts) * self.part_size;
        let expected_size = |n: u32| {
            if n <= full_parts {
                self.part_size
            } else {
                tail
            }
        };
        let parts: Vec<(u32, String)> = held
            .into_iter()
            .take(all_parts as usize)
            .map(|p| (p.number, p.etag, p.size))
            .enumerate()
            .filter(|(i, (n, _, s))| *n == *i as u32 + 1 && *s == expected_size(*n))
            .map(|(_, (n, e, _))| (n, e))
            .collect();
        if parts.len() != all_parts as usize {
            return Err(UploadError::Gone(format!(
                "{} of {all_parts} parts found as sent",
                parts.len(),
            )));
        }
        self.client.complete_upload(&staging, id, &parts)?;
        let copied = copy_object(&self.client, &staging, key, size, meta);
        let _ = self.client.delete(&staging);
        copied?;
        Ok(())
    }

    /// Ends an upload that will not finish. `keep` (and a resumable one
    /// with parts stored): left on the store for a resume; returns the
    /// bytes kept. Else aborted; returns 0.
    pub fn abandon(&mut self, keep: bool) -> u64 {
        if keep && self.target.record.is_some() && self.upload_id.is_some() && self.recorded > 0 {
            return self.recorded();
        }
        self.abort_quietly();
        0
    }

    fn abort_quietly(&mut self) {
        if let Some(id) = self.upload_id.take() {
            if let Err(e) = self.client.abort_upload(&self.target.staging, &id) {
                if !e.is_not_found() {
                    log::warn!("{}: {e} (the sweep will abort it)", self.target.path);
                }
            }
        }
        if let Some(record) = &self.target.record {
            let _ = self.client.delete(record);
        }
    }
}

/// The digest of the bytes a record's upload has stored.
pub fn record_digest(record: &UploadRecord) -> Result<[u8; 32], BadState> {
    Ok(hashstate::restore(&record.sha256_state)?.finalize().into())
}

/// At least the first `want` parts of an upload (pages of 1000).
fn list_all_parts(
    client: &Client,
    key: &str,
    id: &str,
    want: u32,
) -> Result<Vec<super::client::Part>, S3Error> {
    let mut out = client.list_parts(key, id, 0)?;
    while (out.len() as u32) < want {
        let after = out.last().map_or(0, |p| p.number);
        let page = client.list_parts(key, id, after)?;
        if page.is_empty() {
            break;
        }
        out.extend(page);
    }
    Ok(out)
}

/// Server-side copy of `src` (`size` bytes) to `dst` with new metadata:
/// one CopyObject up to 5 GiB, else a multipart upload of UploadPartCopy
/// ranges of at most 5 GiB (S3's limit on a single copy).
pub fn copy_object(
    client: &Client,
    src: &str,
    dst: &str,
    size: u64,
    meta: &[(&str, &str)],
) -> Result<(), S3Error> {
    if size <= MAX_PART_SIZE {
        return client.copy(src, dst, Some(meta)).map(drop);
    }
    let id = client.create_upload(dst, meta)?;
    let copied = (|| {
        let mut parts = Vec::new();
        let mut start = 0;
        while start < size {
            let end = (start + MAX_PART_SIZE).min(size);
            let number = parts.len() as u32 + 1;
            let etag = client.upload_part_copy(dst, &id, number, src, (start, end))?;
            parts.push((number, etag));
            start = end;
        }
        client.complete_upload(dst, &id, &parts)
    })();
    if copied.is_err() {
        let _ = client.abort_upload(dst, &id);
    }
    copied.map(drop)
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}
