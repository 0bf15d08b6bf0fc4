//! The S3 backend as the server sees it: [`S3Backend`], made once at start
//! from `[storage]` (and the usual `AWS_*` variables) and checked with a HEAD
//! of the bucket, so a wrong endpoint, key or bucket stops `serve` with a
//! message that names it rather than failing at the first login. Homes are
//! opened by user name: `<prefix>homes/<user>/`.

use std::path::Path;
use std::sync::Arc;

use super::budget::BufferBudget;
use super::client::{Client, ClientConfig};
use super::home::S3Storage;
use super::keys::Layout;
use crate::config::StorageConfig;
use crate::limits::s3::PART_BUFFER_BUDGET;
use crate::storage::{Backend, FsError, FsResult, SetupError, Storage};

/// Homes in one bucket of an S3-compatible store.
pub struct S3Backend {
    client: Arc<Client>,
    layout: Layout,
    budget: Arc<BufferBudget>,
    describe: String,
}

impl S3Backend {
    /// Builds the client from `cfg` and the environment, and checks that the
    /// store answers, has the bucket and takes the credentials.
    pub fn connect(cfg: &StorageConfig) -> Result<S3Backend, SetupError> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let client_cfg = client_config(cfg, &env)?;
        let layout = Layout::new(&cfg.prefix).map_err(|e| SetupError::Config(e.to_string()))?;
        let client = Client::new(&client_cfg).map_err(|e| SetupError::Config(e.to_string()))?;
        let describe = format!(
            "bucket {} at {} (prefix {:?})",
            client_cfg.bucket, client_cfg.endpoint, cfg.prefix
        );
        client.probe().map_err(|e| {
            SetupError::Store(format!(
                "{describe}: {e}; check [storage] endpoint, bucket and the access key"
            ))
        })?;
        Ok(S3Backend {
            client: Arc::new(client),
            layout,
            budget: BufferBudget::new(PART_BUFFER_BUDGET),
            describe,
        })
    }

    fn open(&self, user: &str) -> FsResult<S3Storage> {
        let keys = self.layout.home(user).map_err(|e| FsError::Invalid {
            path: "/".into(),
            why: e.to_string(),
        })?;
        S3Storage::open(
            Arc::clone(&self.client),
            keys,
            Arc::clone(&self.budget),
            user,
        )
    }
}

impl Backend for S3Backend {
    /// The users file's `home` is not used: an S3 home is its user's name.
    fn open_home(&self, user: &str, _home: &Path) -> FsResult<Arc<dyn Storage>> {
        Ok(Arc::new(self.open(user)?))
    }

    fn existing_home(&self, user: &str, _home: &Path) -> FsResult<Option<Arc<dyn Storage>>> {
        let keys = self.layout.home(user).map_err(|e| FsError::Invalid {
            path: "/".into(),
            why: e.to_string(),
        })?;
        match self.client.head(keys.root()) {
            Ok(_) => Ok(Some(Arc::new(self.open(user)?))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into_fs(&crate::storage::VPath::root())),
        }
    }

    fn describe(&self) -> String {
        format!("S3 {}", self.describe)
    }
}

/// The client settings: `[storage]` first, then the variables the AWS tools
/// read. What is missing is a configuration error that says where to set it.
pub fn client_config(
    cfg: &StorageConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ClientConfig, SetupError> {
    let missing = |key: &str, vars: &str| {
        SetupError::Config(format!(
            "{key} is not set (set it in [storage], or the environment variable {vars})"
        ))
    };
    let bucket = cfg
        .bucket
        .clone()
        .ok_or_else(|| SetupError::Config("bucket is required with backend = \"s3\"".into()))?;
    let region = cfg
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
        .ok_or_else(|| missing("region", "AWS_REGION; Garage's default is \"garage\""))?;
    let endpoint = cfg
        .endpoint
        .clone()
        .or_else(|| env("AWS_ENDPOINT_URL_S3"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    let access_key_id = cfg
        .access_key_id
        .clone()
        .or_else(|| env("AWS_ACCESS_KEY_ID"))
        .ok_or_else(|| missing("access_key_id", "AWS_ACCESS_KEY_ID"))?;
    let secret_access_key = match &cfg.secret_access_key_file {
        Some(path) => read_secret(path)?,
        None => env("AWS_SECRET_ACCESS_KEY").ok_or_else(|| {
            missing(
                "secret_access_key_file",
                "AWS_SECRET_ACCESS_KEY with the secret itself",
            )
        })?,
    };
    Ok(ClientConfig {
        endpoint,
        region,
        bucket,
        access_key_id,
        secret_access_key,
        path_style: cfg.path_style,
        ca_bundle: env("AWS_CA_BUNDLE").map(Into::into),
    })
}

/// The secret key: the file's first line.
fn read_secret(path: &Path) -> Result<String, SetupError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        SetupError::Config(format!("secret_access_key_file {}: {e}", path.display()))
    })?;
    let secret = text.lines().next().unwrap_or_default().trim().to_string();
    if secret.is_empty() {
        return Err(SetupError::Config(format!(
            "secret_access_key_file {}: the file is empty",
            path.display()
        )));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BackendKind;

    fn s3(bucket: &str) -> StorageConfig {
        StorageConfig {
            backend: BackendKind::S3,
            bucket: Some(bucket.into()),
            ..StorageConfig::default()
        }
    }

    #[test]
    fn settings_come_from_the_config_then_the_environment() {
        let vars = |name: &str| match name {
            "AWS_REGION" => Some("env-region".to_string()),
            "AWS_ACCESS_KEY_ID" => Some("GKenv".to_string()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_string()),
            _ => None,
        };
        let c = client_config(&s3("bkt"), &vars).unwrap();
        assert_eq!(c.region, "env-region");
        assert_eq!(c.endpoint, "https://s3.env-region.amazonaws.com");
        assert_eq!(c.access_key_id, "GKenv");
        assert_eq!(c.secret_access_key, "envsecret");

        let t = tempfile::tempdir().unwrap();
        let secret = t.path().join("secret");
        std::fs::write(&secret, "filesecret\n").unwrap();
        let cfg = StorageConfig {
            region: Some("garage".into()),
            endpoint: Some("http://127.0.0.1:3900".into()),
            access_key_id: Some("GKfile".into()),
            secret_access_key_file: Some(secret),
            ..s3("bkt")
        };
        let c = client_config(&cfg, &vars).unwrap();
        assert_eq!(
            (c.region.as_str(), c.endpoint.as_str()),
            ("garage", "http://127.0.0.1:3900")
        );
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("GKfile", "filesecret")
        );
    }

    #[test]
    fn what_is_missing_is_named() {
        let none = |_: &str| None;
        let e = client_config(&s3("bkt"), &none).unwrap_err().to_string();
        assert!(e.contains("region") && e.contains("AWS_REGION"), "{e}");
        let cfg = StorageConfig {
            region: Some("garage".into()),
            ..s3("bkt")
        };
        let e = client_config(&cfg, &none).unwrap_err().to_string();
        assert!(e.contains("access_key_id"), "{e}");
        let cfg = StorageConfig {
            access_key_id: Some("GK".into()),
            secret_access_key_file: Some("/nonexistent/secret".into()),
            ..cfg
        };
        let e = client_config(&cfg, &none).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/secret"), "{e}");
    }
}
