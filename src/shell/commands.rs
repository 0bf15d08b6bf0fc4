//! The shell's commands: one line in, the request(s) out, the result
//! printed. Shared by the terminal session and scripted runs.

use std::path::PathBuf;

use crate::cli::ShellArgs;
use crate::client::{open, Client, ConnectOpts, Login};
use crate::error::{Error, Result};
use crate::proto::{Entry, EntryKind, Request};
use crate::size::human;

use super::{flags, Conn};

const BUILTIN_HELP: &str = include_str!("../../share/help.txt");

/// What a command asks of the session.
pub(crate) enum Flow {
    Continue,
    Quit,
}

pub(crate) struct Shell {
    pub(crate) conn: Conn,
    pub(crate) args: ShellArgs,
    pub(crate) connect: ConnectOpts,
    pub(crate) login: Option<Login>,
    pub(crate) cwd: String,
}

impl Shell {
    pub(crate) fn client(&self) -> Result<std::cell::RefMut<'_, Client>> {
        let guard = self.conn.borrow_mut();
        if guard.is_none() {
            return Err(Error::ConnectionLost(
                std::io::ErrorKind::NotConnected.into(),
            ));
        }
        Ok(std::cell::RefMut::map(guard, |c| {
            c.as_mut().expect("checked")
        }))
    }

    /// Runs one command line.
    pub(crate) fn exec(&mut self, line: &str) -> Result<Flow> {
        let words = shell_words::split(line)
            .map_err(|e| Error::Usage(format!("cannot parse the line: {e}")))?;
        let Some((cmd, rest)) = words.split_first() else {
            return Ok(Flow::Continue);
        };
        let p = flags::parse(cmd, rest, spec(cmd))?;
        let arg = |i: usize| p.args.get(i).map(|s| s.as_str());
        let need = |i: usize, what: &str| -> Result<&str> {
            arg(i).ok_or_else(|| Error::Usage(format!("{cmd}: missing {what} (see `help {cmd}`)")))
        };
        match cmd.as_str() {
            "quit" | "exit" | "q" | "bye" => return Ok(Flow::Quit),
            "help" | "?" => print!("{}", help(arg(0))),
            "pwd" => {
                let r = self.client()?.call(&Request::Pwd)?;
                println!("{}", r.cwd.unwrap_or(r.msg));
            }
            "cd" => {
                let r = self.client()?.call(&Request::Cd {
                    path: need(0, "PATH")?.to_string(),
                })?;
                if let Some(cwd) = r.cwd {
                    self.cwd = cwd;
                }
            }
            "ls" | "dir" if p.has("json") => self.ls_json(arg(0).unwrap_or("."))?,
            "ls" | "dir" => {
                let entries = self.client()?.list(arg(0))?;
                for e in entries {
                    println!("{}", format_entry(&e, p.has("long")));
                }
            }
            "stat" if p.has("json") => self.stat_json(need(0, "PATH")?)?,
            "stat" => {
                let r = self.client()?.call(&Request::Stat {
                    path: need(0, "PATH")?.to_string(),
                })?;
                if let Some(e) = r.entry {
                    println!("{}", format_entry(&e, true));
                }
            }
            "mkdir" => self.simple(Request::Mkdir {
                path: need(0, "PATH")?.to_string(),
                parents: p.has("parents"),
            })?,
            "rmdir" => self.simple(Request::Rmdir {
                path: need(0, "PATH")?.to_string(),
            })?,
            "rm" => self.simple(Request::Rm {
                path: need(0, "PATH")?.to_string(),
                recursive: p.has("recursive"),
                force: p.has("force"),
            })?,
            "mv" => self.simple(Request::Mv {
                from: need(0, "FROM")?.to_string(),
                to: need(1, "TO")?.to_string(),
            })?,
            "cp" => self.simple(Request::Cp {
                from: need(0, "FROM")?.to_string(),
                to: need(1, "TO")?.to_string(),
            })?,
            "quota" => self.quota()?,
            "put" | "mput" => super::transfer::put(self, &p, cmd == "mput")?,
            "get" | "mget" => super::transfer::get(self, &p, cmd == "mget")?,
            "lcd" => lcd(arg(0))?,
            "lpwd" => {
                let cwd = std::env::current_dir().map_err(|e| Error::local(".", e))?;
                println!("{}", cwd.display());
            }
            "lls" => lls(arg(0).unwrap_or("."))?,
            other => {
                return Err(Error::Usage(format!(
                    "unknown command {other:?}; type `help` for the list"
                )))
            }
        }
        Ok(Flow::Continue)
    }

    /// `ls --json`: one JSON array of the entries, digests included.
    fn ls_json(&mut self, path: &str) -> Result<()> {
        let entries = self.client()?.tree(path, false)?;
        let items: Vec<_> = entries
            .iter()
            .map(|e| crate::ls::entry_json(&e.path, e))
            .collect();
        println!("{}", serde_json::Value::Array(items));
        Ok(())
    }

    /// `stat --json`: one JSON object, with the file's digest where there
    /// is one (from the bulk request).
    fn stat_json(&mut self, path: &str) -> Result<()> {
        let mut client = self.client()?;
        let e = client.stat(path)?.ok_or_else(|| Error::Remote {
            code: crate::proto::Status::NotFound.code(),
            msg: format!("{path}: no such file or directory"),
        })?;
        let sha256 = match e.kind {
            EntryKind::File => client.tree(path, false)?.pop().and_then(|t| t.sha256),
            _ => None,
        };
        let t = crate::proto::TreeEntry {
            path: e.name.clone(),
            kind: e.kind,
            size: e.size,
            mtime: e.mtime,
            sha256,
            escaped: e.escaped,
        };
        let mut v = crate::ls::entry_json(path, &t);
        v["name"] = serde_json::json!(e.name);
        println!("{v}");
        Ok(())
    }

    fn quota(&mut self) -> Result<()> {
        let r = self.client()?.call(&Request::Quota)?;
        let Some(q) = r.quota else {
            println!("{}", r.msg);
            return Ok(());
        };
        let entries = match (q.entries, q.max_entries) {
            (Some(n), Some(max)) => format!("; {n} of {max} files and directories"),
            _ => String::new(),
        };
        println!(
            "used {} of {} ({} free){entries}",
            human(q.used),
            human(q.total),
            human(q.free)
        );
        Ok(())
    }

    fn simple(&mut self, req: Request) -> Result<()> {
        let r = self.client()?.call(&req)?;
        println!("{}", r.msg);
        Ok(())
    }

    /// Reconnects with the same credentials and goes back to the same
    /// directory.
    pub(crate) fn reconnect(&mut self) -> Result<()> {
        let login = self
            .login
            .clone()
            .ok_or_else(|| Error::Auth("not logged in".into()))?;
        let mut client = open(&self.connect, &login)?;
        if self.cwd != "/" {
            let _ = client.call(&Request::Cd {
                path: self.cwd.clone(),
            });
        }
        *self.conn.borrow_mut() = Some(client);
        Ok(())
    }
}

/// The flags each command accepts (see share/help.txt).
fn spec(cmd: &str) -> flags::Spec {
    const TRANSFER: flags::Spec = &[(Some('r'), "recursive"), (Some('c'), "continue")];
    match cmd {
        "ls" | "dir" => &[(Some('l'), "long"), (None, "json")],
        "stat" => &[(None, "json")],
        "mkdir" => &[(Some('p'), "parents")],
        "rm" => &[(Some('r'), "recursive"), (Some('f'), "force")],
        "put" | "mput" | "get" | "mget" => TRANSFER,
        _ => &[],
    }
}

/// `lcd [DIR]`: the local directory (home without an argument).
fn lcd(dir: Option<&str>) -> Result<()> {
    let dir = dir.map(PathBuf::from).unwrap_or_else(home_dir);
    std::env::set_current_dir(&dir).map_err(|e| Error::local(&dir, e))?;
    println!("{}", std::env::current_dir().unwrap_or(dir).display());
    Ok(())
}

fn lls(dir: &str) -> Result<()> {
    let dir = PathBuf::from(dir);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map_err(|e| Error::local(&dir, e))?
        .filter_map(|e| e.ok())
        .map(|e| {
            let mut n = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                n.push('/');
            }
            n
        })
        .collect();
    names.sort();
    for n in names {
        println!("{n}");
    }
    Ok(())
}

fn format_entry(e: &Entry, long: bool) -> String {
    let name = match e.kind {
        EntryKind::Dir => format!("{}/", e.name),
        _ => e.name.clone(),
    };
    if !long {
        return name;
    }
    let kind = match e.kind {
        EntryKind::Dir => 'd',
        EntryKind::File => '-',
        EntryKind::Symlink => 'l',
        EntryKind::Other => '?',
    };
    let size = if e.kind == EntryKind::Dir {
        "-".to_string()
    } else {
        human(e.size)
    };
    let when = crate::ls::utc_minute(e.mtime);
    format!("{kind} {size:>10}  {when}  {name}")
}

pub(crate) fn home_dir() -> PathBuf {
    std::env::var_os("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// The help text: the installed copy beside the binary
/// (`PREFIX/share/miniftp/help.txt`), else the built-in one.
fn help_text() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            let prefix = exe.parent()?.parent()?.to_path_buf();
            std::fs::read_to_string(prefix.join("share/miniftp/help.txt")).ok()
        })
        .unwrap_or_else(|| BUILTIN_HELP.to_string())
}

/// `help`: the usage line of every command; `help CMD`: its section.
pub fn help(cmd: Option<&str>) -> String {
    let text = help_text();
    let sections: Vec<(&str, &str)> = text
        .split("\n## ")
        .skip(1)
        .filter_map(|s| s.split_once('\n'))
        .collect();
    match cmd {
        None => {
            let mut out = String::from("commands (help CMD for details):\n");
            for (_, body) in &sections {
                if let Some(usage) = body.lines().next() {
                    out.push_str(&format!("  {usage}\n"));
                }
            }
            out
        }
        Some(c) => match sections.iter().find(|(name, body)| {
            // A section answers for its name and the aliases on its
            // `Also:` line.
            name.trim() == c
                || body
                    .split("Also:")
                    .nth(1)
                    .is_some_and(|a| a.split([',', '.', ' ', '\n']).any(|w| w == c))
        }) {
            Some((_, body)) => format!("{}\n", body.trim_end()),
            None => format!("no help for {c:?}; type `help` for the list\n"),
        },
    }
}
