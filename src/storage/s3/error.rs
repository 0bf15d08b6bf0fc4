//! What can go wrong talking to the object store, sorted by what the caller
//! does about it: a missing key is an answer, an unavailable store is worth
//! a retry later (the user hears 451 and keeps the partial), a refusal of
//! the server's own credentials is a configuration error.

use std::io;

use crate::storage::{FsError, StoreUnavailable, VPath};

pub type S3Result<T> = Result<T, S3Error>;

/// One failed S3 call. `op` names the call (`PUT part 3 of homes/u/f`).
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    /// 404: NoSuchKey, NoSuchUpload.
    #[error("{op}: not found ({code})")]
    NotFound { op: String, code: String },
    /// The bucket in the config does not exist.
    #[error("{op}: bucket does not exist ({message})")]
    NoSuchBucket { op: String, message: String },
    /// 403 or 401: the access key is unknown, the secret wrong, or the key
    /// may not use the bucket.
    #[error("{op}: the store refused our credentials: {code}: {message}")]
    Denied {
        op: String,
        code: String,
        message: String,
    },
    /// No answer in time, a connection refused or cut, or a 5xx (Garage
    /// says 500/503 when it cannot reach a quorum of nodes). Transient.
    #[error("{op}: object store unavailable: {detail}")]
    Unavailable { op: String, detail: String },
    /// The store computed another checksum than we sent: the bytes were
    /// damaged on the way. The data was not stored; sending again may work.
    #[error("{op}: the store received damaged data (checksum mismatch: {message})")]
    BadDigest { op: String, message: String },
    /// Any other refusal (4xx).
    #[error("{op}: refused by the store: HTTP {status} {code}: {message}")]
    Rejected {
        op: String,
        status: u16,
        code: String,
        message: String,
    },
    /// An answer we could not read.
    #[error("{op}: unexpected answer from the store: {detail}")]
    Protocol { op: String, detail: String },
}

impl S3Error {
    pub fn is_not_found(&self) -> bool {
        matches!(self, S3Error::NotFound { .. })
    }

    /// Whether the same call may succeed later without any change on our
    /// side (the store or the network is down or overloaded).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            S3Error::Unavailable { .. } | S3Error::BadDigest { .. }
        )
    }

    /// Classifies an error answer: HTTP status plus the `<Code>` and
    /// `<Message>` of S3's XML error body.
    pub(crate) fn from_answer(op: String, status: u16, code: String, message: String) -> S3Error {
        // A HEAD answer has no body: say what we know rather than nothing.
        let (code, message) = match (code.is_empty(), message.is_empty(), status) {
            (true, true, 401 | 403) => (
                format!("HTTP {status}"),
                "an unknown access key, a wrong secret, or a key without access to the bucket"
                    .to_string(),
            ),
            (true, _, _) => (format!("HTTP {status}"), message),
            _ => (code, message),
        };
        match (status, code.as_str()) {
            (404, "NoSuchBucket") => S3Error::NoSuchBucket { op, message },
            (404, _) => S3Error::NotFound { op, code },
            (401 | 403, _) => S3Error::Denied { op, code, message },
            (_, "BadDigest" | "InvalidDigest" | "XAmzContentSHA256Mismatch") => {
                S3Error::BadDigest { op, message }
            }
            (400, _) if message.to_ascii_lowercase().contains("checksum") => {
                S3Error::BadDigest { op, message }
            }
            (408 | 429 | 500..=599, _) => S3Error::Unavailable {
                op,
                detail: format!("HTTP {status} {code}: {message}"),
            },
            _ => S3Error::Rejected {
                op,
                status,
                code,
                message,
            },
        }
    }

    /// A transient failure as the user hears it: what the store said,
    /// without the call and its key (the deployment's prefix and the
    /// server's hidden objects are none of the user's business); the whole
    /// error goes to the log, for the operator.
    fn for_user(&self, what: &str) -> String {
        log::warn!("{what}: {self}");
        match self {
            S3Error::Unavailable { detail, .. } => format!("object store unavailable: {detail}"),
            S3Error::BadDigest { .. } => {
                "the object store received damaged data and stored none of it".into()
            }
            other => other.to_string(),
        }
    }

    /// What the user of `path` hears. An unavailable store is
    /// [`FsError::Unavailable`] (status 451): nothing is lost and an
    /// upload's partial is kept. A refusal of the server's own credentials
    /// is the operator's to fix, and said so (the details go to the log).
    pub fn into_fs(self, path: &VPath) -> FsError {
        let p = path.to_string();
        match self {
            S3Error::NotFound { .. } => FsError::NotFound(p),
            e if e.is_transient() => FsError::Unavailable {
                why: e.for_user(&p),
                path: p,
            },
            e @ (S3Error::Denied { .. } | S3Error::NoSuchBucket { .. }) => {
                log::error!("{p}: {e}");
                FsError::Io {
                    path: p,
                    source: io::Error::other(
                        "the object store refused the server's credentials or bucket; \
                         tell the operator",
                    ),
                }
            }
            other => FsError::Io {
                path: p,
                source: io::Error::other(other.to_string()),
            },
        }
    }

    /// As an io::Error, for the `Read`/`Write` shaped handles; a transient
    /// failure carries [`StoreUnavailable`] (see `FsError::from_io`).
    pub fn into_io(self) -> io::Error {
        if self.is_transient() {
            return StoreUnavailable(self.for_user("a transfer")).into_io();
        }
        let kind = match &self {
            S3Error::NotFound { .. } => io::ErrorKind::NotFound,
            S3Error::Denied { .. } => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, code: &str, message: &str) -> S3Error {
        S3Error::from_answer("op".into(), status, code.into(), message.into())
    }

    #[test]
    fn answers_are_sorted_by_what_to_do() {
        assert!(classify(404, "NoSuchKey", "").is_not_found());
        assert!(classify(404, "NoSuchUpload", "").is_not_found());
        assert!(matches!(
            classify(404, "NoSuchBucket", ""),
            S3Error::NoSuchBucket { .. }
        ));
        assert!(matches!(
            classify(403, "AccessDenied", ""),
            S3Error::Denied { .. }
        ));
        assert!(classify(503, "ServiceUnavailable", "").is_transient());
        assert!(classify(500, "InternalError", "Could not reach quorum").is_transient());
        assert!(matches!(
            classify(400, "InvalidRequest", "Checksum mismatch"),
            S3Error::BadDigest { .. }
        ));
        let r = classify(400, "EntityTooSmall", "part too small");
        assert!(!r.is_transient() && !r.is_not_found());
    }

    #[test]
    fn users_hear_not_found_or_an_io_error() {
        let p = VPath::resolve(&VPath::root(), "/a/b").unwrap();
        assert!(matches!(
            classify(404, "NoSuchKey", "").into_fs(&p),
            FsError::NotFound(s) if s == "/a/b"
        ));
        let e = classify(503, "ServiceUnavailable", "quorum").into_fs(&p);
        assert!(matches!(e, FsError::Unavailable { .. }));
        assert!(e.to_string().contains("object store unavailable"), "{e}");
        let io = classify(503, "ServiceUnavailable", "quorum").into_io();
        assert!(matches!(
            FsError::from_io(io, &p),
            FsError::Unavailable { .. }
        ));
        let e = classify(403, "AccessDenied", "bad key").into_fs(&p);
        assert!(e.to_string().contains("tell the operator"), "{e}");
    }
}
