//! Starting with `backend = "s3"`: wrong or missing settings are exit 2
//! naming the key, a store that can't be used is exit 1 naming what was
//! tried and what it answered, both before `listening on`; the `AWS_*`
//! variables stand in for unset keys.

use std::path::Path;
use std::process::ExitStatus;

use crate::s3::garage::{unique_prefix, Garage, BUCKET, REGION};
use crate::server_core::common::{serve_cmd, spawn_serve_cmd, Proc};

/// Every variable the server reads for the store, removed from the
/// server's environment unless a test sets it (this machine sets
/// `AWS_CA_BUNDLE`, a developer may have keys).
const AWS_VARS: [&str; 7] = [
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_CA_BUNDLE",
];

/// A `[storage]` section: the shared cluster's settings, each key replaced
/// (`Some`) or left out (`None`) as `changes` say. The secret's file is
/// written in `dir`.
fn storage_toml(g: &Garage, dir: &Path, changes: &[(&str, Option<&str>)]) -> String {
    let secret = dir.join("s3-secret");
    std::fs::write(&secret, format!("{}\n", g.secret)).unwrap();
    let prefix = unique_prefix("start");
    let keys = [
        ("endpoint", format!("{:?}", g.endpoint())),
        ("region", format!("{REGION:?}")),
        ("bucket", format!("{BUCKET:?}")),
        ("prefix", format!("{prefix:?}")),
        ("access_key_id", format!("{:?}", g.key_id)),
        (
            "secret_access_key_file",
            format!("{:?}", secret.display().to_string()),
        ),
        ("path_style", "true".to_string()),
    ];
    let mut toml = String::from("[storage]\nbackend = \"s3\"\n");
    for (key, value) in keys {
        match changes.iter().find(|(k, _)| *k == key) {
            Some((_, Some(v))) => toml.push_str(&format!("{key} = {v}\n")),
            Some((_, None)) => {}
            None => toml.push_str(&format!("{key} = {value}\n")),
        }
    }
    for (key, value) in changes {
        if let (false, Some(v)) = (toml.contains(&format!("\n{key} = ")), value) {
            toml.push_str(&format!("{key} = {v}\n"));
        }
    }
    toml
}

/// `miniftp serve` on a config of `toml` with `env` (and no other `AWS_*`
/// variable): the running server, or how it exited and its stderr.
fn serve(dir: &Path, toml: &str, env: &[(&str, String)]) -> Result<Proc, (ExitStatus, String)> {
    let config = dir.join("miniftp.toml");
    let root = dir.join("data");
    let text = format!(
        "listen = \"127.0.0.1:0\"\nroot = {:?}\n{toml}",
        root.display().to_string()
    );
    std::fs::write(&config, text).unwrap();
    let mut cmd = serve_cmd(&["--config", config.to_str().unwrap()], dir);
    for var in AWS_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    let stderr = dir.join("serve-stderr.log");
    spawn_serve_cmd(cmd, &stderr, || {})
        .map_err(|status| (status, std::fs::read_to_string(&stderr).unwrap_or_default()))
}

/// Serving `changes` must fail with `code`, stderr naming each of `names`.
fn assert_refused(
    changes: &[(&str, Option<&str>)],
    env: &[(&str, String)],
    code: i32,
    names: &[&str],
) {
    let dir = tempfile::tempdir().unwrap();
    let toml = storage_toml(Garage::shared(), dir.path(), changes);
    let (status, stderr) = match serve(dir.path(), &toml, env) {
        Ok(p) => panic!("served on {} with {changes:?}:\n{toml}", p.addr),
        Err(refused) => refused,
    };
    assert_eq!(
        status.code(),
        Some(code),
        "{changes:?}: {status}, stderr: {stderr}"
    );
    for name in names {
        assert!(
            stderr.contains(name),
            "{changes:?}: stderr doesn't name {name:?}: {stderr}"
        );
    }
}

#[test]
fn wrong_or_missing_s3_settings_are_exit_2_naming_the_key() {
    let none = &[];
    assert_refused(&[("bucket", None)], none, 2, &["bucket", "required"]);
    assert_refused(
        &[("bucket", Some("\"No_Such!\""))],
        none,
        2,
        &["storage.bucket"],
    );
    assert_refused(
        &[("endpoint", Some("\"ftp://x\""))],
        none,
        2,
        &["storage.endpoint", "ftp://x"],
    );
    assert_refused(
        &[("prefix", Some("\"../up\""))],
        none,
        2,
        &["storage.prefix"],
    );
    assert_refused(&[("region", None)], none, 2, &["region", "AWS_REGION"]);
    assert_refused(
        &[("access_key_id", None)],
        none,
        2,
        &["access_key_id", "AWS_ACCESS_KEY_ID"],
    );
    assert_refused(
        &[("secret_access_key_file", None)],
        none,
        2,
        &["secret_access_key_file", "AWS_SECRET_ACCESS_KEY"],
    );
    assert_refused(
        &[("secret_access_key_file", Some("\"/nonexistent/secret\""))],
        none,
        2,
        &["secret_access_key_file", "/nonexistent/secret"],
    );
    assert_refused(&[("path_style", Some("\"yes\""))], none, 2, &["path_style"]);
    assert_refused(&[("bukket", Some("\"x\""))], none, 2, &["bukket"]);
    // "" (a variable left unexpanded) is not "unset".
    for key in [
        "endpoint",
        "region",
        "bucket",
        "access_key_id",
        "secret_access_key_file",
    ] {
        let name = format!("storage.{key}");
        assert_refused(&[(key, Some("\"\""))], none, 2, &[&name, "empty"]);
    }
}

#[test]
fn an_empty_secret_file_is_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty-secret");
    std::fs::write(&empty, "\n").unwrap();
    let quoted = format!("{:?}", empty.display().to_string());
    assert_refused(
        &[("secret_access_key_file", Some(&quoted))],
        &[],
        2,
        &["secret_access_key_file", "empty"],
    );
}

#[test]
fn s3_keys_with_the_local_backend_are_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[storage]\nbucket = \"homes\"\n";
    let (status, stderr) = match serve(dir.path(), toml, &[]) {
        Ok(p) => panic!("served on {} with a bucket on local storage", p.addr),
        Err(refused) => refused,
    };
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("storage.bucket") && stderr.contains("local"),
        "{stderr}"
    );
}

#[test]
fn a_store_that_cannot_be_used_is_exit_1_naming_what_failed() {
    let none = &[];
    // Nothing listens there (a port just freed).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("\"http://127.0.0.1:{port}\"");
    assert_refused(
        &[("endpoint", Some(&dead))],
        none,
        1,
        &[
            "object store",
            &format!("127.0.0.1:{port}"),
            "unavailable",
            "endpoint",
        ],
    );
    // A bucket the store doesn't have.
    assert_refused(
        &[("bucket", Some("\"no-such-bucket-here\""))],
        none,
        1,
        &[
            "object store",
            "no-such-bucket-here",
            "bucket does not exist",
        ],
    );
    // A secret that isn't the key's.
    let dir = tempfile::tempdir().unwrap();
    let wrong = dir.path().join("wrong-secret");
    std::fs::write(&wrong, "0".repeat(64)).unwrap();
    let quoted = format!("{:?}", wrong.display().to_string());
    assert_refused(
        &[("secret_access_key_file", Some(&quoted))],
        none,
        1,
        &[
            "object store",
            BUCKET,
            "refused our credentials",
            "HTTP 403",
        ],
    );
    // A key the store doesn't know.
    assert_refused(
        &[("access_key_id", Some("\"GK000000000000000000000000\""))],
        none,
        1,
        &["object store", BUCKET, "refused our credentials"],
    );
}

#[test]
fn aws_variables_stand_in_for_unset_keys() {
    let g = Garage::shared();
    let dir = tempfile::tempdir().unwrap();
    let unset = [
        ("endpoint", None),
        ("region", None),
        ("access_key_id", None),
        ("secret_access_key_file", None),
    ];
    let toml = storage_toml(g, dir.path(), &unset);
    let env = [
        ("AWS_ENDPOINT_URL", g.endpoint()),
        ("AWS_REGION", REGION.to_string()),
        ("AWS_ACCESS_KEY_ID", g.key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY", g.secret.clone()),
    ];
    // The start checks the bucket with a signed request: serving at all
    // means the variables' endpoint, region, key and secret were used.
    let p = match serve(dir.path(), &toml, &env) {
        Ok(p) => p,
        Err((status, stderr)) => panic!("{status}: {stderr}"),
    };
    let expected = format!("S3 bucket {BUCKET} at {}", g.endpoint());
    assert!(
        crate::util::eventually(std::time::Duration::from_secs(10), || p
            .log()
            .contains(&expected)),
        "the log doesn't name {expected:?}: {}",
        p.log()
    );
    // And a wrong secret in the environment is refused like one in a file.
    let mut env = env.to_vec();
    env[3].1 = "0".repeat(64);
    let (status, stderr) = match serve(dir.path(), &toml, &env) {
        Ok(p) => panic!("served on {} with a wrong secret", p.addr),
        Err(refused) => refused,
    };
    assert_eq!(status.code(), Some(1), "{stderr}");
}
