//! Integration tests (see tests/integration/util.rs for the harness).

mod auth;
pub mod common;
mod concurrency;
mod frames;
mod lifecycle;
mod limits;
mod logging;
mod registration;
mod useradd;
