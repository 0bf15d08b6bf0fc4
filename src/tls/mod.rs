//! TLS for the wire: rustls (TLS 1.3 only, the ring provider: AES-GCM with
//! AES-NI). The server side plugs into the connection's `Transport`; the
//! client side is a blocking stream with ssh-like trust (a pinned
//! fingerprint, the known-servers file, or a CA).

pub mod client;
pub mod server;

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use sha2::{Digest, Sha256};

/// The one crypto provider both sides use.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// `SHA256:` + the hex SHA-256 of a certificate's DER bytes (lowercase,
/// no colons), the form the server prints and the client stores.
pub fn fingerprint(der: &[u8]) -> String {
    format!("SHA256:{}", hex::encode(Sha256::digest(der)))
}

/// Parses a fingerprint as a user may paste it: with or without the
/// `SHA256:` prefix, hex in either case, with or without colons.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let t = t
        .strip_prefix("SHA256:")
        .or_else(|| t.strip_prefix("sha256:"))
        .unwrap_or(t);
    let hex_only: String = t.chars().filter(|c| *c != ':').collect();
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_only, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_every_form() {
        let fp = fingerprint(b"cert");
        let raw = parse_fingerprint(&fp).unwrap();
        let hex = &fp["SHA256:".len()..];
        let colons: String = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(hex), Some(raw));
        assert_eq!(parse_fingerprint(&colons), Some(raw));
        assert_eq!(parse_fingerprint(&format!("SHA256:{colons}")), Some(raw));
        assert_eq!(parse_fingerprint("SHA256:abc"), None);
    }
}
