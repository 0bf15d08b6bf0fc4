//! Integration tests (see tests/integration/util.rs for the harness).

#[path = "../integration/util.rs"]
mod util;

mod fx;

mod commands;
mod jail;
mod resume;
mod names;
mod quota;
mod transfers;
