//! The one table of status codes. The server replies with them, the clients
//! map them to messages and exit codes, and docs/PROTOCOL.md lists exactly
//! these (a test checks the two agree).
//!
//! Classes follow FTP: 1xx "go on with the transfer", 2xx done, 4xx failed
//! but worth retrying later, 5xx failed and will fail again as asked.

use serde::{Deserialize, Serialize};

macro_rules! statuses {
    ($( $(#[$doc:meta])* $name:ident = $code:literal, $meaning:literal; )*) => {
        /// A protocol status code.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(try_from = "u16", into = "u16")]
        pub enum Status {
            $( $(#[$doc])* $name, )*
        }

        impl Status {
            /// Every status, in table order.
            pub const ALL: &'static [Status] = &[ $( Status::$name, )* ];

            /// The number on the wire.
            pub fn code(self) -> u16 {
                match self { $( Status::$name => $code, )* }
            }

            /// The short meaning, as in docs/PROTOCOL.md.
            pub fn meaning(self) -> &'static str {
                match self { $( Status::$name => $meaning, )* }
            }

            /// The status with this number, if the table has it.
            pub fn from_code(code: u16) -> Option<Status> {
                match code { $( $code => Some(Status::$name), )* _ => None }
            }
        }
    };
}

statuses! {
    /// The server is ready for the body of a transfer (`put`) or is about to
    /// send it (`get`).
    Ready = 150, "ready for the file body";
    /// The request was carried out.
    Ok = 200, "ok";
    /// Registration: the account was created and can log in now.
    Registered = 201, "account created";
    /// Registration: the request waits for the operator's approval.
    RegistrationPending = 202, "registration awaits the operator's approval";
    /// The greeting, first frame of every connection.
    Greeting = 220, "service ready";
    /// The server closes the connection after a `quit`.
    Bye = 221, "goodbye";
    /// A transfer finished and its SHA-256 matched.
    TransferComplete = 226, "transfer complete, digest verified";
    /// Login succeeded.
    LoggedIn = 230, "logged in";
    /// The server is shutting down, full, or closing an idle or slow session.
    Unavailable = 421, "service unavailable, closing connection";
    /// Too many failed logins from this address: wait, then retry.
    TooManyFailures = 429, "too many failed logins from this address";
    /// The file is being written by another transfer of the same user.
    Busy = 450, "file busy";
    /// The server hit an I/O error; nothing was changed.
    LocalError = 451, "server-side I/O error";
    /// The server's disk is full.
    DiskFull = 452, "server disk full";
    /// The frame or its message could not be understood.
    BadFrame = 500, "malformed frame or message";
    /// The message was understood but an argument is invalid.
    BadArguments = 501, "invalid arguments";
    /// The `op` is not one this server knows.
    UnknownCommand = 502, "unknown command";
    /// The request is not allowed in this state (e.g. before login).
    BadSequence = 503, "bad sequence of commands";
    /// Client and server speak different protocol versions.
    VersionMismatch = 505, "protocol version not supported";
    /// Wrong user name or password.
    AuthFailed = 530, "login incorrect";
    /// Registration refused (closed policy, name taken, or too many pending).
    RegistrationRefused = 531, "registration refused";
    /// No such file or directory.
    NotFound = 550, "no such file or directory";
    /// The path names a directory where a file is needed, or the reverse.
    WrongType = 551, "wrong file type";
    /// The user's disk quota would be exceeded.
    QuotaExceeded = 552, "quota exceeded";
    /// The path is refused by the jail: outside the home, a symlink that leads
    /// out, a device, a NUL byte, or an invalid name.
    PathRefused = 553, "path refused";
    /// The SHA-256 of the received content does not match the sender's.
    IntegrityFailure = 554, "integrity check failed";
    /// The target already exists.
    AlreadyExists = 555, "already exists";
    /// The directory is not empty (use a recursive remove).
    NotEmpty = 556, "directory not empty";
    /// The filesystem denied the operation.
    PermissionDenied = 557, "permission denied";
}

impl Status {
    /// 1xx and 2xx.
    pub fn is_success(self) -> bool {
        self.code() < 400
    }

    /// 4xx: may work if retried later.
    pub fn is_transient(self) -> bool {
        (400..500).contains(&self.code())
    }
}

impl TryFrom<u16> for Status {
    type Error = String;
    fn try_from(code: u16) -> Result<Self, String> {
        Status::from_code(code).ok_or_else(|| format!("unknown status code {code}"))
    }
}

impl From<Status> for u16 {
    fn from(s: Status) -> u16 {
        s.code()
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.meaning())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for s in Status::ALL {
            assert!(seen.insert(s.code()), "duplicate code {}", s.code());
            assert_eq!(Status::from_code(s.code()), Some(*s));
            assert!((100..600).contains(&s.code()));
        }
        assert_eq!(Status::from_code(999), None);
    }

    #[test]
    fn classes() {
        assert!(Status::TransferComplete.is_success());
        assert!(Status::Busy.is_transient());
        assert!(!Status::QuotaExceeded.is_transient());
    }
}
