//! File modes (issue 12, item 5). Run as documented (an unprivileged user,
//! umask 022) homes were 0755 and files 0644, so any other local account
//! could read every user's files; under umask 000 homes were 0777. Now the
//! data directory, homes, directories, partial uploads and files are made
//! 0700 / 0600 whatever the umask, and the server warns at start when the
//! data directory is writable by its group or by others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::json;

use crate::hardening::hx::*;
use crate::util::{Opts, TestServer};

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn homes_and_files_are_private_whatever_the_umask() {
    for umask in [0o000, 0o022] {
        let s = TestServer::with_umask(
            Opts {
                toml: String::new(),
                users: vec![("alice", "alice-pw", "10M")],
                env: vec![],
            },
            Some(umask),
        );
        let mut w = s.login("alice", "alice-pw");
        want(&w.call(json!({"op": "mkdir", "path": "d"})), 200);
        want(
            &w.call(json!({"op": "mkdir", "path": "p/q", "parents": true})),
            200,
        );
        want(&w.put("f.txt", b"private"), 226);
        let r = w.call(json!({"op": "put", "path": "deep/er/g.txt", "size": 3, "mkdirs": true}));
        want(&r, 150);
        w.send_raw(b"abc");
        want(&w.call(json!({"op": "done", "sha256": sha(b"abc")})), 226);
        want(
            &w.call(json!({"op": "cp", "from": "f.txt", "to": "copy.txt"})),
            200,
        );
        // An interrupted upload: its partial stays on disk.
        want(
            &w.call(json!({"op": "put", "path": "half", "size": 10})),
            150,
        );
        w.send_raw(b"12345");
        drop(w);
        let mut w = s.login("alice", "alice-pw");
        want(&partial_settled(&mut w, "half"), 200);

        let root = s.root();
        let home = s.home("alice");
        for dir in [
            root.clone(),
            root.join("home"),
            home.clone(),
            home.join("d"),
            home.join("p"),
            home.join("p/q"),
            home.join("deep"),
            home.join("deep/er"),
        ] {
            assert_eq!(mode(&dir), 0o700, "umask {umask:03o}: {}", dir.display());
        }
        for file in [
            home.join("f.txt"),
            home.join("deep/er/g.txt"),
            home.join("copy.txt"),
            home.join(".half.miniftp-part"),
            root.join("users.toml"),
        ] {
            assert_eq!(mode(&file), 0o600, "umask {umask:03o}: {}", file.display());
        }
    }
}

/// The server can't make a data directory someone else made private
/// after the fact, but it says so: a group- or world-writable data
/// directory lets other local accounts plant files in homes.
#[test]
fn a_group_or_world_writable_data_directory_is_warned_about() {
    let mut s = server("");
    assert!(!s.log().contains("writable by"), "{}", s.log());
    std::fs::set_permissions(s.root(), std::fs::Permissions::from_mode(0o777)).unwrap();
    s.kill_and_restart();
    let log = s.log();
    let line = log
        .lines()
        .find(|l| l.contains("writable by"))
        .unwrap_or_else(|| panic!("no warning:\n{}", tail(&log, 10)));
    assert!(line.contains("WARN"), "{line}");
    assert!(line.contains(&s.root().display().to_string()), "{line}");
    // It still serves.
    want(&s.login("alice", "alice-pw").call(json!({"op": "ls"})), 200);
}
