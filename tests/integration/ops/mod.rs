//! Operations (issue 14): the packaged install, the log file, the
//! registration notification, metrics, the admin socket, bandwidth limits,
//! the audit log.

mod bandwidth;
mod install;
mod log_file;
mod notify;
mod ox;
mod rates;
