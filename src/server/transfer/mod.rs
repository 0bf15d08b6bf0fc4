//! File bodies: the state of an upload or a download in progress, and the
//! "pump" jobs that move its bytes between the socket and the file on a
//! worker thread. A pump runs until the socket would block, the body ends,
//! or it has moved `PUMP_BUDGET` bytes (so many transfers share the pool
//! fairly); then the connection goes back to the loop to wait for readiness.

pub mod download;
pub mod eager;
pub mod upload;

pub use download::Download;
pub use upload::Upload;

/// Why a pump stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PumpStatus {
    /// The socket would block; wait for readiness.
    WouldBlock,
    /// The budget is spent; go again when the pool gets to it.
    Yield,
    /// The whole body has moved (for a download, the trailer is queued).
    Done,
    /// The peer is gone or the socket failed.
    Closed,
}

/// A transfer in either direction, as it travels with a pump job.
pub enum Transfer {
    Up(Box<Upload>),
    Down(Box<Download>),
}

impl Transfer {
    pub fn moved(&self) -> u64 {
        match self {
            Transfer::Up(u) => u.received,
            Transfer::Down(d) => d.sent(),
        }
    }
}
