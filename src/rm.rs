//! `miniftp rm [-r] [-f] REMOTE...`: remove remote files for scripts and
//! retention jobs. Globs are matched on the server's listing; with `-f` a
//! missing path (or a glob that matches nothing) is not an error.

use crate::cli::RmArgs;
use crate::client::{open, Login};
use crate::error::{Error, Result};
use crate::proto::{Request, Status};

pub fn run(args: RmArgs) -> Result<()> {
    crate::logging::init_client(args.verbose);
    let opts = args.connect.opts();
    crate::client::check_server(&opts)?;
    let login = Login::resolve(&opts, true)?;
    let mut client = open(&opts, &login)?;
    let mut first_error = None;
    for pattern in &args.paths {
        let targets = match crate::get::expand_remote(&mut client, pattern) {
            Ok(t) => t.into_iter().map(|(p, _)| p).collect::<Vec<String>>(),
            Err(Error::Remote { code, .. }) if args.force && code == Status::NotFound.code() => {
                continue
            }
            Err(e) if e.ends_connection() => return Err(e),
            Err(e) => {
                eprintln!("miniftp: {e}");
                first_error.get_or_insert(e);
                continue;
            }
        };
        for path in targets {
            let reply = client.request(&Request::Rm {
                path: path.clone(),
                recursive: args.recursive,
                force: args.force,
            })?;
            if reply.is_success() {
                if args.verbose {
                    eprintln!("{}", reply.msg);
                }
            } else {
                let e = Error::remote(&reply);
                eprintln!("miniftp: {e}");
                first_error.get_or_insert(e);
            }
        }
    }
    client.quit();
    Error::after_all(first_error, "some paths were not removed (see above)")
}
