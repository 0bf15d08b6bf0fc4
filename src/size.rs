//! Human sizes: parsing `500M`, `2G`, `1.5T` (binary units, as `ls -h` and
//! `df -h` mean them) and printing them back with humansize.

use humansize::{format_size, BINARY};
use serde::{Deserialize, Deserializer};

/// Parses a size: a plain number of bytes, or a number with a suffix
/// K, M, G, T or P (powers of 1024; an optional trailing `B`/`iB` is allowed).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let stripped = upper
        .strip_suffix("IB")
        .or_else(|| upper.strip_suffix('B'))
        .unwrap_or(&upper);
    let (num, mult): (&str, u64) = match stripped.chars().last() {
        Some('K') => (&stripped[..stripped.len() - 1], 1 << 10),
        Some('M') => (&stripped[..stripped.len() - 1], 1 << 20),
        Some('G') => (&stripped[..stripped.len() - 1], 1 << 30),
        Some('T') => (&stripped[..stripped.len() - 1], 1 << 40),
        Some('P') => (&stripped[..stripped.len() - 1], 1 << 50),
        _ => (stripped, 1),
    };
    let bad = || format!("invalid size {text:?} (expected e.g. 1048576, 500M, 2G)");
    let num = num.trim();
    if num.is_empty() {
        return Err(bad());
    }
    if let Ok(n) = num.parse::<u64>() {
        return n.checked_mul(mult).ok_or_else(bad);
    }
    let f: f64 = num.parse().map_err(|_| bad())?;
    let bytes = f * mult as f64;
    if !(0.0..=u64::MAX as f64).contains(&bytes) || !bytes.is_finite() {
        return Err(bad());
    }
    Ok(bytes.round() as u64)
}

/// A size for people: `1.5 GiB`.
pub fn human(bytes: u64) -> String {
    format_size(bytes, BINARY)
}

/// serde helper: a size written as a number or as a string like "2G".
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(u64),
        Text(String),
    }
    match Raw::deserialize(d)? {
        Raw::Num(n) => Ok(n),
        Raw::Text(t) => parse_size(&t).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size("1.5K"), Ok(1536));
        assert_eq!(parse_size("8T"), Ok(8 << 40));
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "G", "-1", "12X", "1e400", "99999999999P"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn human_output() {
        assert_eq!(human(2 << 30), "2 GiB");
    }
}
