//! Front-ends: one codec per listener, turning its wire format into core
//! requests and the core's replies back into its wire format.

pub mod ftp;
