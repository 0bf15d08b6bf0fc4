//! `--exclude` / `--include`: which relative paths a sync leaves alone. A
//! pattern without `/` matches a name at any depth (`*.tmp`, `.git`); one
//! with `/` matches the path from the synced directory (`logs/*.gz`; a
//! leading `/` is allowed). `*` never crosses a `/`. A path is left out
//! when it, or a directory above it, matches an exclude and no include;
//! left-out paths are neither sent nor deleted.

use glob::{MatchOptions, Pattern};

use crate::error::{Error, Result};

pub struct Filter {
    exclude: Vec<Pattern>,
    include: Vec<Pattern>,
}

fn compile(patterns: &[String]) -> Result<Vec<Pattern>> {
    patterns
        .iter()
        .map(|p| {
            Pattern::new(p.trim_start_matches('/'))
                .map_err(|e| Error::Usage(format!("bad pattern {p:?}: {e}")))
        })
        .collect()
}

const OPTS: MatchOptions = MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

fn matches(p: &Pattern, rel: &str) -> bool {
    if p.as_str().contains('/') {
        p.matches_with(rel, OPTS)
    } else {
        p.matches_with(rel.rsplit('/').next().unwrap_or(rel), OPTS)
    }
}

impl Filter {
    pub fn new(exclude: &[String], include: &[String]) -> Result<Filter> {
        Ok(Filter {
            exclude: compile(exclude)?,
            include: compile(include)?,
        })
    }

    /// Whether `rel` itself is left out (its parents are checked by the
    /// walk, which never enters a left-out directory).
    pub fn skips(&self, rel: &str) -> bool {
        self.exclude.iter().any(|p| matches(p, rel))
            && !self.include.iter().any(|p| matches(p, rel))
    }

    /// Whether `rel` or any directory above it is left out.
    pub fn skips_path(&self, rel: &str) -> bool {
        if self.exclude.is_empty() {
            return false;
        }
        let mut end = 0;
        for part in rel.split('/') {
            end += part.len();
            if self.skips(&rel[..end]) {
                return true;
            }
            end += 1;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_includes() {
        let f = Filter::new(
            &["*.tmp".into(), "cache".into(), "/logs/*.gz".into()],
            &["keep.tmp".into()],
        )
        .unwrap();
        assert!(f.skips_path("a/b.tmp"));
        assert!(!f.skips_path("a/keep.tmp"));
        assert!(f.skips_path("x/cache/deep/file"));
        assert!(f.skips_path("logs/old.gz"));
        assert!(!f.skips_path("logs/sub/old.gz"));
        assert!(!f.skips_path("a/b.txt"));
    }
}
