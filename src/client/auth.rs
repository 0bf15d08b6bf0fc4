//! Where a client's user name and password come from, in order: `--user`
//! or MINIFTP_USER, then ~/.netrc's `login` for the host, then $USER; the
//! password from MINIFTP_PASSWORD, `--password-file`, ~/.netrc, or (with a
//! terminal) a prompt without echo. Never from the command line.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use super::ConnectOpts;
use crate::error::{Error, Result};
use crate::proto::Password;

/// The netrc entry for a host: its `login` and `password`, if set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NetrcEntry {
    pub login: Option<String>,
    pub password: Option<String>,
}

/// The entry for `host` in netrc `text` (an exact `machine`, else
/// `default`), parsed by the `rust-netrc` crate: quoted tokens
/// (`password "two words"`), comments and `macdef` as ftp and Python's
/// netrc read them. A file that does not parse is ignored, with a warning.
pub fn netrc_lookup(text: &str, host: &str) -> Option<NetrcEntry> {
    let parsed: netrc::Netrc = match text.parse() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("miniftp: warning: ~/.netrc is not used: {e}");
            return None;
        }
    };
    let a = parsed
        .hosts
        .get(host)
        .or_else(|| parsed.hosts.get("default"))?;
    let some = |s: &String| (!s.is_empty()).then(|| s.clone());
    Some(NetrcEntry {
        login: some(&a.login),
        password: some(&a.password),
    })
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
    let path = netrc_path()?;
    let text = std::fs::read_to_string(&path).ok()?;
    warn_if_readable_by_others(&path);
    netrc_lookup(&text, crate::addr::host_of(server))
}

/// ftp and curl warn about a netrc that others may read; so do we (once).
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let open = std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o077 != 0);
    if open && !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        eprintln!(
            "miniftp: warning: {} can be read by other users: its passwords are not secret \
             (chmod 600 {})",
            path.display(),
            path.display()
        );
    }
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
    fn netrc_machine_default_and_quoted_tokens() {
        let text = "machine files.example.com login alice password s3cret\n\
                    macdef init\ncd /tmp\n\n\
                    machine q.example login \"bob smith\" password \"pass word \\\"x\\\"\"\n\
                    default login anon password guest\n";
        let m = netrc_lookup(text, "files.example.com").unwrap();
        assert_eq!(m.login.as_deref(), Some("alice"));
        assert_eq!(m.password.as_deref(), Some("s3cret"));
        let q = netrc_lookup(text, "q.example").unwrap();
        assert_eq!(q.login.as_deref(), Some("bob smith"));
        assert_eq!(q.password.as_deref(), Some("pass word \"x\""));
        let d = netrc_lookup(text, "other").unwrap();
        assert_eq!(d.login.as_deref(), Some("anon"));
    }

    #[test]
    fn netrc_multiline_layout() {
        let text = "machine 127.0.0.1\n  login bob\n  password pw\n";
        let m = netrc_lookup(text, "127.0.0.1").unwrap();
        assert_eq!(m.password.as_deref(), Some("pw"));
    }
}
