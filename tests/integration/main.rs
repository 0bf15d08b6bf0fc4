//! One integration-test binary: every test starts the real `miniftp` and
//! talks to it over real sockets.

mod util;

mod smoke;

mod clients;
mod files;
mod ftp;
mod fuzz_regressions;
mod hardening;
mod ops;
mod s3;
mod server_core;
mod stored;
mod tls;
