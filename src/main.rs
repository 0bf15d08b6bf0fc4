//! miniftp: `main` parses the command line, runs the subcommand, and turns
//! an error into one line on stderr and a documented exit code.

#![forbid(unsafe_code)]
// Replies are built once per request and returned by value; boxing every
// `Result<_, Reply>` would add noise for no measurable gain.
#![allow(clippy::result_large_err)]

mod bench;
mod cli;
mod client;
mod config;
mod error;
mod get;
mod limits;
mod logging;
mod proto;
mod put;
mod serve;
mod server;
mod shell;
mod size;
mod storage;
mod tls;
mod useradd;
mod users;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command};
use error::{Error, Exit};

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
    match run(cli) {
        Ok(()) => ExitCode::from(Exit::Ok as u8),
        Err(e) => {
            eprintln!("miniftp: {e}");
            ExitCode::from(e.exit() as u8)
        }
    }
}

fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Shell(args) => shell::run(args),
        Command::Put(args) => put::run(args),
        Command::Get(args) => get::run(args),
        Command::Useradd(args) => useradd::run(args),
        Command::Generate(args) => generate(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// `miniftp generate bash|zsh|fish DIR`, `miniftp generate flags`.
fn generate(args: cli::GenerateArgs) -> Result<(), Error> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match args.what.as_str() {
        "flags" => {
            for (sub, flag) in cli::all_long_flags() {
                println!("{sub} {flag}");
            }
            return Ok(());
        }
        "bash" => Shell::Bash,
        "zsh" => Shell::Zsh,
        "fish" => Shell::Fish,
        other => return Err(Error::Usage(format!("cannot generate {other:?}"))),
    };
    let dir = args
        .dir
        .ok_or_else(|| Error::Usage("generate needs an output directory".into()))?;
    std::fs::create_dir_all(&dir).map_err(|e| Error::local(&dir, e))?;
    clap_complete::generate_to(shell, &mut Cli::command(), "miniftp", &dir)
        .map_err(|e| Error::local(&dir, e))?;
    Ok(())
}
