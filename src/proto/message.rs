//! Requests and replies as types. A request is a JSON object whose `op` field
//! names it; a reply is a JSON object with a numeric `code`, a human `msg`,
//! and the fields its request calls for. These types say nothing about what
//! a request *does*: that is the server's `cmd/` modules.

use serde::{Deserialize, Serialize};

use super::status::Status;

/// The protocol version this build speaks; the greeting carries it.
/// Bump on any incompatible change to frames or messages.
pub const PROTOCOL_VERSION: u32 = 1;

/// A password on the wire. Its `Debug` never shows the secret, so it can't
/// leak into a log line by accident.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Everything a client may send as a control frame.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Log in; allowed only before login. `protocol`, when sent, must be
    /// the server's version (else 505).
    Login {
        user: String,
        password: Password,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u32>,
    },
    /// Ask for an account; allowed only before login.
    Register {
        user: String,
        password: Password,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        protocol: Option<u32>,
    },
    /// Close the session (any state).
    Quit,
    /// Do nothing; answers 200 (any state). Useful as a ping.
    Noop,
    /// The current directory.
    Pwd,
    /// Change the current directory.
    Cd { path: String },
    /// List a directory (default: the current one), `start` entries in.
    Ls {
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        start: u64,
    },
    /// Metadata of one path.
    Stat { path: String },
    /// Create a directory; with `parents`, create missing parents and accept
    /// an existing directory.
    Mkdir {
        path: String,
        #[serde(default)]
        parents: bool,
    },
    /// Remove an empty directory.
    Rmdir { path: String },
    /// Remove a file; with `recursive`, also a directory and its contents.
    /// With `force`, a path that does not exist is not an error.
    Rm {
        path: String,
        #[serde(default)]
        recursive: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        force: bool,
    },
    /// Rename or move within the home.
    Mv { from: String, to: String },
    /// Server-side copy of a file (counted against the quota).
    Cp { from: String, to: String },
    /// Used, total and free bytes of the quota.
    Quota,
    /// Upload. `size` is the whole file's size, or absent for a body of
    /// unknown length (sent in chunks). `offset` > 0 resumes a partial upload.
    /// With `eager`, the body follows this request at once, without waiting
    /// for the 150: if the server refuses the upload, it reads and discards
    /// the body and its `done` (one reply either way).
    Put {
        path: String,
        #[serde(default)]
        size: Option<u64>,
        #[serde(default)]
        offset: u64,
        #[serde(default)]
        mkdirs: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        eager: bool,
        /// Modification time (seconds since the epoch) the file gets when
        /// the upload is committed, so it never shows another.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mtime: Option<i64>,
    },
    /// The trailer after a put body: the SHA-256 of the whole file, in hex.
    Done { sha256: String },
    /// What a resumable partial upload of `path` holds.
    Partial { path: String },
    /// Download, starting `offset` bytes in.
    Get {
        path: String,
        #[serde(default)]
        offset: u64,
    },
    /// Entries below a directory with their SHA-256, a page at a time:
    /// the bulk listing that `sync`, `sum` and `ls --json` need. `after`
    /// continues after that relative path (the previous reply's `after`).
    Tree {
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        recursive: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        after: Option<String>,
    },
    /// Sets a file's or directory's modification time (seconds since the
    /// epoch).
    SetMtime { path: String, mtime: i64 },
}

impl Request {
    /// The `op` name, for logs and error messages.
    pub fn op(&self) -> &'static str {
        match self {
            Request::Login { .. } => "login",
            Request::Register { .. } => "register",
            Request::Quit => "quit",
            Request::Noop => "noop",
            Request::Pwd => "pwd",
            Request::Cd { .. } => "cd",
            Request::Ls { .. } => "ls",
            Request::Stat { .. } => "stat",
            Request::Mkdir { .. } => "mkdir",
            Request::Rmdir { .. } => "rmdir",
            Request::Rm { .. } => "rm",
            Request::Mv { .. } => "mv",
            Request::Cp { .. } => "cp",
            Request::Quota => "quota",
            Request::Put { .. } => "put",
            Request::Done { .. } => "done",
            Request::Partial { .. } => "partial",
            Request::Get { .. } => "get",
            Request::Tree { .. } => "tree",
            Request::SetMtime { .. } => "set_mtime",
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("requests always serialize")
    }
}

/// Why a request could not be decoded; each maps to a reply status.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a JSON object: {0}")]
    NotJson(String),
    #[error("missing \"op\" field")]
    NoOp,
    #[error("unknown op {0:?}")]
    UnknownOp(String),
    #[error("bad arguments for {op:?}: {reason}")]
    BadArguments { op: String, reason: String },
}

impl DecodeError {
    pub fn status(&self) -> Status {
        match self {
            DecodeError::NotJson(_) | DecodeError::NoOp => Status::BadFrame,
            DecodeError::UnknownOp(_) => Status::UnknownCommand,
            DecodeError::BadArguments { .. } => Status::BadArguments,
        }
    }
}

const KNOWN_OPS: &[&str] = &[
    "login",
    "register",
    "quit",
    "noop",
    "pwd",
    "cd",
    "ls",
    "stat",
    "mkdir",
    "rmdir",
    "rm",
    "mv",
    "cp",
    "quota",
    "put",
    "done",
    "partial",
    "get",
    "tree",
    "set_mtime",
];

/// Decodes a request, telling apart garbage, an unknown op and bad fields,
/// so each gets its own status.
pub fn decode_request(text: &str) -> Result<Request, DecodeError> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| DecodeError::NotJson(e.to_string()))?;
    let op = match value.get("op") {
        Some(serde_json::Value::String(op)) => op.clone(),
        Some(_) | None if !value.is_object() => {
            return Err(DecodeError::NotJson("expected an object".into()))
        }
        _ => return Err(DecodeError::NoOp),
    };
    if !KNOWN_OPS.contains(&op.as_str()) {
        return Err(DecodeError::UnknownOp(op));
    }
    serde_json::from_value(value).map_err(|e| DecodeError::BadArguments {
        op,
        reason: e.to_string(),
    })
}

/// The type of a directory entry.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Other,
}

/// One file or directory, as `ls` and `stat` show it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// The name; a name that is not valid UTF-8 on disk is shown with each
    /// bad byte as `\xNN`, and `escaped` is true.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escaped: bool,
}

/// One entry of a `tree` reply: its path relative to the listed directory
/// (`a/b.txt`), and for a regular file its SHA-256.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeEntry {
    pub path: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// 64 lowercase hex digits; regular files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub escaped: bool,
}

/// Used, total and free bytes of a user's quota, and the entries (files,
/// directories, partial uploads) the home holds against their limit.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct QuotaInfo {
    pub used: u64,
    pub total: u64,
    pub free: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
}

/// A reply. `code` and `msg` are always present; the other fields only
/// where the request calls for them (see docs/PROTOCOL.md).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub msg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entries: Option<Vec<Entry>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<Entry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota: Option<QuotaInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// The greeting: `open`, `approval` or `closed` (what `register` meets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<Vec<TreeEntry>>,
    /// `tree`: more entries follow; send this as the next request's `after`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl Reply {
    pub fn new(status: Status, msg: impl Into<String>) -> Reply {
        Reply {
            code: status.code(),
            msg: msg.into(),
            ..Reply::default()
        }
    }

    /// The status, if this build knows the code.
    pub fn status(&self) -> Option<Status> {
        Status::from_code(self.code)
    }

    pub fn is_success(&self) -> bool {
        self.code < 400
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("replies always serialize")
    }

    pub fn from_json(text: &str) -> Result<Reply, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trip() {
        let r = Request::Put {
            path: "dir/näme with space\".txt".into(),
            size: Some(5 << 32),
            offset: 0,
            mkdirs: true,
            eager: false,
            mtime: Some(-5),
        };
        let text = r.to_json();
        assert!(text.contains("\"op\":\"put\""));
        assert_eq!(decode_request(&text).unwrap(), r);
    }

    #[test]
    fn defaults_apply() {
        let r = decode_request(r#"{"op":"ls"}"#).unwrap();
        assert_eq!(
            r,
            Request::Ls {
                path: None,
                start: 0
            }
        );
        let r = decode_request(r#"{"op":"get","path":"a"}"#).unwrap();
        assert_eq!(
            r,
            Request::Get {
                path: "a".into(),
                offset: 0
            }
        );
    }

    #[test]
    fn decode_errors_are_told_apart() {
        assert_eq!(
            decode_request("garbage").unwrap_err().status(),
            Status::BadFrame
        );
        assert_eq!(
            decode_request("[1]").unwrap_err().status(),
            Status::BadFrame
        );
        assert_eq!(decode_request("{}").unwrap_err().status(), Status::BadFrame);
        assert_eq!(
            decode_request(r#"{"op":"format_disk"}"#)
                .unwrap_err()
                .status(),
            Status::UnknownCommand
        );
        assert_eq!(
            decode_request(r#"{"op":"cd"}"#).unwrap_err().status(),
            Status::BadArguments
        );
        assert_eq!(
            decode_request(r#"{"op":"put","path":"a","size":-1}"#)
                .unwrap_err()
                .status(),
            Status::BadArguments
        );
    }

    #[test]
    fn password_debug_is_masked() {
        let r = Request::Login {
            user: "alice".into(),
            password: Password("hunter2".into()),
            protocol: None,
        };
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn known_ops_cover_every_variant() {
        for r in [
            Request::Quit,
            Request::Noop,
            Request::Pwd,
            Request::Quota,
            Request::Done { sha256: "x".into() },
        ] {
            assert!(KNOWN_OPS.contains(&r.op()));
        }
        assert_eq!(KNOWN_OPS.len(), 20);
    }
}
