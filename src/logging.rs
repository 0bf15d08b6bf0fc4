//! Log setup: env_logger formats (`RUST_LOG` overrides the default level)
//! into one sink: stderr (journald under systemd), or the config's
//! `log_file`, reopened after SIGHUP so logrotate can move it away.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The log file, when there is one; None means stderr.
static FILE: Mutex<Option<LogFile>> = Mutex::new(None);
/// Set by SIGHUP: the next line goes to a freshly opened file.
static REOPEN: AtomicBool = AtomicBool::new(false);

struct LogFile {
    path: PathBuf,
    file: File,
}

fn open(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // Readable by a log group when the umask allows (the unit's doesn't).
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

/// What env_logger writes each formatted record to (under its own lock).
struct Sink;

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut file = FILE.lock().unwrap_or_else(|p| p.into_inner());
        let Some(log) = file.as_mut() else {
            return std::io::stderr().write(buf);
        };
        if REOPEN.swap(false, Ordering::AcqRel) {
            match open(&log.path) {
                Ok(f) => log.file = f,
                // Keep writing where we were, and say so there.
                Err(e) => {
                    let _ = writeln!(
                        log.file,
                        "cannot reopen {} after SIGHUP: {e}; still writing here",
                        log.path.display()
                    );
                }
            }
        }
        log.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match FILE.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            Some(log) => log.file.flush(),
            None => std::io::stderr().flush(),
        }
    }
}

fn builder(default: &str) -> env_logger::Builder {
    let mut b =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default));
    b.format_timestamp_millis()
        .target(env_logger::Target::Pipe(Box::new(Sink)));
    b
}

/// The server logs sessions and transfers at `info`. rustls warns about
/// every client that sends an IP address as the TLS server name (curl and
/// lftp do, to an FTP server given by address): harmless, and not worth a
/// line per connection.
pub fn init_server() {
    let _ = builder("info")
        .filter_module("rustls::msgs::handshake", log::LevelFilter::Error)
        .try_init();
}

/// Clients only warn, unless --verbose.
pub fn init_client(verbose: bool) {
    crate::error::VERBOSE.store(verbose, std::sync::atomic::Ordering::Relaxed);
    let _ = builder(if verbose { "info" } else { "warn" }).try_init();
}

/// From now on the log goes to `path` (appended to; created if missing).
pub fn to_file(path: &Path) -> std::io::Result<()> {
    let file = open(path)?;
    *FILE.lock().unwrap_or_else(|p| p.into_inner()) = Some(LogFile {
        path: path.to_owned(),
        file,
    });
    Ok(())
}

/// SIGHUP: the log file is reopened by its name before the next line (this
/// one), so lines after a logrotate land in the new file. Called on the
/// loop; opening a local file is quick.
pub fn reopen() {
    if FILE.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
        log::info!("SIGHUP: logging to stderr, nothing to reopen");
        return;
    }
    REOPEN.store(true, Ordering::Release);
    log::info!("SIGHUP: reopened the log file");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One test for the global sink: rename the file away, reopen, and the
    /// next line lands in a new file by the old name.
    #[test]
    fn reopen_after_rename() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("miniftp.log");
        to_file(&path).unwrap();
        Sink.write_all(b"before\n").unwrap();
        std::fs::rename(&path, dir.path().join("miniftp.log.1")).unwrap();
        Sink.write_all(b"still old\n").unwrap();
        REOPEN.store(true, Ordering::Release);
        Sink.write_all(b"after\n").unwrap();
        *FILE.lock().unwrap() = None;
        let old = std::fs::read_to_string(dir.path().join("miniftp.log.1")).unwrap();
        assert_eq!(old, "before\nstill old\n");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "after\n");
    }
}
