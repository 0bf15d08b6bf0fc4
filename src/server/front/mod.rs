//! Front-ends: how one listener's clients speak. The core (connections,
//! sessions, commands, transfers) speaks [`Request`]s and [`Reply`]s; a
//! [`Codec`] turns a listener's wire format into requests, replies back into
//! its wire format, and says how an upload's body is framed. Each listener
//! picks its codec; accounts, limits, quotas, storage and logs are shared by
//! all of them.
//!
//! To add a front-end: implement [`Codec`] in a module here, give it a
//! [`Front`] variant, and a listener in the config that names it.

pub mod body;
pub mod ftp;
pub mod native;

use crate::proto::{Reply, Request};
pub use body::Body;

/// Which front-end a listener speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Front {
    /// miniftp's own length-prefixed JSON frames (docs/PROTOCOL.md).
    Native,
}

impl Front {
    /// A fresh codec for one connection.
    pub fn codec(self) -> Box<dyn Codec> {
        match self {
            Front::Native => Box::new(native::NativeCodec),
        }
    }

    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Front::Native => "miniftp",
        }
    }
}

/// What a codec found at the start of the input.
#[derive(Debug)]
pub enum Decoded {
    /// Not a whole request yet: read more.
    Incomplete,
    /// A request for the core.
    Request(Request),
    /// Input the codec answers itself with `reply`. `op` names the
    /// operation the input asked for, when it named one (an upload waiting
    /// for its trailer ends on any other). With `fatal`, the stream can't be
    /// read any further: the connection closes after the reply.
    Invalid {
        reply: Reply,
        op: Option<String>,
        fatal: bool,
    },
}

/// One connection's wire format. It lives as long as the connection and
/// travels with its transport into transfer jobs, so the loop and the
/// workers decode with the same code.
pub trait Codec: Send {
    /// Looks for one request at the start of `input`; returns what it
    /// found and how many bytes of `input` that used up.
    fn decode(&mut self, input: &[u8]) -> (Decoded, usize);
    /// Appends the encoding of `reply` to `out`.
    fn encode(&mut self, reply: &Reply, out: &mut Vec<u8>);
    /// How the body of an upload of `size` bytes (None: unknown) arrives
    /// after a `150` sent from `offset`.
    fn body(&self, size: Option<u64>, offset: u64) -> Body;
    /// Whether the client follows each upload's body with the SHA-256 it
    /// computed (checked before the commit); without one the server's own
    /// digest is stored as it is.
    fn client_digest(&self) -> bool;
    /// Most bytes one request may take: input beyond it is not read until
    /// a request has been consumed.
    fn max_request(&self) -> usize;
}
