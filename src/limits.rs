//! Every fixed size, count and timeout cap in one place, each with the reason
//! for its value. Operator-tunable limits live in `config.rs` (with these as
//! their defaults); the ones here are protocol constants.

/// Bytes in a frame's length prefix: a big-endian u64, so no size on the wire
/// is ever 32-bit (the original program's signed 32-bit prefix capped it).
pub const FRAME_HEADER_LEN: usize = 8;

/// Largest control frame a server accepts from a client. Checked before any
/// allocation: a peer announcing more is disconnected. 64 KiB holds the
/// longest request (two paths of `MAX_PATH_LEN`) with room to spare.
pub const MAX_REQUEST_FRAME: usize = 64 * 1024;

/// Largest reply frame a client accepts from a server. Listings are paged
/// (`MAX_LIST_PAGE` entries), so a reply never needs more.
pub const MAX_REPLY_FRAME: usize = 4 * 1024 * 1024;

/// Longest path (in bytes) a request may carry.
pub const MAX_PATH_LEN: usize = 4096;

/// Longest single name in a path, as on Linux filesystems.
pub const MAX_NAME_LEN: usize = 255;

/// Longest user name.
pub const MAX_USER_LEN: usize = 32;

/// Longest password accepted (argon2 accepts more; nobody needs it).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Entries in one `ls` reply; the reply says where to continue.
pub const MAX_LIST_PAGE: usize = 1000;

/// Entries a directory may have before `ls` refuses to sort it in memory.
pub const MAX_DIR_ENTRIES: usize = 200_000;

/// Entries in one `tree` reply; the reply says where to continue.
pub const MAX_TREE_PAGE: usize = 5000;

/// Bytes of path text in one `tree` reply (paths may be 4 KiB each, and a
/// reply must stay well inside `MAX_REPLY_FRAME`).
pub const MAX_TREE_PAGE_BYTES: usize = 1 << 20;

/// Bytes one `tree` request may hash for files that have no stored digest
/// (~0.2 s of one worker with SHA-NI): the page ends there and the client
/// asks again, so a tree of large new files never holds a worker for long.
pub const MAX_TREE_HASH_BYTES: u64 = 256 << 20;

/// Files whose hashing a `tree` request left half done, with their hash
/// state kept for the next request (~250 bytes each). Beyond this the
/// oldest are dropped, and their hashing starts over.
pub const MAX_HASHING_STATES: usize = 64;

/// Depth cap of every directory walk (usage, recursive rm, sweep): walks are
/// iterative, and this stops a hostile tree from growing our stack or queue.
pub const MAX_WALK_DEPTH: usize = 256;

/// Bytes a worker moves between a socket and a file in one job before it
/// yields, so 200 concurrent transfers share the pool fairly.
pub const PUMP_BUDGET: usize = 4 * 1024 * 1024;

/// Size of each worker thread's scratch buffer for hashed copies. Buffers
/// belong to the worker, not the connection: an idle or slow connection
/// costs no buffer at all.
pub const PUMP_BUF: usize = 256 * 1024;

/// Bytes of a connection's outgoing reply buffer beyond which the server
/// stops reading new requests from it until the client reads its replies.
pub const MAX_PENDING_REPLY_BYTES: usize = 256 * 1024;

/// Most entries kept in the failed-login table; the oldest is evicted.
pub const MAX_FAILED_LOGIN_ENTRIES: usize = 10_000;
