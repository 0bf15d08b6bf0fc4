//! Operations (issue 14): the packaged install, the log file, the
//! registration notification.

mod install;
mod log_file;
mod notify;
mod rates;
