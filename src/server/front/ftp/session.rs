//! One FTP control session as a state machine without I/O: the event loop
//! feeds it [`Input`]s (parsed command lines, the core's replies, what
//! happened on the data connection) and carries out the [`Output`]s it
//! returns, in order. It holds only what FTP has and the core doesn't:
//! login progress, TLS and PBSZ/PROT, TYPE/MODE/STRU, the REST offset, the
//! RNFR name, the data channel and the running transfer, OPTS. The jail,
//! quotas, uploads and listings are the core's, reached through
//! [`proto::Request`](crate::proto::Request)s.
//!
//! Ordering rule for the loop: feed an [`Input::Command`] only while
//! [`FtpSession::ready_for_command`] says so (at most one core call is in
//! flight, as on the native protocol); feed every other input when it
//! happens.

mod control;
mod files;
#[cfg(test)]
mod tests;
mod transfer;

use std::net::{IpAddr, SocketAddr};

use super::command::{Command, CommandError};
use super::listing::Facts;
use super::reply::FtpReply;
use crate::limits::MAX_FTP_LINE;
use crate::proto::{Reply, Request};
use crate::storage::VPath;
use transfer::{DataChannel, Transfer};

/// What the session waits for: the reply to one core call, or the passive
/// listener. Each variant says what to answer when it comes.
#[derive(Debug)]
enum Pending {
    Login,
    Passive {
        extended: bool,
    },
    Cwd,
    Size {
        path: String,
    },
    Mdtm,
    Mlst {
        shown: String,
        full: String,
    },
    /// DELE, RMD, RNTO: a fixed success reply.
    Done {
        code: u16,
        text: String,
    },
    Mkd {
        path: String,
    },
    Rnfr {
        path: String,
    },
    Mfmt {
        path: String,
        mtime: i64,
    },
    Hash {
        path: String,
    },
    Xsha256,
    StatList {
        path: String,
    },
    /// The core's answer to the transfer in `FtpSession::transfer`: its 150
    /// (or first listing page), or why not.
    Open,
    /// The next page of the running listing.
    NextPage,
    /// The final reply to [`DataAction::Commit`]; `abor` when an ABOR came
    /// during the transfer and still needs its own 226.
    Commit {
        abor: bool,
    },
}

/// What the listener's configuration says about this session.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// The server has a certificate: `AUTH TLS` is offered.
    pub tls_available: bool,
    /// The connection came in on the implicit-FTPS listener and is already
    /// TLS (implies PBSZ 0 and PROT P, as MS-FTPS does).
    pub implicit_tls: bool,
    /// `USER` before `AUTH TLS` gets 530, and transfers need `PROT P`.
    pub require_tls: bool,
    /// PORT and EPRT are allowed (to the control peer's own address only).
    pub active_mode: bool,
    /// The control connection's peer: active-mode targets must match it.
    pub peer: IpAddr,
    /// The text of the 220 greeting.
    pub greeting: String,
}

/// Something that happened, for the session to react to.
// Inputs are moved into `handle` once and never stored: boxing the core's
// reply would only add an allocation per request.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Input {
    /// One command line, parsed by [`super::command::parse`].
    Command(Result<Command, CommandError>),
    /// [`super::command::split_line`] said `TooLong`.
    LineTooLong,
    /// The core's reply to the last [`Output::Core`] or [`Output::Ftp`], or
    /// to [`DataAction::Commit`].
    Core(Reply),
    /// The passive listener asked for by [`DataAction::Listen`] is bound;
    /// the address to advertise (`passive_address` or the local one).
    PassiveReady(SocketAddr),
    /// No passive listener could be bound (e.g. the port range is in use).
    PassiveFailed(String),
    /// The bytes of the last [`DataAction::SendListing`] were written.
    ListingSent,
    /// The running transfer's data connection is over.
    DataEnded(DataEnd),
}

/// How a data connection ended.
#[derive(Debug)]
pub enum DataEnd {
    /// Every byte moved and the connection ended cleanly: for an upload,
    /// the client's close_notify (under PROT P) or FIN (in clear) arrived;
    /// for a download or listing, all was written and closed.
    Clean { bytes: u64 },
    /// The connection ended early: reset, or EOF without close_notify
    /// under PROT P. An upload must not be committed.
    Cut { bytes: u64 },
    /// No data connection came in time, or the active connect failed.
    NoConnection,
    /// Under PROT P, the data connection did not resume the control
    /// connection's TLS session and `require_tls_session_reuse` is on.
    NotResumed,
    /// The TLS handshake on the data connection failed.
    TlsFailed(String),
    /// The core failed the transfer midway (552 quota, 451 I/O): its reply.
    Failed(Box<Reply>),
    /// Stopped after [`DataAction::Abort`].
    Aborted { bytes: u64 },
}

/// What the loop must do, in the order given.
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this reply on the control connection.
    Reply(FtpReply),
    /// Run this request in the core (as a native session would); feed its
    /// reply back as [`Input::Core`].
    Core(Request),
    /// Run this operation the core has no request for yet; feed its reply
    /// back as [`Input::Core`].
    Ftp(FtpOp),
    /// Act on the data channel.
    Data(DataAction),
    /// After sending the replies before it, start TLS on the control
    /// connection (server side); nothing more is read in clear.
    StartTls,
    /// After sending the replies before it, close the control connection
    /// (and anything left of the data channel).
    Close,
}

/// Core operations FTP needs that [`Request`] lacks today.
#[derive(Debug, PartialEq, Eq)]
pub enum FtpOp {
    /// `APPE`: like `Put`, but the upload continues the committed file
    /// (copied into the partial first) and replaces it on commit. Replies
    /// as `Put` does (150, then the final reply to [`DataAction::Commit`]).
    Append { path: String },
    /// `MFMT`: set a file's modification time; 200 on success.
    SetMtime { path: String, mtime: i64 },
    /// `HASH`/`XSHA256`: the stored SHA-256 of a committed file; 200 with
    /// `size` and `sha256`.
    Sha256 { path: String },
}

/// Data-channel work for the loop.
#[derive(Debug, PartialEq, Eq)]
pub enum DataAction {
    /// Bind a passive listener (closing any earlier one); accept only the
    /// control peer's address, one connection, within the data timeout.
    /// Answer [`Input::PassiveReady`] or [`Input::PassiveFailed`].
    Listen,
    /// Active mode: connect to this address for the transfer that follows.
    Connect(SocketAddr),
    /// The core accepted an upload (150 sent): pump the data connection
    /// into it (TLS first when `protected`), then answer
    /// [`Input::DataEnded`]; commit nothing by yourself.
    Receive { protected: bool },
    /// The core accepted a download (150 sent): send its body on the data
    /// connection, then answer [`Input::DataEnded`].
    Send { protected: bool },
    /// A listing starts (150 sent): open the data connection for the
    /// [`DataAction::SendListing`] chunks that follow.
    OpenListing { protected: bool },
    /// Write these listing bytes; answer [`Input::ListingSent`].
    SendListing(Vec<u8>),
    /// The listing is complete: close the data connection cleanly (our
    /// close_notify under PROT P), then answer [`Input::DataEnded`].
    FinishListing,
    /// The upload ended cleanly: commit it (rename the partial, store its
    /// SHA-256); answer with the core's final reply as [`Input::Core`].
    Commit,
    /// The upload ended without a clean end: close it and keep the partial
    /// for `REST` + `STOR`. No answer.
    KeepPartial,
    /// Stop the running transfer; answer [`Input::DataEnded`].
    Abort,
    /// Close any passive listener or unused data connection. No answer.
    Close,
}

/// One FTP control session.
pub struct FtpSession {
    cfg: SessionConfig,
    /// The control connection is TLS.
    tls: bool,
    pbsz: bool,
    /// PROT P: data connections are TLS.
    prot_private: bool,
    /// The name from USER, waiting for PASS.
    user: Option<String>,
    logged_in: bool,
    /// The current directory, as the core last reported it.
    cwd: VPath,
    /// The offset from REST, for the next transfer.
    rest: u64,
    /// The name from RNFR, for an RNTO right after it.
    rename_from: Option<String>,
    facts: Facts,
    data: DataChannel,
    /// After `EPSV ALL`, only EPSV may set up data connections (RFC 2428).
    epsv_all: bool,
    /// The core call (or passive listener) this session waits for.
    waiting: Option<Pending>,
    transfer: Option<Transfer>,
    /// A command that came during a transfer, run when it ends.
    deferred: Option<Command>,
    closed: bool,
}

impl FtpSession {
    /// A new session and its greeting.
    pub fn new(cfg: SessionConfig) -> (FtpSession, Vec<Output>) {
        let implicit = cfg.implicit_tls;
        let greeting = FtpReply::new(220, cfg.greeting.clone());
        let session = FtpSession {
            cfg,
            tls: implicit,
            pbsz: implicit,
            prot_private: implicit,
            user: None,
            logged_in: false,
            cwd: VPath::root(),
            rest: 0,
            rename_from: None,
            facts: Facts::default(),
            data: DataChannel::None,
            epsv_all: false,
            waiting: None,
            transfer: None,
            deferred: None,
            closed: false,
        };
        (session, vec![Output::Reply(greeting)])
    }

    /// May the loop parse and feed the next command line? Not while a core
    /// call is in flight, nor while a command waits for a transfer to end:
    /// unread lines stay in the loop's (bounded) input buffer.
    pub fn ready_for_command(&self) -> bool {
        !self.closed && self.waiting.is_none() && self.deferred.is_none()
    }

    /// Logged in (the loop counts sessions and picks timeouts by it).
    pub fn logged_in(&self) -> bool {
        self.logged_in
    }

    /// Reacts to one input; the outputs are to be carried out in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        if self.closed {
            return out;
        }
        match input {
            Input::Command(Ok(cmd)) => self.command(cmd, &mut out),
            Input::Command(Err(e)) => {
                let code = match e {
                    CommandError::Empty => 500,
                    CommandError::BadArgument { .. } => 501,
                };
                reply(&mut out, code, e.to_string());
            }
            Input::LineTooLong => {
                let msg = format!("command line longer than {MAX_FTP_LINE} bytes; closing");
                reply(&mut out, 500, msg);
                self.close(&mut out);
            }
            Input::Core(r) => self.on_core(r, &mut out),
            Input::PassiveReady(addr) => self.on_passive_ready(addr, &mut out),
            Input::PassiveFailed(why) => self.on_passive_failed(why, &mut out),
            Input::ListingSent => self.on_listing_sent(&mut out),
            Input::DataEnded(end) => self.on_data_ended(end, &mut out),
        }
        out
    }

    /// One command, in any state.
    fn command(&mut self, cmd: Command, out: &mut Vec<Output>) {
        if self.transfer.is_some() {
            if !self.during_transfer(&cmd, out) {
                self.deferred = Some(cmd);
            }
            return;
        }
        if !self.logged_in && !allowed_before_login(&cmd) {
            reply(out, 530, "log in with USER and PASS first");
            return;
        }
        // RNTO must come right after RNFR (RFC 959 §4.1.3).
        let rename_from = self.rename_from.take();
        match cmd {
            Command::Rnto(to) => self.rnto(rename_from, to, out),
            cmd if is_transfer_setup(&cmd) => self.data_command(cmd, out),
            cmd if is_control(&cmd) => self.control_command(cmd, out),
            cmd => self.file_command(cmd, out),
        }
    }

    /// A command during a transfer: ABOR, STAT, NOOP and QUIT are answered
    /// now (RFC 959 §4.1.3); false means "run it when the transfer ends".
    fn during_transfer(&mut self, cmd: &Command, out: &mut Vec<Output>) -> bool {
        match cmd {
            Command::Abor => self.abort_transfer(out),
            Command::Stat(None) => reply(out, 211, "a transfer is in progress"),
            Command::Noop => reply(out, 200, "ok"),
            Command::Quit => {
                self.quit_during_transfer(out);
            }
            _ => return false,
        }
        true
    }

    /// The reply to whatever the session waits for.
    fn on_core(&mut self, r: Reply, out: &mut Vec<Output>) {
        let Some(pending) = self.waiting.take() else {
            return;
        };
        if files::is_shutdown(&r) {
            reply(out, 421, r.msg);
            return self.close(out);
        }
        match pending {
            Pending::Login => self.on_login(r, out),
            Pending::Passive { .. } => self.waiting = Some(pending),
            Pending::Open => self.on_transfer_open(r, out),
            Pending::NextPage => self.on_next_page(r, out),
            Pending::Commit { abor } => self.on_commit(r, abor, out),
            other => self.on_file_reply(other, r, out),
        }
    }

    fn close(&mut self, out: &mut Vec<Output>) {
        self.closed = true;
        out.push(Output::Close);
    }

    /// Runs the command held back during a transfer, now that it ended.
    fn run_deferred(&mut self, out: &mut Vec<Output>) {
        if self.waiting.is_none() && self.transfer.is_none() {
            if let Some(cmd) = self.deferred.take() {
                self.command(cmd, out);
            }
        }
    }
}

/// The commands a client may send before logging in: the login itself,
/// TLS set-up (PBSZ and PROT too, libunftp #327: clients send them first),
/// and the harmless ones clients send while connecting. Everything else
/// gets 530, so an anonymous peer reaches very little code.
fn allowed_before_login(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::User(_)
            | Command::Pass(_)
            | Command::Auth(_)
            | Command::Pbsz(_)
            | Command::Prot(_)
            | Command::Feat
            | Command::Opts(_)
            | Command::Syst
            | Command::Clnt(_)
            | Command::Noop
            | Command::Help(_)
            | Command::Quit
            | Command::Unknown(_)
    )
}

/// Commands answered from the session's own state.
fn is_control(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::User(_)
            | Command::Pass(_)
            | Command::Auth(_)
            | Command::Pbsz(_)
            | Command::Prot(_)
            | Command::Feat
            | Command::Opts(_)
            | Command::Syst
            | Command::Clnt(_)
            | Command::Pwd
            | Command::Type(_)
            | Command::Mode(_)
            | Command::Stru(_)
            | Command::Rest(_)
            | Command::Noop
            | Command::Abor
            | Command::Stat(None)
            | Command::Help(_)
            | Command::Quit
            | Command::Site(_)
            | Command::Unknown(_)
    )
}

/// Commands that set up or use the data channel.
fn is_transfer_setup(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::Epsv(_)
            | Command::Pasv
            | Command::Eprt(_)
            | Command::Port(_)
            | Command::List(_)
            | Command::Nlst(_)
            | Command::Mlsd(_)
            | Command::Stor(_)
            | Command::Appe(_)
            | Command::Retr(_)
    )
}

/// Appends a single-line reply.
fn reply(out: &mut Vec<Output>, code: u16, text: impl Into<String>) {
    out.push(Output::Reply(FtpReply::new(code, text)));
}

/// `"path"` with inner quotes doubled (RFC 959 appendix II).
fn quoted(path: &str) -> String {
    format!("\"{}\"", path.replace('"', "\"\""))
}
