//! The server's TOML configuration: built-in defaults, so `miniftp serve`
//! runs with no file at all; unknown keys and bad values are errors that name
//! the key (exit code 2). etc/miniftp.toml shows every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default address: loopback only, so a first start exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
/// Default data directory, relative to the current directory.
pub const DEFAULT_ROOT: &str = "miniftp-data";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
}

/// Who may create an account from a client.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum RegistrationPolicy {
    /// Nobody: accounts come from `miniftp useradd` only.
    Closed,
    /// Requests wait in a pending list until the operator approves them.
    Approval,
    /// Anyone gets an account at once.
    Open,
}

/// `registration`: a policy alone (`registration = "approval"`), or a
/// table with the policy and the notification
/// (`[registration] policy = "approval"`, `notify_command = "..."`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub policy: RegistrationPolicy,
    /// Run (`/bin/sh -c`) when a request is filed under `approval`.
    pub notify_command: Option<String>,
    /// The command is killed after this long.
    pub notify_timeout_secs: u64,
}

/// The table form of `registration`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RegistrationTable {
    #[serde(default = "default_policy")]
    policy: RegistrationPolicy,
    notify_command: Option<String>,
    #[serde(default = "default_notify_timeout")]
    notify_timeout_secs: u64,
}

fn default_policy() -> RegistrationPolicy {
    RegistrationPolicy::Approval
}

fn default_notify_timeout() -> u64 {
    10
}

impl Default for Registration {
    fn default() -> Self {
        Registration {
            policy: default_policy(),
            notify_command: None,
            notify_timeout_secs: default_notify_timeout(),
        }
    }
}

impl RegistrationPolicy {
    /// The name in the config file, also sent in the greeting.
    pub fn name(self) -> &'static str {
        match self {
            RegistrationPolicy::Closed => "closed",
            RegistrationPolicy::Approval => "approval",
            RegistrationPolicy::Open => "open",
        }
    }
}

/// So `config.registration == RegistrationPolicy::Closed` reads as before.
impl PartialEq<RegistrationPolicy> for Registration {
    fn eq(&self, other: &RegistrationPolicy) -> bool {
        self.policy == *other
    }
}

impl<'de> Deserialize<'de> for Registration {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Registration;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"closed\", \"approval\", \"open\", or a table with `policy`")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Registration, E> {
                let policy = RegistrationPolicy::deserialize(
                    serde::de::value::StrDeserializer::<E>::new(v),
                )?;
                Ok(Registration {
                    policy,
                    ..Registration::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Registration, A::Error> {
                let t = RegistrationTable::deserialize(
                    serde::de::value::MapAccessDeserializer::new(map),
                )?;
                Ok(Registration {
                    policy: t.policy,
                    notify_command: t.notify_command,
                    notify_timeout_secs: t.notify_timeout_secs,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address and port to listen on.
    pub listen: String,
    /// Data directory: users.toml, pending.toml, home/.
    pub root: PathBuf,
    /// Registration policy for client-requested accounts, and who hears
    /// of a request.
    pub registration: Registration,
    /// Quota given to accounts created by registration.
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub default_quota: u64,
    /// The log goes to this file (reopened on SIGHUP) instead of stderr.
    pub log_file: Option<PathBuf>,
    /// Entries (files, directories, partial uploads) a home may hold when
    /// the users file sets no `max_entries` for its user.
    pub default_max_entries: u64,
    pub limits: Limits,
    pub auth: Auth,
    pub storage: StorageConfig,
    pub workers: Workers,
    pub tls: Tls,
    pub ftp: Ftp,
    pub metrics: MetricsConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Connections open at once, all addresses together.
    pub max_connections: usize,
    /// Connections open at once from one IP address.
    pub max_connections_per_ip: usize,
    /// A logged-in session with no traffic for this long is closed.
    pub idle_timeout_secs: u64,
    /// A connection that has not logged in after this long is closed.
    pub login_timeout_secs: u64,
    /// Failed logins from one address before it is locked out.
    pub max_failed_logins: u32,
    /// Delay before answering the first failed login; doubles each time.
    pub failed_login_delay_ms: u64,
    /// How long a locked-out address must wait.
    pub lockout_secs: u64,
    /// On SIGINT/SIGTERM, how long running transfers may take to finish.
    pub shutdown_grace_secs: u64,
    /// Registration requests waiting for approval, at most.
    pub max_pending_registrations: usize,
    /// Partial uploads untouched for longer than this are removed.
    pub partial_max_age_secs: u64,
    /// Upload bytes per second, all users together; 0 = no limit.
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub rate_up: u64,
    /// Download bytes per second, all users together; 0 = no limit.
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub rate_down: u64,
    /// Addresses whose failed logins never lock them out (a cron job's
    /// host): CIDR ranges or single addresses.
    #[serde(deserialize_with = "deserialize_nets")]
    pub lockout_exempt: Vec<ipnet::IpNet>,
}

/// CIDR ranges, a bare address meaning just that address; a bad entry is
/// named in the error.
fn deserialize_nets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|text| {
            let t = text.trim();
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map(|net| net.trunc())
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not an address or a CIDR range (e.g. \"10.0.0.0/8\", \"2001:db8::1\")"
                    ))
                })
        })
        .collect()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// argon2id memory cost in KiB for new password hashes.
    pub argon2_memory_kib: u32,
    /// argon2id time cost (passes).
    pub argon2_iterations: u32,
    /// argon2id lanes.
    pub argon2_parallelism: u32,
    /// Shortest password `register` and `useradd` accept (characters).
    pub min_password_len: usize,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// fsync each upload before it is renamed into place (crash safety;
    /// local storage only: an object store makes its own writes durable).
    pub fsync: bool,
    /// Where homes live: the data directory, or a bucket.
    pub backend: BackendKind,
    /// The object store's URL (`backend = "s3"`); unset: the
    /// `AWS_ENDPOINT_URL_S3` or `AWS_ENDPOINT_URL` variable, else AWS's
    /// regional endpoint.
    pub endpoint: Option<String>,
    /// The store's region; unset: `AWS_REGION` or `AWS_DEFAULT_REGION`.
    pub region: Option<String>,
    /// The bucket that holds every home (required with `s3`).
    pub bucket: Option<String>,
    /// A key prefix, so several deployments can share one bucket.
    pub prefix: String,
    /// The access key; unset: `AWS_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// A file holding the secret key (one line), kept out of the config;
    /// unset: `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key_file: Option<PathBuf>,
    /// `endpoint/bucket/key` URLs (Garage, MinIO, IP endpoints) rather than
    /// `bucket.endpoint/key`.
    pub path_style: bool,
}

/// Which storage backend holds the homes.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Directories under `root/home` (or a user's absolute `home`).
    #[default]
    Local,
    /// Objects in one bucket of an S3-compatible store (docs/STORAGE.md).
    S3,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Tls {
    /// TLS 1.3 on every connection. Turning it off (plaintext) is the
    /// operator's explicit choice.
    pub enabled: bool,
    /// PEM certificate chain. With neither `cert` nor `key`, a self-signed
    /// pair is generated in ROOT/tls on first start.
    pub cert: Option<PathBuf>,
    /// PEM private key for `cert`.
    pub key: Option<PathBuf>,
}

impl Default for Tls {
    fn default() -> Self {
        Tls {
            enabled: true,
            cert: None,
            key: None,
        }
    }
}

/// The FTP listener (docs/FTP.md): off unless `listen` is set.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ftp {
    /// Address and port of the FTP listener (explicit FTPS with `AUTH
    /// TLS`, or plain FTP when TLS is not required). None: no FTP.
    pub listen: Option<String>,
    /// Address and port of an implicit-FTPS listener (TLS from the first
    /// byte). None: none.
    pub implicit_tls_listen: Option<String>,
    /// `LOW-HIGH`: the ports passive data connections listen on. None:
    /// any free port the system picks.
    pub passive_ports: Option<String>,
    /// The IPv4 address PASV replies advertise (for NAT). None: the
    /// address the client connected to.
    pub passive_address: Option<String>,
    /// `USER` needs `AUTH TLS` first, and transfers need `PROT P`.
    pub require_tls: bool,
    /// A protected data connection must resume the control connection's
    /// TLS session (else `522`).
    pub require_tls_session_reuse: bool,
    /// PORT and EPRT, to the control connection's own address only.
    pub active_mode: bool,
}

impl Default for Ftp {
    fn default() -> Self {
        Ftp {
            listen: None,
            implicit_tls_listen: None,
            passive_ports: None,
            passive_address: None,
            require_tls: true,
            require_tls_session_reuse: true,
            active_mode: false,
        }
    }
}

impl Ftp {
    /// Whether any FTP listener is configured.
    pub fn enabled(&self) -> bool {
        self.listen.is_some() || self.implicit_tls_listen.is_some()
    }

    /// `passive_ports` as a range (validated in `Config::validate`).
    pub fn passive_range(&self) -> Option<(u16, u16)> {
        let (lo, hi) = self.passive_ports.as_deref()?.split_once('-')?;
        Some((lo.trim().parse().ok()?, hi.trim().parse().ok()?))
    }

    /// `passive_address` as an address (validated in `Config::validate`).
    pub fn passive_ip(&self) -> Option<std::net::Ipv4Addr> {
        self.passive_address.as_deref()?.parse().ok()
    }

    fn validate(&self, tls: bool) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let addr = |a: &Option<String>| {
            a.as_deref()
                .is_some_and(|a| a.parse::<SocketAddr>().is_err())
        };
        if addr(&self.listen) {
            return invalid(
                "ftp.listen",
                format!(
                    "{:?} is not HOST:PORT (e.g. 127.0.0.1:2121)",
                    self.listen.as_deref().unwrap_or_default()
                ),
            );
        }
        if addr(&self.implicit_tls_listen) {
            return invalid(
                "ftp.implicit_tls_listen",
                format!(
                    "{:?} is not HOST:PORT (e.g. 127.0.0.1:990)",
                    self.implicit_tls_listen.as_deref().unwrap_or_default()
                ),
            );
        }
        if self.passive_ports.is_some()
            && !self
                .passive_range()
                .is_some_and(|(lo, hi)| 0 < lo && lo <= hi)
        {
            return invalid(
                "ftp.passive_ports",
                format!(
                    "{:?} is not LOW-HIGH with 1 <= LOW <= HIGH <= 65535 (e.g. \"50000-50999\")",
                    self.passive_ports.as_deref().unwrap_or_default()
                ),
            );
        }
        if self.passive_address.is_some() && self.passive_ip().is_none() {
            return invalid(
                "ftp.passive_address",
                format!(
                    "{:?} is not an IPv4 address (PASV can only show IPv4)",
                    self.passive_address.as_deref().unwrap_or_default()
                ),
            );
        }
        if self.enabled() && !tls && self.require_tls {
            return invalid("ftp.require_tls", "TLS is off ([tls] enabled = false or --plaintext): set ftp.require_tls = false to serve FTP in clear, or turn TLS on".into());
        }
        if self.implicit_tls_listen.is_some() && !tls {
            return invalid(
                "ftp.implicit_tls_listen",
                "implicit FTPS needs TLS: [tls] enabled = true".into(),
            );
        }
        Ok(())
    }
}

/// `[metrics]`: where Prometheus scrapes the server, if anywhere.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// HOST:PORT for `GET /metrics`; unset: no metrics listener.
    pub listen: Option<String>,
}

impl MetricsConfig {
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        let addr = self.listen.as_ref()?;
        Some(addr.parse().expect("validated in Config::validate"))
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Workers {
    /// Threads for file operations and transfers; 0 = one per CPU core.
    pub io_threads: usize,
    /// Threads for password hashing; 0 = one per CPU core.
    pub auth_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN.into(),
            root: PathBuf::from(DEFAULT_ROOT),
            registration: Registration::default(),
            default_quota: 1 << 30,
            log_file: None,
            default_max_entries: 100_000,
            limits: Limits::default(),
            auth: Auth::default(),
            storage: StorageConfig::default(),
            workers: Workers::default(),
            tls: Tls::default(),
            ftp: Ftp::default(),
            metrics: MetricsConfig::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_ip: 64,
            idle_timeout_secs: 300,
            login_timeout_secs: 30,
            max_failed_logins: 5,
            failed_login_delay_ms: 250,
            lockout_secs: 300,
            shutdown_grace_secs: 10,
            max_pending_registrations: 100,
            partial_max_age_secs: 7 * 24 * 3600,
            rate_up: 0,
            rate_down: 0,
            lockout_exempt: Vec::new(),
        }
    }
}

impl Default for Auth {
    /// One of OWASP's recommended argon2id settings (12 MiB, 3 passes):
    /// ~13 ms a hash on a 2020s server core.
    fn default() -> Self {
        Auth {
            argon2_memory_kib: 12 * 1024,
            argon2_iterations: 3,
            argon2_parallelism: 1,
            min_password_len: 12,
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            fsync: true,
            backend: BackendKind::Local,
            endpoint: None,
            region: None,
            bucket: None,
            prefix: String::new(),
            access_key_id: None,
            secret_access_key_file: None,
            path_style: true,
        }
    }
}

impl StorageConfig {
    /// An S3 key set to "" (an unexpanded variable in a generated config),
    /// which would otherwise be sent to the store as is.
    fn empty_s3_key(&self) -> Option<&'static str> {
        let empty = |v: &Option<String>| v.as_deref().is_some_and(|v| v.trim().is_empty());
        [
            ("storage.endpoint", empty(&self.endpoint)),
            ("storage.region", empty(&self.region)),
            ("storage.bucket", empty(&self.bucket)),
            ("storage.access_key_id", empty(&self.access_key_id)),
            (
                "storage.secret_access_key_file",
                self.secret_access_key_file
                    .as_ref()
                    .is_some_and(|p| p.as_os_str().is_empty()),
            ),
        ]
        .into_iter()
        .find(|(_, is_empty)| *is_empty)
        .map(|(key, _)| key)
    }

    /// The S3 keys that are set while the backend is local (a mistake: the
    /// operator meant `backend = "s3"`).
    fn stray_s3_keys(&self) -> Vec<&'static str> {
        let set = [
            ("storage.endpoint", self.endpoint.is_some()),
            ("storage.region", self.region.is_some()),
            ("storage.bucket", self.bucket.is_some()),
            ("storage.prefix", !self.prefix.is_empty()),
            ("storage.access_key_id", self.access_key_id.is_some()),
            (
                "storage.secret_access_key_file",
                self.secret_access_key_file.is_some(),
            ),
        ];
        set.iter().filter(|(_, on)| *on).map(|(k, _)| *k).collect()
    }
}

impl Config {
    /// Reads `path`, or the defaults when `path` is None.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let config = match path {
            None => Config::default(),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Config::parse(&text).map_err(|message| ConfigError::Parse {
                    path: path.to_owned(),
                    message,
                })?
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// Parses config text (errors carry toml's line, column and key).
    pub fn parse(text: &str) -> Result<Config, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())
    }

    /// Checks the values serde can't: ranges and addresses.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.listen.parse::<SocketAddr>().is_err() {
            return invalid(
                "listen",
                &format!("{:?} is not HOST:PORT (e.g. 127.0.0.1:9000)", self.listen),
            );
        }
        if let Some(m) = &self.metrics.listen {
            if m.parse::<SocketAddr>().is_err() {
                return invalid(
                    "metrics.listen",
                    &format!("{m:?} is not HOST:PORT (e.g. 127.0.0.1:9100)"),
                );
            }
        }
        if self.limits.max_connections == 0 {
            return invalid("limits.max_connections", "must be at least 1");
        }
        if self.limits.max_connections_per_ip == 0 {
            return invalid("limits.max_connections_per_ip", "must be at least 1");
        }
        if self.limits.idle_timeout_secs == 0 {
            return invalid("limits.idle_timeout_secs", "must be at least 1");
        }
        if self.limits.login_timeout_secs == 0 {
            return invalid("limits.login_timeout_secs", "must be at least 1");
        }
        if self.limits.max_failed_logins == 0 {
            return invalid("limits.max_failed_logins", "must be at least 1");
        }
        if self.auth.argon2_memory_kib < 8 * self.auth.argon2_parallelism.max(1) {
            return invalid("auth.argon2_memory_kib", "must be at least 8 per lane");
        }
        if self.auth.argon2_iterations == 0 {
            return invalid("auth.argon2_iterations", "must be at least 1");
        }
        if self.auth.argon2_parallelism == 0 {
            return invalid("auth.argon2_parallelism", "must be at least 1");
        }
        if self.registration.notify_timeout_secs == 0 {
            return invalid("registration.notify_timeout_secs", "must be at least 1");
        }
        if self
            .registration
            .notify_command
            .as_ref()
            .is_some_and(|c| c.trim().is_empty())
        {
            return invalid(
                "registration.notify_command",
                "is empty (leave it out for no notification)",
            );
        }
        self.ftp.validate(self.tls.enabled)?;
        self.validate_storage()
    }

    /// The `[storage]` keys that don't need the environment or the network
    /// (credentials and the store itself are checked by `storage::open`).
    fn validate_storage(&self) -> Result<(), ConfigError> {
        let s = &self.storage;
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        match s.backend {
            BackendKind::Local => match s.stray_s3_keys().first() {
                Some(key) => invalid(
                    key,
                    "is only used with backend = \"s3\" (the backend is \"local\")".into(),
                ),
                None => Ok(()),
            },
            BackendKind::S3 => {
                if let Some(key) = s.empty_s3_key() {
                    return invalid(key, "is empty (leave it out to use the environment)".into());
                }
                let Some(bucket) = &s.bucket else {
                    return invalid("storage.bucket", "is required with backend = \"s3\"".into());
                };
                if let Err(why) = crate::storage::s3::check_bucket_name(bucket) {
                    return invalid("storage.bucket", why);
                }
                if let Err(e) = crate::storage::s3::keys::Layout::new(&s.prefix) {
                    return invalid("storage.prefix", e.to_string());
                }
                if let Some(e) = s.endpoint.as_deref() {
                    if !(e.starts_with("http://") || e.starts_with("https://")) {
                        return invalid(
                            "storage.endpoint",
                            format!("{e:?} is not an http:// or https:// URL"),
                        );
                    }
                }
                Ok(())
            }
        }
    }

    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.parse().expect("validated in Config::validate")
    }

    pub fn users_file(&self) -> PathBuf {
        self.root.join("users.toml")
    }

    pub fn pending_file(&self) -> PathBuf {
        self.root.join("pending.toml")
    }

    pub fn homes_dir(&self) -> PathBuf {
        self.root.join("home")
    }

    /// Worker threads for a pool whose configured size is `n` (0 = auto).
    pub fn threads(n: usize) -> usize {
        if n > 0 {
            n
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.registration, Registration::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[limits]\nmax_conections = 5\n").unwrap_err();
        assert!(e.contains("max_conections"), "{e}");
    }

    #[test]
    fn bad_value_is_named() {
        let e = Config::parse("[limits]\nmax_connections = \"many\"\n").unwrap_err();
        assert!(e.contains("max_connections"), "{e}");
        let c = Config::parse("listen = \"nowhere\"").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("`listen`"), "{e}");
    }

    #[test]
    fn registration_as_a_policy_or_a_table() {
        let c = Config::parse("registration = \"open\"").unwrap();
        assert_eq!(c.registration, RegistrationPolicy::Open);
        assert_eq!(c.registration.notify_command, None);
        let c = Config::parse(
            "[registration]\npolicy = \"approval\"\nnotify_command = \"mail root\"\n",
        )
        .unwrap();
        assert_eq!(c.registration.policy, RegistrationPolicy::Approval);
        assert_eq!(c.registration.notify_command.as_deref(), Some("mail root"));
        assert_eq!(c.registration.notify_timeout_secs, 10);
        let e = Config::parse("registration = \"maybe\"").unwrap_err();
        assert!(e.contains("maybe") && e.contains("registration"), "{e}");
        let e = Config::parse("[registration]\nnotify = \"x\"\n").unwrap_err();
        assert!(e.contains("notify"), "{e}");
    }

    #[test]
    fn metrics_listen_is_an_address() {
        let c = Config::parse("[metrics]\nlisten = \"127.0.0.1:0\"\n").unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.metrics.listen_addr(),
            Some("127.0.0.1:0".parse().unwrap())
        );
        let c = Config::parse("[metrics]\nlisten = \"localhost\"\n").unwrap();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("metrics.listen"), "{e}");
        assert_eq!(Config::default().metrics.listen_addr(), None);
    }

    #[test]
    fn lockout_exempt_ranges() {
        let c = Config::parse(
            "[limits]\nlockout_exempt = [\"10.1.2.3/8\", \"192.0.2.7\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        let nets: Vec<String> = c
            .limits
            .lockout_exempt
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"]);
        let e = Config::parse("[limits]\nlockout_exempt = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(
            e.contains("10.0.0.0/33") && e.contains("lockout_exempt"),
            "{e}"
        );
    }

    #[test]
    fn sizes_as_text() {
        let c = Config::parse("default_quota = \"500M\"").unwrap();
        assert_eq!(c.default_quota, 500 << 20);
    }

    #[test]
    fn sample_config_parses_and_matches_defaults() {
        let text = include_str!("../etc/miniftp.toml");
        let c = Config::parse(text).unwrap();
        c.validate().unwrap();
        let d = Config::default();
        assert_eq!(c.listen, d.listen);
        assert_eq!(c.limits.max_connections, d.limits.max_connections);
        assert_eq!(c.auth.argon2_memory_kib, d.auth.argon2_memory_kib);
        assert_eq!(c.default_max_entries, d.default_max_entries);
    }
}
