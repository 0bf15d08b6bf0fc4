//! What a user's home holds, looked at behind the server's back, on either
//! backend: files in the local data directory, or keys in the bucket (read
//! with the test's own S3 client and key layout, not the server's). Tests
//! compare it with what the server says.

#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use miniftp::storage::s3::Client;
use sha2::{Digest, Sha256};

use crate::util::{disk_usage, eventually, partials_on_disk};

/// Part sizes the S3 backend uses for files of a known size up to 70 GiB,
/// and for bodies of unknown size (docs/STORAGE.md): a resumable partial
/// upload keeps whole parts only.
pub const S3_PART: u64 = 8 << 20;
pub const S3_CHUNKED_PART: u64 = 16 << 20;

pub enum Stored {
    Local(PathBuf),
    S3 {
        /// Boxed: a client is far larger than a path.
        client: Box<Client>,
        /// `<prefix>/homes/<user>/`
        home: String,
        /// `<prefix>/state/<user>/`
        state: String,
    },
}

impl Stored {
    /// `user`'s home under `prefix` in the shared cluster's bucket.
    pub fn s3(prefix: &str, user: &str) -> Stored {
        Stored::s3_with(crate::s3::garage::Garage::shared().client(), prefix, user)
    }

    pub fn s3_with(client: Client, prefix: &str, user: &str) -> Stored {
        Stored::S3 {
            client: Box::new(client),
            home: format!("{prefix}/homes/{user}/"),
            state: format!("{prefix}/state/{user}/"),
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Stored::S3 { .. })
    }

    /// The content of the file at `path` (relative to the home).
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        match self {
            Stored::Local(home) => std::fs::read(home.join(path)).ok(),
            Stored::S3 { client, home, .. } => {
                let key = format!("{home}{path}");
                if client.head(&key).ok()?.size == 0 {
                    return Some(Vec::new());
                }
                let mut r = client.get_range(&key, 0, None).ok()?;
                let mut out = Vec::new();
                r.read_to_end(&mut out).expect("object body");
                Some(out)
            }
        }
    }

    /// `read`, or a panic that names the path.
    #[track_caller]
    pub fn content(&self, path: &str) -> Vec<u8> {
        self.read(path)
            .unwrap_or_else(|| panic!("{path}: no such file in the home"))
    }

    pub fn is_file(&self, path: &str) -> bool {
        match self {
            Stored::Local(home) => home.join(path).is_file(),
            Stored::S3 { client, home, .. } => client.head(&format!("{home}{path}")).is_ok(),
        }
    }

    /// A directory: a marker object, or keys under the prefix.
    pub fn is_dir(&self, path: &str) -> bool {
        match self {
            Stored::Local(home) => home.join(path).is_dir(),
            Stored::S3 { client, home, .. } if path.is_empty() => client.head(home).is_ok(),
            Stored::S3 { client, home, .. } => {
                let prefix = format!("{home}{}/", path.trim_end_matches('/'));
                client.head(&prefix).is_ok()
                    || client
                        .list(&prefix, None, None, 1)
                        .is_ok_and(|p| !p.objects.is_empty())
            }
        }
    }

    /// A file's modification time as the store has it (seconds).
    pub fn mtime(&self, path: &str) -> u64 {
        match self {
            Stored::Local(home) => std::fs::metadata(home.join(path))
                .unwrap()
                .modified()
                .unwrap()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            Stored::S3 { client, home, .. } => {
                client.head(&format!("{home}{path}")).unwrap().mtime as u64
            }
        }
    }

    pub fn exists(&self, path: &str) -> bool {
        self.is_file(path) || self.is_dir(path)
    }

    /// Puts a file there behind the server's back (before the first
    /// login: the server counts the home then).
    pub fn plant(&self, path: &str, data: &[u8]) {
        match self {
            Stored::Local(home) => {
                let p = home.join(path);
                std::fs::create_dir_all(p.parent().unwrap()).unwrap();
                std::fs::write(p, data).unwrap();
            }
            Stored::S3 { client, home, .. } => {
                client
                    .put(&format!("{home}{path}"), data, None, &[])
                    .unwrap();
            }
        }
    }

    /// Bytes of files and partial uploads: what the quota must say is used.
    pub fn usage(&self) -> u64 {
        match self {
            Stored::Local(home) => disk_usage(home),
            Stored::S3 { client, home, .. } => {
                let files: u64 = all_objects(client, home)
                    .iter()
                    .filter(|(k, _)| !k.ends_with('/'))
                    .map(|(_, size)| size)
                    .sum();
                files + self.partials().iter().map(|(_, n)| n).sum::<u64>()
            }
        }
    }

    /// Every partial upload in the home, with the bytes it holds: hidden
    /// files on disk; multipart uploads (their parts) and leftover staging
    /// objects in the bucket.
    pub fn partials(&self) -> Vec<(String, u64)> {
        match self {
            Stored::Local(home) => partials_on_disk(home)
                .into_iter()
                .map(|(p, n)| (p.display().to_string(), n))
                .collect(),
            Stored::S3 { client, state, .. } => {
                let staging = format!("{state}staging/");
                let mut out: Vec<(String, u64)> = all_objects(client, &staging);
                let uploads = client.list_uploads(&staging, None).expect("list uploads");
                for u in uploads.uploads {
                    let parts = client
                        .list_parts(&u.key, &u.upload_id, 0)
                        .unwrap_or_default();
                    out.push((u.key, parts.iter().map(|p| p.size).sum()));
                }
                out
            }
        }
    }

    /// The bytes the resumable partial of `path` holds (None: there is
    /// none): the hidden file, or the upload's state record.
    pub fn partial_size(&self, path: &str) -> Option<u64> {
        match self {
            Stored::Local(home) => {
                let (dir, name) = match path.rsplit_once('/') {
                    Some((d, n)) => (home.join(d), n),
                    None => (home.clone(), path),
                };
                partial_size_in(&dir, name)
            }
            Stored::S3 { client, state, .. } => {
                let vpath = format!("/{}", path.trim_start_matches('/'));
                let key = format!("{state}uploads/{}", hex::encode(Sha256::digest(&vpath)));
                let bytes = client.get_small(&key).ok()?;
                let record: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
                record["bytes"].as_u64()
            }
        }
    }

    /// What a resumable partial keeps of `sent` bytes: all of them on
    /// disk; the whole parts in the bucket.
    pub fn kept(&self, sent: u64, chunked: bool) -> u64 {
        match self {
            Stored::Local(_) => sent,
            Stored::S3 { .. } => {
                let part = if chunked { S3_CHUNKED_PART } else { S3_PART };
                sent / part * part
            }
        }
    }

    /// Waits until the resumable partial of `path` holds what it keeps of
    /// `sent` bytes. Nothing to wait for when that is 0 in the bucket (the
    /// bytes are still in the server's part buffer, not observable).
    #[track_caller]
    pub fn wait_partial(&self, path: &str, sent: u64, chunked: bool) {
        let want = self.kept(sent, chunked);
        if want == 0 && self.is_s3() {
            return;
        }
        assert!(
            eventually(Duration::from_secs(10), || self.partial_size(path)
                == Some(want)),
            "{path}: the server never stored {want} of the {sent} bytes sent (has {:?})",
            self.partial_size(path)
        );
    }
}

/// (key, size) of every object under `prefix`.
fn all_objects(client: &Client, prefix: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut token = None;
    loop {
        let page = client
            .list(prefix, None, token.as_deref(), 1000)
            .expect("list");
        out.extend(page.objects.into_iter().map(|o| (o.key, o.size)));
        token = page.next;
        if token.is_none() {
            return out;
        }
    }
}

fn partial_size_in(dir: &Path, name: &str) -> Option<u64> {
    std::fs::metadata(dir.join(format!(".{name}.miniftp-part")))
        .ok()
        .map(|m| m.len())
}
