//! miniftp: `main` parses the command line, runs the subcommand, and turns
//! an error into one line on stderr and a documented exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

use miniftp::cli::Cli;
use miniftp::error::Exit;

fn main() -> ExitCode {
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
            ExitCode::from(e.exit() as u8)
        }
    }
}
