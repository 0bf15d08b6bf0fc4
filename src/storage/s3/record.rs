//! The state record of a resumable upload (`state/<user>/uploads/<h>`),
//! rewritten after each part, and the choice of part size.
//!
//! The record has a fixed size whatever the number of parts: the parts'
//! ETags are read back with ListParts when the upload completes or resumes
//! and checked against `parts`, `part_size` and `bytes`.

use serde::{Deserialize, Serialize};

use crate::limits::s3::{
    DEFAULT_PART_SIZE, MAX_PARTS, MAX_PART_BUFFER, MIN_PART_SIZE, PART_TARGET, UNKNOWN_SIZE_PART,
};

const MIB: u64 = 1024 * 1024;

/// Version of the record format.
pub const RECORD_VERSION: u32 = 1;

/// What a resumable upload has stored so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadRecord {
    pub v: u32,
    /// The client path of the file (for the sweep's log and checks).
    pub path: String,
    /// The hidden key the multipart upload is made under.
    pub staging: String,
    pub upload_id: String,
    pub part_size: u64,
    /// Parts stored, all of `part_size` bytes.
    pub parts: u32,
    /// `parts × part_size`: where a resume continues.
    pub bytes: u64,
    /// SHA-256 state after `bytes` bytes ([`super::hashstate`]).
    pub sha256_state: String,
    /// Seconds since the epoch when the upload began (for the sweep).
    pub created: i64,
    /// Seconds since the epoch of the last part.
    pub updated: i64,
}

/// A record that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BadRecord {
    #[error("upload record is not valid JSON for version {RECORD_VERSION}: {0}")]
    Format(String),
    #[error("upload record is inconsistent: {0}")]
    Inconsistent(&'static str),
}

impl UploadRecord {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serialises")
    }

    pub fn from_json(bytes: &[u8]) -> Result<UploadRecord, BadRecord> {
        let r: UploadRecord =
            serde_json::from_slice(bytes).map_err(|e| BadRecord::Format(e.to_string()))?;
        if r.v != RECORD_VERSION {
            return Err(BadRecord::Format(format!("version {}", r.v)));
        }
        if r.part_size < MIN_PART_SIZE || r.part_size > MAX_PART_BUFFER {
            return Err(BadRecord::Inconsistent("part size out of range"));
        }
        if u64::from(r.parts) > MAX_PARTS || r.bytes != u64::from(r.parts) * r.part_size {
            return Err(BadRecord::Inconsistent("bytes are not parts × part size"));
        }
        Ok(r)
    }
}

/// The part size for a file of `size` bytes (None: unknown), or None if
/// the file cannot be stored with parts of at most [`MAX_PART_BUFFER`].
pub fn part_size(size: Option<u64>) -> Option<u64> {
    let Some(size) = size else {
        return Some(UNKNOWN_SIZE_PART);
    };
    let per_part = size.div_ceil(PART_TARGET).div_ceil(MIB) * MIB;
    let part = per_part.max(DEFAULT_PART_SIZE);
    (part <= MAX_PART_BUFFER).then_some(part)
}

/// The largest file (bytes) a chunked upload can store.
pub fn unknown_size_limit() -> u64 {
    UNKNOWN_SIZE_PART * MAX_PARTS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_sizes() {
        assert_eq!(part_size(Some(0)), Some(DEFAULT_PART_SIZE));
        assert_eq!(part_size(Some(1 << 30)), Some(DEFAULT_PART_SIZE));
        assert_eq!(part_size(None), Some(UNKNOWN_SIZE_PART));
        // 100 GiB: 11.4 MiB per part, rounded up to 12 MiB.
        assert_eq!(part_size(Some(100 << 30)), Some(12 * MIB));
        let largest = PART_TARGET * MAX_PART_BUFFER;
        assert_eq!(part_size(Some(largest)), Some(MAX_PART_BUFFER));
        assert_eq!(part_size(Some(largest + 1)), None);
        for size in [1u64, 5 << 20, 77 << 30, 300 << 30, largest] {
            let p = part_size(Some(size)).unwrap();
            assert!(size.div_ceil(p) <= PART_TARGET, "{size}");
            assert!((MIN_PART_SIZE..=MAX_PART_BUFFER).contains(&p));
        }
        assert_eq!(unknown_size_limit(), 160_000 * MIB);
    }

    fn record() -> UploadRecord {
        UploadRecord {
            v: RECORD_VERSION,
            path: "/a b/c".into(),
            staging: "p/state/u/staging/x.1".into(),
            upload_id: "id".into(),
            part_size: DEFAULT_PART_SIZE,
            parts: 3,
            bytes: 3 * DEFAULT_PART_SIZE,
            sha256_state: "00".into(),
            created: 1,
            updated: 2,
        }
    }

    #[test]
    fn records_round_trip_and_bad_ones_are_refused() {
        let r = record();
        assert_eq!(UploadRecord::from_json(&r.to_json()).unwrap(), r);
        assert!(UploadRecord::from_json(b"{}").is_err());
        assert!(UploadRecord::from_json(b"not json").is_err());
        let mut bad = record();
        bad.bytes += 1;
        assert!(UploadRecord::from_json(&bad.to_json()).is_err());
        let mut bad = record();
        bad.part_size = 1;
        bad.bytes = 3;
        assert!(UploadRecord::from_json(&bad.to_json()).is_err());
        let mut bad = record();
        bad.v = 2;
        assert!(UploadRecord::from_json(&bad.to_json()).is_err());
    }
}
