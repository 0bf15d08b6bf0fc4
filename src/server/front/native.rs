//! The native front-end: requests and replies as length-prefixed JSON
//! frames (`proto::frame`, `proto::message`), bodies in-band on the same
//! connection, raw when their size is announced, chunked when not.

use super::{Body, Codec, Decoded};
use crate::limits::{FRAME_HEADER_LEN, MAX_REQUEST_FRAME};
use crate::proto::frame::{self, Check, FrameError};
use crate::proto::message::{decode_request, DecodeError};
use crate::proto::{Reply, Status};

pub struct NativeCodec;

impl Codec for NativeCodec {
    fn decode(&mut self, input: &[u8]) -> (Decoded, usize) {
        match frame::check(input, MAX_REQUEST_FRAME) {
            Ok(Check::Complete { end }) => match frame::payload(&input[..end]) {
                Ok(text) => (decoded(text), end),
                Err(e) => (invalid(e.to_string(), None, false), end),
            },
            Ok(Check::Incomplete { .. }) => (Decoded::Incomplete, 0),
            Err(FrameError::Empty) => (
                invalid(FrameError::Empty.to_string(), None, false),
                FRAME_HEADER_LEN,
            ),
            // The stream can't be resynchronised after a bad length.
            Err(e) => (invalid(format!("{e}; closing"), None, true), input.len()),
        }
    }

    fn encode(&mut self, reply: &Reply, out: &mut Vec<u8>) {
        frame::encode(reply.to_json().as_bytes(), out);
    }

    fn body(&self, size: Option<u64>, offset: u64) -> Body {
        match size {
            Some(s) => Body::sized(s.saturating_sub(offset)),
            None => Body::chunked(),
        }
    }

    fn client_digest(&self) -> bool {
        true
    }

    fn max_request(&self) -> usize {
        MAX_REQUEST_FRAME + FRAME_HEADER_LEN
    }
}

fn invalid(msg: String, op: Option<String>, fatal: bool) -> Decoded {
    Decoded::Invalid {
        reply: Reply::new(Status::BadFrame, msg),
        op,
        fatal,
    }
}

/// A frame's text as a request, or the error it gets (with the op it
/// named, if any: see [`Decoded::Invalid`]).
fn decoded(text: &str) -> Decoded {
    match decode_request(text) {
        Ok(req) => Decoded::Request(req),
        Err(e) => {
            let op = match &e {
                DecodeError::UnknownOp(op) | DecodeError::BadArguments { op, .. } => {
                    Some(op.clone())
                }
                _ => None,
            };
            Decoded::Invalid {
                reply: Reply::new(e.status(), e.to_string()),
                op,
                fatal: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Request;

    fn frame_of(text: &str) -> Vec<u8> {
        let mut v = Vec::new();
        frame::encode(text.as_bytes(), &mut v);
        v
    }

    #[test]
    fn decodes_requests_and_reports_what_it_used() {
        let mut c = NativeCodec;
        let mut input = frame_of(r#"{"op":"pwd"}"#);
        let n = input.len();
        input.extend_from_slice(b"rest");
        match c.decode(&input) {
            (Decoded::Request(Request::Pwd), used) => assert_eq!(used, n),
            other => panic!("{other:?}"),
        }
        assert!(matches!(c.decode(&input[..3]), (Decoded::Incomplete, 0)));
    }

    #[test]
    fn errors_name_their_op_and_bad_lengths_are_fatal() {
        let mut c = NativeCodec;
        match c.decode(&frame_of(r#"{"op":"frob"}"#)) {
            (Decoded::Invalid { op, fatal, .. }, _) => {
                assert_eq!(op.as_deref(), Some("frob"));
                assert!(!fatal);
            }
            other => panic!("{other:?}"),
        }
        let huge = u64::MAX.to_be_bytes();
        assert!(matches!(
            c.decode(&huge),
            (Decoded::Invalid { fatal: true, .. }, 8)
        ));
        assert!(matches!(
            c.decode(&[0u8; 8]),
            (Decoded::Invalid { fatal: false, .. }, 8)
        ));
    }
}
