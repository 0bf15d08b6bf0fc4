//! File bodies: the state of an upload or a download in progress
//! ([`upload`], [`download`]), the pump jobs that move their bytes
//! between the socket and storage on a worker ([`pump`]), and what
//! `miniftp admin who` shows of them ([`progress`]).

pub mod download;
pub mod progress;
pub mod pump;
pub mod upload;

pub use download::Download;
pub use upload::Upload;
