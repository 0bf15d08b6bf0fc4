//! THE wire format, shared by the server and every client subcommand.
//! See docs/PROTOCOL.md for the same thing in prose.

pub mod frame;
pub mod message;
pub mod status;

pub use message::{
    Entry, EntryKind, Password, QuotaInfo, Reply, Request, TreeEntry, PROTOCOL_VERSION,
};
pub use status::Status;
