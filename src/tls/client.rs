//! Client-side trust, like ssh:
//!
//! - `--fingerprint` (or MINIFTP_FINGERPRINT) pins the server's certificate:
//!   nothing else is consulted.
//! - `--ca-file` verifies against that bundle only (name and dates checked).
//! - Otherwise a server in the known-servers file must show the stored
//!   fingerprint (a changed one is refused loudly); an unknown server is
//!   verified against the system's CA roots, and a certificate no CA vouches
//!   for (a self-signed one) is "unknown": the shell shows its fingerprint
//!   and asks, scripts fail with a message that says how to trust it.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::{fingerprint, parse_fingerprint, provider};
use crate::error::{Error, Result};

/// What the client trusts, from its flags and files.
#[derive(Clone, Debug)]
pub struct Trust {
    /// `--fingerprint`: the only certificate accepted.
    pub pin: Option<[u8; 32]>,
    /// `--ca-file`: the only CAs accepted.
    pub ca_file: Option<PathBuf>,
    /// The known-servers file.
    pub known: PathBuf,
}

/// How the last handshake's certificate check ended, when it wasn't plain
/// success or a CA error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No CA vouches for it and it isn't known: ask or refuse.
    Unknown { fingerprint: String },
    /// Known with another fingerprint: refuse, loudly.
    Changed { expected: String, got: String },
    /// Not the pinned fingerprint.
    NotPinned { expected: String, got: String },
}

/// Where a verifier leaves its verdict for the caller to read.
pub type VerdictSlot = Arc<Mutex<Option<Verdict>>>;

/// The default known-servers file: $XDG_CONFIG_HOME/miniftp/known_servers,
/// or ~/.config/miniftp/known_servers.
pub fn default_known_servers() -> PathBuf {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".config")))
        .unwrap_or_else(|| PathBuf::from("."));
    base.join("miniftp").join("known_servers")
}

/// The stored fingerprint for `server` (HOST:PORT), if any. Lines are
/// `HOST:PORT SHA256:HEX`; `#` starts a comment.
pub fn known_fingerprint(known: &Path, server: &str) -> Option<String> {
    let text = std::fs::read_to_string(known).ok()?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .find_map(|l| {
            let (host, fp) = l.split_once(char::is_whitespace)?;
            (host == server).then(|| fp.trim().to_string())
        })
}

/// Adds `server`'s fingerprint to the known-servers file.
pub fn remember(known: &Path, server: &str, fp: &str) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = known.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::local(dir, e))?;
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(known)
        .map_err(|e| Error::local(known, e))?;
    writeln!(f, "{server} {fp}").map_err(|e| Error::local(known, e))
}

#[derive(Debug)]
struct Verifier {
    pin: Option<([u8; 32], bool)>,
    ca: Option<Arc<WebPkiServerVerifier>>,
    /// A CA failure that means "nobody vouches for it" becomes Unknown.
    tofu: bool,
    verdict: VerdictSlot,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

fn untrusted() -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure)
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let got = fingerprint(end_entity);
        let set = |v: Verdict| *self.verdict.lock().unwrap_or_else(|p| p.into_inner()) = Some(v);
        if let Some((pin, from_known)) = self.pin {
            let expected = format!("SHA256:{}", hex::encode(pin));
            if expected == got {
                return Ok(ServerCertVerified::assertion());
            }
            set(if from_known {
                Verdict::Changed { expected, got }
            } else {
                Verdict::NotPinned { expected, got }
            });
            return Err(untrusted());
        }
        let Some(ca) = &self.ca else {
            set(Verdict::Unknown { fingerprint: got });
            return Err(untrusted());
        };
        match ca.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer | CertificateError::BadSignature,
            )) if self.tofu => {
                set(Verdict::Unknown { fingerprint: got });
                Err(untrusted())
            }
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A client TLS config for `server` and the slot where its verifier
/// leaves a non-CA verdict.
pub fn config(trust: &Trust, server: &str) -> Result<(Arc<ClientConfig>, VerdictSlot)> {
    let provider = provider();
    let mut pin = trust.pin.map(|p| (p, false));
    let mut ca_roots = None;
    let mut tofu = false;
    if pin.is_none() {
        if let Some(file) = &trust.ca_file {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(file)
                .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
                .map_err(|e| Error::Usage(format!("--ca-file {}: {e}", file.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(Error::Usage(format!(
                    "--ca-file {}: no usable certificate in it",
                    file.display()
                )));
            }
            ca_roots = Some(roots);
        } else if let Some(fp) = known_fingerprint(&trust.known, server) {
            let parsed = parse_fingerprint(&fp).ok_or_else(|| {
                Error::Usage(format!(
                    "{}: bad fingerprint for {server}: {fp}",
                    trust.known.display()
                ))
            })?;
            pin = Some((parsed, true));
        } else {
            let mut roots = RootCertStore::empty();
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            ca_roots = Some(roots);
            tofu = true;
        }
    }
    let ca = match ca_roots {
        Some(roots) if !roots.is_empty() => Some(
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
                .build()
                .map_err(|e| Error::Other(format!("TLS setup: {e}")))?,
        ),
        _ => None,
    };
    let verdict = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        pin,
        ca,
        tofu,
        verdict: Arc::clone(&verdict),
        provider: Arc::clone(&provider),
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Other(format!("TLS setup: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok((Arc::new(config), verdict))
}

/// The name to verify a server's certificate against: the host part of
/// HOST:PORT.
pub fn server_name(server: &str) -> Result<ServerName<'static>> {
    let host = crate::addr::host_of(server);
    ServerName::try_from(host.to_string())
        .map_err(|_| Error::Usage(format!("bad server name {host:?}")))
}
