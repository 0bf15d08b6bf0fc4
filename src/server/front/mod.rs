//! Front-ends: how one listener's clients speak. The core (connections,
//! sessions, commands, transfers) speaks [`Request`]s and [`Reply`]s; a
//! [`Codec`] turns a listener's wire format into requests, replies back into
//! its wire format, and says how an upload's body is framed. Each listener
//! picks its codec; accounts, limits, quotas, storage and logs are shared by
//! all of them.
//!
//! To add a front-end: implement [`Codec`] in a module here, give it a
//! [`Front`] variant, and a listener in the config that names it. A
//! front-end whose commands don't map one to one onto requests (FTP: a
//! session with its own state, data connections) decodes into its own
//! [`Decoded`] variant, and the connection keeps the front-end's state
//! beside its own (`server::conn`, docs/DESIGN.md).

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
    /// FTP (docs/FTP.md); `implicit_tls`: TLS from the first byte
    /// (implicit FTPS), else plain until `AUTH TLS`.
    Ftp { implicit_tls: bool },
}

impl Front {
    /// A fresh codec for one connection.
    pub fn codec(self) -> Box<dyn Codec> {
        match self {
            Front::Native => Box::new(native::NativeCodec),
            Front::Ftp { .. } => Box::new(ftp::codec::FtpCodec),
        }
    }

    /// The name used in logs.
    pub fn name(self) -> &'static str {
        match self {
            Front::Native => "miniftp",
            Front::Ftp {
                implicit_tls: false,
            } => "ftp",
            Front::Ftp { implicit_tls: true } => "ftps",
        }
    }

    /// The TLS a new connection starts with, if any: the native listener's
    /// when TLS is on. An FTP connection starts in clear as far as the loop
    /// is concerned: TLS comes with `AUTH TLS`, or on the implicit-FTPS
    /// listener at once, set up by the connection itself (each FTP session
    /// has TLS settings of its own, see `ftp::tls`).
    pub fn tls_at_start(
        self,
        shared: &crate::server::Shared,
    ) -> Option<std::sync::Arc<rustls::ServerConfig>> {
        match self {
            Front::Native => shared.tls.clone(),
            Front::Ftp { .. } => None,
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
    /// An FTP command line (or a line too long to be one), for the
    /// connection's FTP session.
    Ftp(ftp::session::Input),
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
