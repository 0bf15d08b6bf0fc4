//! What a connection is transferring right now, for `miniftp admin who`:
//! each upload and download counts its bytes in a [`Progress`], and the
//! connection's [`Watch`] points at the one in flight. The pump jobs count
//! (an atomic add per step) and, in a run of eager puts, point the watch at
//! each new file; the loop only reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::server::admin::TransferInfo;
use crate::server::metrics::TransferOp;

/// One transfer's progress.
pub struct Progress {
    pub op: TransferOp,
    pub path: String,
    /// The whole file's size, when known.
    pub size: Option<u64>,
    /// Bytes of the file done: the resume offset, then what moved.
    done: AtomicU64,
}

impl Progress {
    pub fn new(op: TransferOp, path: String, size: Option<u64>, offset: u64) -> Arc<Progress> {
        Arc::new(Progress {
            op,
            path,
            size,
            done: AtomicU64::new(offset),
        })
    }

    /// `n` more bytes moved.
    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Ordering::Relaxed);
    }

    pub fn info(&self) -> TransferInfo {
        TransferInfo {
            op: self.op.as_str().into(),
            path: self.path.clone(),
            done: self.done.load(Ordering::Relaxed),
            size: self.size,
        }
    }
}

/// The transfer a connection has in flight, if any; shared by the
/// connection and its pump jobs.
#[derive(Clone, Default)]
pub struct Watch(Arc<Mutex<Option<Arc<Progress>>>>);

impl Watch {
    pub fn set(&self, progress: Option<&Arc<Progress>>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = progress.map(Arc::clone);
    }

    pub fn info(&self) -> Option<TransferInfo> {
        let slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        slot.as_ref().map(|p| p.info())
    }
}
