//! miniftp as a library: every module of the `miniftp` binary, so that the
//! fuzz targets (fuzz/) and the binary share one implementation.

// No unsafe code, but for the one audited call in src/server/malloc.rs.
#![deny(unsafe_code)]
// Replies are built once per request and returned by value; boxing every
// `Result<_, Reply>` (and every transient enum that carries one: events,
// decoded input, transfer steps) would add noise for no measurable gain.
// What a connection keeps between events boxes its large parts.
#![allow(clippy::result_large_err, clippy::large_enum_variant)]

pub mod access;
pub mod addr;
pub mod admin;
pub mod bench;
pub mod cli;
pub mod client;
pub mod config;
pub mod digest;
pub mod error;
pub mod get;
pub mod limits;
pub mod logging;
pub mod ls;
pub mod owner;
pub mod partial;
pub mod proto;
pub mod put;
pub mod rm;
pub mod serve;
pub mod server;
pub mod shell;
pub mod size;
pub mod storage;
pub mod sum;
pub mod sync;
pub mod tls;
pub mod useradd;
pub mod users;

use cli::{Cli, Command};
use error::Error;

/// Runs one subcommand.
pub fn run(cli: Cli) -> Result<(), Error> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Shell(args) => shell::run(args),
        Command::Put(args) => put::run(args),
        Command::Get(args) => get::run(args),
        Command::Ls(args) => ls::run(args),
        Command::Rm(args) => rm::run(args),
        Command::Sum(args) => sum::run(args),
        Command::Sync(args) => sync::run(args),
        Command::Useradd(args) => useradd::run(args),
        Command::Admin(args) => admin::run(args),
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
