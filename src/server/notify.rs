//! `registration.notify_command`: tells the operator a registration
//! request waits for approval, instead of their polling `useradd
//! --pending`. The command runs through `/bin/sh -c`, with the request in
//! the environment (never in the command line: the name is the client's)
//! and a short message on its standard input, so `mail -s ... root` works
//! as it is.
//!
//! It is started from the auth worker that filed the request (never on the
//! loop) and watched by a thread of its own, which kills it after
//! `registration.notify_timeout_secs`; the worker does not wait. At most
//! `MAX_NOTIFY_RUNNING` run at once; beyond that a notification is skipped
//! and logged.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::limits::MAX_NOTIFY_RUNNING;

/// Notifications running now.
static RUNNING: AtomicUsize = AtomicUsize::new(0);

/// How often the watcher looks whether the command has ended.
const POLL: Duration = Duration::from_millis(50);

/// A registration request that was just filed.
pub struct Filed<'a> {
    pub user: &'a str,
    pub peer: SocketAddr,
    /// Requests waiting now, this one included.
    pub pending: usize,
}

/// Starts `command` for `request` and returns at once, with the watching
/// thread (callers let it go; tests join it). Failures are logged.
pub fn spawn(
    command: &str,
    timeout: Duration,
    request: &Filed<'_>,
) -> Option<std::thread::JoinHandle<()>> {
    if RUNNING.fetch_add(1, Ordering::AcqRel) >= MAX_NOTIFY_RUNNING {
        RUNNING.fetch_sub(1, Ordering::AcqRel);
        log::warn!(
            "notify_command not run for the registration of {:?}: {MAX_NOTIFY_RUNNING} still running",
            request.user
        );
        return None;
    }
    let message = format!(
        "miniftp: {:?} asks for an account (from {}); {} request(s) wait.\n\
         Approve with: miniftp useradd {} --approve\n\
         Reject with:  miniftp useradd {} --reject\n",
        request.user,
        request.peer.ip(),
        request.pending,
        shell_quote(request.user),
        shell_quote(request.user),
    );
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(command)
        .env("MINIFTP_REGISTRATION_USER", request.user)
        .env("MINIFTP_REGISTRATION_PEER", request.peer.ip().to_string())
        .env("MINIFTP_PENDING_COUNT", request.pending.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a timeout kills what it started too.
        .process_group(0)
        .spawn();
    let child = match child {
        Ok(c) => c,
        Err(e) => {
            RUNNING.fetch_sub(1, Ordering::AcqRel);
            log::warn!("notify_command could not start: {e}");
            return None;
        }
    };
    let user = request.user.to_string();
    let watcher = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            watch(child, message, timeout, &user);
            RUNNING.fetch_sub(1, Ordering::AcqRel);
        });
    match watcher {
        Ok(handle) => Some(handle),
        Err(e) => {
            // No thread to enforce the timeout: the command runs unwatched.
            RUNNING.fetch_sub(1, Ordering::AcqRel);
            log::warn!("notify_command: no thread to watch it: {e}");
            None
        }
    }
}

/// Feeds the message, then waits for the command until `timeout`, and
/// kills it past that.
fn watch(mut child: Child, message: String, timeout: Duration, user: &str) {
    let deadline = Instant::now() + timeout;
    if let Some(mut stdin) = child.stdin.take() {
        // A few hundred bytes fit in the pipe: this does not block. A
        // command that doesn't read them (EPIPE) is fine.
        let _ = stdin.write_all(message.as_bytes());
    }
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => {
                log::info!("notify_command done for the registration of {user:?}");
                return;
            }
            Ok(Some(status)) => {
                log::warn!("notify_command for the registration of {user:?} failed: {status}");
                return;
            }
            Ok(None) if Instant::now() >= deadline => {
                // The group is the shell's pid (process_group(0) above).
                let group = rustix::process::Pid::from_child(&child);
                let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
                let _ = child.kill();
                let _ = child.wait();
                log::warn!(
                    "notify_command for the registration of {user:?} killed after {}s",
                    timeout.as_secs()
                );
                return;
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                log::warn!("notify_command: {e}");
                return;
            }
        }
    }
}

/// `name` quoted for a POSIX shell, for the message's command lines.
fn shell_quote(name: &str) -> String {
    format!("'{}'", name.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filed(user: &str) -> Filed<'_> {
        Filed {
            user,
            peer: "192.0.2.9:4000".parse().unwrap(),
            pending: 3,
        }
    }

    #[test]
    fn the_request_reaches_the_command_without_a_shell_in_between() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let command = format!(
            "{{ printf '%s|%s|%s\\n' \"$MINIFTP_REGISTRATION_USER\" \"$MINIFTP_REGISTRATION_PEER\" \
             \"$MINIFTP_PENDING_COUNT\"; cat; }} > {}.tmp && mv {0}.tmp {0}",
            out.display()
        );
        // A name a shell would act on, were it pasted into the command.
        let user = "x$(touch pwned)'";
        spawn(&command, Duration::from_secs(10), &filed(user))
            .unwrap()
            .join()
            .unwrap();
        assert!(out.exists(), "the command did not run");
        let text = std::fs::read_to_string(&out).unwrap();
        assert!(text.starts_with("x$(touch pwned)'|192.0.2.9|3\n"), "{text}");
        assert!(
            text.contains("miniftp useradd 'x$(touch pwned)'\\''' --approve"),
            "{text}"
        );
        assert!(!Path::new("pwned").exists());
    }

    #[test]
    fn a_command_past_its_timeout_is_killed_with_what_it_started() {
        let dir = tempfile::tempdir().unwrap();
        let late = dir.path().join("late");
        // The sleep is a child of the shell: it dies with the group.
        let command = format!("(sleep 2; touch {}) & wait", late.display());
        let started = Instant::now();
        spawn(&command, Duration::from_millis(300), &filed("slow"))
            .unwrap()
            .join()
            .unwrap();
        assert!(started.elapsed() < Duration::from_millis(1500));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(
            !late.exists(),
            "the command's children outlived the timeout"
        );
    }

    use std::path::Path;
}
