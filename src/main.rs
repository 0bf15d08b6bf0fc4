//! miniftp: `main` parses the command line, runs the subcommand, and turns
//! an error into one line on stderr and a documented exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use miniftp::cli::Cli;
use miniftp::error::Exit;

fn main() -> ExitCode {
    // An empty MINIFTP_* variable means unset (miniftp(1), ENVIRONMENT):
    // `MINIFTP_SERVER= miniftp put ...` takes the default server, not "".
    // Done before anything reads them (clap's env defaults included), while
    // the process has one thread.
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_str().is_some_and(|n| n.starts_with("MINIFTP_")) {
            std::env::remove_var(&name);
        }
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(Exit::Usage as u8),
            };
        }
    };
    match miniftp::run(cli) {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(e) => {
            eprintln!("miniftp: {e}");
            if miniftp::error::VERBOSE.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(cause) = e.cause() {
                    eprintln!("miniftp: cause: {cause}");
                }
            }
            ExitCode::from(e.exit() as u8)
        }
    }
}
