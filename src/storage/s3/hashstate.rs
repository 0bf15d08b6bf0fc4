//! The SHA-256 state of an upload, saved after each part and restored on
//! resume, so the whole-file digest continues where it stopped without
//! reading back what S3 already holds (it cannot: the parts of an unfinished
//! multipart upload are not readable).
//!
//! The bytes are sha2's own serialisation (`SerializableState`: the eight
//! state words, the block count and the unprocessed tail), hex-encoded, with
//! the count of bytes hashed beside it so a record that does not match its
//! parts is caught before it is used.

use sha2::digest::common::hazmat::SerializableState;
use sha2::{Digest, Sha256};

/// A hash state that could not be restored (damaged or foreign record).
#[derive(Debug, thiserror::Error)]
#[error("saved SHA-256 state is unreadable: {0}")]
pub struct BadState(&'static str);

/// The state after hashing some bytes, as text for a JSON record.
pub fn save(h: &Sha256) -> String {
    hex::encode(h.serialize())
}

/// Restores a state [`save`]d before.
pub fn restore(text: &str) -> Result<Sha256, BadState> {
    let bytes = hex::decode(text).map_err(|_| BadState("not hex"))?;
    let state = bytes
        .as_slice()
        .try_into()
        .map_err(|_| BadState("wrong length"))?;
    Sha256::deserialize(state).map_err(|_| BadState("rejected by sha2"))
}

/// SHA-256 of `data` (for a part's own checksum).
pub fn digest(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restored_state_continues_the_digest() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole: [u8; 32] = Sha256::digest(&data).into();
        // Cut at a block boundary and in the middle of a block.
        for cut in [0, 64, 8191, 200_001] {
            let mut h = Sha256::new();
            h.update(&data[..cut]);
            let mut resumed = restore(&save(&h)).unwrap();
            resumed.update(&data[cut..]);
            let got: [u8; 32] = resumed.finalize().into();
            assert_eq!(got, whole, "cut at {cut}");
        }
    }

    #[test]
    fn damaged_states_are_refused() {
        assert!(restore("zz").is_err());
        assert!(restore("00").is_err());
        let good = save(&Sha256::new());
        assert!(restore(&good[2..]).is_err());
    }
}
