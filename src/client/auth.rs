//! Where a client's user name and password come from, in order: `--user`
//! or MINIFTP_USER, then ~/.netrc's `login` for the host, then $USER; the
//! password from MINIFTP_PASSWORD, `--password-file`, ~/.netrc, or (with a
//! terminal) a prompt without echo. Never from the command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::ConnectOpts;
use crate::error::{Error, Result};
use crate::proto::Password;

/// One `machine` (or `default`) entry of a netrc file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    pub machine: Option<String>,
    pub login: Option<String>,
    pub password: Option<String>,
}

/// Parses netrc text: `machine`, `default`, `login`, `password`, `account`
/// tokens; `macdef` bodies (up to an empty line) are skipped.
pub fn parse_netrc(text: &str) -> Vec<NetrcEntry> {
    let mut entries: Vec<NetrcEntry> = Vec::new();
    let mut lines = text.lines();
    let mut tokens: Vec<String> = Vec::new();
    // Tokenise line by line so macdef bodies can be skipped.
    while let Some(line) = lines.next() {
        let mut words = line.split_whitespace();
        while let Some(w) = words.next() {
            if w == "macdef" {
                let _ = words.next();
                for body in lines.by_ref() {
                    if body.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            tokens.push(w.to_string());
        }
    }
    let mut it = tokens.into_iter();
    while let Some(tok) = it.next() {
        match tok.as_str() {
            "machine" => entries.push(NetrcEntry {
                machine: it.next(),
                ..Default::default()
            }),
            "default" => entries.push(NetrcEntry::default()),
            "login" => {
                if let (Some(e), Some(v)) = (entries.last_mut(), it.next()) {
                    e.login = Some(v);
                }
            }
            "password" => {
                if let (Some(e), Some(v)) = (entries.last_mut(), it.next()) {
                    e.password = Some(v);
                }
            }
            "account" => {
                it.next();
            }
            _ => {}
        }
    }
    entries
}

/// The netrc entry for `host` (an exact `machine`, else `default`).
pub fn netrc_lookup(entries: &[NetrcEntry], host: &str) -> Option<NetrcEntry> {
    entries
        .iter()
        .find(|e| e.machine.as_deref() == Some(host))
        .or_else(|| entries.iter().find(|e| e.machine.is_none()))
        .cloned()
}

fn netrc_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NETRC") {
        return Some(PathBuf::from(p));
    }
    std::env::var_os("HOME").map(|h| Path::new(&h).join(".netrc"))
}

/// The user name to log in as.
pub fn user_name(args: &ConnectOpts) -> Result<String> {
    if let Some(u) = &args.user {
        return Ok(u.clone());
    }
    if let Some(e) = netrc_entry(&args.server) {
        if let Some(login) = e.login {
            return Ok(login);
        }
    }
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .map_err(|_| Error::Usage("no user name: use --user or set MINIFTP_USER".into()))
}

fn netrc_entry(server: &str) -> Option<NetrcEntry> {
    let text = std::fs::read_to_string(netrc_path()?).ok()?;
    netrc_lookup(&parse_netrc(&text), crate::addr::host_of(server))
}

/// The password, from the first source that has one. `prompt` allows
/// asking on the terminal when nothing else does.
pub fn password(args: &ConnectOpts, user: &str, prompt: bool) -> Result<Password> {
    if let Ok(p) = std::env::var("MINIFTP_PASSWORD") {
        return Ok(Password(p));
    }
    if let Some(file) = &args.password_file {
        // A password that can't be read is a credentials problem (exit 4),
        // not a missing remote file.
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::Auth(format!(
                "--password-file {}: {}",
                file.display(),
                crate::error::plain(&e)
            ))
        })?;
        let line = text.lines().next().unwrap_or("").to_string();
        return Ok(Password(line));
    }
    if let Some(e) = netrc_entry(&args.server) {
        if e.login.as_deref().is_none_or(|l| l == user) {
            if let Some(p) = e.password {
                return Ok(Password(p));
            }
        }
    }
    if prompt && std::io::stdin().is_terminal() {
        let p = rpassword::prompt_password(format!("Password for {user}@{}: ", args.server))
            .map_err(|e| Error::local("terminal", e))?;
        return Ok(Password(p));
    }
    Err(Error::Auth(
        "no password: set MINIFTP_PASSWORD, use --password-file FILE, or add the host to ~/.netrc"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netrc_machine_and_default() {
        let text = "machine files.example.com login alice password s3cret\n\
                    macdef init\ncd /tmp\n\n\
                    default login anon password guest\n";
        let e = parse_netrc(text);
        assert_eq!(e.len(), 2);
        let m = netrc_lookup(&e, "files.example.com").unwrap();
        assert_eq!(m.login.as_deref(), Some("alice"));
        assert_eq!(m.password.as_deref(), Some("s3cret"));
        let d = netrc_lookup(&e, "other").unwrap();
        assert_eq!(d.login.as_deref(), Some("anon"));
    }

    #[test]
    fn netrc_multiline_layout() {
        let text = "machine 127.0.0.1\n  login bob\n  password pw\n";
        let m = netrc_lookup(&parse_netrc(text), "127.0.0.1").unwrap();
        assert_eq!(m.password.as_deref(), Some("pw"));
    }
}
