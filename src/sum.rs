//! `miniftp sum [-r] REMOTE...`: the server's SHA-256 of remote files, one
//! `DIGEST  PATH` line each, as `sha256sum` prints them, so that
//! `miniftp sum backup.tgz | sha256sum -c` checks a local copy without
//! downloading anything. The digests come in bulk (`tree`): stored ones
//! cost nothing, others are hashed on the server.

use crate::cli::SumArgs;
use crate::client::{open, Login};
use crate::error::{Error, Result};
use crate::proto::EntryKind;

pub fn run(args: SumArgs) -> Result<()> {
    crate::logging::init_client(false);
    let opts = args.connect.opts();
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let mut client = open(&opts, &login)?;
    let mut first_error = None;
    for pattern in &args.paths {
        let targets = match crate::get::expand_remote(&mut client, pattern) {
            Ok(t) => t,
            Err(e) if e.ends_connection() => return Err(e),
            Err(e) => {
                eprintln!("miniftp: {e}");
                first_error.get_or_insert(e);
                continue;
            }
        };
        for (path, kind) in targets {
            if kind == EntryKind::Dir && !args.recursive {
                let e = Error::Usage(format!("{path}: is a directory (use -r)"));
                eprintln!("miniftp: {e}");
                first_error.get_or_insert(e);
                continue;
            }
            for e in client.tree(&path, true)? {
                let Some(d) = &e.sha256 else { continue };
                let shown = if kind == EntryKind::Dir {
                    crate::put::join_remote(&path, &e.path)
                } else {
                    path.clone()
                };
                println!("{d}  {shown}");
            }
        }
    }
    client.quit();
    Error::after_all(first_error, "some paths could not be summed (see above)")
}
