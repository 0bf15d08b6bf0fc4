//! Log setup: everything goes to stderr through env_logger; `RUST_LOG`
//! overrides the default level.

fn init(default: &str) {
    let _ = env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default))
        .format_timestamp_millis()
        .try_init();
}

/// The server logs sessions and transfers at `info`.
pub fn init_server() {
    init("info");
}

/// Clients only warn, unless --verbose.
pub fn init_client(verbose: bool) {
    crate::error::VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    init(if verbose { "info" } else { "warn" });
}
