//! FTP replies: their wire format (RFC 959 §4.2, single and multi-line) and
//! the one table from the core's [`Status`] to an FTP reply code.
//!
//! The core's codes are FTP-like already, but FTP clients read some of them
//! differently: rclone treats only 550 and 450 as "not found", so every
//! "no such / wrong type / exists / not empty" answer is 550; FTP has no
//! 429, so a locked-out address hears 530 with "too many" in the text (lftp
//! retries such a 530 after a delay, `ftp:retry-530`).

use crate::proto::Status;

/// One reply to the client on the control connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FtpReply {
    pub code: u16,
    /// The text of the first line.
    pub text: String,
    /// Lines between the first and the last (multi-line replies only); the
    /// last line is then `code` and `end`.
    pub body: Vec<String>,
    pub end: Option<String>,
}

impl FtpReply {
    pub fn new(code: u16, text: impl Into<String>) -> FtpReply {
        FtpReply {
            code,
            text: text.into(),
            body: Vec::new(),
            end: None,
        }
    }

    /// `code-first`, the body lines, then `code end` (RFC 959 §4.2).
    pub fn multi(code: u16, first: impl Into<String>, body: Vec<String>, end: &str) -> FtpReply {
        FtpReply {
            code,
            text: first.into(),
            body,
            end: Some(end.to_owned()),
        }
    }

    /// Appends the reply, CR LF terminated, to `out`. Control characters in
    /// the text (a CR or LF in a file name echoed back) become `?`, so a
    /// reply is always the lines it claims to be; a body line that starts
    /// with a digit gets a leading space, so no client takes it for the
    /// last line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match &self.end {
            None => line(out, &format!("{} ", self.code), &self.text),
            Some(end) => {
                line(out, &format!("{}-", self.code), &self.text);
                for body in &self.body {
                    let pad = if body.starts_with(|c: char| c.is_ascii_digit()) {
                        " "
                    } else {
                        ""
                    };
                    line(out, pad, body);
                }
                line(out, &format!("{} ", self.code), end);
            }
        }
    }

    /// The encoded reply as text (tests, logs).
    pub fn to_wire(&self) -> String {
        let mut out = Vec::new();
        self.encode(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn line(out: &mut Vec<u8>, prefix: &str, text: &str) {
    out.extend_from_slice(prefix.as_bytes());
    for c in text.chars() {
        let c = if c.is_control() { '?' } else { c };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

/// The FTP code for a core reply's status. `success` is the code the FTP
/// command uses when the core succeeded (`250` for CWD, `257` for MKD, ...),
/// since the core answers plain `200` to them all.
pub fn ftp_code(status: Status, success: u16) -> u16 {
    match status {
        Status::Ok | Status::Registered | Status::RegistrationPending => success,
        Status::Ready => 150,
        Status::Greeting => 220,
        Status::Bye => 221,
        Status::TransferComplete => 226,
        Status::LoggedIn => 230,
        Status::Unavailable => 421,
        // FTP has no 429; lftp retries a 530 whose text says "too many".
        Status::TooManyFailures => 530,
        Status::Busy => 450,
        Status::LocalError => 451,
        Status::DiskFull => 452,
        Status::BadFrame | Status::VersionMismatch => 500,
        Status::BadArguments => 501,
        Status::UnknownCommand => 502,
        Status::BadSequence => 503,
        Status::AuthFailed | Status::RegistrationRefused => 530,
        // rclone maps only 550 and 450 to "not found"; FTP's 551 means
        // "page type unknown", 554/555/556/557 mean nothing to clients.
        Status::NotFound
        | Status::WrongType
        | Status::AlreadyExists
        | Status::NotEmpty
        | Status::PermissionDenied => 550,
        Status::QuotaExceeded => 552,
        Status::PathRefused => 553,
        // The server computes an FTP upload's digest itself: a mismatch is
        // its own failure, worth a retry.
        Status::IntegrityFailure => 451,
    }
}

/// A core reply's code as a [`Status`]; an unknown code counts as a local
/// error (the core never sends one).
pub fn status_of(code: u16) -> Status {
    Status::from_code(code).unwrap_or(Status::LocalError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_multi_line() {
        assert_eq!(FtpReply::new(200, "ok").to_wire(), "200 ok\r\n");
        let r = FtpReply::multi(
            211,
            "Features:",
            vec![" UTF8".into(), " EPSV".into()],
            "End",
        );
        assert_eq!(
            r.to_wire(),
            "211-Features:\r\n UTF8\r\n EPSV\r\n211 End\r\n"
        );
    }

    #[test]
    fn text_cannot_break_the_framing() {
        assert_eq!(
            FtpReply::new(550, "a\r\n226 fake").to_wire(),
            "550 a??226 fake\r\n"
        );
        let r = FtpReply::multi(213, "Status", vec!["226 looks final".into()], "End");
        assert_eq!(r.to_wire(), "213-Status\r\n 226 looks final\r\n213 End\r\n");
    }

    #[test]
    fn the_status_table() {
        let want = [
            (Status::Ok, 250),
            (Status::Ready, 150),
            (Status::TransferComplete, 226),
            (Status::LoggedIn, 230),
            (Status::Unavailable, 421),
            (Status::TooManyFailures, 530),
            (Status::Busy, 450),
            (Status::LocalError, 451),
            (Status::DiskFull, 452),
            (Status::BadArguments, 501),
            (Status::AuthFailed, 530),
            (Status::NotFound, 550),
            (Status::WrongType, 550),
            (Status::AlreadyExists, 550),
            (Status::NotEmpty, 550),
            (Status::PermissionDenied, 550),
            (Status::QuotaExceeded, 552),
            (Status::PathRefused, 553),
            (Status::IntegrityFailure, 451),
        ];
        for (status, code) in want {
            assert_eq!(ftp_code(status, 250), code, "{status}");
        }
        // Every status maps to a code of the same class, except the ones FTP
        // clients read differently (documented above).
        for &s in Status::ALL {
            let c = ftp_code(s, 250);
            assert!((100..600).contains(&c));
            assert_eq!(s.is_success(), c < 400, "{s}");
            if matches!(s, Status::IntegrityFailure | Status::TooManyFailures) {
                continue;
            }
            assert_eq!(s.is_transient(), (400..500).contains(&c), "{s}");
        }
    }

    #[test]
    fn unknown_core_codes() {
        assert_eq!(status_of(550), Status::NotFound);
        assert_eq!(status_of(999), Status::LocalError);
    }
}
