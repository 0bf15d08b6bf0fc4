//! The FTP and FTPS front-end (RFC 959 and its extensions, docs/FTP.md):
//! command lines in, FTP replies out, a separate data connection per
//! transfer. Sans-I/O: the event loop owns the sockets and feeds a
//! [`session::FtpSession`] what happened; everything below the session
//! (accounts, the jail, quotas, uploads) is the core's.

pub mod command;
pub mod listing;
pub mod reply;
pub mod session;

/// The fuzz target's driver, shared with the regression tests.
#[doc(hidden)]
pub mod replay;
