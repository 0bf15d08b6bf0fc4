//! `miniftp serve`: load the config, bind, print `listening on HOST:PORT`
//! (the real port, so `--listen 127.0.0.1:0` works for scripts and tests),
//! and run the loop until SIGINT/SIGTERM. Before anything else it checks
//! that it can use its data directory (crate::access).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::error::Error;
use crate::server::front::ftp::FtpShared;
use crate::server::front::Front;
use crate::server::{self, housekeeping, Shared};
use crate::storage::local::create_private_dir_all;
use crate::users::UserDb;

pub fn run(args: ServeArgs) -> Result<(), Error> {
    crate::server::malloc::tune();
    crate::logging::init_server();
    let check = args.check;
    let config = load_config(args)?;
    if check {
        return check_only(&config);
    }
    if let Some(path) = &config.log_file {
        crate::logging::to_file(path).map_err(|e| Error::local(path, e))?;
    }
    crate::access::check(&config)?;
    create_private_dir_all(&config.homes_dir()).map_err(|e| Error::local(config.homes_dir(), e))?;
    warn_if_open(&config.root);
    raise_fd_limit();
    // Taken before the load: a change racing with it is seen as a change.
    let users_seen = housekeeping::fingerprint(&config.users_file());
    let users = UserDb::load(&config.users_file())?;
    crate::access::check_homes(&config, &users)?;
    warn_if_no_users(&config, &users);
    let addr = config.listen_addr();
    let listener = bind(addr).map_err(|e| Error::Connect {
        addr: addr.to_string(),
        source: e,
    })?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Other(e.to_string()))?;
    let ftp_listeners = bind_ftp(&config.ftp)?;
    // Before anything is printed or swept: a second server on this data
    // directory (or a busy metrics port) stops here, having changed nothing.
    let ops = bind_ops(&config)?;
    let tls = if config.tls.enabled {
        let tls = crate::tls::server::load(&config)?;
        if let Some(dir) = &tls.generated {
            log::info!(
                "generated a self-signed certificate in {} (clients trust it by fingerprint)",
                dir.display()
            );
        }
        Some(tls)
    } else {
        log::warn!("TLS is off: passwords and files cross the network in clear");
        None
    };
    let fingerprint = tls.as_ref().map(|t| t.fingerprint.clone());
    let tls = tls.map(|t| t.config);
    let backend = crate::storage::open(&config)?;
    let mut shared = Shared::new(config, users, backend, tls);
    if !ftp_listeners.is_empty() {
        let native = shared.tls.as_deref();
        let ftp = FtpShared::new(native).map_err(|e| Error::Other(format!("FTP TLS: {e}")))?;
        shared.ftp = Some(ftp);
    }
    let shared = Arc::new(shared);
    housekeeping::spawn(Arc::clone(&shared), users_seen)
        .map_err(|e| Error::Other(e.to_string()))?;
    let signals = server::catch_signals().map_err(|e| Error::Other(e.to_string()))?;
    let metrics_addr = ops.metrics.as_ref().and_then(|l| l.local_addr().ok());
    let mut listeners = vec![server::Listener {
        socket: listener,
        front: Front::Native,
    }];
    if let Some(fp) = fingerprint {
        // On a line of its own, for people and scripts to copy.
        println!("fingerprint {fp}");
    }
    announce(&shared, local, metrics_addr, ftp_listeners, &mut listeners)?;
    let admin_socket = crate::server::admin::socket_path(&shared.config.root);
    let result = server::run(listeners, ops, shared, Some(signals));
    let _ = std::fs::remove_file(&admin_socket);
    result.map_err(|e| Error::Other(format!("event loop: {e}")))?;
    log::info!("stopped");
    Ok(())
}

/// The `listening on` lines scripts wait for (the native one first, then
/// the FTP and metrics ones), and what is served where.
fn announce(
    shared: &Shared,
    local: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    ftp: Vec<server::Listener>,
    listeners: &mut Vec<server::Listener>,
) -> Result<(), Error> {
    println!("miniftp {} listening on {local}", env!("CARGO_PKG_VERSION"));
    announce_ftp(ftp, listeners)?;
    if let Some(addr) = metrics_addr {
        println!("metrics listening on {addr}");
        log::info!("metrics listening on {addr}");
    }
    let _ = std::io::stdout().flush();
    log::info!(
        "serving {}, homes in {} (registration: {:?})",
        shared.config.root.display(),
        shared.backend.describe(),
        shared.config.registration.policy
    );
    Ok(())
}

/// `serve --check`: what a start checks before it listens (the config,
/// access to the data directory, the users file, the storage backend),
/// with nothing bound, created, swept or generated.
fn check_only(config: &Config) -> Result<(), Error> {
    crate::access::check(config)?;
    let users = UserDb::load(&config.users_file())?;
    crate::access::check_homes(config, &users)?;
    // The local backend's open makes ROOT/home, which a check must not:
    // access::check has looked at it already. An object store is reached.
    let homes = match config.storage.backend {
        crate::config::BackendKind::Local => config.homes_dir().display().to_string(),
        crate::config::BackendKind::S3 => crate::storage::open(config)?.describe(),
    };
    println!(
        "configuration OK: {} users, homes in {homes}",
        users.users.len()
    );
    Ok(())
}

/// The config file with the command line's overrides, validated.
fn load_config(args: ServeArgs) -> Result<Config, Error> {
    let mut config = Config::load(args.config.as_deref())?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(root) = args.root {
        config.root = root;
    }
    if args.plaintext {
        config.tls.enabled = false;
    }
    config.validate()?;
    Ok(config)
}

fn warn_if_no_users(config: &Config, users: &UserDb) {
    if users.users.is_empty() {
        log::warn!(
            "no users in {}: add one with `miniftp useradd NAME --root {}`",
            config.users_file().display(),
            config.root.display()
        );
    }
}

/// Prints `ftp listening on HOST:PORT` (`ftps` for implicit FTPS) for each
/// FTP listener and adds it to `listeners`. After the native line, so that
/// scripts that read that one first keep working.
fn announce_ftp(
    ftp: Vec<server::Listener>,
    listeners: &mut Vec<server::Listener>,
) -> Result<(), Error> {
    for l in ftp {
        match (l.front, l.socket.local_addr()) {
            (Front::Ftp { implicit_tls: true }, Ok(a)) => println!("ftps listening on {a}"),
            (_, Ok(a)) => println!("ftp listening on {a}"),
            (_, Err(e)) => return Err(Error::Other(e.to_string())),
        }
        listeners.push(l);
    }
    Ok(())
}

/// Binds the `[ftp]` listeners that are configured (none by default).
fn bind_ftp(ftp: &crate::config::Ftp) -> Result<Vec<server::Listener>, Error> {
    let wanted = [
        (
            &ftp.listen,
            Front::Ftp {
                implicit_tls: false,
            },
        ),
        (&ftp.implicit_tls_listen, Front::Ftp { implicit_tls: true }),
    ];
    let mut bound = Vec::new();
    for (addr, front) in wanted {
        let Some(addr) = addr.as_deref() else {
            continue;
        };
        let addr: std::net::SocketAddr = addr
            .parse()
            .map_err(|_| Error::Other(format!("bad FTP address {addr}")))?;
        let socket = bind(addr).map_err(|e| Error::Connect {
            addr: addr.to_string(),
            source: e,
        })?;
        bound.push(server::Listener { socket, front });
    }
    Ok(bound)
}

/// The operator's listeners: `[metrics] listen` if set, and the admin
/// socket in the data directory (always; a second server on the same data
/// directory is refused here).
fn bind_ops(config: &Config) -> Result<server::OpsListeners, Error> {
    let metrics = match config.metrics.listen_addr() {
        Some(addr) => Some(bind(addr).map_err(|e| Error::Connect {
            addr: addr.to_string(),
            source: e,
        })?),
        None => None,
    };
    let admin = crate::server::admin::bind(&config.root).map_err(|e| {
        let path = crate::server::admin::socket_path(&config.root);
        Error::Other(format!("cannot listen on {}: {e}", path.display()))
    })?;
    crate::server::metrics::global()
        .set_pending_registrations(pending_count(&config.pending_file()));
    Ok(server::OpsListeners {
        metrics,
        admin: Some(admin),
    })
}

/// Registration requests waiting, for the metrics (0 if the file can't be
/// read: the server reports that where it uses the file).
pub fn pending_count(path: &std::path::Path) -> usize {
    crate::users::PendingDb::load(path).map_or(0, |db| db.requests.len())
}

/// Warns when other local accounts may write into the data directory: they
/// could plant files in homes (SECURITY.md). The server makes it 0700
/// itself; one that already existed keeps the mode its owner gave it.
fn warn_if_open(root: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(md) = std::fs::metadata(root) {
        let mode = md.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            log::warn!(
                "{} is writable by its group or by others (mode {mode:03o}): other local \
                 accounts could put files into users' homes; run `chmod 700 {}`",
                root.display(),
                root.display()
            );
        }
    }
}

/// Lets the server hold as many sockets as the hard limit allows.
fn raise_fd_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            log::warn!("cannot raise the open-files limit: {e}");
        }
    }
}

/// Binds the listening socket with a deep accept queue: std's default of
/// 128 drops the handshakes of a burst of clients (a thousand connecting at
/// once waited seconds for SYN retransmits).
fn bind(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    use rustix::net::{bind, listen, socket_with, sockopt, AddressFamily, SocketFlags, SocketType};
    let family = if addr.is_ipv4() {
        AddressFamily::INET
    } else {
        AddressFamily::INET6
    };
    let fd = socket_with(family, SocketType::STREAM, SocketFlags::CLOEXEC, None)?;
    sockopt::set_socket_reuseaddr(&fd, true)?;
    bind(&fd, &addr)?;
    listen(&fd, 4096)?;
    Ok(std::net::TcpListener::from(fd))
}
