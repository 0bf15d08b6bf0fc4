//! Commands on paths that need no data connection: each becomes one core
//! request (or [`FtpOp`]), and its reply is worded the FTP way.

use super::{quoted, reply, FtpOp, FtpSession, Output, Pending};
use crate::proto::{EntryKind, Reply, Request, Status};
use crate::server::front::ftp::command::Command;
use crate::server::front::ftp::listing::{format_time, list_line, listable, mlsx_line};
use crate::server::front::ftp::reply::{ftp_code, status_of, FtpReply};
use crate::storage::VPath;

impl FtpSession {
    pub(super) fn file_command(&mut self, cmd: Command, out: &mut Vec<Output>) {
        let stat = |path: String| Request::Stat { path };
        let (request, pending) = match cmd {
            Command::Cwd(path) => (Request::Cd { path }, Pending::Cwd),
            Command::Cdup => (Request::Cd { path: "..".into() }, Pending::Cwd),
            Command::Size(path) => (stat(path.clone()), Pending::Size { path }),
            Command::Mdtm(path) => (stat(path), Pending::Mdtm),
            Command::Mlst(path) => {
                let full = self.full_path(path.as_deref());
                let shown = path.unwrap_or_else(|| full.clone());
                (stat(shown.clone()), Pending::Mlst { shown, full })
            }
            Command::Dele(path) => {
                let text = format!("{path}: deleted");
                let rm = Request::Rm {
                    path,
                    recursive: false,
                    force: false,
                };
                (rm, Pending::Done { code: 250, text })
            }
            Command::Mkd(path) => {
                let mkdir = Request::Mkdir {
                    path: path.clone(),
                    parents: false,
                };
                (mkdir, Pending::Mkd { path })
            }
            Command::Rmd(path) => {
                let text = format!("{path}: directory removed");
                (Request::Rmdir { path }, Pending::Done { code: 250, text })
            }
            Command::Rnfr(path) => (stat(path.clone()), Pending::Rnfr { path }),
            Command::Stat(Some(path)) => {
                let ls = Request::Ls {
                    path: Some(path.clone()),
                    start: 0,
                };
                (ls, Pending::StatList { path })
            }
            other => return self.ftp_op(other, out),
        };
        self.waiting = Some(pending);
        out.push(Output::Core(request));
    }

    /// The commands the core has no request for (see [`FtpOp`]).
    fn ftp_op(&mut self, cmd: Command, out: &mut Vec<Output>) {
        let (op, pending) = match cmd {
            Command::Mfmt { mtime, path } => (
                FtpOp::SetMtime {
                    path: path.clone(),
                    mtime,
                },
                Pending::Mfmt { path, mtime },
            ),
            Command::Hash(path) => (FtpOp::Sha256 { path: path.clone() }, Pending::Hash { path }),
            Command::Xsha256(path) => (FtpOp::Sha256 { path }, Pending::Xsha256),
            other => return reply(out, 502, format!("{other:?} is not implemented")),
        };
        self.waiting = Some(pending);
        out.push(Output::Ftp(op));
    }

    /// RNTO, with the name of the RNFR right before it (if any).
    pub(super) fn rnto(&mut self, from: Option<String>, to: String, out: &mut Vec<Output>) {
        let Some(from) = from else {
            return reply(out, 503, "send RNFR first");
        };
        let text = format!("{from} renamed to {to}");
        self.waiting = Some(Pending::Done { code: 250, text });
        out.push(Output::Core(Request::Mv { from, to }));
    }

    /// The core's reply to a path command.
    pub(super) fn on_file_reply(&mut self, pending: Pending, r: Reply, out: &mut Vec<Output>) {
        if !r.is_success() {
            return core_error(&r, out);
        }
        match pending {
            Pending::Cwd => {
                if let Some(cwd) = r.cwd.as_deref() {
                    self.cwd = VPath::resolve(&VPath::root(), cwd).unwrap_or_default();
                }
                reply(out, 250, format!("directory changed to {}", self.cwd));
            }
            Pending::Size { path } => match &r.entry {
                Some(e) if e.kind == EntryKind::File => reply(out, 213, e.size.to_string()),
                _ => reply(out, 550, format!("{path}: not a regular file")),
            },
            Pending::Mdtm => match &r.entry {
                Some(e) => reply(out, 213, format_time(e.mtime)),
                None => reply(out, 451, "the server sent no metadata"),
            },
            Pending::Mlst { shown, full } => self.mlst_reply(&r, &shown, &full, out),
            Pending::Done { code, text } => reply(out, code, text),
            Pending::Mkd { path } => reply(out, 257, format!("{} created", quoted(&path))),
            Pending::Rnfr { path } => {
                self.rename_from = Some(path);
                reply(out, 350, "ready for RNTO");
            }
            Pending::Mfmt { path, mtime } => {
                reply(out, 213, format!("Modify={}; {path}", format_time(mtime)))
            }
            Pending::Hash { path } => match (&r.sha256, r.size) {
                (Some(sha), Some(size)) => {
                    reply(out, 213, format!("SHA-256 0-{size} {sha} {path}"));
                }
                _ => reply(out, 451, format!("{path}: no digest is available")),
            },
            Pending::Xsha256 => match &r.sha256 {
                Some(sha) => reply(out, 250, sha.clone()),
                None => reply(out, 451, "no digest is available"),
            },
            Pending::StatList { path } => out.push(Output::Reply(stat_listing(&r, &path))),
            other => reply(
                out,
                451,
                format!("internal: unexpected reply for {other:?}"),
            ),
        }
    }

    fn mlst_reply(&self, r: &Reply, shown: &str, full: &str, out: &mut Vec<Output>) {
        let Some(e) = &r.entry else {
            return reply(out, 451, "the server sent no metadata");
        };
        // RFC 3659 §7.2: the fact line starts with a space.
        let line = format!(" {}", mlsx_line(e, shown, full, self.facts));
        let text = format!("listing {shown}");
        out.push(Output::Reply(FtpReply::multi(250, text, vec![line], "End")));
    }

    /// The full path of `path` (default: the cwd) below the home, for the
    /// `unique` fact; the core resolves it again for real.
    pub(super) fn full_path(&self, path: Option<&str>) -> String {
        let dir = path.unwrap_or(".");
        VPath::resolve(&self.cwd, dir)
            .unwrap_or_else(|_| self.cwd.clone())
            .to_string()
    }
}

/// A core failure as an FTP reply, with the core's message.
pub(super) fn core_error(r: &Reply, out: &mut Vec<Output>) {
    reply(out, ftp_code(status_of(r.code), 451), r.msg.clone());
}

/// STAT with a path: the first page of its listing on the control
/// connection, as LIST lines (RFC 959 §4.1.3).
fn stat_listing(r: &Reply, path: &str) -> FtpReply {
    let now = now_secs();
    let body = r
        .entries
        .iter()
        .flatten()
        .filter(|e| listable(&e.name))
        .map(|e| list_line(e, now).trim_end().to_owned())
        .collect();
    let end = if r.next.is_some() {
        "End of status (the first page only; LIST shows all)"
    } else {
        "End of status"
    };
    FtpReply::multi(213, format!("status of {path}:"), body, end)
}

/// Seconds since the epoch, for LIST's "recent or not" date format.
pub(super) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Whether a core reply is the one that closes the session.
pub(super) fn is_shutdown(r: &Reply) -> bool {
    r.code == Status::Unavailable.code()
}
