//! The FTP front-end against real clients (issue 13 "Tests"): the real
//! server with an `[ftp]` listener on port 0, driven by curl, lftp, rclone,
//! Python's ftplib and a replay of FileZilla's command sequence
//! (tests/ftp/clients.py, checked against pyftpdlib by
//! tests/ftp/validate-reference.sh), in plaintext and over explicit FTPS
//! with TLS 1.2 and TLS 1.3 (session reuse required). Every file is
//! compared by SHA-256.

mod commands;
mod features;
mod through;
mod wire;

use std::path::Path;
use std::process::Command;

use crate::util::*;

/// `[ftp]` on port 0; in plaintext mode TLS is off and not required.
fn ftp_server(mode: &str) -> TestServer {
    let toml = match mode {
        "plain" => "[ftp]\nlisten = \"127.0.0.1:0\"\nrequire_tls = false\n",
        _ => "[tls]\nenabled = true\n[ftp]\nlisten = \"127.0.0.1:0\"\n",
    };
    TestServer::with(Opts {
        toml: toml.into(),
        ..Opts::default()
    })
}

/// Runs one client of the matrix against a fresh server; panics with the
/// harness's report if any check failed.
fn run_client(client: &str, mode: &str) {
    let s = ftp_server(mode);
    let addr = s.ftp_addr.clone().expect("an `ftp listening on` line");
    let (host, port) = addr.rsplit_once(':').expect("HOST:PORT");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ftp/clients.py");
    let work = s.dir.path().join("clients");
    let out = Command::new("python3")
        .arg(script)
        .args([
            "--host",
            host,
            "--port",
            port,
            "--mode",
            mode,
            "--clients",
            client,
        ])
        .args([
            "--user",
            "alice",
            "--password",
            "alice-pw",
            "--reuse-required",
            "yes",
        ])
        .arg("--workdir")
        .arg(&work)
        .output()
        .expect("run tests/ftp/clients.py");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{client} over {mode}:\n{report}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
    );
    assert!(report.contains(" 0 failed"), "{report}");
    assert!(!s.log().contains("panicked"), "{}", s.log());
}

macro_rules! matrix {
    ($($name:ident: $client:literal, $mode:literal;)*) => {
        $(
            #[test]
            fn $name() {
                run_client($client, $mode);
            }
        )*
    };
}

matrix! {
    curl_plain: "curl", "plain";
    curl_tls12: "curl", "tls12";
    curl_tls13: "curl", "tls13";
    lftp_plain: "lftp", "plain";
    lftp_tls12: "lftp", "tls12";
    lftp_tls13: "lftp", "tls13";
    rclone_plain: "rclone", "plain";
    rclone_tls12: "rclone", "tls12";
    rclone_tls13: "rclone", "tls13";
    ftplib_plain: "ftplib", "plain";
    ftplib_tls12: "ftplib", "tls12";
    ftplib_tls13: "ftplib", "tls13";
    filezilla_plain: "filezilla", "plain";
    filezilla_tls12: "filezilla", "tls12";
    filezilla_tls13: "filezilla", "tls13";
}

/// Every reply code the FTP front-end's source sends has a row in
/// docs/FTP.md section 3, and every row is a code it sends.
#[test]
fn every_ftp_reply_code_is_documented() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sent = std::collections::BTreeSet::new();
    let mut stack = vec![root.join("src/server/front/ftp")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if !path.ends_with("tests.rs") && !path.ends_with("replay.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code_text = squeeze(text.split("mod tests {").next().unwrap());
                sent.extend(codes_after(
                    &code_text,
                    &["reply(out,", "multi(", "new(", "=>"],
                ));
            }
        }
    }
    assert!(sent.contains(&226) && sent.contains(&550), "{sent:?}");
    let doc = std::fs::read_to_string(root.join("docs/FTP.md")).unwrap();
    let section = doc
        .split("## 3. Reply codes")
        .nth(1)
        .and_then(|s| s.split("The core's statuses").next())
        .expect("docs/FTP.md section 3");
    let documented: std::collections::BTreeSet<u16> =
        codes_after(&squeeze(section), &["|`"]).collect();
    let missing: Vec<_> = sent.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&sent).collect();
    assert!(
        missing.is_empty(),
        "docs/FTP.md section 3 lacks {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/FTP.md section 3 lists codes never sent: {stale:?}"
    );
}

/// The text without whitespace, so a call rustfmt split over lines reads
/// as one.
fn squeeze(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Three-digit FTP codes (100-599) right after any of `prefixes`.
fn codes_after<'a>(text: &'a str, prefixes: &'a [&'a str]) -> impl Iterator<Item = u16> + 'a {
    prefixes.iter().flat_map(move |p| {
        text.match_indices(p).filter_map(move |(i, _)| {
            let rest = &text[i + p.len()..];
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let code: u16 = digits.parse().ok().filter(|_| digits.len() == 3)?;
            (100..600).contains(&code).then_some(code)
        })
    })
}
