//! The FTP control connection's framing: command lines in (split and
//! parsed here, handed to the connection's [`FtpSession`] as
//! [`Decoded::Ftp`]), and the core's replies out when they go straight to
//! the wire (a refusal at accept, a timeout, a shutdown: each a `421`).
//! Replies to commands are worded by the session, not here.
//!
//! [`FtpSession`]: super::session::FtpSession

use super::command::{parse, split_line, Split};
use super::reply::{ftp_code, status_of, FtpReply};
use super::session::Input;
use crate::limits::MAX_FTP_LINE;
use crate::proto::Reply;
use crate::server::front::{Body, Codec, Decoded};

pub struct FtpCodec;

impl Codec for FtpCodec {
    fn decode(&mut self, input: &[u8]) -> (Decoded, usize) {
        match split_line(input) {
            Split::Incomplete => (Decoded::Incomplete, 0),
            Split::Line { text_end, consumed } => (
                Decoded::Ftp(Input::Command(parse(&input[..text_end]))),
                consumed,
            ),
            // The stream can't be resynchronised: the session closes.
            Split::TooLong => (Decoded::Ftp(Input::LineTooLong), input.len()),
        }
    }

    fn encode(&mut self, reply: &Reply, out: &mut Vec<u8>) {
        let status = status_of(reply.code);
        FtpReply::new(ftp_code(status, 200), reply.msg.clone()).encode(out);
    }

    /// An FTP upload's body is its data connection, read to a clean end.
    fn body(&self, _size: Option<u64>, _offset: u64) -> Body {
        Body::UntilEof
    }

    /// FTP clients send no digest; the server's own is stored.
    fn client_digest(&self) -> bool {
        false
    }

    fn max_request(&self) -> usize {
        MAX_FTP_LINE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Status;

    #[test]
    fn lines_and_direct_replies() {
        let mut c = FtpCodec;
        let (d, used) = c.decode(b"NOOP\r\nQUIT\r\n");
        assert!(matches!(d, Decoded::Ftp(Input::Command(Ok(_)))));
        assert_eq!(used, 6);
        assert!(matches!(c.decode(b"NOO").0, Decoded::Incomplete));
        let long = vec![b'a'; MAX_FTP_LINE];
        assert!(matches!(
            c.decode(&long).0,
            Decoded::Ftp(Input::LineTooLong)
        ));
        let mut out = Vec::new();
        c.encode(
            &Reply::new(Status::Unavailable, "idle timeout, closing"),
            &mut out,
        );
        assert_eq!(out, b"421 idle timeout, closing\r\n");
    }
}
