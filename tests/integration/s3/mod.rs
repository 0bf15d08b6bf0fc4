//! The S3 backend against a real three-node Garage cluster on loopback
//! (`garage`), started by the tests themselves.

mod client;
mod download;
pub mod garage;
mod nodes;
mod startup;
mod state;
mod writer;
