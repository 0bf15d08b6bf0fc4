//! The hidden name of a transfer in progress, shared by the server (partial
//! uploads beside their target) and the clients (partial downloads beside
//! theirs): `.NAME.miniftp-part`, renamed to NAME once verified.

use crate::limits::MAX_NAME_LEN;

/// Suffix of the hidden files that hold transfers in progress.
pub const PARTIAL_MARK: &str = ".miniftp-part";

/// The name of the resumable partial for `name`: `.NAME.miniftp-part`, or,
/// when that (plus a 17-byte unique suffix) would pass the 255-byte name
/// limit, `.` + the first 40 hex digits of NAME's SHA-256 + the mark.
pub fn partial_name(name: &str) -> String {
    if name.len() + 1 + PARTIAL_MARK.len() + 17 <= MAX_NAME_LEN {
        format!(".{name}{PARTIAL_MARK}")
    } else {
        use sha2::Digest;
        let digest = hex::encode(sha2::Sha256::digest(name.as_bytes()));
        format!(".{}{PARTIAL_MARK}", &digest[..40])
    }
}
