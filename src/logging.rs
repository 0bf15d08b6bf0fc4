//! Log setup: everything goes to stderr through env_logger; `RUST_LOG`
//! overrides the default level.

fn builder(default: &str) -> env_logger::Builder {
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    b.format_timestamp_millis();
    b
}

/// The server logs sessions and transfers at `info`. rustls warns about
/// every client that sends an IP address as the TLS server name (curl and
/// lftp do, to an FTP server given by address): harmless, and not worth a
/// line per connection.
pub fn init_server() {
    let _ = builder("info")
        .filter_module("rustls::msgs::handshake", log::LevelFilter::Error)
        .try_init();
}

/// Clients only warn, unless --verbose.
pub fn init_client(verbose: bool) {
    crate::error::VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    let _ = builder(if verbose { "info" } else { "warn" }).try_init();
}
