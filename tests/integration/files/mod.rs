//! Integration tests (see tests/integration/util.rs for the harness).

mod fx;

mod commands;
mod digests;
mod jail;
mod names;
mod quota;
mod resume;
mod transfers;
