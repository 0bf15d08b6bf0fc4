//! A pseudo-terminal for the interactive shell: the child gets the slave
//! side as its controlling terminal (stdin, stdout, stderr, and /dev/tty
//! for password prompts), the test reads and types on the master side. A
//! reader thread collects the output and answers the cursor-position query
//! (`ESC [6n`) that a line editor sends, as a terminal would.

#![allow(dead_code)]

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
use rustix::termios::{tcgetattr, tcsetwinsize, LocalModes, Winsize};

/// How long any one wait on the terminal may take.
pub const WAIT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Screen {
    bytes: Vec<u8>,
    eof: bool,
}

pub struct Pty {
    pub child: Child,
    master: File,
    shared: Arc<(Mutex<Screen>, Condvar)>,
    /// Where the next `expect` starts looking.
    pos: usize,
}

impl Pty {
    /// Runs `cmd` on a new 80x24 terminal.
    pub fn spawn(mut cmd: Command) -> Pty {
        let master: OwnedFd =
            openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).expect("openpt");
        grantpt(&master).expect("grantpt");
        unlockpt(&master).expect("unlockpt");
        let name = ptsname(&master, Vec::new()).expect("ptsname");
        let slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32)
            .open(name.to_str().unwrap())
            .expect("open the pty slave");
        tcsetwinsize(
            &slave,
            Winsize {
                ws_row: 24,
                ws_col: 80,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .expect("window size");
        cmd.stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave.try_clone().unwrap()));
        // SAFETY: only async-signal-safe system calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                rustix::process::setsid()?;
                rustix::process::ioctl_tiocsctty(BorrowedFd::borrow_raw(0))?;
                Ok(())
            });
        }
        let child = cmd.spawn().expect("spawn on the pty");
        // Only the child keeps the slave open: its exit gives EOF (EIO) here.
        drop(slave);
        let master = File::from(master);
        let shared = Arc::new((Mutex::new(Screen::default()), Condvar::new()));
        let mut reader = master.try_clone().unwrap();
        let mut answer = master.try_clone().unwrap();
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut scanned = 0;
            loop {
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (lock, cv) = &*sh;
                let mut screen = lock.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    screen.eof = true;
                    cv.notify_all();
                    return;
                }
                screen.bytes.extend_from_slice(&buf[..n]);
                // Answer each cursor-position query: row 1, column 1.
                while let Some(i) = find(&screen.bytes[scanned..], b"\x1b[6n") {
                    scanned += i + 4;
                    let _ = answer.write_all(b"\x1b[1;1R");
                }
                scanned = scanned.max(screen.bytes.len().saturating_sub(3));
                cv.notify_all();
            }
        });
        Pty {
            child,
            master,
            shared,
            pos: 0,
        }
    }

    /// Waits for `text` in the output after the previous match; returns
    /// the output up to and including it.
    #[track_caller]
    pub fn expect(&mut self, text: &str) -> String {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + WAIT;
        let mut screen = lock.lock().unwrap();
        loop {
            if let Some(i) = find(&screen.bytes[self.pos..], text.as_bytes()) {
                let end = self.pos + i + text.len();
                let got = String::from_utf8_lossy(&screen.bytes[self.pos..end]).into_owned();
                self.pos = end;
                return got;
            }
            let now = Instant::now();
            if screen.eof || now >= deadline {
                let msg = format!(
                    "{} waiting for {text:?}; the terminal shows after the last match:\n{:?}\n\
                     whole transcript:\n{}",
                    if screen.eof { "EOF" } else { "timeout" },
                    String::from_utf8_lossy(&screen.bytes[self.pos..]),
                    String::from_utf8_lossy(&screen.bytes)
                );
                drop(screen);
                panic!("{msg}");
            }
            screen = cv.wait_timeout(screen, deadline - now).unwrap().0;
        }
    }

    /// Types `text` (use "\r" for Enter).
    pub fn send(&mut self, text: &str) {
        self.master.write_all(text.as_bytes()).unwrap();
        self.master.flush().unwrap();
    }

    /// Waits until the terminal no longer echoes what is typed (a password
    /// prompt turned echo off), so that typing now is never echoed by the
    /// terminal driver itself.
    #[track_caller]
    pub fn wait_echo_off(&self) {
        self.wait_modes(|m| !m.contains(LocalModes::ECHO), "echo off");
    }

    /// Waits until the terminal is in raw mode (a line editor reads keys).
    #[track_caller]
    pub fn wait_raw(&self) {
        self.wait_modes(|m| !m.contains(LocalModes::ICANON), "raw mode");
    }

    #[track_caller]
    fn wait_modes(&self, ok: impl Fn(LocalModes) -> bool, what: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let t = tcgetattr(self.master.as_fd()).expect("tcgetattr on the master");
            if ok(t.local_modes) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never got to {what}"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Everything the terminal showed so far.
    pub fn transcript(&self) -> String {
        let (lock, _) = &*self.shared;
        String::from_utf8_lossy(&lock.lock().unwrap().bytes).into_owned()
    }

    /// Waits for the child to close the terminal and exit.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let (lock, cv) = &*self.shared;
        let deadline = Instant::now() + WAIT;
        let mut screen = lock.lock().unwrap();
        while !screen.eof {
            let now = Instant::now();
            if now >= deadline {
                let _ = self.child.kill();
                let msg = format!(
                    "the shell did not exit; transcript:\n{}",
                    String::from_utf8_lossy(&screen.bytes)
                );
                drop(screen);
                panic!("{msg}");
            }
            screen = cv.wait_timeout(screen, deadline - now).unwrap().0;
        }
        drop(screen);
        self.child.wait().unwrap()
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}
