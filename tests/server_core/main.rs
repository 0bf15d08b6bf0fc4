//! Integration tests (see tests/integration/util.rs for the harness).

#[path = "../integration/util.rs"]
mod util;

mod auth;
mod common;
mod concurrency;
mod frames;
mod lifecycle;
mod limits;
mod logging;
mod registration;
mod useradd;
