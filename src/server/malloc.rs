//! The server's malloc settings: the one place with `unsafe` in the crate.
//!
//! Why: a TLS download makes rustls allocate a buffer for every record it
//! encrypts (16 KiB each, up to 256 KiB in flight) and free it once the
//! socket took it. glibc hands the freed space at the top of a worker's heap
//! back to the kernel as soon as it exceeds 128 KiB (`M_TRIM_THRESHOLD`), so
//! the next records fault in fresh zeroed pages: measured, a third of the
//! server's CPU during a 1 GiB TLS download (0.8 s → 0.47 s with a 1 MiB
//! threshold; the download 1.5 s → 1.2 s). Setting the threshold also stops
//! glibc from moving the mmap threshold on its own, so we fix that too:
//! blocks from 512 KiB up are mapped and unmapped on their own (argon2's
//! working memory among them), smaller ones come from the heap.
//!
//! Cost: each malloc arena may keep up to 1 MiB of free memory resident
//! after a burst, instead of 128 KiB.

/// Heap top kept on free (bytes).
const TRIM_THRESHOLD: i32 = 1 << 20;
/// Smallest allocation given its own mapping (bytes).
const MMAP_THRESHOLD: i32 = 512 << 10;

/// Applies the settings; call once at start, before the worker threads.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called with
    // documented options and in-range values before other threads exist.
    #[allow(unsafe_code)]
    unsafe {
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
    }
}
