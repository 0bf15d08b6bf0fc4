//! The data channel and the transfers over it: PASV/EPSV (and PORT/EPRT
//! when active mode is on), then STOR/APPE/RETR/LIST/NLST/MLSD from the
//! core's 150 to the final reply. An upload is committed only after a clean
//! end of its data connection; any other end keeps the partial for
//! `REST` + `STOR` and answers 426 (or why).

use std::net::SocketAddr;

use super::files::{core_error, now_secs};
use super::{reply, DataAction, DataEnd, FtpOp, FtpSession, Output, Pending};
use crate::proto::{Reply, Request, Status};
use crate::server::front::ftp::command::Command;
use crate::server::front::ftp::listing::{list_line, listable, mlsx_line, nlst_line, Facts};
use crate::storage::VPath;

/// How the next transfer's data connection will be made.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum DataChannel {
    None,
    /// [`DataAction::Listen`] was sent; the listener isn't confirmed yet.
    Listening,
    /// A passive listener is up (the client may have connected already).
    Passive,
    /// PORT/EPRT: connect to this address when the transfer starts.
    Active(SocketAddr),
}

/// Which listing format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Style {
    List,
    Nlst,
    Mlsd,
}

#[derive(Debug)]
pub(super) enum Kind {
    /// STOR (from `offset`, the REST) or APPE.
    Upload {
        append: bool,
        offset: u64,
    },
    Download,
    /// `dir` is the listed directory's full path (for `unique`); `next`
    /// the core's index of the next page, if any.
    Listing {
        style: Style,
        path: Option<String>,
        dir: VPath,
        next: Option<u64>,
    },
}

/// The transfer this session runs (at most one).
#[derive(Debug)]
pub(super) struct Transfer {
    kind: Kind,
    /// The 150 was sent and the loop is moving data.
    started: bool,
    /// ABOR came: the loop was told to stop; the ABOR still needs its 226.
    aborting: bool,
    /// The data connection ended while a listing page was being fetched.
    ended: Option<DataEnd>,
    /// A listing page failed midway: the reply to send at the end.
    failure: Option<Reply>,
}

impl FtpSession {
    pub(super) fn data_command(&mut self, cmd: Command, out: &mut Vec<Output>) {
        match cmd {
            Command::Pasv => self.passive(false, None, out),
            Command::Epsv(arg) => self.passive(true, arg, out),
            Command::Port(addr) | Command::Eprt(addr) => self.active(addr, out),
            Command::List(path) => self.start_listing(Style::List, path, out),
            Command::Nlst(path) => self.start_listing(Style::Nlst, path, out),
            Command::Mlsd(path) => self.start_listing(Style::Mlsd, path, out),
            Command::Stor(path) => self.start_upload(path, false, out),
            Command::Appe(path) => self.start_upload(path, true, out),
            Command::Retr(path) => {
                if self.ready_to_transfer(out) {
                    let offset = std::mem::take(&mut self.rest);
                    self.begin(
                        Kind::Download,
                        Output::Core(Request::Get { path, offset }),
                        out,
                    );
                }
            }
            other => reply(out, 502, format!("{other:?} is not a data command")),
        }
    }

    /// PASV or EPSV (RFC 959 §4.1.2, RFC 2428 §3).
    fn passive(&mut self, extended: bool, arg: Option<String>, out: &mut Vec<Output>) {
        if !extended && self.epsv_all {
            return reply(out, 503, "EPSV ALL is in effect: use EPSV");
        }
        match arg.as_deref().map(str::to_ascii_uppercase).as_deref() {
            None => {}
            Some("ALL") => {
                self.epsv_all = true;
                return reply(out, 200, "EPSV ALL ok");
            }
            Some(p @ ("1" | "2")) => {
                let ours = if self.cfg.peer.is_ipv6() { "2" } else { "1" };
                if p != ours {
                    let text = format!("network protocol not supported, use ({ours})");
                    return reply(out, 522, text);
                }
            }
            Some(other) => return reply(out, 501, format!("EPSV {other}: expected 1, 2 or ALL")),
        }
        self.data = DataChannel::Listening;
        self.waiting = Some(Pending::Passive { extended });
        out.push(Output::Data(DataAction::Listen));
    }

    pub(super) fn on_passive_ready(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        let Some(Pending::Passive { extended }) = self.waiting else {
            return;
        };
        self.waiting = None;
        self.data = DataChannel::Passive;
        match addr {
            _ if extended => {
                let text = format!("entering extended passive mode (|||{}|)", addr.port());
                reply(out, 229, text);
            }
            SocketAddr::V4(v4) => {
                let [a, b, c, d] = v4.ip().octets();
                let [hi, lo] = v4.port().to_be_bytes();
                let text = format!("entering passive mode ({a},{b},{c},{d},{hi},{lo})");
                reply(out, 227, text);
            }
            SocketAddr::V6(_) => {
                self.drop_data_channel(out);
                reply(out, 425, "PASV can't show an IPv6 address; use EPSV");
            }
        }
    }

    pub(super) fn on_passive_failed(&mut self, why: String, out: &mut Vec<Output>) {
        if let Some(Pending::Passive { .. }) = self.waiting {
            self.waiting = None;
            self.data = DataChannel::None;
            reply(out, 425, format!("can't open a passive data port: {why}"));
        }
    }

    /// PORT or EPRT: only with `active_mode`, and only to the control
    /// connection's own address (RFC 2577: no bounce attacks).
    fn active(&mut self, addr: SocketAddr, out: &mut Vec<Output>) {
        if !self.cfg.active_mode {
            let text = "active mode (PORT/EPRT) is off on this server; use PASV or EPSV";
            return reply(out, 502, text);
        }
        if self.epsv_all {
            return reply(out, 503, "EPSV ALL is in effect: use EPSV");
        }
        if addr.ip().to_canonical() != self.cfg.peer.to_canonical() {
            return reply(
                out,
                501,
                "data connections go only to your own address (RFC 2577)",
            );
        }
        if addr.port() < 1024 {
            return reply(out, 501, "data connections go only to ports 1024 and up");
        }
        self.drop_data_channel(out);
        self.data = DataChannel::Active(addr);
        reply(
            out,
            200,
            "PORT ok; PASV or EPSV work better through firewalls",
        );
    }

    /// Closes a passive listener (or forgets a PORT) set up for a transfer
    /// that won't come.
    pub(super) fn drop_data_channel(&mut self, out: &mut Vec<Output>) {
        if self.data != DataChannel::None {
            out.push(Output::Data(DataAction::Close));
        }
        self.data = DataChannel::None;
    }

    /// The checks before any transfer: a data channel, and PROT P where
    /// TLS is required (vsftpd's `force_local_data_ssl` answers 521 too).
    fn ready_to_transfer(&mut self, out: &mut Vec<Output>) -> bool {
        if self.cfg.require_tls && !self.prot_private {
            reply(
                out,
                521,
                "data connections must be protected: send PBSZ 0 and PROT P",
            );
            false
        } else if matches!(self.data, DataChannel::Passive | DataChannel::Active(_)) {
            true
        } else {
            reply(out, 425, "use PASV or EPSV first");
            false
        }
    }

    fn start_listing(&mut self, style: Style, path: Option<String>, out: &mut Vec<Output>) {
        if !self.ready_to_transfer(out) {
            return;
        }
        self.rest = 0;
        let dir = VPath::resolve(&self.cwd, path.as_deref().unwrap_or("."))
            .unwrap_or_else(|_| self.cwd.clone());
        let ls = Request::Ls {
            path: path.clone(),
            start: 0,
        };
        let kind = Kind::Listing {
            style,
            path,
            dir,
            next: None,
        };
        self.begin(kind, Output::Core(ls), out);
    }

    fn start_upload(&mut self, path: String, append: bool, out: &mut Vec<Output>) {
        if !self.ready_to_transfer(out) {
            return;
        }
        // REST with APPE means nothing (RFC 3659 §5.1): it's dropped.
        let offset = std::mem::take(&mut self.rest);
        let (call, offset) = if append {
            (Output::Ftp(FtpOp::Append { path }), 0)
        } else {
            let put = Request::Put {
                path,
                size: None,
                offset,
                mkdirs: false,
                eager: false,
                mtime: None,
            };
            (Output::Core(put), offset)
        };
        self.begin(Kind::Upload { append, offset }, call, out);
    }

    fn begin(&mut self, kind: Kind, call: Output, out: &mut Vec<Output>) {
        self.transfer = Some(Transfer {
            kind,
            started: false,
            aborting: false,
            ended: None,
            failure: None,
        });
        self.waiting = Some(Pending::Open);
        out.push(call);
    }

    /// The core's answer to the transfer's request: go (150, or a first
    /// listing page), or why not.
    pub(super) fn on_transfer_open(&mut self, r: Reply, out: &mut Vec<Output>) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        let go = match t.kind {
            Kind::Listing { .. } => r.is_success(),
            _ => r.code == Status::Ready.code(),
        };
        if !go {
            self.transfer = None;
            self.drop_data_channel(out);
            return core_error(&r, out);
        }
        t.started = true;
        let protected = self.prot_private;
        let (text, action) = match &t.kind {
            Kind::Upload { .. } => (
                "ok to send data".to_owned(),
                DataAction::Receive { protected },
            ),
            Kind::Download => {
                let size = r.size.map(|s| format!(" ({s} bytes)")).unwrap_or_default();
                let text = format!("opening BINARY mode data connection{size}");
                (text, DataAction::Send { protected })
            }
            Kind::Listing { .. } => (
                "here comes the listing".to_owned(),
                DataAction::OpenListing { protected },
            ),
        };
        reply(out, 150, text);
        if let DataChannel::Active(addr) = std::mem::replace(&mut self.data, DataChannel::None) {
            out.push(Output::Data(DataAction::Connect(addr)));
        }
        out.push(Output::Data(action));
        if matches!(t.kind, Kind::Listing { .. }) {
            self.send_page(r, out);
        }
    }

    /// Formats one page of a listing and hands it to the loop.
    fn send_page(&mut self, r: Reply, out: &mut Vec<Output>) {
        let facts = self.facts;
        let Some(Transfer {
            kind: Kind::Listing {
                style, dir, next, ..
            },
            ..
        }) = self.transfer.as_mut()
        else {
            return;
        };
        *next = r.next;
        let text = page_text(*style, dir, facts, r.entries.as_deref().unwrap_or(&[]));
        out.push(Output::Data(DataAction::SendListing(text.into_bytes())));
    }

    /// A listing page was written: ask for the next, or finish.
    pub(super) fn on_listing_sent(&mut self, out: &mut Vec<Output>) {
        if self.waiting.is_some() {
            return;
        }
        let Some(Transfer {
            kind: Kind::Listing { path, next, .. },
            started: true,
            aborting: false,
            failure: None,
            ..
        }) = &self.transfer
        else {
            return;
        };
        match next {
            Some(start) => {
                let ls = Request::Ls {
                    path: path.clone(),
                    start: *start,
                };
                self.waiting = Some(Pending::NextPage);
                out.push(Output::Core(ls));
            }
            None => out.push(Output::Data(DataAction::FinishListing)),
        }
    }

    pub(super) fn on_next_page(&mut self, r: Reply, out: &mut Vec<Output>) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        if let Some(end) = t.ended.take() {
            return self.finish(end, out);
        }
        if t.aborting {
            return;
        }
        if r.is_success() {
            self.send_page(r, out);
        } else {
            // The directory went away midway: stop, and say why at the end.
            t.failure = Some(r);
            out.push(Output::Data(DataAction::Abort));
        }
    }

    /// ABOR during a transfer (RFC 959 §4.1.3): the transfer's reply (426,
    /// or 226 if it had finished) comes first, then ABOR's 226.
    pub(super) fn abort_transfer(&mut self, out: &mut Vec<Output>) {
        if let Some(t) = self.transfer.as_mut() {
            if !t.aborting {
                t.aborting = true;
                out.push(Output::Data(DataAction::Abort));
            }
        }
    }

    /// QUIT during a transfer: stop it, keep an upload's partial, close.
    pub(super) fn quit_during_transfer(&mut self, out: &mut Vec<Output>) {
        if let Some(t) = self.transfer.take() {
            out.push(Output::Data(DataAction::Abort));
            if matches!(t.kind, Kind::Upload { .. }) {
                out.push(Output::Data(DataAction::KeepPartial));
            }
        }
        reply(out, 221, "goodbye (the transfer was stopped)");
        self.close(out);
    }

    pub(super) fn on_data_ended(&mut self, end: DataEnd, out: &mut Vec<Output>) {
        let Some(t) = self.transfer.as_mut() else {
            return;
        };
        if !t.started {
            return;
        }
        match self.waiting {
            // A listing page is being fetched: finish when it comes.
            Some(Pending::NextPage) => t.ended = Some(end),
            // The upload is being committed: its end was already seen.
            Some(_) => {}
            None => self.finish(end, out),
        }
    }

    /// The data connection is over: commit, or answer why not.
    fn finish(&mut self, end: DataEnd, out: &mut Vec<Output>) {
        let Some(mut t) = self.transfer.take() else {
            return;
        };
        self.data = DataChannel::None;
        self.waiting = None;
        if let Some(failure) = t.failure.take() {
            core_error(&failure, out);
        } else if let Kind::Upload { append, offset } = t.kind {
            if let DataEnd::Clean { .. } = end {
                // The transfer stays until the commit's reply.
                self.waiting = Some(Pending::Commit { abor: t.aborting });
                self.transfer = Some(t);
                out.push(Output::Data(DataAction::Commit));
                return;
            }
            if !matches!(end, DataEnd::Failed(_)) {
                out.push(Output::Data(DataAction::KeepPartial));
            }
            upload_end_reply(end, append, offset, out);
        } else {
            download_end_reply(end, out);
        }
        if t.aborting {
            reply(out, 226, "ABOR ok");
        }
        self.run_deferred(out);
    }

    /// The core's reply to [`DataAction::Commit`].
    pub(super) fn on_commit(&mut self, r: Reply, abor: bool, out: &mut Vec<Output>) {
        self.transfer = None;
        if r.code == Status::TransferComplete.code() {
            let size = r.size.map(|s| format!(": {s} bytes")).unwrap_or_default();
            let sha = r
                .sha256
                .as_ref()
                .map(|s| format!(", SHA-256 {s}"))
                .unwrap_or_default();
            reply(out, 226, format!("transfer complete{size}{sha}"));
        } else {
            core_error(&r, out);
        }
        if abor {
            reply(out, 226, "ABOR ok");
        }
        self.run_deferred(out);
    }
}

/// The reply for an upload that did not end cleanly.
fn upload_end_reply(end: DataEnd, append: bool, offset: u64, out: &mut Vec<Output>) {
    let kept = |bytes: u64| {
        if append {
            "the partial upload was kept".to_owned()
        } else {
            let held = offset.saturating_add(bytes);
            format!("the partial upload was kept: resume with REST {held} and STOR")
        }
    };
    match end {
        DataEnd::Cut { bytes } => reply(
            out,
            426,
            format!(
                "data connection closed early after {bytes} bytes; {}",
                kept(bytes)
            ),
        ),
        DataEnd::Aborted { bytes } => reply(out, 426, format!("transfer aborted; {}", kept(bytes))),
        other => download_end_reply(other, out),
    }
}

/// The reply for a download or listing, and the non-byte ends of uploads.
fn download_end_reply(end: DataEnd, out: &mut Vec<Output>) {
    match end {
        DataEnd::Clean { .. } => reply(out, 226, "transfer complete"),
        DataEnd::Cut { bytes } => {
            let text = format!("data connection closed early after {bytes} bytes");
            reply(out, 426, text);
        }
        DataEnd::Aborted { .. } => reply(out, 426, "transfer aborted"),
        DataEnd::NoConnection => reply(out, 425, "no data connection came in time"),
        DataEnd::NotResumed => reply(
            out,
            522,
            "the data connection must resume the control connection's TLS session",
        ),
        DataEnd::TlsFailed(why) => reply(
            out,
            522,
            format!("TLS on the data connection failed: {why}"),
        ),
        DataEnd::Failed(r) => core_error(&r, out),
    }
}

/// One page of listing text.
fn page_text(style: Style, dir: &VPath, facts: Facts, entries: &[crate::proto::Entry]) -> String {
    let now = now_secs();
    let mut text = String::new();
    for e in entries.iter().filter(|e| listable(&e.name)) {
        match style {
            Style::List => text.push_str(&list_line(e, now)),
            Style::Nlst => text.push_str(&nlst_line(e)),
            Style::Mlsd => {
                let full = dir.join(&e.name).to_string();
                text.push_str(&mlsx_line(e, &e.name, &full, facts));
                text.push_str("\r\n");
            }
        }
    }
    text
}
