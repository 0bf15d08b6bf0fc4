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

/// Deepest path below a home, in names (`/a/b/c` is 3). One number for
/// both sides of the books: no request may name a deeper path (so nothing
/// deeper is created by `mkdir -p`, `put` with `mkdirs` or `cp`), `mv`
/// may not carry a tree deeper, and every walk (usage at login, the
/// partial sweep, recursive `rm`) reaches this deep. A tree the server
/// created is therefore always counted in `used` and always removable.
/// Walks are iterative, so this also bounds their descriptors (one or two
/// per level), not the stack.
pub const MAX_DEPTH: usize = 256;
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

/// How much older than the moment its content was read a local file's
/// ctime must be for `sync`'s digest cache to keep its digest. A write in
/// the same clock tick as the stamp leaves ctime as it was; ticks are
/// milliseconds on local filesystems, and 2 s also covers coarse ones and
/// a little clock skew on network ones. A younger file is hashed again on
/// the next run, which costs one read.
pub const CACHE_RACY_NS: i128 = 2_000_000_000;

/// Entries in one directory's digest cache (~170 bytes each on disk):
/// a larger tree keeps digests for this many files, hashing the rest.
pub const MAX_SYNC_CACHE_ENTRIES: usize = 1_000_000;

/// Largest digest cache file read back (a million entries fit); a larger
/// one is ignored, not loaded.
pub const MAX_SYNC_CACHE_BYTES: u64 = 256 << 20;

/// Digest cache files kept (one per synced directory); the least recently
/// written beyond this are removed, so the cache directory stays bounded.
pub const MAX_SYNC_CACHES: usize = 256;

/// Threads that hash local files for `sync` at once: as many as there are
/// cores, at most this many (beyond, the disk is the limit, not the CPU).
pub const MAX_HASH_THREADS: usize = 8;

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

/// Replaced files at least this big are freed after the commit's reply (a
/// hidden second link keeps them until then): freeing every page of a
/// large file would otherwise hold the client's `226`.
pub const DEFER_FREE_MIN: u64 = 8 << 20;

/// Inodes whose digest-store ctime the local backend remembers (~40 bytes
/// each, under 1 MiB in all); the table is cleared when full.
pub const MAX_STORED_CTIMES: usize = 16_384;

/// Capacity beyond which a connection's emptied read or write buffer is
/// freed rather than kept: an idle connection holds almost nothing.
pub const KEEP_CAPACITY: usize = 16 * 1024;

/// Plaintext plus ciphertext rustls may hold for one server connection:
/// bounds memory per connection and gives backpressure.
pub const TLS_BUFFER_LIMIT: usize = 256 * 1024;

/// Ciphertext one socket read may bring in for a TLS connection (rustls
/// itself reads 4 KiB at a time: this turns 16 syscalls into one).
pub const READ_AHEAD: usize = 64 * 1024;

/// Upload bodies at least this big are hashed on a helper thread while the
/// worker reads and writes (when no other upload is pumping).
pub const PARALLEL_HASH_MIN: u64 = 2 << 20;

/// Buffers in flight between the receiving and the hashing thread of a
/// parallel upload pump.
pub const PIPE_BUFS: usize = 3;

/// Eager puts one job handles in a row before it lets other connections'
/// jobs run.
pub const EAGER_BATCH: usize = 64;

/// How long a closing connection waits for its peer to close too (reading
/// and dropping its input), so the last replies are not lost to a reset.
pub const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// How often the loop checks timeouts (login, idle, lingering closes).
pub const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// After the shutdown grace period, how long aborted transfers get to clean
/// up (keep their partials) before the process exits anyway.
pub const CLEANUP_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// Refused TLS connections kept at once to tell them why (each needs a
/// handshake before its 421 can be read); beyond this a refused connection
/// is just closed.
pub const MAX_REFUSING: usize = 64;

/// How much later than the moment a digest was stored the inode's ctime
/// may be and the digest still trusted, after a restart: storing the
/// attribute itself moves ctime, a few microseconds after the clock was
/// read (on filesystems with coarse timestamps ctime may even lag it by a
/// tick). A change within this window after a digest is stored that keeps
/// both size and mtime goes unnoticed; a store that took longer (preempted)
/// only costs one rehash at the next download.
pub const CTIME_SLACK_NS: i128 = 2_000_000;

/// How often the users file is checked for changes (a `useradd` takes
/// effect within this long; the check is one stat).
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The caps of the S3 backend (src/storage/s3, docs/STORAGE.md): S3's own
/// limits, the deadlines of every call to the store, and the memory uploads
/// to it may hold.
pub mod s3 {
    use std::time::Duration;

    const MIB: u64 = 1024 * 1024;

    /// Smallest part S3 accepts (but for the last one): 5 MiB.
    pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
    /// Largest part S3 accepts, and the largest single CopyObject (5 GiB):
    /// above it a copy is a multipart upload of UploadPartCopy parts.
    pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
    /// Most parts in one multipart upload.
    pub const MAX_PARTS: u64 = 10_000;

    /// Longest key S3 stores (bytes of UTF-8).
    pub const MAX_KEY_LEN: usize = 1024;

    /// Time to set up a TCP (and TLS) connection to the store. Loopback and LAN
    /// stores answer in milliseconds; an unreachable one should fail fast.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Deadline of a call that moves no bulk data (HEAD, LIST, DELETE, Create,
    /// Complete, Abort, small records). Garage answers "quorum not reached" in
    /// well under this when nodes are down; a store that says nothing for this
    /// long is treated as unavailable.
    pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Longest pause in a body being sent or received before the call fails
    /// (a stalled store or network); it restarts with every read or write.
    pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
    /// Slowest transfer rate a part upload may have; with [`CONTROL_TIMEOUT`]
    /// it sets the deadline of a part: 30 s + 1 s per MiB.
    pub const MIN_RATE: u64 = 1024 * 1024;
    /// Deadline of a server-side copy (CopyObject, UploadPartCopy): Garage only
    /// adds references to the blocks, but AWS copies up to 5 GiB of data.
    pub const COPY_TIMEOUT: Duration = Duration::from_secs(15 * 60);
    /// Largest answer read into memory (listings of 1000 keys, error bodies,
    /// state records).
    pub const MAX_ANSWER_BYTES: u64 = 8 * 1024 * 1024;
    /// How long a signed request stays valid: only until it is sent, which is
    /// at once, but clocks of the store and the server may differ.
    pub const SIGNATURE_TTL: Duration = Duration::from_secs(15 * 60);
    /// Sends of a request that failed before the store could act on it
    /// (connection refused or reset, a pooled connection that had closed):
    /// one retry after 200 ms, then the error.
    pub const SEND_ATTEMPTS: u32 = 2;

    /// Parts of uploads with a known size: at least this (8 MiB, as rclone and
    /// the AWS tools use), more when the file would need over [`PART_TARGET`]
    /// parts.
    pub const DEFAULT_PART_SIZE: u64 = 8 * MIB;
    /// Parts of chunked uploads (size unknown): 16 MiB, so files up to 156 GiB
    /// fit in 10,000 parts.
    pub const UNKNOWN_SIZE_PART: u64 = 16 * MIB;
    /// Largest part buffer one upload may hold: files up to 9,000 × 64 MiB
    /// (562 GiB) with a known size.
    pub const MAX_PART_BUFFER: u64 = 64 * MIB;
    /// Parts a known-size file is cut into at most, below S3's 10,000: room
    /// for a size announced a little short.
    pub const PART_TARGET: u64 = 9_000;

    /// How long an upload waits for part-buffer room before it fails.
    pub const BUFFER_WAIT: Duration = Duration::from_secs(30);

    /// Most keys a recount of a home reads (pages of 1000): a home with
    /// more is refused rather than blocking a worker for minutes.
    pub const MAX_RECOUNT_KEYS: usize = 10_000_000;

    /// The memory all part buffers of all uploads to the store may hold at
    /// once (each upload holds one part, 8 MiB for files up to 70 GiB): 32
    /// uploads of 8 MiB parts; more wait for room (see `BUFFER_WAIT`).
    pub const PART_BUFFER_BUDGET: u64 = 256 * MIB;

    /// Subdirectories of one listing whose times are read (a HEAD of each
    /// marker: S3 listings carry no time for a prefix); beyond this they
    /// show time 0, so a listing of a huge directory stays one request
    /// per 1000 names.
    pub const LIST_DIR_TIMES: usize = 200;
}

/// TLS sessions the FTP listener remembers for data connections to resume
/// (about 300 bytes each: under 3 MiB). Each FTP control connection adds
/// one; beyond this the oldest go (a data connection of a session that old
/// then gets `522`, and the client reconnects).
pub const MAX_TLS_SESSIONS: usize = 8192;

/// Logins whose TLS sessions the FTP listener can tie data connections to
/// (user and address per control connection, about 100 bytes each).
pub const MAX_TLS_OWNERS: usize = 16_384;

/// How long an FTP passive listener waits for the client's data
/// connection, and an active-mode connect for the client to answer. FTP
/// clients connect within milliseconds of the `227`/`229`; this only
/// bounds a listener nobody uses.
pub const FTP_DATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Ports of `passive_ports` tried for one PASV before it is answered
/// `425`: binding is a syscall on the loop, so a full range can't cost
/// thousands of them.
pub const MAX_PASSIVE_TRIES: usize = 64;

/// Largest file whose SHA-256 the FTP `HASH` command computes on request
/// when none is stored (about 0.6 s of one io worker per GiB). Files
/// stored by an upload, or downloaded once, have their digest already.
pub const MAX_HASH_ON_REQUEST: u64 = 1 << 30;

/// Longest HTTP request head the metrics listener reads. A scrape's head
/// is a few hundred bytes; 8 KiB is what common servers allow by default.
pub const MAX_HTTP_REQUEST_HEAD: usize = 8 * 1024;

/// Longest request line on the admin socket: `{"op":"kick","user":NAME}`
/// with the longest name and JSON escapes fits many times over.
pub const MAX_ADMIN_REQUEST: usize = 4 * 1024;

/// Largest reply `miniftp admin` accepts: a `who` line per session (a few
/// hundred bytes each) for every connection the server can hold, and more.
pub const MAX_ADMIN_REPLY: usize = 64 * 1024 * 1024;

/// Registration notifications running at once; beyond it one is skipped
/// (and logged), so a burst of requests can't start a crowd of processes.
pub const MAX_NOTIFY_RUNNING: usize = 4;

/// The operator's connections (metrics scrapes, `miniftp admin`) open at
/// once; more are closed on arrival. A scraper or two and an operator's
/// command need a handful; the cap keeps a flood on the metrics port from
/// holding descriptors the clients need.
pub const MAX_OPS_CONNS: usize = 16;

/// How long an operator's connection may take to send its request and
/// read the answer: both are one small message.
pub const OPS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
