//! Commands the session answers from its own state: login (the password
//! check is the core's), TLS set-up, FEAT/OPTS, TYPE/MODE/STRU, REST, and
//! the informational ones.

use super::{quoted, reply, FtpSession, Output, Pending};
use crate::proto::{Password, Reply, Request, Status};
use crate::server::front::ftp::command::{Command, DataType, Opt, Site};
use crate::server::front::ftp::listing::Facts;
use crate::server::front::ftp::reply::{ftp_code, status_of, FtpReply};
use crate::storage::VPath;

/// The verbs HELP lists.
const VERBS: &str = "ABOR APPE AUTH CDUP CLNT CWD DELE EPRT EPSV FEAT HASH HELP LIST MDTM MFMT \
                     MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PBSZ PORT PROT PWD QUIT REST \
                     RETR RMD RNFR RNTO SITE SIZE STAT STOR STRU SYST TYPE USER XCWD XMKD XPWD \
                     XRMD XSHA256";

impl FtpSession {
    pub(super) fn control_command(&mut self, cmd: Command, out: &mut Vec<Output>) {
        match cmd {
            Command::User(name) => self.user(name, out),
            Command::Pass(password) => self.pass(password, out),
            Command::Auth(mechanism) => self.auth(mechanism, out),
            Command::Pbsz(_) => self.pbsz(out),
            Command::Prot(level) => self.prot(&level, out),
            Command::Feat => out.push(Output::Reply(self.feat())),
            Command::Opts(opt) => self.opts(opt, out),
            Command::Syst => reply(out, 215, "UNIX Type: L8"),
            Command::Clnt(_) => reply(out, 200, "noted"),
            Command::Pwd => {
                let text = format!("{} is the current directory", quoted(&self.cwd.to_string()));
                reply(out, 257, text);
            }
            Command::Type(t) => type_reply(t, out),
            Command::Mode(m) if m == "S" => reply(out, 200, "mode set to S"),
            Command::Mode(m) => reply(out, 504, format!("MODE {m} is not supported; use S")),
            Command::Stru(s) if s == "F" => reply(out, 200, "structure set to F"),
            Command::Stru(s) => reply(out, 504, format!("STRU {s} is not supported; use F")),
            Command::Rest(offset) => {
                self.rest = offset;
                let text = format!("restarting at {offset}; send STOR or RETR");
                reply(out, 350, text);
            }
            Command::Noop => reply(out, 200, "ok"),
            Command::Abor => self.abort_idle(out),
            Command::Stat(_) => out.push(Output::Reply(self.status())),
            Command::Help(_) => out.push(Output::Reply(help())),
            Command::Quit => {
                reply(out, 221, "goodbye");
                self.close(out);
            }
            Command::Site(site) => site_reply(site, out),
            Command::Unknown(verb) => reply(out, 502, format!("{verb} is not implemented")),
            other => reply(out, 502, format!("{other:?} is not a control command")),
        }
    }

    fn user(&mut self, name: String, out: &mut Vec<Output>) {
        if self.logged_in {
            reply(out, 503, "already logged in");
        } else if self.cfg.require_tls && !self.tls {
            self.user = None;
            let text = "TLS is required on this server: send AUTH TLS before USER";
            reply(out, 530, text);
        } else {
            reply(out, 331, format!("password required for {name}"));
            self.user = Some(name);
        }
    }

    fn pass(&mut self, password: Password, out: &mut Vec<Output>) {
        if self.logged_in {
            return reply(out, 503, "already logged in");
        }
        let Some(user) = self.user.take() else {
            return reply(out, 503, "send USER first");
        };
        self.waiting = Some(Pending::Login);
        out.push(Output::Core(Request::Login {
            user,
            password,
            protocol: None,
        }));
    }

    /// The core's answer to PASS.
    pub(super) fn on_login(&mut self, r: Reply, out: &mut Vec<Output>) {
        if r.code == Status::LoggedIn.code() {
            self.logged_in = true;
            self.cwd = r
                .cwd
                .as_deref()
                .and_then(|c| VPath::resolve(&VPath::root(), c).ok())
                .unwrap_or_default();
            reply(out, 230, r.msg);
        } else {
            reply(out, ftp_code(status_of(r.code), 530), r.msg);
        }
    }

    fn auth(&mut self, mechanism: Result<(), String>, out: &mut Vec<Output>) {
        if self.tls {
            reply(out, 503, "the control connection is already protected");
        } else if !self.cfg.tls_available {
            reply(out, 534, "TLS is not configured on this server");
        } else if self.logged_in {
            reply(out, 503, "AUTH must come before login");
        } else if let Err(other) = mechanism {
            reply(out, 504, format!("unknown mechanism {other}; use AUTH TLS"));
        } else {
            reply(out, 234, "AUTH TLS ok; start the TLS handshake");
            out.push(Output::StartTls);
            self.tls = true;
            self.user = None;
        }
    }

    fn pbsz(&mut self, out: &mut Vec<Output>) {
        if !self.tls {
            return reply(out, 503, "PBSZ needs AUTH TLS first");
        }
        self.pbsz = true;
        reply(out, 200, "PBSZ=0");
    }

    fn prot(&mut self, level: &str, out: &mut Vec<Output>) {
        if !self.tls {
            return reply(out, 503, "PROT needs AUTH TLS first");
        }
        if !self.pbsz {
            return reply(out, 503, "send PBSZ 0 before PROT");
        }
        match level {
            "P" => {
                self.prot_private = true;
                reply(out, 200, "protection level P: data connections use TLS");
            }
            "C" if self.cfg.require_tls => reply(
                out,
                534,
                "data connections must be protected on this server: use PROT P",
            ),
            "C" => {
                self.prot_private = false;
                reply(out, 200, "protection level C: data connections in clear");
            }
            "S" | "E" => reply(out, 536, format!("PROT {level} is not supported; use P")),
            _ => reply(out, 504, format!("unknown protection level {level}; use P")),
        }
    }

    /// FEAT (RFC 2389). lftp uses MLSD only if the MLST line lists facts;
    /// FileZilla resumes uploads with REST + STOR only if `REST STREAM` is
    /// there.
    fn feat(&self) -> FtpReply {
        let mut lines = vec![
            "EPSV".to_owned(),
            "HASH SHA-256*".to_owned(),
            "MDTM".to_owned(),
            "MFMT".to_owned(),
            self.facts.feat_line(),
            "PASV".to_owned(),
            "REST STREAM".to_owned(),
            "SIZE".to_owned(),
            "TVFS".to_owned(),
            "UTF8".to_owned(),
        ];
        if self.cfg.tls_available {
            lines.extend(["AUTH TLS".to_owned(), "PBSZ".to_owned(), "PROT".to_owned()]);
        }
        if self.cfg.active_mode {
            lines.push("EPRT".to_owned());
        }
        lines.sort();
        let body = lines.into_iter().map(|l| format!(" {l}")).collect();
        FtpReply::multi(211, "Features:", body, "End")
    }

    fn opts(&mut self, opt: Opt, out: &mut Vec<Output>) {
        match opt {
            Opt::Utf8(true) => reply(out, 200, "UTF8 is always on"),
            Opt::Utf8(false) => reply(out, 504, "UTF8 can't be turned off: names are UTF-8"),
            Opt::Mlst(list) => {
                let (facts, echo) = Facts::select(&list);
                self.facts = facts;
                reply(out, 200, format!("MLST OPTS {echo}"));
            }
            Opt::Hash(alg) if alg.is_empty() || alg.eq_ignore_ascii_case("SHA-256") => {
                reply(out, 200, "SHA-256")
            }
            Opt::Hash(alg) => reply(out, 504, format!("{alg} is not supported; use SHA-256")),
            Opt::Other(o) => reply(out, 501, format!("unknown option {o}")),
        }
    }

    /// ABOR with no transfer running: drop a data channel set up for none.
    fn abort_idle(&mut self, out: &mut Vec<Output>) {
        self.drop_data_channel(out);
        reply(out, 225, "no transfer to abort");
    }

    /// STAT without a path (RFC 959 §4.1.3).
    fn status(&self) -> FtpReply {
        let who = match (&self.user, self.logged_in) {
            (_, true) => "logged in".to_owned(),
            (Some(u), false) => format!("waiting for the password of {u}"),
            (None, false) => "not logged in".to_owned(),
        };
        let on = |b: bool| if b { "TLS" } else { "clear" };
        let body = vec![
            format!(" session: {who}"),
            format!(" control connection: {}", on(self.tls)),
            format!(" data connections: {}", on(self.prot_private)),
            " TYPE: binary; MODE: stream; STRU: file".to_owned(),
        ];
        FtpReply::multi(211, "miniftp FTP status", body, "End of status")
    }
}

fn type_reply(t: DataType, out: &mut Vec<Output>) {
    match t {
        DataType::Image => reply(out, 200, "switching to binary mode"),
        // libunftp #380: Cyberduck and curl send TYPE A; refusing it breaks
        // them. The bytes are never converted.
        DataType::Ascii => reply(out, 200, "TYPE A accepted; transfers stay binary"),
        DataType::Other(t) => reply(out, 504, format!("TYPE {t} is not supported; use I")),
    }
}

fn site_reply(site: Site, out: &mut Vec<Output>) {
    match site {
        // lftp's mirror -R and FileZilla send it; permissions are the
        // server's, so it is accepted and does nothing (202, RFC 959).
        Site::Chmod(_) => reply(out, 202, "SITE CHMOD has no effect on this server"),
        Site::Help => reply(out, 214, "SITE CHMOD (accepted, no effect) and SITE HELP"),
        Site::Other(what) => reply(out, 504, format!("SITE {what} is not supported")),
    }
}

fn help() -> FtpReply {
    let words: Vec<&str> = VERBS.split_ascii_whitespace().collect();
    let body = words
        .chunks(12)
        .map(|row| format!(" {}", row.join(" ")))
        .collect();
    FtpReply::multi(
        214,
        "The following commands are recognized:",
        body,
        "Help OK",
    )
}
