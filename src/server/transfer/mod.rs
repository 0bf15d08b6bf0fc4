//! File bodies: the state of an upload or a download in progress
//! ([`upload`], [`download`]), and the pump jobs that move their bytes
//! between the socket and storage on a worker ([`pump`]).

pub mod download;
pub mod pump;
pub mod upload;

pub use download::Download;
pub use upload::Upload;
