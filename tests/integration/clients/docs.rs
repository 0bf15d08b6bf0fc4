//! The documentation agrees with the code: every long flag is in the man
//! page, every status code in docs/PROTOCOL.md, every exit code with its
//! meaning in README.md and the man page, every configuration key with its
//! default in the man page, the shell commands of the man page and README
//! are those `help` lists, and every `--help` works.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::clients::fx::*;
use crate::util::*;

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The man page with roff's escapes for `-` and `"` undone.
fn man_text() -> String {
    repo_file("man/miniftp.1")
        .replace("\\-", "-")
        .replace("\\(dq", "\"")
}

/// Plain text of one roff line: font macros (.B, .BR, .BI, ...) joined
/// the way roff joins them, font escapes dropped.
fn roff_plain(line: &str) -> String {
    let line = line.replace("\\-", "-").replace("\\(dq", "\"");
    let (mac, rest) = match line.strip_prefix('.') {
        Some(l) => l.split_once(' ').unwrap_or((l, "")),
        None => ("", line.as_str()),
    };
    let mut args = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in rest.chars() {
        match c {
            '"' => quoted = !quoted,
            ' ' if !quoted => {
                if !cur.is_empty() {
                    args.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        args.push(cur);
    }
    let joined = match mac {
        "B" | "I" | "SM" | "" => args.join(" "),
        _ => args.concat(),
    };
    let mut out = String::new();
    let mut chars = joined.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' && chars.peek() == Some(&'f') {
            chars.next();
            if chars.next() == Some('(') {
                chars.next();
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// (name, code, meaning) of every status in src/proto/status.rs.
fn statuses() -> Vec<(String, u16, String)> {
    let src = repo_file("src/proto/status.rs");
    let table = src
        .split("statuses! {")
        .nth(1)
        .expect("the statuses! table");
    let mut out = Vec::new();
    for line in table.lines().map(str::trim) {
        if line.starts_with("//") || !line.ends_with("\";") {
            continue;
        }
        let Some((name, rest)) = line.split_once(" = ") else {
            continue;
        };
        let (code, meaning) = rest.split_once(", ").expect("Name = 123, \"meaning\";");
        let meaning = meaning.trim_end_matches(';').trim_matches('"');
        out.push((name.to_string(), code.parse().unwrap(), meaning.to_string()));
    }
    assert!(out.len() >= 20, "parsed only {} statuses", out.len());
    out
}

/// (code, meaning) of `Exit::TABLE` in src/error.rs.
fn exit_table() -> Vec<(u8, String)> {
    let src = repo_file("src/error.rs");
    let enum_body = src
        .split("pub enum Exit {")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    let mut numbers = BTreeMap::new();
    for line in enum_body.lines().map(str::trim) {
        if let Some((name, n)) = line.trim_end_matches(',').split_once(" = ") {
            numbers.insert(name.to_string(), n.parse::<u8>().unwrap());
        }
    }
    let table = src
        .split("pub const TABLE")
        .nth(1)
        .expect("Exit::TABLE")
        .split("];")
        .next()
        .unwrap();
    let mut out = Vec::new();
    for item in table.split("Exit::").skip(1) {
        let (name, rest) = item.split_once(',').unwrap();
        let meaning = rest.split('"').nth(1).unwrap();
        out.push((numbers[name.trim()], meaning.to_string()));
    }
    out
}

#[test]
fn every_long_flag_is_in_the_man_page() {
    let o = Command::new(BIN)
        .args(["generate", "flags"])
        .output()
        .unwrap();
    exit_is(&o, 0);
    let flags = stdout(&o);
    let man = man_text();
    let mut n = 0;
    let mut missing = Vec::new();
    for line in flags.lines() {
        let (sub, flag) = line.split_once(' ').expect("SUBCOMMAND --flag");
        assert!(flag.starts_with("--"), "{line}");
        n += 1;
        // Mentioned as the flag itself, not as the prefix of a longer one.
        let found = man.match_indices(flag).any(|(i, _)| {
            !man[i + flag.len()..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '-')
        });
        if !found {
            missing.push(format!("{sub} {flag}"));
        }
    }
    assert!(n >= 30, "only {n} flags listed:\n{flags}");
    assert!(missing.is_empty(), "not in man/miniftp.1: {missing:?}");
}

#[test]
fn every_long_flag_has_an_item_in_the_man_page() {
    // Each flag is described in a tagged paragraph (.TP) of the page.
    let o = Command::new(BIN)
        .args(["generate", "flags"])
        .output()
        .unwrap();
    let raw = repo_file("man/miniftp.1");
    let lines: Vec<&str> = raw.lines().collect();
    let tags: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .map(|w| roff_plain(w[1]))
        .collect();
    let mut missing = Vec::new();
    for line in stdout(&o).lines() {
        let flag = line.split_once(' ').unwrap().1;
        let tagged = tags.iter().any(|t| {
            t.split([' ', ',', '|', '[', ']'])
                .any(|w| w == flag || w.starts_with(&format!("{flag}=")))
        });
        if !tagged {
            missing.push(line.to_string());
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "no .TP item in man/miniftp.1 for {missing:?}"
    );
}

#[test]
fn every_status_code_is_in_the_protocol_document() {
    let doc = repo_file("docs/PROTOCOL.md");
    let mut missing = Vec::new();
    for (name, code, meaning) in statuses() {
        let row = format!("| {code} | {name} | {meaning} |");
        if !doc.contains(&row) {
            missing.push(row);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md section 6 lacks the rows:\n{}",
        missing.join("\n")
    );
    // And the document's table has no code that the code does not know.
    let known: Vec<u16> = statuses().iter().map(|s| s.1).collect();
    let section = doc.split("## 6. Status codes").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    for line in section.lines().filter(|l| l.starts_with("| ")) {
        let first = line[2..].split(' ').next().unwrap();
        if let Ok(code) = first.parse::<u16>() {
            assert!(
                known.contains(&code),
                "PROTOCOL.md lists unknown code {code}"
            );
        }
    }
}

#[test]
fn every_exit_code_is_in_readme_and_man_page() {
    let table = exit_table();
    assert_eq!(
        table.iter().map(|e| e.0).collect::<Vec<_>>(),
        (0..=10).collect::<Vec<u8>>()
    );
    let readme = repo_file("README.md");
    let man = man_text();
    for (code, meaning) in &table {
        let row = format!("| {code} | {meaning} |");
        assert!(readme.contains(&row), "README.md lacks {row:?}");
        let item = format!(".TP\n.B {code}\n{meaning}\n");
        assert!(
            man.contains(&item),
            "man/miniftp.1 EXIT STATUS lacks {item:?}"
        );
    }
}

#[test]
fn status_to_exit_mapping_in_the_man_page_matches_the_code() {
    // "Server replies map to these codes as follows: 530 and 429 give 4;
    // ...; any other failure gives 1." against Exit::for_status.
    let codes: BTreeMap<String, u16> = statuses().into_iter().map(|s| (s.0, s.1)).collect();
    let src = repo_file("src/error.rs");
    let enum_body = src.split("pub enum Exit {").nth(1).unwrap();
    let exit_num = |name: &str| -> u8 {
        let l = enum_body
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&format!("{name} = ")))
            .unwrap_or_else(|| panic!("Exit::{name}"));
        l.trim_end_matches(',')
            .split(" = ")
            .nth(1)
            .unwrap()
            .parse()
            .unwrap()
    };
    let body = src.split("pub fn for_status").nth(1).unwrap();
    let body = body.split("_ => Exit::Failure").next().unwrap();
    let mut mapping = BTreeMap::new();
    for arm in body.split("Some(").skip(1) {
        let (pats, rest) = arm.split_once("=>").unwrap();
        let exit = rest.split("Exit::").nth(1).unwrap();
        let exit: String = exit.chars().take_while(|c| c.is_alphanumeric()).collect();
        for name in pats.split("Status::").skip(1) {
            let name: String = name.chars().take_while(|c| c.is_alphanumeric()).collect();
            mapping.insert(codes[&name], exit_num(&exit));
        }
    }
    let man = man_text().split_whitespace().collect::<Vec<_>>().join(" ");
    let sentence = man
        .split("Server replies map to these codes as follows: ")
        .nth(1)
        .expect("the mapping sentence")
        .split("any other failure gives 1")
        .next()
        .unwrap();
    let mut listed = 0;
    for clause in sentence.split(';').map(str::trim).filter(|c| !c.is_empty()) {
        let (codes_text, exit) = clause.rsplit_once(" give").unwrap();
        let exit: u8 = exit.trim_start_matches('s').trim().parse().unwrap();
        for code in codes_text
            .split([',', ' '])
            .filter(|w| !w.is_empty() && *w != "and")
        {
            let code: u16 = code.parse().unwrap();
            listed += 1;
            assert_eq!(
                mapping.get(&code).copied().unwrap_or(1),
                exit,
                "man page: {code} gives {exit}; src/error.rs says otherwise"
            );
        }
    }
    assert!(listed >= 11, "{sentence}");
}

#[test]
fn every_configuration_key_is_in_the_man_page_with_its_default() {
    let sample: toml::Table = toml::from_str(&repo_file("etc/miniftp.toml")).unwrap();
    let man = man_text();
    let raw = repo_file("man/miniftp.1");
    let fmt = |v: &toml::Value| match v {
        toml::Value::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    };
    let mut checked = 0;
    let mut problems = Vec::new();
    let mut check = |section: &str, key: &str, value: &toml::Value| {
        checked += 1;
        // The man page's section for this key: top level, or `.SS [name]`.
        let heading = if section.is_empty() {
            ".SS Top level".to_string()
        } else {
            format!(".SS [{section}]")
        };
        let Some(part) = man.split(&heading).nth(1) else {
            problems.push(format!("no {heading:?} heading"));
            return;
        };
        let part = part.split("\n.SS ").next().unwrap();
        let part = part.split("\n.SH ").next().unwrap();
        let item = format!(".BR {key} \" = {}\"", fmt(value));
        if !part.contains(&item) {
            let name = if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            };
            if man.contains(key) {
                problems.push(format!(
                    "{name}: not documented as {item:?} under {heading}"
                ));
            } else {
                problems.push(format!("{name}: not in the man page"));
            }
        }
    };
    for (k, v) in &sample {
        match v {
            toml::Value::Table(t) => {
                for (k2, v2) in t {
                    check(k, k2, v2);
                }
            }
            v => check("", k, v),
        }
    }
    assert!(checked >= 20, "only {checked} keys in etc/miniftp.toml");
    assert!(
        problems.is_empty(),
        "man/miniftp.1 vs etc/miniftp.toml:\n{}",
        problems.join("\n")
    );
    assert!(raw.contains(".SH CONFIGURATION"));
}

/// The keys the server's configuration accepts (src/config.rs): top-level
/// fields of `Config`, and the fields of each section's struct.
fn config_keys() -> Vec<(String, String)> {
    let src = repo_file("src/config.rs");
    let fields = |name: &str| -> Vec<(String, String)> {
        let body = src
            .split(&format!("pub struct {name} {{"))
            .nth(1)
            .unwrap_or_else(|| panic!("struct {name}"))
            .split("\n}")
            .next()
            .unwrap();
        body.lines()
            .map(str::trim)
            .filter_map(|l| l.strip_prefix("pub "))
            .filter_map(|l| l.split_once(": "))
            .map(|(f, t)| (f.to_string(), t.trim_end_matches(',').to_string()))
            .collect()
    };
    let mut out = Vec::new();
    for (field, ty) in fields("Config") {
        if src.contains(&format!("pub struct {ty} {{")) {
            for (key, _) in fields(&ty) {
                out.push((field.clone(), key));
            }
        } else {
            out.push((String::new(), field));
        }
    }
    out
}

#[test]
fn every_configuration_key_of_the_code_is_in_the_sample_and_man_page() {
    let keys = config_keys();
    assert!(keys.len() >= 20, "{keys:?}");
    let sample = repo_file("etc/miniftp.toml");
    let man = man_text();
    let mut problems = Vec::new();
    for (section, key) in &keys {
        let name = if section.is_empty() {
            key.clone()
        } else {
            format!("{section}.{key}")
        };
        // In the sample (possibly commented out, for keys without a
        // default value), in the right section.
        let part = if section.is_empty() {
            sample.split("\n[").next().unwrap().to_string()
        } else {
            match sample.split(&format!("\n[{section}]\n")).nth(1) {
                Some(p) => p.split("\n[").next().unwrap().to_string(),
                None => {
                    problems.push(format!("{name}: no [{section}] in etc/miniftp.toml"));
                    continue;
                }
            }
        };
        let in_sample = part.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))
        });
        if !in_sample {
            problems.push(format!("{name}: not in etc/miniftp.toml"));
        }
        let heading = if section.is_empty() {
            ".SS Top level".to_string()
        } else {
            format!(".SS [{section}]")
        };
        let in_man = man
            .split(&heading)
            .nth(1)
            .map(|p| {
                p.split("\n.SS ")
                    .next()
                    .unwrap()
                    .split("\n.SH ")
                    .next()
                    .unwrap()
            })
            .is_some_and(|p| {
                p.contains(&format!(".BR {key} ")) || p.contains(&format!(".B {key}\n"))
            });
        if !in_man {
            problems.push(format!("{name}: no item under {heading} in man/miniftp.1"));
        }
    }
    assert!(
        problems.is_empty(),
        "undocumented configuration keys:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_environment_variable_of_the_flags_is_in_the_man_page() {
    let cli = repo_file("src/cli.rs");
    let vars: Vec<&str> = cli
        .split("env = \"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap())
        .collect();
    assert!(vars.len() >= 4, "{vars:?}");
    let man = man_text();
    let env = man
        .split(".SH ENVIRONMENT")
        .nth(1)
        .expect("ENVIRONMENT section")
        .split("\n.SH ")
        .next()
        .unwrap();
    let mut missing: Vec<&str> = vars.into_iter().filter(|v| !env.contains(v)).collect();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "not in the man page's ENVIRONMENT: {missing:?}"
    );
}

#[test]
fn shell_commands_of_the_man_page_and_readme_are_those_help_lists() {
    let srv = TestServer::start();
    let o = run_in(&srv, &["shell"], Some(b"help\n"));
    exit_is(&o, 0);
    let out = stdout(&o);
    let usages: Vec<String> = out.lines().skip(1).map(|l| l.trim().to_string()).collect();
    assert!(usages.len() >= 17, "{out}");

    // man page: the tags of SHELL COMMANDS.
    let raw = repo_file("man/miniftp.1");
    let section = raw.split(".SH SHELL COMMANDS").nth(1).unwrap();
    let section = section.split("\n.SH ").next().unwrap();
    let lines: Vec<&str> = section.lines().collect();
    let tags: Vec<String> = lines
        .windows(2)
        .filter(|w| w[0] == ".TP")
        .map(|w| roff_plain(w[1]))
        .collect();
    assert_eq!(tags, usages, "man SHELL COMMANDS vs the shell's help");

    // README: "Commands: `put [-c] LOCAL [REMOTE]`, ..., `quit`."
    let readme = repo_file("README.md");
    let text = readme
        .split("\nCommands: ")
        .nth(1)
        .expect("README Commands:");
    let text = text.split('.').next().unwrap();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let listed: Vec<&str> = text.split('`').skip(1).step_by(2).collect();
    let names: Vec<&str> = usages
        .iter()
        .map(|u| u.split(' ').next().unwrap())
        .collect();
    let readme_names: Vec<&str> = listed
        .iter()
        .map(|u| u.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        readme_names, names,
        "README's command list vs the shell's help"
    );
    // Each README form is the usage line or its beginning (placeholder
    // names aside: README's `help [CMD]` is help's `help [COMMAND]`).
    let shape = |u: &str| -> String {
        u.split(' ')
            .map(|w| {
                let core = w.trim_matches(['[', ']']);
                if !core.is_empty() && core.chars().all(|c| c.is_ascii_uppercase()) {
                    w.replace(core, "X")
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (item, usage) in listed.iter().zip(&usages) {
        assert!(
            shape(usage).starts_with(&shape(item)),
            "README shows `{item}`, help says `{usage}`"
        );
    }
}

#[test]
fn every_help_succeeds() {
    for sub in ["serve", "shell", "put", "get", "useradd"] {
        for flag in ["--help", "-h"] {
            let o = Command::new(BIN).args([sub, flag]).output().unwrap();
            exit_is(&o, 0);
            let out = stdout(&o);
            assert!(
                out.contains(&format!("Usage: miniftp {sub}")),
                "{sub} {flag}:\n{out}"
            );
            assert_eq!(stderr(&o), "");
        }
    }
    let o = Command::new(BIN).arg("--help").output().unwrap();
    exit_is(&o, 0);
    for sub in ["serve", "shell", "put", "get", "useradd"] {
        assert!(stdout(&o).contains(sub), "{}", stdout(&o));
    }
    let o = Command::new(BIN).arg("--version").output().unwrap();
    exit_is(&o, 0);
    assert_eq!(
        stdout(&o).trim(),
        format!("miniftp {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_usage_lines_are_readable_and_list_the_environment() {
    for (sub, usage) in [
        ("put", "miniftp put [OPTIONS] LOCAL... REMOTE"),
        ("get", "miniftp get [OPTIONS] REMOTE... LOCAL"),
        ("sync", "miniftp sync [OPTIONS] up LOCAL_DIR REMOTE_DIR"),
    ] {
        let o = Command::new(BIN).args([sub, "--help"]).output().unwrap();
        exit_is(&o, 0);
        let out = stdout(&o);
        assert!(out.contains(usage), "{sub} --help:\n{out}");
        assert!(!out.contains("<LOCAL... REMOTE>"), "{sub} --help:\n{out}");
        for var in [
            "MINIFTP_SERVER",
            "MINIFTP_USER",
            "MINIFTP_PASSWORD",
            "MINIFTP_FINGERPRINT",
            "MINIFTP_CA_FILE",
            "MINIFTP_PLAINTEXT",
        ] {
            assert!(out.contains(var), "{sub} --help lacks {var}:\n{out}");
        }
    }
}
