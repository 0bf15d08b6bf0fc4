//! Tab completion for the prompt: command names first, then remote names
//! (from the server's listing) or local names, depending on the command.

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::Helper;

use crate::proto::EntryKind;

use super::Conn;

/// Commands the prompt knows, for completion and `help`.
const COMMANDS: &[&str] = &[
    "put", "get", "mput", "mget", "ls", "cd", "pwd", "mkdir", "rmdir", "rm", "mv", "cp", "stat",
    "quota", "lcd", "lpwd", "lls", "help", "quit",
];
/// Commands whose arguments are remote paths.
const REMOTE_ARGS: &[&str] = &[
    "get", "mget", "ls", "cd", "mkdir", "rmdir", "rm", "mv", "cp", "stat",
];
/// Commands whose arguments are local paths.
const LOCAL_ARGS: &[&str] = &["put", "mput", "lcd", "lls"];

/// Tab completion: command names, then remote names (from the server's
/// listing) or local names, depending on the command.
pub(crate) struct ShellHelper {
    pub(crate) conn: Conn,
    pub(crate) files: FilenameCompleter,
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
