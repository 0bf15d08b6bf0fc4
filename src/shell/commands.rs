//! The shell's commands: one line in, the request(s) out, the result
//! printed. Shared by the terminal session and scripted runs.

use std::path::PathBuf;
use std::time::Instant;

use crate::cli::ShellArgs;
use crate::client::progress::Progress;
use crate::client::transfer::{get_file, put_file};
use crate::client::{open, Client, Login};
use crate::error::{Error, Result};
use crate::proto::{Entry, EntryKind, Request};
use crate::size::human;

use super::Conn;

const BUILTIN_HELP: &str = include_str!("../../share/help.txt");

/// What a command asks of the session.
pub(crate) enum Flow {
    Continue,
    Quit,
}

pub(crate) struct Shell {
    pub(crate) conn: Conn,
    pub(crate) args: ShellArgs,
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
        let (flags, args): (Vec<&String>, Vec<&String>) =
            rest.iter().partition(|w| w.starts_with('-') && w.len() > 1);
        let flag = |f: &str| flags.iter().any(|x| x.as_str() == f);
        let arg = |i: usize| args.get(i).map(|s| s.as_str());
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
            "ls" | "dir" => {
                let entries = self.client()?.list(arg(0))?;
                for e in entries {
                    println!("{}", format_entry(&e, flag("-l")));
                }
            }
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
                parents: flag("-p"),
            })?,
            "rmdir" => self.simple(Request::Rmdir {
                path: need(0, "PATH")?.to_string(),
            })?,
            "rm" => self.simple(Request::Rm {
                path: need(0, "PATH")?.to_string(),
                recursive: flag("-r") || flag("-rf"),
            })?,
            "mv" => self.simple(Request::Mv {
                from: need(0, "FROM")?.to_string(),
                to: need(1, "TO")?.to_string(),
            })?,
            "cp" => self.simple(Request::Cp {
                from: need(0, "FROM")?.to_string(),
                to: need(1, "TO")?.to_string(),
            })?,
            "quota" => {
                let r = self.client()?.call(&Request::Quota)?;
                match r.quota {
                    Some(q) => {
                        let entries = match (q.entries, q.max_entries) {
                            (Some(n), Some(max)) => {
                                format!("; {n} of {max} files and directories")
                            }
                            _ => String::new(),
                        };
                        println!(
                            "used {} of {} ({} free){entries}",
                            human(q.used),
                            human(q.total),
                            human(q.free)
                        )
                    }
                    None => println!("{}", r.msg),
                }
            }
            "put" => {
                let local = PathBuf::from(need(0, "LOCAL")?);
                let name = local
                    .file_name()
                    .and_then(|n| n.to_str())
                    .ok_or_else(|| Error::Usage(format!("{}: no file name", local.display())))?
                    .to_string();
                let mut remote = arg(1).map_or(name.clone(), str::to_string);
                let started = Instant::now();
                let mut client = self.client()?;
                // `DIR/` always names a directory (as for `miniftp put`):
                // the file goes inside it, and a missing one is an error
                // from the server, never a file called DIR.
                if remote.ends_with('/')
                    || matches!(client.stat(&remote)?, Some(e) if e.kind == EntryKind::Dir)
                {
                    remote = crate::put::join_remote(&remote, &name);
                }
                let size = std::fs::metadata(&local).map(|m| m.len()).ok();
                let progress = Progress::new(true, size, &name);
                let done = put_file(&mut client, &local, &remote, false, flag("-c"), &progress);
                progress.finish();
                let done = done?;
                println!(
                    "{}",
                    crate::put::describe(
                        "put",
                        &local.display().to_string(),
                        &remote,
                        &done,
                        started
                    )
                );
            }
            "get" => {
                let remote = need(0, "REMOTE")?.to_string();
                let name = remote
                    .rsplit('/')
                    .find(|s| !s.is_empty())
                    .unwrap_or("download");
                let mut local = PathBuf::from(arg(1).unwrap_or(name));
                if local.is_dir() {
                    local = local.join(name);
                }
                let started = Instant::now();
                let mut client = self.client()?;
                let size = client.stat(&remote)?.map(|e| e.size);
                let progress = Progress::new(true, size, name);
                let done = get_file(&mut client, &remote, &local, flag("-c"), &progress);
                progress.finish();
                let done = done?;
                println!(
                    "{}",
                    crate::put::describe(
                        "get",
                        &remote,
                        &local.display().to_string(),
                        &done,
                        started
                    )
                );
            }
            "lcd" => {
                let dir = arg(0).map(PathBuf::from).unwrap_or_else(home_dir);
                std::env::set_current_dir(&dir).map_err(|e| Error::local(&dir, e))?;
                println!("{}", std::env::current_dir().unwrap_or(dir).display());
            }
            "lpwd" => {
                let cwd = std::env::current_dir().map_err(|e| Error::local(".", e))?;
                println!("{}", cwd.display());
            }
            "lls" => {
                let dir = PathBuf::from(arg(0).unwrap_or("."));
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
            }
            other => {
                return Err(Error::Usage(format!(
                    "unknown command {other:?}; type `help` for the list"
                )))
            }
        }
        Ok(Flow::Continue)
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
        let mut client = open(&self.args.connect, &login)?;
        if self.cwd != "/" {
            let _ = client.call(&Request::Cd {
                path: self.cwd.clone(),
            });
        }
        *self.conn.borrow_mut() = Some(client);
        Ok(())
    }
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
    let (y, mo, d) = crate::useradd::civil_from_days(e.mtime.div_euclid(86400));
    let secs = e.mtime.rem_euclid(86400);
    let size = if e.kind == EntryKind::Dir {
        "-".to_string()
    } else {
        human(e.size)
    };
    format!(
        "{kind} {size:>10}  {y:04}-{mo:02}-{d:02} {:02}:{:02}  {name}",
        secs / 3600,
        secs % 3600 / 60
    )
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
