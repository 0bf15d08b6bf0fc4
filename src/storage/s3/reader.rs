//! The body of a ranged GET as a `Read`, at the caller's pace: each read
//! waits at most the stall deadline, and a body that ends early is an error.

use std::io::{self, Read};
use std::sync::Arc;

/// The body of a ranged GET, read at the caller's pace.
pub struct ObjectReader {
    pub(super) body: Option<ureq::BodyReader<'static>>,
    pub(super) remaining: u64,
    pub(super) op: Arc<str>,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader")
            .field("op", &self.op)
            .field("remaining", &self.remaining)
            .finish()
    }
}

impl ObjectReader {
    pub(super) fn empty() -> ObjectReader {
        ObjectReader {
            body: None,
            remaining: 0,
            op: Arc::from(""),
        }
    }

    /// Bytes still to come.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(body) = self.body.as_mut() else {
            return Ok(0);
        };
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        match body.read(&mut buf[..want]) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "{}: the store ended the body {} bytes early",
                    self.op, self.remaining
                ),
            )),
            Ok(n) => {
                self.remaining -= n as u64;
                Ok(n)
            }
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", self.op))),
        }
    }
}
