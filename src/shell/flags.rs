//! Strict flags for the shell's commands: each command accepts only the
//! flags it lists; an unknown one is an error naming it; `--` ends the
//! flags (so `rm -- -notes.txt` removes a file called `-notes.txt`);
//! short flags combine (`rm -rf`).

use crate::error::{Error, Result};

/// A flag a command accepts: its letter (if any) and its long name.
pub(crate) type Spec = &'static [(Option<char>, &'static str)];

/// The flags given (by long name) and the other words, in order.
pub(crate) struct Parsed {
    pub(crate) flags: Vec<&'static str>,
    pub(crate) args: Vec<String>,
}

impl Parsed {
    pub(crate) fn has(&self, long: &str) -> bool {
        self.flags.contains(&long)
    }
}

pub(crate) fn parse(cmd: &str, words: &[String], spec: Spec) -> Result<Parsed> {
    let unknown = |f: &str| {
        Error::Usage(format!(
            "{cmd}: unknown flag {f} (see `help {cmd}`; `--` ends the flags)"
        ))
    };
    let mut out = Parsed {
        flags: Vec::new(),
        args: Vec::new(),
    };
    let mut words = words.iter();
    while let Some(w) = words.next() {
        if w == "--" {
            out.args.extend(words.by_ref().cloned());
            break;
        }
        if let Some(long) = w.strip_prefix("--") {
            let (_, name) = spec
                .iter()
                .find(|(_, l)| *l == long)
                .ok_or_else(|| unknown(w))?;
            out.flags.push(name);
        } else if w.len() > 1 && w.starts_with('-') {
            for c in w[1..].chars() {
                let (_, name) = spec
                    .iter()
                    .find(|(s, _)| *s == Some(c))
                    .ok_or_else(|| unknown(&format!("-{c}")))?;
                out.flags.push(name);
            }
        } else {
            out.args.push(w.clone());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn strict_combined_and_double_dash() {
        const RM: Spec = &[(Some('r'), "recursive"), (Some('f'), "force")];
        let p = parse("rm", &w(&["-rf", "a", "--", "-b"]), RM).unwrap();
        assert!(p.has("recursive") && p.has("force"));
        assert_eq!(p.args, ["a", "-b"]);
        let e = parse("rm", &w(&["-Z", "a"]), RM).err().unwrap().to_string();
        assert!(e.contains("unknown flag -Z"), "{e}");
        let e = parse("rm", &w(&["--zap"]), RM).err().unwrap().to_string();
        assert!(e.contains("--zap"), "{e}");
        assert_eq!(parse("pwd", &w(&["-"]), &[]).unwrap().args, ["-"]);
    }
}
