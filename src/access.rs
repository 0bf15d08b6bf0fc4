//! The server's start-up check of its data directory: can the user it runs
//! as read and write what it will need? Found at start, a wrong owner is
//! one clear error naming the path and the fix; found later, it would be a
//! `Permission denied` at the first login or registration.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{accessat, Access, AtFlags, CWD};

use crate::config::{Config, RegistrationPolicy};
use crate::owner::{group_name, user_name};
use crate::users::{home_path, UserDb};

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "the server runs as {runs_as} but cannot {need} {path} (owner {owner}, mode {mode:o}).\n\
         Give the data directory to the server's user: chown -R {runs_as}: {root}"
    )]
    Denied {
        runs_as: String,
        need: &'static str,
        path: PathBuf,
        owner: String,
        mode: u32,
        root: String,
    },
    #[error(
        "{path} is on a read-only file system. Under the systemd unit \
         (ProtectSystem=strict) only the state directory is writable: set \
         root = \"/var/lib/miniftp\" in the config"
    )]
    ReadOnly { path: PathBuf },
}

/// What the server needs of a path.
#[derive(Clone, Copy)]
enum Need {
    /// Read a file.
    Read,
    /// Read and rewrite a file.
    ReadWrite,
    /// List, create and remove entries in a directory.
    Dir,
}

impl Need {
    fn access(self) -> Access {
        match self {
            Need::Read => Access::READ_OK,
            Need::ReadWrite => Access::READ_OK | Access::WRITE_OK,
            Need::Dir => Access::READ_OK | Access::WRITE_OK | Access::EXEC_OK,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Need::Read => "read",
            Need::ReadWrite => "read and write",
            Need::Dir => "read and write in",
        }
    }
}

/// Checks the data directory's top level, the account files and the
/// generated certificate: what exists (what is missing is created later, in
/// a directory checked here). Run before the users file is loaded, so an
/// unreadable one is reported with its fix.
pub fn check(config: &Config) -> Result<(), AccessError> {
    let root = &config.root;
    let mut wanted = vec![
        (root.clone(), Need::Dir),
        (config.homes_dir(), Need::Dir),
        (config.users_file(), Need::Read),
        (root.join("tls"), Need::Dir),
        (root.join("tls/cert.pem"), Need::Read),
        (root.join("tls/key.pem"), Need::Read),
    ];
    if config.registration != RegistrationPolicy::Closed {
        // Registrations rewrite both under the lock.
        wanted.push((config.users_file(), Need::ReadWrite));
        wanted.push((config.pending_file(), Need::ReadWrite));
        wanted.push((root.join(".users.lock"), Need::ReadWrite));
    }
    for (path, need) in wanted {
        check_one(&path, need, root)?;
    }
    Ok(())
}

/// Checks every home that exists. Homes are not walked: a tree is the
/// operator's to keep whole, and the fix is the same.
pub fn check_homes(config: &Config, users: &UserDb) -> Result<(), AccessError> {
    for user in &users.users {
        check_one(&home_path(&config.root, user), Need::Dir, &config.root)?;
    }
    Ok(())
}

fn check_one(path: &Path, need: Need, root: &Path) -> Result<(), AccessError> {
    let Ok(md) = std::fs::metadata(path) else {
        return Ok(()); // missing: made later, in a directory checked here
    };
    match accessat(CWD, path, need.access(), AtFlags::EACCESS) {
        Ok(()) => return Ok(()),
        Err(rustix::io::Errno::ROFS) => return Err(AccessError::ReadOnly { path: path.into() }),
        Err(_) => {}
    }
    let me = rustix::process::geteuid().as_raw();
    Err(AccessError::Denied {
        runs_as: user_name(me),
        need: need.verb(),
        path: path.to_owned(),
        owner: format!("{}:{}", user_name(md.uid()), group_name(md.gid())),
        mode: md.permissions().mode() & 0o7777,
        root: root.display().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_path_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            root: dir.path().to_owned(),
            ..Config::default()
        };
        std::fs::create_dir(config.homes_dir()).unwrap();
        std::fs::write(config.users_file(), "").unwrap();
        check(&config).unwrap();
        if rustix::process::geteuid().is_root() {
            return; // root may read anything: the integration test drops to a user
        }
        let users = config.users_file();
        std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o200)).unwrap();
        let e = check(&config).unwrap_err().to_string();
        assert!(e.contains("cannot read "), "{e}");
        assert!(e.contains(&users.display().to_string()), "{e}");
        assert!(e.contains("mode 200"), "{e}");
        assert!(e.contains("chown -R "), "{e}");
    }
}
