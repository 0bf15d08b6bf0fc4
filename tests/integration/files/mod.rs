//! Integration tests (see tests/integration/util.rs for the harness).

pub mod fx;

/// Instantiates each named test once per backend, as `<file>::local::NAME`
/// and `<file>::s3::NAME` (the function takes the [`crate::util::Store`]):
/// the file commands must behave the same on a local disk and on an object
/// store. The S3 instances share the run's Garage cluster, each server
/// under a key prefix of its own.
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod local {
            $( #[test] fn $name() { super::$name(crate::util::Store::Local) } )*
        }
        mod s3 {
            $( #[test] fn $name() { super::$name(crate::util::Store::S3) } )*
        }
    };
}

mod commands;
mod digests;
mod jail;
mod names;
mod quota;
mod resume;
mod transfers;
