//! Command-line definitions. The same definitions give `--help`, the shell
//! completions (`make completions`), and the list of flags that a test
//! checks man/miniftp.1 against.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "miniftp",
    version,
    about = "A small, fast, safe file-transfer service",
    long_about = "miniftp: one binary with the server (serve), an interactive client (shell), \
                  one-shot transfers for scripts (put, get) and offline user management (useradd).\n\
                  See miniftp(1) for the full manual."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// The environment every client subcommand reads, for `--help`.
const CLIENT_ENV: &str = "Environment (an empty variable counts as unset):
  MINIFTP_SERVER       HOST:PORT, as --server
  MINIFTP_USER         user name, as --user
  MINIFTP_PASSWORD     the password (never on the command line)
  MINIFTP_FINGERPRINT  SHA256:HEX of the server certificate, as --fingerprint
  MINIFTP_CA_FILE      CA bundle, as --ca-file
  MINIFTP_PLAINTEXT    1: plain TCP, as --plaintext
Also ~/.netrc (NETRC) for the user and password. See miniftp(1).";

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server.
    Serve(ServeArgs),
    /// Interactive client session: log in, register, then type commands.
    #[command(after_help = CLIENT_ENV)]
    Shell(ShellArgs),
    /// Upload files: miniftp put [OPTIONS] LOCAL... REMOTE
    #[command(after_help = CLIENT_ENV, override_usage = "miniftp put [OPTIONS] LOCAL... REMOTE")]
    Put(PutArgs),
    /// Download files: miniftp get [OPTIONS] REMOTE... LOCAL
    #[command(after_help = CLIENT_ENV, override_usage = "miniftp get [OPTIONS] REMOTE... LOCAL")]
    Get(GetArgs),
    /// List remote files: miniftp ls [-l] [--json] [REMOTE...]
    #[command(after_help = CLIENT_ENV)]
    Ls(LsArgs),
    /// Remove remote files: miniftp rm [-r] [-f] REMOTE...
    #[command(after_help = CLIENT_ENV)]
    Rm(RmArgs),
    /// Print the server's SHA-256 of remote files as sha256sum does
    #[command(after_help = CLIENT_ENV)]
    Sum(SumArgs),
    /// Mirror a directory, moving only files whose SHA-256 differs:
    /// miniftp sync up LOCAL_DIR REMOTE_DIR | sync down REMOTE_DIR LOCAL_DIR
    #[command(after_help = CLIENT_ENV)]
    Sync(SyncArgs),
    /// Add, list, change and remove users; approve registrations (offline).
    Useradd(UseraddArgs),
    /// Ask the running server: who is connected, kick a user, lockouts.
    Admin(crate::admin::AdminArgs),
    /// Generate shell completions or the flag list (used by the Makefile).
    #[command(hide = true)]
    Generate(GenerateArgs),
    /// Load generator and ceilings for `make bench` (bench/run.sh).
    #[command(hide = true)]
    Bench(crate::bench::BenchArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Config file (TOML); without it the built-in defaults apply.
    #[arg(long, value_name = "FILE", env = "MINIFTP_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on, overriding the config (port 0 picks a free port).
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// Data directory (users, registrations, homes), overriding the config.
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Serve plain TCP without TLS (same as `tls.enabled = false`).
    #[arg(long)]
    pub plaintext: bool,
    /// Check the configuration, the data directory, the users file and the
    /// storage backend, then exit (0 when all is well) without listening
    /// or touching any data: safe beside a running server.
    #[arg(long)]
    pub check: bool,
}

/// Where the users file is: a data directory, or the config that names one.
#[derive(Args, Debug, Clone)]
pub struct RootArgs {
    /// Config file whose `root` holds the users file.
    #[arg(long, value_name = "FILE", env = "MINIFTP_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding users.toml (overrides the config).
    #[arg(long, value_name = "DIR", global = true)]
    pub root: Option<PathBuf>,
}

/// How a client reaches and authenticates to a server.
#[derive(Args, Debug, Clone)]
pub struct ConnectArgs {
    /// Server address.
    #[arg(
        short = 's',
        long,
        value_name = "HOST:PORT",
        env = "MINIFTP_SERVER",
        default_value = "127.0.0.1:9000"
    )]
    pub server: String,
    /// User name (default: from ~/.netrc for that host, else $USER).
    #[arg(short = 'u', long, value_name = "NAME", env = "MINIFTP_USER")]
    pub user: Option<String>,
    /// Read the password from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for the connection to open.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub connect_timeout: u64,
    /// Seconds without progress before a transfer or reply is given up.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub timeout: u64,
    /// Attempts after a transient network error (connect refused, reset).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub retries: u32,
    /// Trust only the server certificate with this SHA-256 fingerprint
    /// (as the server prints it: SHA256:HEX; colons allowed).
    #[arg(long, value_name = "SHA256:HEX", env = "MINIFTP_FINGERPRINT")]
    pub fingerprint: Option<String>,
    /// Verify the server certificate against the CAs in this PEM bundle.
    #[arg(long, value_name = "FILE", env = "MINIFTP_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Speak plain TCP, without TLS (only for a server run with TLS
    /// turned off; warns loudly unless the server is on this machine).
    #[arg(
        long,
        env = "MINIFTP_PLAINTEXT",
        value_parser = flag_from_env,
        action = clap::ArgAction::SetTrue
    )]
    pub plaintext: bool,
}

impl ConnectArgs {
    /// The client library's options from these flags.
    pub fn opts(&self) -> crate::client::ConnectOpts {
        crate::client::ConnectOpts {
            server: self.server.clone(),
            user: self.user.clone(),
            password_file: self.password_file.clone(),
            timeouts: crate::client::Timeouts {
                connect: std::time::Duration::from_secs(self.connect_timeout.max(1)),
                io: std::time::Duration::from_secs(self.timeout.max(1)),
            },
            retries: self.retries,
            fingerprint: self.fingerprint.clone(),
            ca_file: self.ca_file.clone(),
            plaintext: self.plaintext,
            throttle: None,
        }
    }
}

#[derive(Args, Debug)]
pub struct ShellArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// With commands from a file or pipe: carry on after a failed command
    /// (the default stops with a non-zero exit at the first failure).
    #[arg(short = 'k', long)]
    pub keep_going: bool,
    /// Most bytes per second for the session's transfers (e.g. 500K, 5M).
    #[arg(long, value_name = "RATE")]
    pub bwlimit: Option<String>,
}

#[derive(Args, Debug)]
pub struct TransferOpts {
    /// Copy directories recursively.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Resume an interrupted transfer where it stopped (verified at the end).
    #[arg(short = 'c', long = "continue")]
    pub resume: bool,
    /// No progress output.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// A line per file transferred, with size, rate and digest.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Most bytes per second, over all connections (e.g. 500K, 5M).
    #[arg(long, value_name = "RATE")]
    pub bwlimit: Option<String>,
}

#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub opts: TransferOpts,
    /// Create missing remote parent directories.
    #[arg(short = 'p', long)]
    pub parents: bool,
    /// Local files (globs allowed; `-` is standard input), then the remote
    /// destination (a directory when several files are given).
    #[arg(value_name = "PATH", num_args = 2.., required = true)]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    #[command(flatten)]
    pub opts: TransferOpts,
    /// Remote files (globs allowed), then the local destination (`-` is
    /// standard output; a directory when several files are given).
    #[arg(value_name = "PATH", num_args = 2.., required = true)]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LsArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Long listing: type, exact size in bytes, modification time (UTC).
    #[arg(short = 'l', long)]
    pub long: bool,
    /// One JSON array of entries (path, type, size, mtime, sha256).
    #[arg(long)]
    pub json: bool,
    /// Remote directories or files (default: the home directory).
    #[arg(value_name = "REMOTE")]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Also remove directories and everything in them.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// A path that does not exist (or a glob that matches nothing) is not
    /// an error.
    #[arg(short = 'f', long)]
    pub force: bool,
    /// A line per path removed.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Remote paths (globs allowed).
    #[arg(value_name = "REMOTE", required = true)]
    pub paths: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SumArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Every file below the named directories.
    #[arg(short = 'r', long)]
    pub recursive: bool,
    /// Remote files (globs allowed).
    #[arg(value_name = "REMOTE", required = true)]
    pub paths: Vec<String>,
}

/// Which way a sync goes.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From a local directory to the server.
    Up,
    /// From the server to a local directory.
    Down,
}

#[derive(Args, Debug)]
#[command(
    override_usage = "miniftp sync [OPTIONS] up LOCAL_DIR REMOTE_DIR\n       \
                            miniftp sync [OPTIONS] down REMOTE_DIR LOCAL_DIR"
)]
pub struct SyncArgs {
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// up (local to server) or down (server to local).
    #[arg(value_enum, value_name = "up|down")]
    pub direction: Direction,
    /// The directory to copy from.
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The directory to make like it.
    #[arg(value_name = "DEST")]
    pub dest: String,
    /// Also remove files in DEST that are not in SOURCE (left-out paths are
    /// kept).
    #[arg(long)]
    pub delete: bool,
    /// Print what would be done, change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Leave out paths matching GLOB (a name, or a path with /); repeatable.
    #[arg(long, value_name = "GLOB")]
    pub exclude: Vec<String>,
    /// Keep paths matching GLOB even when an --exclude matches; repeatable.
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Most bytes per second, over all connections (e.g. 500K, 5M).
    #[arg(long, value_name = "RATE")]
    pub bwlimit: Option<String>,
    /// Transfers at once, each on its own connection.
    #[arg(short = 'j', long, value_name = "N", default_value_t = 2)]
    pub jobs: usize,
    /// Hash every local file, trusting no digest from the local digest
    /// cache (which is written afresh).
    #[arg(long)]
    pub no_cache: bool,
    /// No summary line.
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// A line per file sent, received, deleted or re-timed.
    #[arg(short = 'v', long)]
    pub verbose: bool,
}

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("action").args([
    "list", "pending", "passwd", "set_quota", "set_max_entries", "disable", "enable", "remove",
    "approve", "reject"
])))]
pub struct UseraddArgs {
    #[command(flatten)]
    pub root: RootArgs,
    /// The user to add (or to act on with --passwd, --set-quota,
    /// --set-max-entries, --disable, --enable, --remove, --approve, --reject).
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
    /// Quota of a new or approved user (e.g. 500M, 2G; default: the
    /// config's default_quota).
    #[arg(long, value_name = "SIZE")]
    pub quota: Option<String>,
    /// Most files and directories (partial uploads included) of a new or
    /// approved user (default: the config's default_max_entries).
    #[arg(long, value_name = "N")]
    pub max_entries: Option<u64>,
    /// Home directory of a new user (default: ROOT/home/NAME).
    #[arg(long, value_name = "DIR")]
    pub home: Option<PathBuf>,
    /// Upload limit in bytes per second over all of NAME's sessions (e.g.
    /// 5M; 0 = none), for a new or approved user, or alone to change it.
    #[arg(long, value_name = "RATE", requires = "name")]
    pub rate_up: Option<String>,
    /// Download limit, like --rate-up.
    #[arg(long, value_name = "RATE", requires = "name")]
    pub rate_down: Option<String>,
    /// Read the password from standard input (first line) instead of a prompt.
    #[arg(long)]
    pub password_stdin: bool,
    /// List users with quota and used space.
    #[arg(long)]
    pub list: bool,
    /// List registration requests awaiting approval.
    #[arg(long)]
    pub pending: bool,
    /// Change NAME's password.
    #[arg(long, requires = "name")]
    pub passwd: bool,
    /// Change NAME's quota.
    #[arg(long, value_name = "SIZE", requires = "name")]
    pub set_quota: Option<String>,
    /// Change NAME's limit on files and directories.
    #[arg(long, value_name = "N", requires = "name")]
    pub set_max_entries: Option<u64>,
    /// Disable NAME: no new logins, and open sessions end at their next
    /// request; the account and its files stay.
    #[arg(long, requires = "name")]
    pub disable: bool,
    /// Enable NAME again after --disable.
    #[arg(long, requires = "name")]
    pub enable: bool,
    /// Remove NAME (the home stays unless --delete-home).
    #[arg(long, requires = "name")]
    pub remove: bool,
    /// With --remove: also delete the home directory and its files.
    #[arg(long, requires = "remove")]
    pub delete_home: bool,
    /// Approve NAME's registration request.
    #[arg(long, requires = "name")]
    pub approve: bool,
    /// Reject NAME's registration request.
    #[arg(long, requires = "name")]
    pub reject: bool,
}

#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// What to generate: bash, zsh, fish, or flags (every long flag, one a line).
    #[arg(value_name = "WHAT")]
    pub what: String,
    /// Output directory (completions) ; flags go to stdout.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Every `--flag` of every subcommand, for the man-page check.
pub fn all_long_flags() -> Vec<(String, String)> {
    use clap::CommandFactory;
    let cmd = Cli::command();
    let mut out = Vec::new();
    for sub in cmd.get_subcommands() {
        if sub.is_hide_set() {
            continue;
        }
        for arg in sub.get_arguments() {
            if arg.is_hide_set() {
                continue;
            }
            if let Some(long) = arg.get_long() {
                out.push((sub.get_name().to_string(), format!("--{long}")));
            }
        }
    }
    out
}

/// A boolean from the environment: 1/true/yes/on or 0/false/no/off; empty
/// means unset (false), like the other MINIFTP_ variables.
fn flag_from_env(text: &str) -> Result<bool, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "" | "0" | "false" | "no" | "off" | "n" | "f" => Ok(false),
        "1" | "true" | "yes" | "on" | "y" | "t" => Ok(true),
        other => Err(format!("{other:?} is not a yes/no value (use 1 or 0)")),
    }
}
