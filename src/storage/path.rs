//! Virtual paths inside a home directory. A client path is resolved
//! *lexically* against the session's current directory into a list of plain
//! components, with `/` meaning the home's root. Nothing here touches the
//! disk: containment on disk (symlinks, races) is the jail's job, done by
//! opening relative to the home's directory handle.

use std::fmt;
use std::path::PathBuf;

pub use crate::limits::MAX_NAME_LEN;
use crate::limits::{MAX_DEPTH, MAX_PATH_LEN};
pub use crate::partial::{partial_name, PARTIAL_MARK};

/// Why a client path is refused before it reaches the disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path contains a NUL byte")]
    Nul,
    #[error("path is longer than {MAX_PATH_LEN} bytes")]
    TooLong,
    #[error("name {0:?} is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong(String),
    #[error("path {0:?} leads outside your home directory")]
    Escapes(String),
    #[error("name {0:?} is reserved for uploads in progress")]
    Reserved(String),
    #[error("path is empty")]
    Empty,
    #[error("path is deeper than {MAX_DEPTH} levels (the server's limit)")]
    TooDeep,
}

/// A normalised path below the home root: no `.`, `..` or empty components.
/// The empty list is the root itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VPath {
    parts: Vec<String>,
}

impl VPath {
    pub fn root() -> VPath {
        VPath::default()
    }

    /// Resolves `input` against `cwd`. An absolute `input` starts at the
    /// home root; `..` may not climb above it.
    pub fn resolve(cwd: &VPath, input: &str) -> Result<VPath, PathError> {
        if input.contains('\0') {
            return Err(PathError::Nul);
        }
        if input.len() > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        if input.is_empty() {
            return Err(PathError::Empty);
        }
        let mut parts = if input.starts_with('/') {
            Vec::new()
        } else {
            cwd.parts.clone()
        };
        for comp in input.split('/') {
            match comp {
                "" | "." => {}
                ".." => {
                    if parts.pop().is_none() {
                        return Err(PathError::Escapes(input.to_string()));
                    }
                }
                name => {
                    if name.len() > MAX_NAME_LEN {
                        return Err(PathError::NameTooLong(name.to_string()));
                    }
                    if is_internal_name(name) {
                        return Err(PathError::Reserved(name.to_string()));
                    }
                    parts.push(name.to_string());
                }
            }
        }
        let joined: usize = parts.iter().map(|p| p.len() + 1).sum();
        if joined > MAX_PATH_LEN {
            return Err(PathError::TooLong);
        }
        // Nothing deeper than the walks reach may be named, so nothing
        // deeper can be made (see MAX_DEPTH).
        if parts.len() > MAX_DEPTH {
            return Err(PathError::TooDeep);
        }
        Ok(VPath { parts })
    }

    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component, or None for the root.
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str)
    }

    /// The parent directory (the root's parent is None).
    pub fn parent(&self) -> Option<VPath> {
        if self.parts.is_empty() {
            return None;
        }
        Some(VPath {
            parts: self.parts[..self.parts.len() - 1].to_vec(),
        })
    }

    pub fn join(&self, name: &str) -> VPath {
        let mut parts = self.parts.clone();
        parts.push(name.to_string());
        VPath { parts }
    }

    /// The relative path to hand to the jail (`.` for the root).
    pub fn rel(&self) -> PathBuf {
        if self.parts.is_empty() {
            PathBuf::from(".")
        } else {
            self.parts.iter().collect()
        }
    }

    /// A path from already-validated components (prefixes of a VPath).
    pub fn from_components(parts: &[String]) -> VPath {
        VPath {
            parts: parts.to_vec(),
        }
    }

    pub fn components(&self) -> &[String] {
        &self.parts
    }
}

/// Shown as the client sees it: `/`, `/docs/a.txt`.
impl fmt::Display for VPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.parts.is_empty() {
            return f.write_str("/");
        }
        for p in &self.parts {
            write!(f, "/{p}")?;
        }
        Ok(())
    }
}

/// Names the server keeps for itself (uploads in progress): hidden from
/// listings and refused in client paths.
pub fn is_internal_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(PARTIAL_MARK)
}

/// A name that is valid UTF-8 is shown as is; otherwise each byte that is
/// not part of valid UTF-8 is shown as `\xNN`. The flag says which.
pub fn display_name(name: &std::ffi::OsStr) -> (String, bool) {
    use std::os::unix::ffi::OsStrExt;
    match name.to_str() {
        Some(s) => (s.to_string(), false),
        None => {
            let mut out = String::new();
            for chunk in name.as_bytes().utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str(&format!("\\x{b:02x}"));
                }
            }
            (out, true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(cwd: &str, input: &str) -> Result<String, PathError> {
        let cwd = VPath::resolve(&VPath::root(), cwd).unwrap();
        VPath::resolve(&cwd, input).map(|p| p.to_string())
    }

    #[test]
    fn relative_and_absolute() {
        assert_eq!(r("/", "a/b"), Ok("/a/b".into()));
        assert_eq!(r("/a", "b"), Ok("/a/b".into()));
        assert_eq!(r("/a", "/c"), Ok("/c".into()));
        assert_eq!(r("/a/b", ".."), Ok("/a".into()));
        assert_eq!(r("/a", "./b//c/."), Ok("/a/b/c".into()));
        assert_eq!(r("/a", "/"), Ok("/".into()));
    }

    #[test]
    fn dotdot_cannot_escape() {
        assert!(matches!(r("/", ".."), Err(PathError::Escapes(_))));
        assert!(matches!(r("/a", "../../etc"), Err(PathError::Escapes(_))));
        assert!(matches!(r("/", "/../x"), Err(PathError::Escapes(_))));
        assert_eq!(r("/a", "../b"), Ok("/b".into()));
    }

    #[test]
    fn hostile_input() {
        assert_eq!(r("/", "a\0b"), Err(PathError::Nul));
        assert_eq!(r("/", ""), Err(PathError::Empty));
        assert_eq!(r("/", &"x/".repeat(3000)), Err(PathError::TooLong));
        assert!(matches!(
            r("/", &"n".repeat(300)),
            Err(PathError::NameTooLong(_))
        ));
        assert!(matches!(
            r("/", ".f.miniftp-part"),
            Err(PathError::Reserved(_))
        ));
    }

    #[test]
    fn depth_is_capped_after_resolution() {
        let deepest = vec!["d"; MAX_DEPTH].join("/");
        assert!(r("/", &deepest).is_ok());
        assert_eq!(r("/", &format!("{deepest}/x")), Err(PathError::TooDeep));
        // Counted on the resolved path: from a deep cwd, and after `..`.
        let cwd = vec!["d"; MAX_DEPTH - 1].join("/");
        assert!(r(&cwd, "x").is_ok());
        assert_eq!(r(&cwd, "x/y"), Err(PathError::TooDeep));
        assert!(r("/", &format!("{deepest}/x/..")).is_ok());
    }

    #[test]
    fn partial_names_fit_the_name_limit() {
        assert_eq!(partial_name("a.txt"), ".a.txt.miniftp-part");
        let long = "n".repeat(MAX_NAME_LEN);
        let p = partial_name(&long);
        assert!(p.len() + 17 <= MAX_NAME_LEN, "{p}");
        assert!(is_internal_name(&p));
        assert_ne!(p, partial_name(&"m".repeat(MAX_NAME_LEN)));
    }

    #[test]
    fn unicode_and_spaces() {
        assert_eq!(r("/", "dír/a b \"c\".txt"), Ok("/dír/a b \"c\".txt".into()));
    }

    #[test]
    fn escaped_display_of_non_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let (s, esc) = display_name(std::ffi::OsStr::from_bytes(b"bad\xffname\xc3"));
        assert_eq!(s, "bad\\xffname\\xc3");
        assert!(esc);
        let (s, esc) = display_name(std::ffi::OsStr::new("fine é"));
        assert_eq!(s, "fine é");
        assert!(!esc);
    }
}
