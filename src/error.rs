//! Errors that reach the user, and the exit codes they map to. The table
//! here is the one in the man page and the README: a cron job can tell a
//! wrong password from a full quota from a network problem.

use std::path::PathBuf;

use crate::proto::{Reply, Status};

/// Process exit codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    Ok = 0,
    /// Any failure not covered below.
    Failure = 1,
    /// Bad command line or configuration.
    Usage = 2,
    /// Cannot connect, connection lost, timeout, protocol mismatch.
    Connection = 3,
    /// Login refused (or no password available without a terminal).
    Auth = 4,
    /// A remote or local file does not exist.
    NotFound = 5,
    /// Refused by permissions or the jail.
    Denied = 6,
    /// The quota would be exceeded.
    Quota = 7,
    /// A SHA-256 check failed.
    Integrity = 8,
    /// A local file could not be read or written.
    LocalIo = 9,
    /// The server had a problem of its own (I/O error, disk full, busy).
    Server = 10,
}

impl Exit {
    /// Every code with its meaning (README and man page list the same; a
    /// test checks them).
    #[cfg(test)]
    pub const TABLE: &'static [(Exit, &'static str)] = &[
        (Exit::Ok, "success"),
        (Exit::Failure, "other failure"),
        (
            Exit::Usage,
            "usage: bad command line, config file or arguments",
        ),
        (
            Exit::Connection,
            "connection: cannot connect (also a server name that does not resolve), connection lost, timeout, protocol version mismatch",
        ),
        (
            Exit::Auth,
            "authentication: login refused, locked out, or no password available",
        ),
        (
            Exit::NotFound,
            "not found: a remote or local file or directory does not exist",
        ),
        (
            Exit::Denied,
            "permission: refused by the jail or by file permissions",
        ),
        (
            Exit::Quota,
            "quota: the transfer would exceed the user's quota",
        ),
        (Exit::Integrity, "integrity: a SHA-256 digest did not match"),
        (
            Exit::LocalIo,
            "local I/O: a local file could not be read or written",
        ),
        (
            Exit::Server,
            "server: the server failed (I/O error, disk full, busy, shutting down)",
        ),
    ];

    /// The exit code for a failed reply's status.
    pub fn for_status(status: Option<Status>) -> Exit {
        match status {
            Some(Status::AuthFailed | Status::TooManyFailures) => Exit::Auth,
            Some(Status::NotFound) => Exit::NotFound,
            Some(Status::PathRefused | Status::PermissionDenied) => Exit::Denied,
            Some(Status::QuotaExceeded) => Exit::Quota,
            Some(Status::IntegrityFailure) => Exit::Integrity,
            Some(Status::VersionMismatch) => Exit::Connection,
            Some(Status::LocalError | Status::DiskFull | Status::Busy | Status::Unavailable) => {
                Exit::Server
            }
            Some(
                Status::BadArguments | Status::WrongType | Status::AlreadyExists | Status::NotEmpty,
            ) => Exit::Failure,
            _ => Exit::Failure,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Users(#[from] crate::users::UsersError),
    /// The server can't use its own data directory (wrong owner).
    #[error(transparent)]
    Access(#[from] crate::access::AccessError),
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    #[error("cannot connect to {addr}: {}", plain_connect(source))]
    Connect {
        addr: String,
        source: std::io::Error,
    },
    #[error("connection to the server lost: {}", plain(.0))]
    ConnectionLost(std::io::Error),
    #[error("{0}")]
    Protocol(String),
    #[error("{msg}")]
    Remote { code: u16, msg: String },
    #[error("{}: {}", path.display(), plain(source))]
    Local {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Integrity(String),
    #[error("{0}")]
    Auth(String),
    #[error("{0}")]
    Tls(String),
    /// A certificate no CA vouches for, and no fingerprint to compare with.
    #[error("the certificate of {server} is not trusted (fingerprint {fingerprint}).\nIf that is the fingerprint the server printed at start, trust it with\n  --fingerprint {fingerprint}   (or MINIFTP_FINGERPRINT={fingerprint})\nor connect once with `miniftp shell` from a terminal and accept it.")]
    Untrusted { server: String, fingerprint: String },
    #[error("{0}")]
    Other(String),
    /// Ctrl-C in the shell stopped a transfer (its partial is kept).
    #[error("interrupted")]
    Interrupted,
    /// Failures already reported one by one; `exit` is the first one's.
    #[error("{msg}")]
    Failed { exit: Exit, msg: String },
}

/// Set by `--verbose`: `main` then prints an error's underlying cause.
pub static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// An I/O error in plain words: no `(os error N)`, no library internals
/// (a TLS library's documentation link, say); `--verbose` shows those.
pub fn plain(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    let words = match e.kind() {
        K::NotFound => "no such file or directory",
        K::PermissionDenied => "permission denied",
        K::ConnectionRefused => "connection refused (is the server running on that port?)",
        K::ConnectionReset => "the server reset the connection",
        K::ConnectionAborted => "the connection was aborted",
        K::BrokenPipe | K::UnexpectedEof => "the server closed the connection",
        K::TimedOut | K::WouldBlock => "no answer within the time limit (see --timeout)",
        K::AlreadyExists => "already exists",
        K::StorageFull => "no space left on the device",
        K::IsADirectory => "is a directory",
        K::NotADirectory => "not a directory",
        K::ReadOnlyFilesystem => "read-only file system",
        K::NotConnected => "not connected",
        K::HostUnreachable | K::NetworkUnreachable => "the server's network is unreachable",
        K::InvalidData => "the data is not valid",
        _ => {
            let text = e.to_string();
            let text = text.split(": https://").next().unwrap_or(&text);
            let text = text.split(" (os error").next().unwrap_or(text);
            return text.to_string();
        }
    };
    words.to_string()
}

/// A failed connect in plain words: a name that does not resolve says so.
fn plain_connect(e: &std::io::Error) -> String {
    if e.to_string().contains("lookup address") {
        return "the server name does not resolve".into();
    }
    plain(e)
}

impl Error {
    /// What lies under the plain message (for `--verbose`), if anything.
    pub fn cause(&self) -> Option<String> {
        match self {
            Error::Connect { source, .. }
            | Error::ConnectionLost(source)
            | Error::Local { source, .. } => Some(format!("{source} ({:?})", source.kind())),
            _ => None,
        }
    }

    pub fn exit(&self) -> Exit {
        match self {
            Error::Usage(_) | Error::Config(_) => Exit::Usage,
            Error::Users(_) => Exit::Failure,
            Error::Access(_) => Exit::Denied,
            Error::Admin(crate::admin::AdminError::Refused(_)) => Exit::Failure,
            Error::Admin(_) => Exit::Connection,
            Error::Connect { .. }
            | Error::ConnectionLost(_)
            | Error::Protocol(_)
            | Error::Tls(_)
            | Error::Untrusted { .. } => Exit::Connection,
            Error::Remote { code, .. } => Exit::for_status(Status::from_code(*code)),
            Error::Local { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Exit::NotFound
            }
            Error::Local { source, .. }
                if source.kind() == std::io::ErrorKind::PermissionDenied =>
            {
                Exit::Denied
            }
            Error::Local { .. } => Exit::LocalIo,
            Error::Integrity(_) => Exit::Integrity,
            Error::Auth(_) => Exit::Auth,
            Error::Other(_) | Error::Interrupted => Exit::Failure,
            Error::Failed { exit, .. } => *exit,
        }
    }

    /// A failed reply as an error, worded as the server worded it.
    pub fn remote(reply: &Reply) -> Error {
        if reply.status() == Some(Status::IntegrityFailure) {
            return Error::Integrity(reply.msg.clone());
        }
        Error::Remote {
            code: reply.code,
            msg: reply.msg.clone(),
        }
    }

    pub fn local(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Local {
            path: path.into(),
            source,
        }
    }

    /// The end of a run that reported each failure as it went: Ok, or an
    /// error that prints `msg` and exits with the first failure's code.
    pub fn after_all(first: Option<Error>, msg: &str) -> Result<()> {
        match first {
            Some(e) => Err(Error::Failed {
                exit: e.exit(),
                msg: msg.into(),
            }),
            None => Ok(()),
        }
    }

    /// Whether the connection is no longer usable after this error (later
    /// transfers on it can't go on).
    pub fn ends_connection(&self) -> bool {
        matches!(
            self,
            Error::ConnectionLost(_) | Error::Protocol(_) | Error::Interrupted
        )
    }

    /// Whether trying again (new connection) may help.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { source, .. } | Error::ConnectionLost(source) => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
            ),
            Error::Remote { code, .. } => *code == Status::Unavailable.code(),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_table_is_complete_and_in_order() {
        for (i, (e, meaning)) in Exit::TABLE.iter().enumerate() {
            assert_eq!(*e as usize, i);
            assert!(!meaning.is_empty());
        }
        assert_eq!(Exit::TABLE.len(), Exit::Server as usize + 1);
    }
}
