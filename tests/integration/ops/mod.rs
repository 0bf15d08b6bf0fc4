//! Operations (issue 14): the packaged install, the log file.

mod install;
mod log_file;
