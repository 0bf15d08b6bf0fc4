//! Integration tests (see tests/integration/util.rs for the harness).

#[path = "../integration/util.rs"]
mod util;

mod common;
mod auth;
mod frames;
mod lifecycle;
mod limits;
mod registration;
mod useradd;
