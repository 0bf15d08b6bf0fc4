//! Server addresses as users write them (`HOST:PORT`, `[V6]:PORT`), for the
//! clients and for TLS's server name, which may not import each other.

/// The host part of HOST:PORT (brackets of an IPv6 literal removed).
pub fn host_of(server: &str) -> &str {
    let host = match server.rfind(':') {
        Some(i) if !server[..i].contains(':') || server.starts_with('[') => &server[..i],
        _ => server,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Whether `server` has the HOST:PORT shape (a non-empty host and a port
/// number); whether the host resolves is another question.
pub fn well_formed(server: &str) -> bool {
    server
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
}

/// Whether `server` names this machine (loopback or `localhost`).
pub fn is_local(server: &str) -> bool {
    let host = host_of(server);
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(host_of("127.0.0.1:9000"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9000"), "::1");
        assert_eq!(host_of("example.com"), "example.com");
        assert!(well_formed("[::1]:9000"));
        assert!(!well_formed("example.com"));
        assert!(is_local("[::1]:9000") && is_local("localhost:1"));
        assert!(!is_local("example.com:1"));
    }
}
