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

/// Longest user name.
pub const MAX_USER_LEN: usize = 32;

/// Longest password accepted (argon2 accepts more; nobody needs it).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Entries in one `ls` reply; the reply says where to continue.
pub const MAX_LIST_PAGE: usize = 1000;

/// Entries a directory may have before `ls` refuses to sort it in memory.
pub const MAX_DIR_ENTRIES: usize = 200_000;

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

/// Longest FTP command line, CRLF included. The longest line a client needs
/// is a verb, a few arguments and a path of `MAX_PATH_LEN` bytes (`MFMT
/// 20260101000000 <path>`); 64 bytes cover the verb and arguments. Checked
/// on the buffered bytes before a line is copied anywhere: a longer line
/// gets `500` and closes the connection, since it can't be resynchronised.
pub const MAX_FTP_LINE: usize = MAX_PATH_LEN + 64;
