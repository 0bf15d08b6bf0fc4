//! `miniftp shell`: the interactive client, in the spirit of the original
//! program: a menu to log in, register or quit, then a `>>>` prompt for
//! commands, with line editing, history and tab completion. Fed from a file
//! or pipe instead of a terminal, it logs in from the environment, runs the
//! commands, and stops with a non-zero exit at the first failure (unless
//! --keep-going).

mod commands;
mod complete;
mod flags;
mod transfer;

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use rustyline::completion::FilenameCompleter;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::Editor;

use crate::cli::ShellArgs;
use crate::client::{open, Client, Login};
use crate::error::{Error, Result};
use crate::proto::{Password, Request, Status};

use commands::{home_dir, Flow, Shell};
use complete::ShellHelper;

pub(crate) type Conn = Rc<RefCell<Option<Client>>>;

pub fn run(args: ShellArgs) -> Result<()> {
    crate::logging::init_client(false);
    if std::io::stdin().is_terminal() {
        interactive(args)
    } else {
        scripted(args)
    }
}

pub(crate) fn is_connection_error(e: &Error) -> bool {
    matches!(
        e,
        Error::ConnectionLost(_) | Error::Connect { .. } | Error::Protocol(_)
    ) || matches!(e, Error::Remote { code, .. } if *code == Status::Unavailable.code())
}

/// How the shell connects: the connection options, and `--bwlimit`'s
/// throttle, which every connection of the session (a reconnect too)
/// shares, as `put`'s and `get`'s do.
fn connect_opts(args: &ShellArgs) -> Result<crate::client::ConnectOpts> {
    let mut opts = args.connect.opts();
    opts.throttle = crate::sync::throttle(args.bwlimit.as_deref())?;
    Ok(opts)
}

/// Commands from a file or pipe: log in from the environment (no prompt),
/// echo nothing, stop at the first failure unless --keep-going.
fn scripted(args: ShellArgs) -> Result<()> {
    let connect = connect_opts(&args)?;
    let login = Login::resolve(&connect, false)?;
    let client = open(&connect, &login)?;
    let mut shell = Shell {
        connect,
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
    Error::after_all(first_error, "some commands failed (see above)")
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
    // An ambiguous Tab lists the candidates (bash's behaviour).
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .build();
    let mut rl: Editor<ShellHelper, DefaultHistory> =
        Editor::with_config(config).map_err(|e| Error::Other(format!("terminal: {e}")))?;
    rl.set_helper(Some(helper));
    let history = history_path();
    let _ = rl.load_history(&history);
    let connect = connect_opts(&args)?;
    let mut shell = Shell {
        conn,
        connect,
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

fn banner(server: &str, can_register: bool) {
    println!("{}", "-".repeat(41));
    println!("  miniftp {} - {server}", env!("CARGO_PKG_VERSION"));
    println!("{}", "-".repeat(41));
    println!("1) log in");
    if can_register {
        println!("2) register");
    }
    println!("q) quit");
}

/// Whether the server takes registrations: its greeting says (a server
/// too old to say is asked anyway).
fn can_register(shell: &Shell) -> bool {
    shell
        .conn
        .borrow()
        .as_ref()
        .is_none_or(|c| c.greeting.registration.as_deref() != Some("closed"))
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
        let c = crate::client::connect(&shell.connect)?;
        *shell.conn.borrow_mut() = Some(c);
    }
    Ok(())
}

fn menu(rl: &mut Editor<ShellHelper, DefaultHistory>, shell: &mut Shell) -> Result<()> {
    ensure_connected(shell)?;
    loop {
        let register = can_register(shell);
        banner(&shell.connect.server, register);
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
            "2" if !register => {
                println!("registration is closed on this server; ask the operator for an account")
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
    let default = shell.connect.user.clone();
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
        crate::client::auth::password(&shell.connect, &user, false)
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
    // Ctrl-C while a command runs stops its transfer, not the shell.
    let interrupt = crate::client::transfer::interrupt_flag();
    let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt));
    let mut ahead = TypeAhead::default();
    loop {
        let user = shell
            .login
            .as_ref()
            .map_or("", |l| l.user.as_str())
            .to_string();
        let prompt = format!("{user}:{}>>> ", shell.cwd);
        let line = match ahead.lines.pop_front() {
            Some(l) => {
                println!("{prompt}{l}");
                l
            }
            None => {
                match rl.readline_with_initial(&prompt, (&std::mem::take(&mut ahead.partial), "")) {
                    Ok(l) => l,
                    // At the prompt Ctrl-C clears the line, as in bash.
                    Err(ReadlineError::Interrupted) => continue,
                    Err(ReadlineError::Eof) => return Ok(()),
                    Err(e) => return Err(Error::Other(format!("terminal: {e}"))),
                }
            }
        };
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let _ = rl.add_history_entry(line);
        // Saved now: a shell that dies later keeps this command.
        let _ = rl.save_history(&history_path());
        interrupt.store(false, Ordering::Relaxed);
        let result = shell.exec(line);
        ahead.read();
        match result {
            Ok(Flow::Continue) => {}
            Ok(Flow::Quit) => return Ok(()),
            Err(Error::Interrupted) => {
                println!("interrupted (a partial file is kept: resume with -c)");
                // The connection stopped in the middle of a body.
                if let Err(e) = shell.reconnect() {
                    println!("error: {e}");
                }
            }
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

/// What was typed while a command ran: the terminal keeps it, and it runs
/// next (the line editor would otherwise swallow it while it sets up).
#[derive(Default)]
struct TypeAhead {
    lines: std::collections::VecDeque<String>,
    /// An unfinished line: the start of the next prompt's input.
    partial: String,
}

impl TypeAhead {
    /// Takes whatever the terminal holds, without waiting.
    fn read(&mut self) {
        use rustix::termios::{
            tcgetattr, tcsetattr, LocalModes, OptionalActions, SpecialCodeIndex,
        };
        let stdin = std::io::stdin();
        let Ok(orig) = tcgetattr(&stdin) else {
            return;
        };
        let mut now = orig.clone();
        now.local_modes.remove(LocalModes::ICANON);
        now.special_codes[SpecialCodeIndex::VMIN] = 0;
        now.special_codes[SpecialCodeIndex::VTIME] = 0;
        if tcsetattr(&stdin, OptionalActions::Now, &now).is_err() {
            return;
        }
        let mut bytes = Vec::new();
        let mut chunk = [0u8; 4096];
        while bytes.len() < 64 * 1024 {
            match rustix::io::read(&stdin, &mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            }
        }
        let _ = tcsetattr(&stdin, OptionalActions::Now, &orig);
        let text = std::mem::take(&mut self.partial) + &String::from_utf8_lossy(&bytes);
        let mut parts: Vec<&str> = text.split(['\n', '\r']).collect();
        self.partial = parts.pop().unwrap_or("").to_string();
        self.lines.extend(
            parts
                .into_iter()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_string),
        );
    }
}
