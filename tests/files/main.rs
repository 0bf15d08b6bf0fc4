//! Integration tests (see tests/integration/util.rs for the harness).

#[path = "../integration/util.rs"]
mod util;

mod fx;

mod commands;
mod jail;
mod names;
mod quota;
mod resume;
mod transfers;
