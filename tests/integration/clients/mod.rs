//! Integration tests of the client side: `miniftp put`, `miniftp get`,
//! `miniftp shell` (scripted and under a pseudo-terminal), their exit codes
//! and credentials, and the documentation's agreement with the code. Every
//! test runs the real binary against the real server over real sockets
//! (see tests/integration/util.rs for the harness).

mod fx;
mod pty;

mod credentials;
mod docs;
mod exit_codes;
mod messages;
mod oneshot;
mod shell_script;
mod shell_tty;
mod sync;
mod sync_cache;
