//! Operations (issue 14): the packaged install, the log file, the
//! registration notification, metrics, the admin socket, bandwidth limits,
//! the audit log.

mod admin;
mod audit;
mod bandwidth;
mod check;
mod install;
mod log_file;
mod metrics;
mod notify;
pub(crate) mod ox;
mod rates;
