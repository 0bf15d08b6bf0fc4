//! The key layout, and the jail. Every key the backend touches is built here
//! from a user's name and a [`VPath`], and starts with that user's prefix:
//!
//! ```text
//! <prefix>homes/<user>/                 the home (marker object: it exists)
//! <prefix>homes/<user>/a/b.txt          a file; x-amz-meta-sha256 = its digest
//! <prefix>homes/<user>/a/               a directory (empty marker object)
//! <prefix>state/<user>/usage            usage counters (JSON)
//! <prefix>state/<user>/uploads/<h>      state record of the upload to path h
//! <prefix>state/<user>/staging/<h>.<n>  multipart upload in progress (hidden)
//! ```
//!
//! where `<h>` is the hex SHA-256 of the path: fixed length, whatever the
//! name. The server's own records live outside `homes/<user>/`, so no
//! listing of a home can show them and no client path can name them.
//!
//! Object stores have no `..`, but the URL a key travels in does: `a/../b`
//! would be resolved by the HTTP layer to `b`. [`VPath`] never holds `.`,
//! `..` or empty components; every key is checked again here (a VPath made
//! by `from_components` is not normalised), and a user prefix always ends
//! in `/`, so `alice` never matches `alice2`.

use sha2::{Digest, Sha256};

use crate::limits::s3::MAX_KEY_LEN;
use crate::storage::{FsError, VPath};

/// Why no key can be made for a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("{0}: name too long for the object store (keys are at most {MAX_KEY_LEN} bytes)")]
    TooLong(String),
    #[error("{0}: leads outside your home directory")]
    Escapes(String),
}

impl KeyError {
    pub fn into_fs(self) -> FsError {
        match self {
            KeyError::TooLong(path) => FsError::Refused {
                path,
                why: format!(
                    "name too long for the object store (keys are at most {MAX_KEY_LEN} bytes)"
                ),
            },
            KeyError::Escapes(path) => FsError::Refused {
                path,
                why: "leads outside your home directory".into(),
            },
        }
    }
}

/// Why a configured prefix or user name cannot be part of a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("prefix {0:?}: components must be non-empty, not . or .., without control characters")]
    Prefix(String),
    #[error("user name {0:?} cannot be part of a key: {1}")]
    User(String, String),
}

/// The keys of one deployment (one `[storage] prefix`).
#[derive(Debug, Clone)]
pub struct Layout {
    /// Empty, or the configured prefix with one trailing `/`.
    prefix: String,
}

impl Layout {
    /// `prefix` as configured: `""`, `"miniftp"`, `"teams/a/"`.
    pub fn new(prefix: &str) -> Result<Layout, LayoutError> {
        let trimmed = prefix.trim_end_matches('/');
        if trimmed.is_empty() {
            return Ok(Layout {
                prefix: String::new(),
            });
        }
        let plain = |c: &str| safe_component(c) && !c.chars().any(char::is_control);
        if trimmed.len() > 256 || !trimmed.split('/').all(plain) {
            return Err(LayoutError::Prefix(prefix.to_string()));
        }
        Ok(Layout {
            prefix: format!("{trimmed}/"),
        })
    }

    /// Everything the deployment stores (for a sweep of all uploads).
    pub fn state_root(&self) -> String {
        format!("{}state/", self.prefix)
    }

    /// The keys of one user.
    pub fn home(&self, user: &str) -> Result<HomeKeys, LayoutError> {
        crate::users::validate_name(user).map_err(|e| LayoutError::User(user.into(), e))?;
        if !safe_component(user) {
            return Err(LayoutError::User(user.into(), "not a plain name".into()));
        }
        Ok(HomeKeys {
            root: format!("{}homes/{user}/", self.prefix),
            state: format!("{}state/{user}/", self.prefix),
        })
    }
}

/// The keys of one user's home.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeKeys {
    /// `<prefix>homes/<user>/`: the home marker, and the prefix of every
    /// key of the user's files.
    root: String,
    /// `<prefix>state/<user>/`: the server's records for this user.
    state: String,
}

impl HomeKeys {
    /// The home marker, and the listing prefix of the home's root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The key of the file at `path` (not the root).
    pub fn file(&self, path: &VPath) -> Result<String, KeyError> {
        if path.is_root() {
            return Err(KeyError::Escapes(path.to_string()));
        }
        self.checked(path, "")
    }

    /// The marker (and listing prefix) of the directory at `path`.
    pub fn dir(&self, path: &VPath) -> Result<String, KeyError> {
        if path.is_root() {
            return Ok(self.root.clone());
        }
        self.checked(path, "/")
    }

    /// The path a key of this home stands for, or None for a key outside
    /// it or one no client path could name (then it is never shown).
    pub fn path_of(&self, key: &str) -> Option<VPath> {
        let rel = key.strip_prefix(&self.root)?;
        let rel = rel.strip_suffix('/').unwrap_or(rel);
        if rel.is_empty() {
            return Some(VPath::root());
        }
        let parts: Vec<String> = rel.split('/').map(str::to_string).collect();
        if !parts.iter().all(|p| safe_component(p)) {
            return None;
        }
        let path = VPath::from_components(&parts);
        // Names a client could not type (reserved ones) stay hidden.
        VPath::resolve(&VPath::root(), &path.to_string()).ok()
    }

    /// The state record of an upload to `path`.
    pub fn upload_record(&self, path: &VPath) -> String {
        format!("{}uploads/{}", self.state, path_hash(path))
    }

    /// The prefix of all upload records of this user.
    pub fn upload_records(&self) -> String {
        format!("{}uploads/", self.state)
    }

    /// The hidden key a multipart upload to `path` is made under (it is
    /// copied to the file's key, with its digest, on commit).
    pub fn staging(&self, path: &VPath, nonce: &str) -> String {
        format!("{}staging/{}.{nonce}", self.state, path_hash(path))
    }

    /// The prefix of all staging keys of this user.
    pub fn stagings(&self) -> String {
        format!("{}staging/", self.state)
    }

    /// The usage counters of this user.
    pub fn usage(&self) -> String {
        format!("{}usage", self.state)
    }

    fn checked(&self, path: &VPath, suffix: &str) -> Result<String, KeyError> {
        let parts = path.components();
        if !parts.iter().all(|p| safe_component(p)) {
            return Err(KeyError::Escapes(path.to_string()));
        }
        let key = format!("{}{}{suffix}", self.root, parts.join("/"));
        if key.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong(path.to_string()));
        }
        Ok(key)
    }
}

/// A name that stays one path segment through URL parsing: not empty, not
/// `.` or `..`, no `/`, no NUL. (Other control characters, a tab or a
/// newline in a file name, are percent-encoded like any other byte, and
/// listings come URL-encoded.)
fn safe_component(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

fn path_hash(path: &VPath) -> String {
    hex::encode(Sha256::digest(path.to_string().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(user: &str) -> HomeKeys {
        Layout::new("pre").unwrap().home(user).unwrap()
    }

    fn vp(s: &str) -> VPath {
        VPath::resolve(&VPath::root(), s).unwrap()
    }

    /// The URL path rusty-s3 builds for a key, after the url crate's own
    /// normalisation: what actually goes on the wire.
    fn wire_path(key: &str) -> String {
        let bucket = rusty_s3::Bucket::new(
            "http://127.0.0.1:3900".parse().unwrap(),
            rusty_s3::UrlStyle::Path,
            "bkt",
            "garage",
        )
        .unwrap();
        let url = bucket.object_url(key);
        let decoded = percent_encoding::percent_decode_str(url.path())
            .decode_utf8()
            .unwrap()
            .to_string();
        decoded
    }

    #[test]
    fn layout() {
        let h = home("alice");
        assert_eq!(h.root(), "pre/homes/alice/");
        assert_eq!(h.file(&vp("/a/b.txt")).unwrap(), "pre/homes/alice/a/b.txt");
        assert_eq!(h.dir(&vp("/a")).unwrap(), "pre/homes/alice/a/");
        assert_eq!(h.dir(&VPath::root()).unwrap(), "pre/homes/alice/");
        assert!(h.file(&VPath::root()).is_err());
        assert_eq!(h.usage(), "pre/state/alice/usage");
        assert!(h
            .upload_record(&vp("/x"))
            .starts_with("pre/state/alice/uploads/"));
        assert!(h
            .staging(&vp("/x"), "n1")
            .starts_with("pre/state/alice/staging/"));
        let bare = Layout::new("").unwrap().home("bob").unwrap();
        assert_eq!(bare.root(), "homes/bob/");
        assert_eq!(
            Layout::new("a/b/").unwrap().home("u").unwrap().root(),
            "a/b/homes/u/"
        );
    }

    #[test]
    fn bad_prefixes_and_users_are_refused() {
        for p in ["..", "a/../b", "a//b", "./a", "a\nb"] {
            assert!(Layout::new(p).is_err(), "{p:?}");
        }
        let l = Layout::new("p").unwrap();
        for u in ["..", ".x", "a/b", "a\\b", "", "a b"] {
            assert!(l.home(u).is_err(), "{u:?}");
        }
    }

    #[test]
    fn crafted_names_stay_in_the_users_prefix_on_the_wire() {
        let h = home("alice");
        let names = [
            "..\\..\\bob\\x",
            "%2e%2e",
            "%2E%2E%2Fbob",
            ".%2e",
            "a?b#c",
            "a;b=c&d",
            "..:x",
            "x%00y",
            "ünï cødé ☃",
            " lead and trail ",
            "a+b c",
        ];
        for name in names {
            let path = VPath::from_components(&[name.to_string()]);
            let key = h.file(&path).unwrap();
            assert!(key.starts_with("pre/homes/alice/"), "{name:?} -> {key}");
            let wire = wire_path(&key);
            assert_eq!(wire, format!("/bkt/{key}"), "{name:?} changed on the wire");
            assert_eq!(h.path_of(&key), Some(path), "{name:?} round trip");
        }
    }

    #[test]
    fn dot_segments_never_become_keys() {
        let h = home("alice");
        for parts in [
            vec![".."],
            vec!["a", "..", "..", "bob"],
            vec!["."],
            vec![""],
            vec!["a/b"],
        ] {
            let p =
                VPath::from_components(&parts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            assert!(matches!(h.file(&p), Err(KeyError::Escapes(_))), "{parts:?}");
            assert!(matches!(h.dir(&p), Err(KeyError::Escapes(_))), "{parts:?}");
        }
        // And what clients type is normalised (or refused) before.
        assert!(VPath::resolve(&VPath::root(), "../bob/x").is_err());
        assert!(VPath::resolve(&VPath::root(), "/a/../../x").is_err());
        assert_eq!(h.file(&vp("/a/../x")).unwrap(), "pre/homes/alice/x");
    }

    #[test]
    fn one_user_is_not_a_prefix_of_another() {
        let alice = home("alice");
        let alice2 = home("alice2");
        let k2 = alice2.file(&vp("/secret")).unwrap();
        assert!(!k2.starts_with(alice.root()));
        assert_eq!(alice.path_of(&k2), None);
        assert_eq!(alice.path_of("pre/state/alice/usage"), None);
    }

    #[test]
    fn keys_are_capped() {
        let h = home("alice");
        // 16 bytes of "pre/homes/alice/", 4 names of 250 and their slashes.
        let four = format!(
            "/{}/{}/{}/{}",
            "a".repeat(250),
            "b".repeat(250),
            "c".repeat(250),
            "d".repeat(250)
        );
        assert_eq!(h.file(&vp(&four)).unwrap().len(), 16 + 1003);
        assert_eq!(h.dir(&vp(&four)).unwrap().len(), 16 + 1004);
        let long = vp(&format!("{four}/xyzzy"));
        assert!(matches!(h.file(&long), Err(KeyError::TooLong(_))));
        assert!(matches!(h.dir(&long), Err(KeyError::TooLong(_))));
        // Records have a fixed length whatever the path.
        assert_eq!(
            h.upload_record(&long).len(),
            h.upload_record(&vp("/y")).len()
        );
    }

    #[test]
    fn reserved_and_odd_keys_are_not_shown_as_paths() {
        let h = home("alice");
        assert_eq!(h.path_of("pre/homes/alice/"), Some(VPath::root()));
        assert_eq!(h.path_of("pre/homes/alice/d/"), Some(vp("/d")));
        assert_eq!(h.path_of("pre/homes/alice/a//b"), None);
        assert_eq!(h.path_of("pre/homes/alice/../bob/x"), None);
        assert_eq!(h.path_of("pre/homes/alice/.f.miniftp-part"), None);
    }
}
