//! Integration tests (see tests/integration/util.rs for the harness).

#[path = "../integration/util.rs"]
mod util;

mod fx;

mod commands;
mod names;
mod quota;
mod jail;
mod transfers;
