//! `miniftp shell`: the interactive client, in the spirit of the original
//! program: a menu to log in, register or quit, then a `>>>` prompt for
//! commands, with line editing, history and tab completion. Fed from a file
//! or pipe instead of a terminal, it logs in from the environment, runs the
//! commands, and stops with a non-zero exit at the first failure (unless
//! --keep-going).

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Instant;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Editor, Helper};

use crate::cli::ShellArgs;
use crate::client::progress::Progress;
use crate::client::transfer::{get_file, put_file};
use crate::client::{open, Client, Login};
use crate::error::{Error, Result};
use crate::proto::{Entry, EntryKind, Password, Request, Status};
use crate::size::human;

/// Commands the prompt knows, for completion and `help`.
const COMMANDS: &[&str] = &[
    "put", "get", "ls", "cd", "pwd", "mkdir", "rmdir", "rm", "mv", "cp", "stat", "quota", "lcd",
    "lpwd", "lls", "help", "quit",
];
/// Commands whose arguments are remote paths.
const REMOTE_ARGS: &[&str] = &[
    "get", "ls", "cd", "mkdir", "rmdir", "rm", "mv", "cp", "stat",
];
/// Commands whose arguments are local paths.
const LOCAL_ARGS: &[&str] = &["put", "lcd", "lls"];

const BUILTIN_HELP: &str = include_str!("../share/help.txt");

type Conn = Rc<RefCell<Option<Client>>>;

pub fn run(args: ShellArgs) -> Result<()> {
    crate::logging::init_client(false);
    if std::io::stdin().is_terminal() {
        interactive(args)
    } else {
        scripted(args)
    }
}

/// What a command asks of the session.
enum Flow {
    Continue,
    Quit,
}

struct Shell {
    conn: Conn,
    args: ShellArgs,
    login: Option<Login>,
    cwd: String,
}

impl Shell {
    fn client(&self) -> Result<std::cell::RefMut<'_, Client>> {
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
    fn exec(&mut self, line: &str) -> Result<Flow> {
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
                    Some(q) => println!(
                        "used {} of {} ({} free)",
                        human(q.used),
                        human(q.total),
                        human(q.free)
                    ),
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
                if matches!(client.stat(&remote)?, Some(e) if e.kind == EntryKind::Dir) {
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
    fn reconnect(&mut self) -> Result<()> {
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

fn is_connection_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ConnectionLost(_) | Error::Connect { .. } | Error::Protocol(_)
    ) || matches!(e, Error::Remote { code, .. } if *code == Status::Unavailable.code())
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

fn home_dir() -> PathBuf {
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
        Some(c) => match sections.iter().find(|(name, _)| name.trim() == c) {
            Some((_, body)) => format!("{}\n", body.trim_end()),
            None => format!("no help for {c:?}; type `help` for the list\n"),
        },
    }
}

/// Commands from a file or pipe: log in from the environment (no prompt),
/// echo nothing, stop at the first failure unless --keep-going.
fn scripted(args: ShellArgs) -> Result<()> {
    let login = Login::resolve(&args.connect, false)?;
    let client = open(&args.connect, &login)?;
    let mut shell = Shell {
        conn: Rc::new(RefCell::new(Some(client))),
        login: Some(login),
        cwd: "/".into(),
        args,
    };
    let mut first_error: Option<Error> = None;
    for (n, line) in std::io::stdin().lock().lines().enumerate() {
        let line = line.map_err(|e| Error::local("standard input", e))?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match shell.exec(line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => break,
            Err(e) => {
                eprintln!("miniftp: line {}: {line}: {e}", n + 1);
                let _ = std::io::stdout().flush();
                if !shell.args.keep_going {
                    return Err(Error::Failed {
                        exit: e.exit(),
                        msg: "stopped at the first failure (use --keep-going to carry on)".into(),
                    });
                }
                let lost = is_connection_error(&e);
                first_error.get_or_insert(e);
                if lost {
                    shell.reconnect()?;
                }
            }
        }
    }
    if let Some(c) = shell.conn.borrow_mut().take() {
        c.quit();
    }
    match first_error {
        Some(e) => Err(Error::Failed {
            exit: e.exit(),
            msg: "some commands failed (see above)".into(),
        }),
        None => Ok(()),
    }
}

fn history_path() -> PathBuf {
    home_dir().join(".miniftp_history")
}

/// The terminal session: the menu, then the prompt.
fn interactive(args: ShellArgs) -> Result<()> {
    let conn: Conn = Rc::new(RefCell::new(None));
    let helper = ShellHelper {
        conn: Rc::clone(&conn),
        files: FilenameCompleter::new(),
    };
    let mut rl: Editor<ShellHelper, DefaultHistory> =
        Editor::new().map_err(|e| Error::Other(format!("terminal: {e}")))?;
    rl.set_helper(Some(helper));
    let history = history_path();
    let _ = rl.load_history(&history);
    let mut shell = Shell {
        conn,
        args,
        login: None,
        cwd: "/".into(),
    };
    let result = menu(&mut rl, &mut shell);
    let _ = rl.save_history(&history);
    if let Some(c) = shell.conn.borrow_mut().take() {
        c.quit();
    }
    result
}

fn banner(server: &str) {
    println!("{}", "-".repeat(41));
    println!("  miniftp {} - {server}", env!("CARGO_PKG_VERSION"));
    println!("{}", "-".repeat(41));
    println!("1) log in");
    println!("2) register");
    println!("q) quit");
}

fn read(rl: &mut Editor<ShellHelper, DefaultHistory>, prompt: &str) -> Result<Option<String>> {
    match rl.readline(prompt) {
        Ok(line) => Ok(Some(line)),
        Err(ReadlineError::Eof) | Err(ReadlineError::Interrupted) => Ok(None),
        Err(e) => Err(Error::Other(format!("terminal: {e}"))),
    }
}

fn ensure_connected(shell: &mut Shell) -> Result<()> {
    if shell.conn.borrow().is_none() {
        let c = crate::client::connect(&shell.args.connect)?;
        *shell.conn.borrow_mut() = Some(c);
    }
    Ok(())
}

fn menu(rl: &mut Editor<ShellHelper, DefaultHistory>, shell: &mut Shell) -> Result<()> {
    ensure_connected(shell)?;
    loop {
        banner(&shell.args.connect.server);
        let Some(choice) = read(rl, "choice: ")? else {
            return Ok(());
        };
        match choice.trim() {
            "1" => {
                let Some((user, password)) = ask_credentials(rl, shell, false)? else {
                    continue;
                };
                if let Err(e) = ensure_connected(shell) {
                    println!("error: {e}");
                    continue;
                }
                let result = shell.client()?.login(&user, &password);
                match result {
                    Ok(r) => {
                        println!("{}", r.msg);
                        shell.login = Some(Login { user, password });
                        shell.cwd = "/".into();
                        return prompt_loop(rl, shell);
                    }
                    Err(e) => {
                        println!("error: {e}");
                        if is_connection_error(&e) {
                            *shell.conn.borrow_mut() = None;
                        }
                    }
                }
            }
            "2" => {
                let Some((user, password)) = ask_credentials(rl, shell, true)? else {
                    continue;
                };
                if let Err(e) = ensure_connected(shell) {
                    println!("error: {e}");
                    continue;
                }
                let reply = shell.client()?.request(&Request::Register {
                    user,
                    password,
                    protocol: Some(crate::proto::PROTOCOL_VERSION),
                });
                match reply {
                    Ok(r) => println!("{}", r.msg),
                    Err(e) => {
                        println!("error: {e}");
                        *shell.conn.borrow_mut() = None;
                    }
                }
            }
            "q" | "Q" | "quit" | "3" => return Ok(()),
            other => println!("unknown choice {other:?}: type 1, 2 or q"),
        }
    }
}

fn ask_credentials(
    rl: &mut Editor<ShellHelper, DefaultHistory>,
    shell: &Shell,
    twice: bool,
) -> Result<Option<(String, Password)>> {
    let default = shell.args.connect.user.clone();
    let prompt = match &default {
        Some(u) => format!("user [{u}]: "),
        None => "user: ".to_string(),
    };
    let Some(typed) = read(rl, &prompt)? else {
        return Ok(None);
    };
    let user = match (typed.trim(), default) {
        ("", Some(d)) => d,
        ("", None) => return Ok(None),
        (t, _) => t.to_string(),
    };
    let tty = |e| Error::local("terminal", e);
    // Logging in, the usual sources (MINIFTP_PASSWORD, --password-file,
    // ~/.netrc) come before a prompt; a new account always asks.
    let known = if twice {
        None
    } else {
        crate::client::auth::password(&shell.args.connect, &user, false)
            .ok()
            .map(|p| p.0)
    };
    let password = match known {
        Some(p) => p,
        None => rpassword::prompt_password("password: ").map_err(tty)?,
    };
    if twice {
        let again = rpassword::prompt_password("again: ").map_err(tty)?;
        if again != password {
            println!("the passwords differ");
            return Ok(None);
        }
    }
    Ok(Some((user, Password(password))))
}

fn prompt_loop(rl: &mut Editor<ShellHelper, DefaultHistory>, shell: &mut Shell) -> Result<()> {
    println!("type `help` for the commands");
    loop {
        let user = shell
            .login
            .as_ref()
            .map_or("", |l| l.user.as_str())
            .to_string();
        let prompt = format!("{user}:{}>>> ", shell.cwd);
        let Some(line) = read(rl, &prompt)? else {
            return Ok(());
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line);
        match shell.exec(line) {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => return Ok(()),
            Err(e) if is_connection_error(&e) => {
                println!("error: {e}");
                *shell.conn.borrow_mut() = None;
                let answer = read(rl, "connection lost; reconnect? [Y/n] ")?;
                if answer.is_some_and(|a| !a.trim().eq_ignore_ascii_case("n")) {
                    match shell.reconnect() {
                        Ok(()) => println!("reconnected"),
                        Err(e) => println!("error: {e}"),
                    }
                } else {
                    return Ok(());
                }
            }
            Err(e) => println!("error: {e}"),
        }
    }
}

/// Tab completion: command names, then remote names (from the server's
/// listing) or local names, depending on the command.
struct ShellHelper {
    conn: Conn,
    files: FilenameCompleter,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before.rfind(' ').map_or(0, |i| i + 1);
        let word = &before[start..];
        if start == 0 {
            let pairs = COMMANDS
                .iter()
                .filter(|c| c.starts_with(word))
                .map(|c| Pair {
                    display: c.to_string(),
                    replacement: format!("{c} "),
                })
                .collect();
            return Ok((0, pairs));
        }
        let cmd = before.split_whitespace().next().unwrap_or("");
        if LOCAL_ARGS.contains(&cmd) {
            return self.files.complete(line, pos, ctx);
        }
        if !REMOTE_ARGS.contains(&cmd) {
            return Ok((pos, Vec::new()));
        }
        let (dir, prefix) = match word.rfind('/') {
            Some(i) => (&word[..=i], &word[i + 1..]),
            None => ("", word),
        };
        let mut guard = self.conn.borrow_mut();
        let Some(client) = guard.as_mut() else {
            return Ok((pos, Vec::new()));
        };
        let listing = client
            .list(if dir.is_empty() { None } else { Some(dir) })
            .unwrap_or_default();
        let pairs = listing
            .into_iter()
            .filter(|e| e.name.starts_with(prefix) && !e.escaped)
            .map(|e| {
                let suffix = if e.kind == EntryKind::Dir { "/" } else { " " };
                let quoted = shell_words::quote(&e.name).into_owned();
                Pair {
                    display: format!("{}{}", e.name, suffix.trim()),
                    replacement: format!("{dir}{quoted}{suffix}"),
                }
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Helper for ShellHelper {}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Hinter for ShellHelper {
    type Hint = String;
}
