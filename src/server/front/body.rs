//! How an upload's body is delimited on the wire: a known number of raw
//! bytes, length-prefixed chunks ending with an empty one (native bodies of
//! unknown size), or everything until the peer closes (a separate data
//! connection). The codec picks one; the upload feeds it bytes and gets
//! back the payload pieces.

use crate::limits::FRAME_HEADER_LEN;

/// Where a body stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// `remaining` bytes of a body of announced size.
    Sized { remaining: u64 },
    /// Reading a chunk's 8-byte length (`have` bytes of it so far).
    ChunkHeader {
        header: [u8; FRAME_HEADER_LEN],
        have: usize,
    },
    /// `left` bytes of the current chunk.
    ChunkData { left: u64 },
    /// Everything until the peer ends the stream cleanly.
    UntilEof,
    /// The body has ended.
    Done,
}

/// One step through a body.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    /// Payload bytes.
    Data(&'a [u8]),
    /// A chunk of this many bytes begins (reserve them before they come).
    Chunk(u64),
    /// Framing only (or nothing left): nothing to hand on.
    Nothing,
}

impl Body {
    pub fn sized(bytes: u64) -> Body {
        if bytes == 0 {
            Body::Done
        } else {
            Body::Sized { remaining: bytes }
        }
    }

    pub fn chunked() -> Body {
        Body::ChunkHeader {
            header: [0; FRAME_HEADER_LEN],
            have: 0,
        }
    }

    pub fn is_done(&self) -> bool {
        matches!(self, Body::Done)
    }

    /// Bytes still to come when the body's size is known.
    pub fn remaining(&self) -> Option<u64> {
        match self {
            Body::Sized { remaining } => Some(*remaining),
            Body::Done => Some(0),
            _ => None,
        }
    }

    /// How many bytes the next read may take without passing the body's
    /// end (a read never takes bytes of the request that follows).
    pub fn want(&self, cap: usize) -> usize {
        match self {
            Body::Sized { remaining } => cap.min(*remaining as usize),
            Body::ChunkHeader { have, .. } => FRAME_HEADER_LEN - have,
            Body::ChunkData { left } => cap.min(*left as usize),
            Body::UntilEof => cap,
            Body::Done => 0,
        }
    }

    /// The peer ended the stream: true if that ends this body cleanly.
    pub fn eof(&mut self) -> bool {
        if matches!(self, Body::UntilEof) {
            *self = Body::Done;
        }
        self.is_done()
    }

    /// Takes the next piece from the start of `data`; returns it and how
    /// many bytes of `data` it used.
    pub fn next<'a>(&mut self, data: &'a [u8]) -> (Piece<'a>, usize) {
        match self {
            Body::Done => (Piece::Nothing, 0),
            Body::UntilEof => (Piece::Data(data), data.len()),
            Body::Sized { remaining } => {
                let n = data.len().min(*remaining as usize);
                *remaining -= n as u64;
                if *remaining == 0 {
                    *self = Body::Done;
                }
                (Piece::Data(&data[..n]), n)
            }
            Body::ChunkHeader { header, have } => {
                let n = data.len().min(FRAME_HEADER_LEN - *have);
                header[*have..*have + n].copy_from_slice(&data[..n]);
                *have += n;
                if *have < FRAME_HEADER_LEN {
                    return (Piece::Nothing, n);
                }
                let len = u64::from_be_bytes(*header);
                if len == 0 {
                    *self = Body::Done;
                    return (Piece::Nothing, n);
                }
                *self = Body::ChunkData { left: len };
                (Piece::Chunk(len), n)
            }
            Body::ChunkData { left } => {
                let n = data.len().min(*left as usize);
                *left -= n as u64;
                if *left == 0 {
                    *self = Body::chunked();
                }
                (Piece::Data(&data[..n]), n)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` a byte at a time; returns the payload and chunk sizes.
    fn run(mut body: Body, data: &[u8]) -> (Vec<u8>, Vec<u64>, usize) {
        let (mut out, mut chunks, mut used) = (Vec::new(), Vec::new(), 0);
        while used < data.len() && !body.is_done() {
            match body.next(&data[used..used + 1]) {
                (Piece::Data(d), n) => {
                    out.extend_from_slice(d);
                    used += n;
                }
                (Piece::Chunk(len), n) => {
                    chunks.push(len);
                    used += n;
                }
                (Piece::Nothing, n) => used += n,
            }
        }
        (out, chunks, used)
    }

    #[test]
    fn sized_stops_at_its_end() {
        assert_eq!(run(Body::sized(3), b"abcdef"), (b"abc".to_vec(), vec![], 3));
        assert!(Body::sized(0).is_done());
    }

    #[test]
    fn chunks_then_empty_chunk() {
        let mut wire = Vec::new();
        for c in [&b"hel"[..], b"lo"] {
            wire.extend_from_slice(&(c.len() as u64).to_be_bytes());
            wire.extend_from_slice(c);
        }
        wire.extend_from_slice(&0u64.to_be_bytes());
        let end = wire.len();
        wire.extend_from_slice(b"next request");
        assert_eq!(
            run(Body::chunked(), &wire),
            (b"hello".to_vec(), vec![3, 2], end)
        );
    }

    #[test]
    fn until_eof_ends_only_at_eof() {
        let mut b = Body::UntilEof;
        assert_eq!(b.next(b"xy"), (Piece::Data(b"xy"), 2));
        assert!(b.eof());
        assert!(!Body::sized(5).eof(), "a short sized body is cut off");
    }
}
