//! `miniftp serve`: one thread runs a non-blocking mio event loop over every
//! connection; anything that can take milliseconds (password hashing, file
//! operations, moving file bodies) runs on the worker pools and reports back
//! through a `Waker`. Each connection is a state machine ([`conn::State`])
//! with small, bounded buffers, and at most one job in flight.

pub mod cmd;
mod complete;
mod conn;
pub mod front;
pub mod housekeeping;
pub mod io;
mod limiter;
pub mod malloc;
pub mod quota;
pub mod session;
pub mod transfer;
pub mod transport;
pub mod workers;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::Config;
use crate::proto::{frame, Reply, Status, PROTOCOL_VERSION};
use crate::users::UserDb;
use conn::{Conn, State};
use io::Io;
use limiter::Limiter;
use quota::Accounts;
use session::Session;
use transfer::{Download, PumpStatus, Transfer, Upload};
use transport::Transport;
use workers::{Completion, Job, Pool};

const LISTENER: Token = Token(usize::MAX - 1);
const WAKER: Token = Token(usize::MAX - 2);
const SIGNALS: Token = Token(usize::MAX - 3);

/// Refused TLS connections kept at once to tell them why (beyond this,
/// a refused connection is just closed).
const MAX_REFUSING: usize = 64;

/// How often timeouts are checked.
const TICK: Duration = Duration::from_secs(1);
/// After the shutdown grace period, how long aborted transfers get to
/// clean up before the process exits anyway.
const CLEANUP_GRACE: Duration = Duration::from_secs(5);

/// State shared by the loop and the workers.
pub struct Shared {
    pub config: Config,
    users: RwLock<Arc<UserDb>>,
    pub accounts: Accounts,
    /// A hash with the configured cost, checked for unknown users so that a
    /// wrong name costs as long as a wrong password.
    pub dummy_hash: String,
    /// TLS for every connection, unless the operator turned it off.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl Shared {
    pub fn new(config: Config, users: UserDb, tls: Option<Arc<rustls::ServerConfig>>) -> Shared {
        let dummy_hash =
            crate::users::hash_password(&format!("{:x}", rand::random::<u128>()), &config.auth);
        Shared {
            config,
            users: RwLock::new(Arc::new(users)),
            accounts: Accounts::default(),
            dummy_hash,
            tls,
        }
    }

    pub fn users(&self) -> Arc<UserDb> {
        Arc::clone(&self.users.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Installs a new users database; live accounts take their new quota.
    pub fn set_users(&self, db: Arc<UserDb>) {
        for account in self.accounts.all_live() {
            if let Some(u) = db.get(&account.name) {
                account.set_quota(u.quota);
            }
        }
        *self.users.write().unwrap_or_else(|p| p.into_inner()) = db;
    }
}

/// What a worker job hands back to the loop.
pub enum Outcome {
    Reply(Reply),
    Cd {
        cwd: crate::storage::VPath,
        reply: Reply,
    },
    Login(Result<(Box<Session>, Reply), Reply>),
    UploadBegun(Result<(Box<Upload>, Reply), Reply>),
    DownloadBegun(Result<(Box<Download>, Reply), Reply>),
    Pumped {
        io: Box<Io>,
        transfer: Transfer,
        status: PumpStatus,
        moved: u64,
    },
    /// An upload's final reply (after the digest check), and the version
    /// it replaced when that is left to remove.
    Finished {
        reply: Reply,
        log: TransferLog,
        leftover: Option<crate::storage::Leftover>,
    },
    /// A run of eager puts handled in one job: the transport back, where
    /// the connection stands, and a log entry per stored file.
    Batch {
        io: Box<Io>,
        end: transfer::eager::BatchEnd,
        logs: Vec<TransferLog>,
    },
    /// Cleanup for a connection that is gone.
    Nothing,
    /// The job panicked; its connection is closed.
    Panicked,
}

/// What the transfer log line says.
pub struct TransferLog {
    pub op: &'static str,
    pub path: String,
    pub bytes: u64,
    pub started: Instant,
}

pub struct Server {
    poll: Poll,
    listener: Option<TcpListener>,
    conns: Slab<Conn>,
    shared: Arc<Shared>,
    io_pool: Pool,
    auth_pool: Pool,
    done: Receiver<Completion>,
    limiter: Limiter,
    /// Replies held back (failed-login delay): (when, slot, connection id).
    timers: BinaryHeap<Reverse<(Instant, usize, u64)>>,
    next_id: u64,
    /// Set on SIGINT/SIGTERM: when running transfers must be done.
    shutdown: Option<Instant>,
    signals: Option<Signals>,
    /// Cleanup jobs in flight for connections already closed.
    orphans: usize,
    /// Refused TLS connections still handshaking to deliver their 421.
    refusing: usize,
    accept_paused: bool,
}

/// Runs the server on an already-bound listener until SIGINT/SIGTERM (when
/// `handle_signals`) and every connection has ended.
/// SIGINT and SIGTERM, caught for a clean shutdown. Create it before
/// announcing the port: from then on a signal must not kill the process.
pub type Signals = signal_hook_mio::v1_0::Signals;

pub fn catch_signals() -> std::io::Result<Signals> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    Signals::new([SIGINT, SIGTERM])
}

pub fn run(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    signals: Option<Signals>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let mut listener = TcpListener::from_std(listener);
    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (done_tx, done) = crossbeam_channel::unbounded();
    let workers = &shared.config.workers;
    let io_pool = Pool::new(
        "io",
        Config::threads(workers.io_threads),
        done_tx.clone(),
        Arc::clone(&waker),
    )?;
    let auth_pool = Pool::new(
        "auth",
        Config::threads(workers.auth_threads),
        done_tx,
        Arc::clone(&waker),
    )?;
    let mut signals = signals;
    if let Some(s) = signals.as_mut() {
        poll.registry().register(s, SIGNALS, Interest::READABLE)?;
    }
    let mut server = Server {
        poll,
        listener: Some(listener),
        conns: Slab::new(),
        shared,
        io_pool,
        auth_pool,
        done,
        limiter: Limiter::default(),
        timers: BinaryHeap::new(),
        next_id: 1,
        shutdown: None,
        signals,
        orphans: 0,
        refusing: 0,
        accept_paused: false,
    };
    server.run_loop()
}

impl Server {
    fn run_loop(&mut self) -> std::io::Result<()> {
        let mut events = Events::with_capacity(1024);
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            let mut timeout = next_tick.saturating_duration_since(now);
            if let Some(Reverse((at, _, _))) = self.timers.peek() {
                timeout = timeout.min(at.saturating_duration_since(now));
            }
            match self.poll.poll(&mut events, Some(timeout)) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    SIGNALS => self.on_signal(),
                    token => {
                        if let Some(conn) = self.conns.get_mut(token.0) {
                            conn.readable |=
                                event.is_readable() || event.is_read_closed() || event.is_error();
                            conn.writable |=
                                event.is_writable() || event.is_write_closed() || event.is_error();
                            self.guarded(token, |s| s.drive(token));
                        }
                    }
                }
            }
            while let Ok(c) = self.done.try_recv() {
                let token = c.token;
                self.guarded(token, |s| s.on_completion(c));
            }
            self.fire_timers();
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.check_timeouts(now);
                if self.accept_paused {
                    self.accept_paused = false;
                    self.accept();
                }
            }
            if let Some(deadline) = self.shutdown {
                if self.conns.is_empty() && self.orphans == 0 {
                    return Ok(());
                }
                if now >= deadline {
                    self.force_close_all();
                }
                if now >= deadline + CLEANUP_GRACE {
                    log::warn!("exiting with {} cleanup jobs unfinished", self.orphans);
                    return Ok(());
                }
            }
        }
    }

    /// Runs one connection's handling; a panic in it (a bug, never input
    /// we expect) ends that connection only, not the server.
    fn guarded(&mut self, token: Token, f: impl FnOnce(&mut Self)) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(self)));
        if result.is_err() {
            log::error!("internal error while handling a connection; closing it");
            if let Some(mut conn) = self.conns.try_remove(token.0) {
                self.forget(&conn);
                if let Some(io) = conn.io.as_mut() {
                    let _ = self.poll.registry().deregister(io.transport.stream_mut());
                }
            }
        }
    }

    /// Gives back what a closed connection held in the limits.
    fn forget(&mut self, conn: &Conn) {
        if conn.admitted {
            self.limiter.release(conn.peer.ip());
        } else {
            self.refusing -= 1;
        }
    }

    fn accept(&mut self) {
        loop {
            let Some(listener) = self.listener.as_ref() else {
                return;
            };
            let (stream, peer) = match listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors, most likely: stop accepting until
                    // the next tick rather than spin on a listener that
                    // stays readable.
                    log::error!("accept failed: {e}; pausing accepts for a second");
                    self.accept_paused = true;
                    return;
                }
            };
            if let Err(why) = self.limiter.admit(peer.ip(), &self.shared.config.limits) {
                log::warn!("refused connection from {peer}: {why}");
                if self.shared.tls.is_none() {
                    let mut buf = Vec::new();
                    frame::encode(
                        Reply::new(Status::Unavailable, why).to_json().as_bytes(),
                        &mut buf,
                    );
                    // Best effort on a fresh socket: its buffer is empty, so
                    // this small write can't block.
                    let _ = (&stream).write(&buf);
                } else if self.refusing < MAX_REFUSING {
                    // Over TLS the 421 needs a handshake first: the
                    // connection lives just long enough to say it.
                    let reply = Reply::new(Status::Unavailable, why);
                    if self.add_conn(stream, peer, Some(reply)).is_ok() {
                        self.refusing += 1;
                    }
                }
                continue;
            }
            if let Err(e) = self.add_conn(stream, peer, None) {
                log::warn!("cannot set up connection from {peer}: {e}");
                self.limiter.release(peer.ip());
            }
        }
    }

    /// Sets up a connection and queues its greeting, or with `refusal`, that
    /// reply and a close (a refused TLS connection: see `accept`).
    fn add_conn(
        &mut self,
        mut stream: mio::net::TcpStream,
        peer: SocketAddr,
        refusal: Option<Reply>,
    ) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        self.poll.registry().register(
            &mut stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let id = self.next_id;
        self.next_id += 1;
        let transport = match &self.shared.tls {
            None => Transport::Plain(stream),
            Some(config) => match rustls::ServerConnection::new(Arc::clone(config)) {
                Ok(tls) => Transport::tls(stream, tls),
                Err(e) => {
                    let _ = self.poll.registry().deregister(&mut stream);
                    return Err(std::io::Error::other(e));
                }
            },
        };
        let mut io = Box::new(Io::new(transport));
        let mut greeting = Reply::new(
            Status::Greeting,
            format!("miniftp {} ready", env!("CARGO_PKG_VERSION")),
        );
        greeting.protocol = Some(PROTOCOL_VERSION);
        greeting.server = Some(format!("miniftp/{}", env!("CARGO_PKG_VERSION")));
        let mut conn = match refusal {
            None => {
                io.send(&greeting);
                Conn::new(id, peer, io)
            }
            Some(reply) => {
                io.send(&reply);
                let mut conn = Conn::new(id, peer, io);
                conn.admitted = false;
                conn.closing = true;
                conn
            }
        };
        conn.writable = true;
        entry.insert(conn);
        log::debug!("connection from {peer}");
        self.drive(token);
        Ok(())
    }

    fn on_signal(&mut self) {
        let mut got = false;
        if let Some(s) = self.signals.as_mut() {
            for _ in s.pending() {
                got = true;
            }
        }
        if got && self.shutdown.is_none() {
            self.begin_shutdown();
        }
    }

    /// Stops accepting; idle sessions are told and closed, transfers get
    /// `shutdown_grace_secs` to finish.
    pub fn begin_shutdown(&mut self) {
        let grace = Duration::from_secs(self.shared.config.limits.shutdown_grace_secs);
        log::info!(
            "shutting down: {} connections, transfers get {}s to finish",
            self.conns.len(),
            grace.as_secs()
        );
        if let Some(mut l) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut l);
        }
        self.shutdown = Some(Instant::now() + grace);
        let tokens: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in tokens {
            self.drive(Token(k));
        }
    }

    fn force_close_all(&mut self) {
        let tokens: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for k in tokens {
            let conn = &mut self.conns[k];
            if conn.io.is_some() {
                self.close(Token(k), "shutdown: transfer aborted");
            } else {
                conn.closing = true;
            }
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, key, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(key).filter(|c| c.id == id) else {
                continue;
            };
            if let (Some(reply), Some(io)) = (conn.held.take(), conn.io.as_mut()) {
                io.send(&reply);
                conn.state = State::Ready;
                self.drive(Token(key));
            }
        }
    }

    fn check_timeouts(&mut self, now: Instant) {
        let limits = &self.shared.config.limits;
        let login = Duration::from_secs(limits.login_timeout_secs);
        let idle = Duration::from_secs(limits.idle_timeout_secs);
        let expired: Vec<(usize, &'static str)> = self
            .conns
            .iter()
            .filter_map(|(k, c)| {
                if c.linger_until.is_some_and(|t| now >= t) {
                    Some((k, "closed"))
                } else if c.linger_until.is_some() {
                    None
                } else if c.session.is_none() && now.duration_since(c.opened) > login {
                    Some((k, "login timed out"))
                } else if now.duration_since(c.last_active) > idle
                    // A request still running on a worker is not idleness.
                    && !matches!(c.state, State::Busy | State::Pumping)
                {
                    Some((k, "idle timeout"))
                } else {
                    None
                }
            })
            .collect();
        for (k, why) in expired {
            self.expire(Token(k), why);
        }
    }

    /// Ends a connection for a timeout: a 421 when a reply can go out
    /// cleanly, else just close.
    fn expire(&mut self, token: Token, why: &'static str) {
        let conn = &mut self.conns[token.0];
        if conn.linger_until.is_some() {
            let why = conn.why;
            return self.close(token, why);
        }
        log::info!("closing {} ({})", conn.peer, why);
        match (&conn.state, conn.io.as_mut()) {
            (_, None) => conn.closing = true,
            (State::Ready | State::Busy | State::Trailer(_) | State::Upload(_), Some(io))
                if !conn.closing =>
            {
                io.send(&Reply::new(Status::Unavailable, format!("{why}, closing")));
                conn.closing = true;
                conn.why = why;
                conn.writable = true;
                // A client that never reads can't hold us: close if the
                // 421 doesn't go out at once, else linger briefly.
                if matches!(io.flush(), Ok(true)) {
                    self.drive(token);
                } else {
                    self.close(token, why);
                }
            }
            _ => self.close(token, why),
        }
    }

    fn submit(&mut self, auth: bool, token: Token, job: Job) {
        let conn = &self.conns[token.0];
        let pool = if auth { &self.auth_pool } else { &self.io_pool };
        pool.submit(token, conn.id, job);
    }

    /// A cleanup job for a connection that is already gone.
    fn submit_orphan(&mut self, job: impl FnOnce() + Send + 'static) {
        self.orphans += 1;
        self.io_pool.submit(
            Token(usize::MAX),
            0,
            Box::new(move || {
                job();
                Outcome::Nothing
            }),
        );
    }
}
