//! Length-prefixed frames: an 8-byte big-endian length, then that many bytes
//! of UTF-8 JSON. This is the only code that knows the layout.
//!
//! As in mini-redis, *checking* whether a whole frame is buffered is separate
//! from *parsing* it, and "not yet" ([`Check::Incomplete`]) is a normal answer.
//! Unlike mini-redis, the announced length is checked against a cap before
//! anything is allocated or waited for.

use std::io::{self, Read, Write};

use crate::limits::FRAME_HEADER_LEN;

/// Why a frame is unacceptable. Each is fatal to the connection's framing:
/// after one, the stream can't be resynchronised.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("empty frame (length 0)")]
    Empty,
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLong { len: u64, max: usize },
    #[error("frame is not valid UTF-8")]
    NotUtf8,
}

/// What [`check`] found at the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// A whole frame is buffered: its payload is `buf[FRAME_HEADER_LEN..end]`.
    Complete { end: usize },
    /// More bytes are needed; `needed` is the total the frame will take when
    /// known (0 while the header itself is incomplete).
    Incomplete { needed: usize },
}

/// Is a whole frame at the start of `buf`? Validates the announced length
/// against `max` as soon as the 8 header bytes are present.
pub fn check(buf: &[u8], max: usize) -> Result<Check, FrameError> {
    let Some(header) = buf.get(..FRAME_HEADER_LEN) else {
        return Ok(Check::Incomplete { needed: 0 });
    };
    let len = decode_len(header, max)?;
    let end = FRAME_HEADER_LEN + len;
    if buf.len() >= end {
        Ok(Check::Complete { end })
    } else {
        Ok(Check::Incomplete { needed: end })
    }
}

/// The payload of a complete frame as text.
pub fn payload(frame: &[u8]) -> Result<&str, FrameError> {
    std::str::from_utf8(&frame[FRAME_HEADER_LEN..]).map_err(|_| FrameError::NotUtf8)
}

/// Reads and validates an 8-byte length prefix.
pub fn decode_len(header: &[u8], max: usize) -> Result<usize, FrameError> {
    let mut raw = [0u8; FRAME_HEADER_LEN];
    raw.copy_from_slice(&header[..FRAME_HEADER_LEN]);
    let len = u64::from_be_bytes(raw);
    if len == 0 {
        return Err(FrameError::Empty);
    }
    if len > max as u64 {
        return Err(FrameError::TooLong { len, max });
    }
    Ok(len as usize)
}

/// Appends one frame holding `payload` to `out`.
pub fn encode(payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
}

/// Blocking read of one frame (for clients). The announced length is
/// checked against `max` before the payload buffer is allocated.
pub fn read_frame<R: Read>(r: &mut R, max: usize) -> io::Result<String> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    r.read_exact(&mut header)?;
    let len =
        decode_len(&header, max).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    String::from_utf8(payload)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, FrameError::NotUtf8))
}

/// Blocking write of one frame (for clients), in a single write call so a
/// frame never leaves in two TCP segments when it fits in one.
pub fn write_frame<W: Write>(w: &mut W, payload: &[u8]) -> io::Result<()> {
    let mut buf = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    encode(payload, &mut buf);
    w.write_all(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(p: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(p, &mut v);
        v
    }

    #[test]
    fn complete_frame() {
        let f = framed(b"{\"op\":\"pwd\"}");
        assert_eq!(check(&f, 100), Ok(Check::Complete { end: f.len() }));
        assert_eq!(payload(&f), Ok("{\"op\":\"pwd\"}"));
    }

    #[test]
    fn incomplete_header_and_body() {
        let f = framed(b"hello");
        assert_eq!(check(&f[..3], 100), Ok(Check::Incomplete { needed: 0 }));
        assert_eq!(
            check(&f[..10], 100),
            Ok(Check::Incomplete { needed: f.len() })
        );
    }

    #[test]
    fn zero_length_is_an_error() {
        assert_eq!(check(&[0u8; 8], 100), Err(FrameError::Empty));
    }

    #[test]
    fn over_long_is_rejected_from_the_header_alone() {
        let mut f = u64::MAX.to_be_bytes().to_vec();
        assert_eq!(
            check(&f, 100),
            Err(FrameError::TooLong {
                len: u64::MAX,
                max: 100
            })
        );
        f.truncate(8);
        let mut r = &f[..];
        let e = read_frame(&mut r, 100).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn not_utf8() {
        let f = framed(&[0xff, 0xfe]);
        assert_eq!(payload(&f), Err(FrameError::NotUtf8));
    }

    #[test]
    fn two_frames_back_to_back() {
        let mut f = framed(b"one");
        f.extend(framed(b"two"));
        let Ok(Check::Complete { end }) = check(&f, 100) else {
            panic!()
        };
        assert_eq!(payload(&f[..end]), Ok("one"));
        assert!(matches!(check(&f[end..], 100), Ok(Check::Complete { .. })));
    }

    #[test]
    fn blocking_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, "héllo".as_bytes()).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame(&mut r, 100).unwrap(), "héllo");
        let mut short = &buf[..buf.len() - 1];
        assert!(read_frame(&mut short, 100).is_err());
    }
}
