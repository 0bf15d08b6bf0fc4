//! The users file (`ROOT/users.toml`) and the pending registrations
//! (`ROOT/pending.toml`): loading, atomic saving, password hashing, name
//! rules. Shared by the server and `miniftp useradd`; both take an exclusive
//! lock (`ROOT/.users.lock`) around every read-modify-write, so the two can
//! run at once.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use argon2::password_hash::{self, Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use serde::{Deserialize, Serialize};

use crate::config::Auth;
use crate::limits::{MAX_PASSWORD_LEN, MAX_USER_LEN};
use crate::storage::local::create_private_dir_all;

#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One account.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    /// argon2id hash in PHC string format (`$argon2id$v=19$m=...`).
    pub password: String,
    /// Disk quota in bytes.
    #[serde(deserialize_with = "crate::size::deserialize")]
    pub quota: u64,
    /// Home directory; relative paths are taken from the data root.
    pub home: PathBuf,
    /// Upload bytes per second over all the user's sessions; 0 = no limit.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "crate::size::deserialize"
    )]
    pub rate_up: u64,
    /// Download bytes per second over all the user's sessions; 0 = no limit.
    #[serde(
        default,
        skip_serializing_if = "is_zero",
        deserialize_with = "crate::size::deserialize"
    )]
    pub rate_down: u64,
    /// Most entries (files, directories, symlinks, partial uploads) the
    /// home may hold; absent: the config's `default_max_entries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_entries: Option<u64>,
    /// A disabled account can't log in, and its open sessions end at their
    /// next request; its files stay.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

/// Unlimited rates are left out of the users file.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl User {
    /// The entry limit, `default` when the users file sets none.
    pub fn entry_limit(&self, default: u64) -> u64 {
        self.max_entries.unwrap_or(default)
    }
}

/// The whole users file.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UserDb {
    #[serde(default, rename = "user")]
    pub users: Vec<User>,
}

/// A registration request waiting for the operator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PendingRequest {
    pub name: String,
    /// Already hashed when the request arrived: the plain password is never
    /// stored, not even while it waits.
    pub password: String,
    /// Seconds since the Unix epoch.
    pub requested_at: u64,
    /// Address the request came from.
    pub peer: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PendingDb {
    #[serde(default, rename = "request")]
    pub requests: Vec<PendingRequest>,
}

impl UserDb {
    pub fn get(&self, name: &str) -> Option<&User> {
        self.users.iter().find(|u| u.name == name)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut User> {
        self.users.iter_mut().find(|u| u.name == name)
    }

    pub fn remove(&mut self, name: &str) -> Option<User> {
        let i = self.users.iter().position(|u| u.name == name)?;
        Some(self.users.remove(i))
    }

    /// Loads the users file; a missing file is an empty database.
    pub fn load(path: &Path) -> Result<UserDb, UsersError> {
        let db: UserDb = load_toml(path)?;
        for u in &db.users {
            validate_name(&u.name).map_err(|m| UsersError::Parse {
                path: path.into(),
                message: format!("user {:?}: {m}", u.name),
            })?;
            PasswordHash::new(&u.password).map_err(|e| UsersError::Parse {
                path: path.into(),
                message: format!("user {:?}: password is not a PHC hash string: {e}", u.name),
            })?;
        }
        Ok(db)
    }

    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let header = "# miniftp users: edit with `miniftp useradd`, which keeps this file\n\
                      # consistent while the server runs. Passwords are argon2id hashes.\n\n";
        save_toml(path, header, self)
    }
}

impl PendingDb {
    pub fn load(path: &Path) -> Result<PendingDb, UsersError> {
        load_toml(path)
    }

    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let header = "# miniftp registration requests awaiting approval:\n\
                      # `miniftp useradd --approve NAME` or `--reject NAME`.\n\n";
        save_toml(path, header, self)
    }
}

fn load_toml<T: for<'de> Deserialize<'de> + Default>(path: &Path) -> Result<T, UsersError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(T::default()),
        Err(source) => {
            return Err(UsersError::Read {
                path: path.into(),
                source,
            })
        }
    };
    toml::from_str(&text).map_err(|e| UsersError::Parse {
        path: path.into(),
        message: e.to_string().trim_end().to_string(),
    })
}

/// Writes `value` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over, fsync of the directory. A crash at any
/// point leaves either the old file or the new one, whole.
fn save_toml<T: Serialize>(path: &Path, header: &str, value: &T) -> Result<(), UsersError> {
    let werr = |source| UsersError::Write {
        path: path.into(),
        source,
    };
    let body = toml::to_string_pretty(value)
        .map_err(|e| werr(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    create_private_dir_all(dir).map_err(werr)?;
    // A temporary beside the file (mode 0600, removed if anything fails),
    // renamed over it once on disk: readers see the old or the new file.
    let mut tmp = tempfile::Builder::new()
        .prefix(".users-tmp")
        .tempfile_in(dir)
        .map_err(werr)?;
    tmp.write_all(header.as_bytes()).map_err(werr)?;
    tmp.write_all(body.as_bytes()).map_err(werr)?;
    tmp.as_file().sync_all().map_err(werr)?;
    // Run as root on the server's data directory: the file stays the
    // directory owner's (see crate::owner).
    crate::owner::like_dir(tmp.as_file(), dir).map_err(werr)?;
    tmp.persist(path).map_err(|e| werr(e.error))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(werr)
}

trait OwnerOnly {
    fn mode_owner_only(&mut self) -> &mut Self;
}

impl OwnerOnly for OpenOptions {
    fn mode_owner_only(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt;
        self.mode(0o600)
    }
}

/// An exclusive advisory lock on the data root's users lock file, held
/// until dropped. Serialises `useradd` and the server's registrations.
pub struct UsersLock {
    _file: File,
}

impl UsersLock {
    pub fn acquire(root: &Path) -> Result<UsersLock, UsersError> {
        let path = root.join(".users.lock");
        let lerr = |source| UsersError::Lock {
            path: path.clone(),
            source,
        };
        create_private_dir_all(root).map_err(lerr)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode_owner_only()
            .open(&path)
            .map_err(lerr)?;
        crate::owner::like_dir(&file, root).map_err(lerr)?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| lerr(e.into()))?;
        Ok(UsersLock { _file: file })
    }
}

/// Why a user name is refused, or Ok.
pub fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("user name is empty".into());
    }
    if name.len() > MAX_USER_LEN {
        return Err(format!("user name is longer than {MAX_USER_LEN} bytes"));
    }
    if name == "." || name == ".." || name.starts_with('.') {
        return Err("user name may not start with '.'".into());
    }
    if name.starts_with('-') {
        return Err("user name may not start with '-'".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | ':' | '\0'))
    {
        return Err(format!("user name may not contain {c:?}"));
    }
    Ok(())
}

/// Why `name` can't be given to a new account (`register`, `useradd`), or
/// Ok. Beyond [`validate_name`], new names come from a small safe set:
/// 1 to 32 of `a`-`z`, `0`-`9`, `_`, `-` and `.`, starting with a letter,
/// a digit or `_`. So no two names look alike in a log, a listing or a
/// home path: no capitals (`Alice` beside `alice`), no other scripts (a
/// Cyrillic `а`), no invisible or format characters (zero-width space,
/// soft hyphen, byte-order mark), no combining accents. Names already in
/// the users file are still loaded with the older, wider rules.
pub fn validate_new_name(name: &str) -> Result<(), String> {
    validate_name(name)?;
    let safe = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || "_-.".contains(c);
    if let Some(c) = name.chars().find(|&c| !safe(c)) {
        return Err(format!(
            "user name may not contain {c:?} (new names use a-z, 0-9, '_', '-' and '.')"
        ));
    }
    Ok(())
}

/// Why a password is refused, or Ok.
pub fn validate_password(password: &str) -> Result<(), String> {
    if password.is_empty() {
        return Err("password is empty".into());
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(format!("password is longer than {MAX_PASSWORD_LEN} bytes"));
    }
    Ok(())
}

/// The length rule for new passwords (`auth.min_password_len`), counted
/// in characters; existing passwords are never re-checked.
pub fn check_password_len(password: &str, auth: &Auth) -> Result<(), String> {
    let n = password.chars().count();
    if n < auth.min_password_len {
        return Err(format!(
            "password too short: {n} characters, at least {} needed",
            auth.min_password_len
        ));
    }
    Ok(())
}

fn argon2(auth: &Auth) -> Argon2<'static> {
    let params = Params::new(
        auth.argon2_memory_kib,
        auth.argon2_iterations,
        auth.argon2_parallelism,
        None,
    )
    .expect("argon2 parameters are validated with the config");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// argon2's working memory, reserved with at least 33 MiB of capacity.
///
/// Why: glibc raises its mmap threshold to the size of any mmapped block
/// freed below 32 MiB. After one login, argon2's 12 MiB blocks would come
/// from the worker's heap arena and stay resident for good (measured: ~60
/// MiB per auth thread after a burst of logins). A reservation above 32 MiB
/// is always mmapped and unmapped on free, and pages never touched cost
/// nothing, so the server idles in a few MiB again.
fn argon2_memory(blocks: usize) -> Vec<Block> {
    const RESERVE: usize = (33 << 20) / Block::SIZE;
    let mut memory = Vec::with_capacity(blocks.max(RESERVE));
    memory.resize(blocks, Block::default());
    memory
}

/// Runs argon2 into `out` with memory from [`argon2_memory`].
fn argon2_into(a: &Argon2<'_>, password: &str, salt: &[u8], out: &mut [u8]) -> argon2::Result<()> {
    let params = a.params();
    let memory = argon2_memory(params.block_count());
    a.hash_password_into_with_memory(password.as_bytes(), salt, out, memory)
}

/// A new argon2id hash of `password` with a random salt, as a PHC string.
pub fn hash_password(password: &str, auth: &Auth) -> String {
    let mut salt_bytes = [0u8; 16];
    rand::Rng::fill(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes).expect("16 bytes is a valid salt");
    let a = argon2(auth);
    let output_len = a
        .params()
        .output_len()
        .unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let output = Output::init_with(output_len, |out| {
        argon2_into(&a, password, &salt_bytes, out).map_err(|_| password_hash::Error::Password)
    })
    .expect("argon2 hashing of a bounded password cannot fail");
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(a.params()).expect("valid params"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// Does `password` match the PHC string `hash`? The parameters come from the
/// hash itself, so old hashes keep working after a cost change. The
/// comparison is constant-time (`Output`'s equality).
pub fn verify_password(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (parsed.hash, parsed.salt) else {
        return false;
    };
    let (Ok(alg), Ok(params)) = (
        Algorithm::try_from(parsed.algorithm),
        Params::try_from(&parsed),
    ) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let a = Argon2::new(alg, version, params);
    let computed = Output::init_with(expected.len(), |out| {
        argon2_into(&a, password, salt_bytes, out).map_err(|_| password_hash::Error::Password)
    });
    computed.is_ok_and(|c| c == expected)
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The home directory of `user`, resolved against the data root.
pub fn home_path(root: &Path, user: &User) -> PathBuf {
    if user.home.is_absolute() {
        user.home.clone()
    } else {
        root.join(&user.home)
    }
}

/// The home a new user gets by default, relative to the data root.
pub fn default_home(name: &str) -> PathBuf {
    Path::new("home").join(name)
}

/// The default home of `name` when a new account must not get it: it is
/// still on disk (the files of a removed user of that name: `useradd
/// --remove` keeps them unless told otherwise, or a directory made by
/// hand), or it is another account's home. Whoever registered the name
/// would be handed those files.
pub fn default_home_taken(root: &Path, db: &UserDb, name: &str) -> Option<PathBuf> {
    let home = root.join(default_home(name));
    let on_disk = std::fs::symlink_metadata(&home).is_ok();
    let shared = db.users.iter().any(|u| home_path(root, u) == home);
    (on_disk || shared).then_some(home)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> Auth {
        Auth {
            argon2_memory_kib: 64,
            argon2_iterations: 1,
            argon2_parallelism: 1,
            min_password_len: 12,
        }
    }

    #[test]
    fn hash_and_verify() {
        let h = hash_password("s3cret", &cheap());
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("s3cret", &h));
        assert!(!verify_password("S3cret", &h));
        assert!(!verify_password("s3cret", "not a hash"));
        assert_ne!(h, hash_password("s3cret", &cheap()), "salts differ");
    }

    #[test]
    fn bad_names() {
        for bad in [
            "",
            "a/b",
            "..",
            ".hidden",
            "with space",
            "tab\t",
            "nl\n",
            "-rf",
            "a\\b",
            "0123456789012345678901234567890123",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "bob_2", "émile", "a.b-c"] {
            assert!(validate_name(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn new_names_come_from_the_safe_set() {
        for bad in [
            "alice\u{200b}",
            "al\u{ad}ice",
            "alice\u{feff}",
            "\u{430}lice",
            "Alice",
            "émile",
            "ali\u{301}ce",
            "-x",
            ".x",
            "a b",
        ] {
            assert!(validate_new_name(bad).is_err(), "{bad:?}");
        }
        for good in ["alice", "bob_2", "a.b-c", "_svc", "9lives"] {
            assert!(validate_new_name(good).is_ok(), "{good:?}");
        }
        let e = validate_new_name("alice\u{200b}").unwrap_err();
        assert!(e.contains("\\u{200b}"), "{e}");
    }

    #[test]
    fn save_is_atomic_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        assert_eq!(UserDb::load(&path).unwrap(), UserDb::default());
        let db = UserDb {
            users: vec![User {
                name: "alice".into(),
                password: hash_password("pw", &cheap()),
                quota: 1 << 30,
                home: default_home("alice"),
                rate_up: 5 << 20,
                rate_down: 0,
                max_entries: Some(7),
                disabled: true,
            }],
        };
        db.save(&path).unwrap();
        assert_eq!(UserDb::load(&path).unwrap(), db);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("rate_up = 5242880") && !text.contains("rate_down"),
            "{text}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "users file is owner-only");
    }

    #[test]
    fn invalid_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.toml");
        std::fs::write(&path, "[[user]]\nname = 3\n").unwrap();
        assert!(matches!(UserDb::load(&path), Err(UsersError::Parse { .. })));
    }
}
