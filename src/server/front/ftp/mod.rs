//! The FTP and FTPS front-end (RFC 959 and its extensions, docs/FTP.md):
//! command lines in, FTP replies out, a separate data connection per
//! transfer. The session ([`session::FtpSession`]) is sans-I/O: the
//! connection (`server::conn::ftp`) feeds it what happened and carries out
//! what it asks for, running its requests through the same path as native
//! ones; everything below (accounts, the jail, quotas, the upload machine,
//! the pumps, logs) is the core's.
//!
//! - [`command`], [`reply`], [`listing`]: the wire formats.
//! - [`codec`]: command lines as the connection's [`Codec`](super::Codec).
//! - [`session`]: the control session's state machine.
//! - [`data`]: the data channel's sockets (passive, active, TLS, ends).
//! - [`ops`]: MFMT, HASH and APPE, the operations the core lacks.
//! - [`tls`]: TLS 1.2/1.3 for FTP, session reuse tying data connections to
//!   their control connection.

pub mod codec;
pub mod command;
pub mod data;
pub mod listing;
pub mod ops;
pub mod reply;
pub mod session;
pub mod tls;

/// The fuzz target's driver, shared with the regression tests.
#[doc(hidden)]
pub mod replay;

use std::sync::atomic::AtomicU32;

/// What the FTP listeners share (in `Shared::ftp`): their TLS, and where
/// the next passive port is tried.
pub struct FtpShared {
    /// None when TLS is off (plain FTP only).
    pub tls: Option<tls::FtpTls>,
    /// Rotates through `passive_ports`, so sessions spread over the range.
    pub passive_cursor: AtomicU32,
}

impl FtpShared {
    pub fn new(native_tls: Option<&rustls::ServerConfig>) -> Result<FtpShared, rustls::Error> {
        Ok(FtpShared {
            tls: native_tls.map(tls::FtpTls::new).transpose()?,
            passive_cursor: AtomicU32::new(rand::random::<u16>().into()),
        })
    }
}
