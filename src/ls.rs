//! `miniftp ls [-l] [--json] [REMOTE...]`: remote listings for scripts.
//! `-l` shows exact bytes (not `3 MiB`) and UTC times; `--json` prints one
//! JSON array of entries with bytes, mtime, type and, for files, the
//! server's SHA-256, so a backup can be checked without downloading it.

use serde_json::json;

use crate::cli::LsArgs;
use crate::client::{open, Login};
use crate::error::{Error, Result};
use crate::proto::{EntryKind, TreeEntry};

pub fn run(args: LsArgs) -> Result<()> {
    crate::logging::init_client(false);
    let opts = args.connect.opts();
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let mut client = open(&opts, &login)?;
    let paths = if args.paths.is_empty() {
        vec![".".to_string()]
    } else {
        args.paths.clone()
    };
    let mut all = Vec::new();
    let mut first_error = None;
    for p in &paths {
        let is_dir = match client.stat(p)? {
            Some(e) => e.kind == EntryKind::Dir,
            None => {
                let e = Error::Remote {
                    code: crate::proto::Status::NotFound.code(),
                    msg: format!("{p}: no such file or directory"),
                };
                eprintln!("miniftp: {e}");
                first_error.get_or_insert(e);
                continue;
            }
        };
        // Digests only for --json: a plain listing need not wait for any.
        let entries: Vec<TreeEntry> = if args.json {
            client.tree(p, false)?
        } else {
            client
                .list(Some(p))?
                .into_iter()
                .map(|e| TreeEntry {
                    path: e.name,
                    kind: e.kind,
                    size: e.size,
                    mtime: e.mtime,
                    sha256: None,
                    escaped: e.escaped,
                })
                .collect()
        };
        for e in entries {
            let shown = if is_dir && paths.len() > 1 {
                crate::put::join_remote(p, &e.path)
            } else if is_dir {
                e.path.clone()
            } else {
                p.clone()
            };
            all.push((shown, e));
        }
    }
    if args.json {
        let items: Vec<_> = all.iter().map(|(p, e)| entry_json(p, e)).collect();
        println!("{}", serde_json::Value::Array(items));
    } else {
        for (p, e) in &all {
            println!("{}", format_line(p, e, args.long));
        }
    }
    client.quit();
    Error::after_all(first_error, "some paths could not be listed (see above)")
}

/// One entry for `--json` (and the shell's `stat --json`).
pub fn entry_json(path: &str, e: &TreeEntry) -> serde_json::Value {
    let kind = match e.kind {
        EntryKind::File => "file",
        EntryKind::Dir => "dir",
        EntryKind::Symlink => "symlink",
        EntryKind::Other => "other",
    };
    let mut v = json!({"path": path, "type": kind, "size": e.size, "mtime": e.mtime});
    if let Some(d) = &e.sha256 {
        v["sha256"] = json!(d);
    }
    v
}

/// `NAME`, or with `long`: type, exact bytes, UTC time, name.
pub fn format_line(path: &str, e: &TreeEntry, long: bool) -> String {
    let name = match e.kind {
        EntryKind::Dir => format!("{path}/"),
        _ => path.to_string(),
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
    format!("{kind} {:>14}  {}  {name}", e.size, utc_minute(e.mtime))
}

/// `YYYY-MM-DD HH:MM` in UTC.
pub fn utc_minute(secs: i64) -> String {
    match jiff::Timestamp::from_second(secs) {
        Ok(t) => t.strftime("%Y-%m-%d %H:%M").to_string(),
        Err(_) => "????-??-?? ??:??".into(),
    }
}
