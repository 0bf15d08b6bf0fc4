//! SHA-256 helpers that the server's storage and the clients share: both
//! hash file content the same way, and neither may import the other.

use std::io;

use sha2::{Digest, Sha256};

/// Feeds `io::copy` into a hasher.
pub struct HashWriter<'a>(pub &'a mut Sha256);

impl io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The SHA-256 of everything `reader` yields, and its length.
pub fn hash_reader(reader: &mut dyn io::Read) -> io::Result<([u8; 32], u64)> {
    let mut hasher = Sha256::new();
    let len = io::copy(reader, &mut HashWriter(&mut hasher))?;
    Ok((hasher.finalize().into(), len))
}

/// A digest as the protocol writes it: 64 lowercase hex digits.
pub fn to_hex(digest: &[u8; 32]) -> String {
    hex::encode(digest)
}

/// A digest from 64 hex digits (either case).
pub fn from_hex(text: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_and_round_trips() {
        let (d, n) = hash_reader(&mut &b"abc"[..]).unwrap();
        assert_eq!(n, 3);
        let hex = to_hex(&d);
        assert_eq!(
            hex,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(from_hex(&hex.to_uppercase()), Some(d));
        assert_eq!(from_hex("zz"), None);
    }
}
