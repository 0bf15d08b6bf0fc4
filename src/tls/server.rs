//! The server's certificate: the configured chain and key, or on a first
//! start without either, a self-signed pair generated into ROOT/tls with
//! owner-only permissions. Its fingerprint is printed at every start.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use super::{fingerprint, provider};
use crate::config::{Config, ConfigError};

/// A ready server TLS setup.
pub struct ServerTls {
    pub config: Arc<ServerConfig>,
    pub fingerprint: String,
    /// Set when this start generated the certificate.
    pub generated: Option<PathBuf>,
}

fn invalid(key: &'static str, message: String) -> ConfigError {
    ConfigError::Invalid { key, message }
}

/// Loads (or generates) the certificate and builds a TLS 1.3 config.
pub fn load(config: &Config) -> Result<ServerTls, ConfigError> {
    let tls = &config.tls;
    let (cert_path, key_path, generated) = match (&tls.cert, &tls.key) {
        (Some(c), Some(k)) => (c.clone(), k.clone(), None),
        (None, None) => {
            let dir = config.root.join("tls");
            let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
            let generated = if c.exists() && k.exists() {
                None
            } else {
                generate(&dir, &c, &k, config).map_err(|e| {
                    invalid(
                        "tls",
                        format!(
                            "cannot create a self-signed certificate in {}: {e}",
                            dir.display()
                        ),
                    )
                })?;
                Some(dir)
            };
            (c, k, generated)
        }
        _ => {
            return Err(invalid(
                "tls.cert",
                "set both tls.cert and tls.key, or neither (a self-signed pair is generated)"
                    .into(),
            ))
        }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| invalid("tls.cert", format!("{}: {e}", cert_path.display())))?;
    let Some(leaf) = chain.first() else {
        return Err(invalid(
            "tls.cert",
            format!("{}: no certificate in it", cert_path.display()),
        ));
    };
    let fingerprint = fingerprint(leaf);
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| invalid("tls.key", format!("{}: {e}", key_path.display())))?;
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| invalid("tls", e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid("tls.key", format!("{}: {e}", key_path.display())))?;
    // One round trip less for a returning client is not worth keeping
    // session state for 10,000 connections; tickets are stateless.
    server.send_tls13_tickets = 0;
    Ok(ServerTls {
        config: Arc::new(server),
        fingerprint,
        generated,
    })
}

fn generate(dir: &Path, cert: &Path, key: &Path, config: &Config) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let mut names = vec!["localhost".to_string()];
    if let Ok(addr) = config.listen.parse::<std::net::SocketAddr>() {
        names.push(addr.ip().to_string());
    }
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let pair = rcgen::generate_simple_self_signed(names).map_err(std::io::Error::other)?;
    let write = |path: &Path, text: &str| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write(key, &pair.key_pair.serialize_pem())?;
    write(cert, &pair.cert.pem())?;
    Ok(())
}
