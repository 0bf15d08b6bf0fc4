//! `miniftp serve`: one thread runs a non-blocking mio event loop over every
//! connection; anything that can take milliseconds (password hashing, file
//! operations, moving file bodies) runs on the worker pools and reports back
//! through a `Waker`. Each connection is a state machine ([`conn::Conn`])
//! with one transition function: the loop turns readiness, finished jobs,
//! timers and ticks into events for it, applies the actions it asks for,
//! and is the one place a connection is removed. See docs/DESIGN.md.

pub mod admin;
pub mod audit;
pub mod cmd;
mod conn;
mod fair;
pub mod front;
pub mod housekeeping;
pub mod http;
pub mod io;
mod limiter;
pub mod malloc;
pub mod metrics;
pub mod notify;
mod ops;
pub mod quota;
pub mod session;
mod shared;
pub mod throttle;
pub mod transfer;
pub mod transport;
pub mod workers;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{ErrorKind, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};
use slab::Slab;

use crate::config::Config;
use crate::limits::{CLEANUP_GRACE, MAX_REFUSING, TICK};
use crate::proto::{Reply, Status};
use conn::{Action, Conn, Env, Event, PoolKind};
use front::Front;
use io::Io;
use limiter::Limiter;
pub use ops::OpsListeners;
use session::Session;
pub use shared::Shared;
use transfer::pump::Pumped;
use transfer::{Download, Upload};
use transport::Transport;
use workers::{Completion, Job, Lane, Pool};

const WAKER: Token = Token(usize::MAX - 1);
const SIGNALS: Token = Token(usize::MAX - 2);
/// Listener `i` has token `LISTENERS - i`.
const LISTENERS: usize = usize::MAX - 3;
/// Cleanup jobs for connections already gone report to this token.
const ORPHAN: Token = Token(usize::MAX);
/// Sockets one connection may register: its own (channel 0) and up to
/// three more a front-end needs (FTP: a passive listener, a data
/// connection). A socket's token is `slot * CHANNELS + channel`; jobs and
/// timers are addressed by the slot alone.
pub const CHANNELS: usize = 4;

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
    /// A transfer job handed the socket back.
    Pumped(Box<Pumped>),
    /// Run this job again after the others queued (the pool does it; the
    /// loop never sees it).
    Again(Job),
    /// Cleanup for a connection that is gone.
    Nothing,
    /// The job panicked; its connection is closed.
    Panicked,
}

/// What the transfer log line says.
pub struct TransferLog {
    pub op: metrics::TransferOp,
    pub path: String,
    pub bytes: u64,
    pub started: Instant,
}

/// SIGINT and SIGTERM, caught for a clean shutdown, and SIGHUP, which
/// reopens the log file. Create it before announcing the port: from then on
/// a signal must not kill the process.
pub type Signals = signal_hook_mio::v1_0::Signals;

pub fn catch_signals() -> std::io::Result<Signals> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    Signals::new([SIGINT, SIGTERM, SIGHUP])
}

/// A bound listening socket and the front-end its clients speak.
pub struct Listener {
    pub socket: std::net::TcpListener,
    pub front: Front,
}

struct Bound {
    socket: TcpListener,
    front: Front,
}

pub struct Server {
    poll: Poll,
    listeners: Vec<Option<Bound>>,
    conns: Slab<Conn>,
    shared: Arc<Shared>,
    io_pool: Pool,
    auth_pool: Pool,
    done: Receiver<Completion>,
    limiter: Limiter,
    /// Bandwidth limits (users' and global), kept on the loop.
    throttle: throttle::Throttle,
    /// The users database whose rates the throttle has.
    rates_seen: u64,
    /// Metrics scrapes and `miniftp admin` requests.
    ops: ops::Ops,
    /// Timers armed by connections: (when, slot, connection id).
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

/// Runs the server on already-bound listeners (and the operator's, `ops`)
/// until SIGINT/SIGTERM (when `signals` is given) and every connection has
/// ended.
pub fn run(
    listeners: Vec<Listener>,
    ops: OpsListeners,
    shared: Arc<Shared>,
    signals: Option<Signals>,
) -> std::io::Result<()> {
    let poll = Poll::new()?;
    let mut bound = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        l.socket.set_nonblocking(true)?;
        let mut socket = TcpListener::from_std(l.socket);
        poll.registry()
            .register(&mut socket, Token(LISTENERS - i), Interest::READABLE)?;
        metrics::global().listening(l.front);
        bound.push(Some(Bound {
            socket,
            front: l.front,
        }));
    }
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (done_tx, done) = crossbeam_channel::unbounded();
    let workers = &shared.config.workers;
    let io_threads = Config::threads(workers.io_threads);
    let io_pool = Pool::new("io", io_threads, done_tx.clone(), Arc::clone(&waker))?;
    let auth_threads = Config::threads(workers.auth_threads);
    let auth_pool = Pool::new("auth", auth_threads, done_tx, Arc::clone(&waker))?;
    let mut signals = signals;
    if let Some(s) = signals.as_mut() {
        poll.registry().register(s, SIGNALS, Interest::READABLE)?;
    }
    let ops = ops::Ops::new(ops, poll.registry())?;
    let limits = &shared.config.limits;
    let rates = throttle::Rates {
        up: limits.rate_up,
        down: limits.rate_down,
    };
    let rates_seen = shared.users_generation();
    let mut server = Server {
        poll,
        listeners: bound,
        conns: Slab::new(),
        shared,
        io_pool,
        auth_pool,
        done,
        limiter: Limiter::default(),
        throttle: throttle::Throttle::new(rates, Instant::now()),
        rates_seen,
        ops,
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
                self.on_readiness(event);
            }
            while let Ok(c) = self.done.try_recv() {
                self.on_completion(c);
            }
            self.fire_timers();
            let now = Instant::now();
            if now >= next_tick {
                next_tick = now + TICK;
                self.broadcast(|_| Event::Tick);
                self.ops_tick(now);
                self.refresh_rates(now);
                if self.accept_paused {
                    self.accept_paused = false;
                    self.accept_all();
                }
            }
            if self.shutdown_done(now) {
                return Ok(());
            }
        }
    }

    fn on_readiness(&mut self, event: &mio::event::Event) {
        match event.token() {
            WAKER => {}
            SIGNALS => self.on_signal(),
            Token(t) if t > LISTENERS - self.listeners.len() && t <= LISTENERS => {
                self.accept(LISTENERS - t)
            }
            token if ops::owns(token) => self.ops_ready(token),
            Token(t) => {
                let ev = Event::Ready {
                    channel: t % CHANNELS,
                    readable: event.is_readable() || event.is_read_closed() || event.is_error(),
                    writable: event.is_writable() || event.is_write_closed() || event.is_error(),
                };
                self.dispatch(Token(t / CHANNELS), ev);
            }
        }
    }

    fn on_completion(&mut self, c: Completion) {
        if c.token == ORPHAN {
            self.orphans -= 1;
            return;
        }
        let alive = self
            .conns
            .get(c.token.0)
            .is_some_and(|conn| conn.id == c.conn_id);
        let limits = &self.shared.config.limits;
        self.limiter
            .job_done(c.conn_id, alive, &c.outcome, Instant::now(), limits);
        if alive {
            self.dispatch(c.token, Event::Done(c.outcome));
        } else {
            self.dispose(c.outcome);
        }
        self.wake_logins();
    }

    /// Sends [`Event::Turn`] to the waiting logins that the limiter says
    /// may try for their password check again.
    fn wake_logins(&mut self) {
        while let Some((slot, id)) = self
            .limiter
            .next_turn(Instant::now(), &self.shared.config.limits)
        {
            if self.conns.get(slot).is_some_and(|c| c.id == id) {
                self.dispatch(Token(slot), Event::Turn);
            }
        }
    }

    /// Hands an event to a connection and applies what it asks for. A
    /// panic while it handles the event (a bug, never input we expect)
    /// ends that connection only, not the server.
    fn dispatch(&mut self, token: Token, ev: Event) {
        let Some(conn) = self.conns.get_mut(token.0) else {
            return;
        };
        let mut env = Env {
            shared: &self.shared,
            limiter: &mut self.limiter,
            throttle: &mut self.throttle,
            registry: self.poll.registry(),
            slot: token.0,
            now: Instant::now(),
            shutting_down: self.shutdown.is_some(),
        };
        let actions =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| conn.on_event(ev, &mut env)))
                .unwrap_or_else(|_| {
                    log::error!("internal error while handling a connection; closing it");
                    vec![Action::Close("internal error")]
                });
        self.apply(token, actions);
    }

    fn apply(&mut self, token: Token, actions: Vec<Action>) {
        let id = self.conns[token.0].id;
        for action in actions {
            match action {
                Action::Submit(kind, job) => {
                    let lane = self.conns[token.0].lane(kind);
                    let pool = match kind {
                        PoolKind::Auth => &self.auth_pool,
                        PoolKind::Io => &self.io_pool,
                    };
                    pool.submit(lane, token, id, job);
                }
                Action::Cleanup(job) => self.cleanup(job),
                Action::Arm(at) => self.timers.push(Reverse((at, token.0, id))),
                Action::Close(why) => return self.remove(token, why),
            }
        }
    }

    /// The one place a connection ends: it leaves the table and the
    /// limits, its socket is deregistered, and what it held is cleaned up.
    fn remove(&mut self, token: Token, why: &'static str) {
        let mut conn = self.conns.remove(token.0);
        if conn.admitted {
            for _ in 0..=conn.extra_slots() {
                self.limiter.release(conn.peer.ip());
            }
            metrics::global().session_closed(conn.front);
        } else {
            self.refusing -= 1;
        }
        if let Some(user) = conn.user_name() {
            self.throttle.leave(user);
        }
        self.limiter.forget_login(conn.peer.ip(), conn.id);
        if let Some(io) = conn.io_mut() {
            let _ = self.poll.registry().deregister(io.transport.stream_mut());
        }
        if let Some(job) = conn.finish(why, self.poll.registry()) {
            self.cleanup(job);
        }
    }

    /// Runs cleanup for a connection that is (or is about to be) gone.
    fn cleanup(&mut self, job: Box<dyn FnOnce() + Send>) {
        self.orphans += 1;
        self.io_pool.submit(
            Lane::Cleanup,
            ORPHAN,
            0,
            Box::new(move || {
                job();
                Outcome::Nothing
            }),
        );
    }

    /// Cleans up what a job returned for a connection that no longer
    /// exists: an upload it began or held is kept for resuming.
    fn dispose(&mut self, outcome: Outcome) {
        let up = match outcome {
            Outcome::UploadBegun(Ok((up, _))) => up,
            Outcome::Pumped(p) => match p.after {
                transfer::pump::After::Upload(up) => up,
                _ => return,
            },
            _ => return,
        };
        let mut up = up;
        self.cleanup(Box::new(move || up.keep()));
    }

    fn broadcast(&mut self, ev: impl Fn(&Conn) -> Event) {
        let tokens: Vec<(usize, Event)> = self.conns.iter().map(|(k, c)| (k, ev(c))).collect();
        for (k, ev) in tokens {
            self.dispatch(Token(k), ev);
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, key, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            if self.conns.get(key).is_some_and(|c| c.id == id) {
                self.dispatch(Token(key), Event::Timer);
            }
        }
    }

    fn accept_all(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept(i);
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let Some(bound) = self.listeners.get(index).and_then(Option::as_ref) else {
                return;
            };
            let front = bound.front;
            let (stream, peer) = match bound.socket.accept() {
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
            self.admit(stream, peer, front);
        }
    }

    /// Admits a new connection, or turns it away with a reason.
    fn admit(&mut self, stream: mio::net::TcpStream, peer: SocketAddr, front: Front) {
        if let Err(why) = self.limiter.admit(peer.ip(), &self.shared.config.limits) {
            log::warn!("refused connection from {peer}: {why}");
            let reply = Reply::new(Status::Unavailable, why);
            if front.tls_at_start(&self.shared).is_none() {
                let mut buf = Vec::new();
                metrics::global().reply(reply.code);
                front.codec().encode(&reply, &mut buf);
                // Best effort on a fresh socket: its buffer is empty, so
                // this small write can't block.
                let _ = (&stream).write(&buf);
            } else if self.refusing < MAX_REFUSING {
                // Over TLS the 421 needs a handshake first: the
                // connection lives just long enough to say it.
                if self.add_conn(stream, peer, front, Some(reply)).is_ok() {
                    self.refusing += 1;
                }
            }
            return;
        }
        if let Err(e) = self.add_conn(stream, peer, front, None) {
            log::warn!("cannot set up connection from {peer}: {e}");
            self.limiter.release(peer.ip());
        }
    }

    /// Sets up a connection and queues its greeting, or with `refusal`, that
    /// reply and a close (a refused TLS connection: see `admit`).
    fn add_conn(
        &mut self,
        mut stream: mio::net::TcpStream,
        peer: SocketAddr,
        front: Front,
        refusal: Option<Reply>,
    ) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let entry = self.conns.vacant_entry();
        let token = Token(entry.key());
        self.poll.registry().register(
            &mut stream,
            Token(entry.key() * CHANNELS),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let transport = match front.tls_at_start(&self.shared) {
            None => Transport::Plain(stream),
            Some(config) => match rustls::ServerConnection::new(config) {
                Ok(tls) => Transport::tls(stream, tls),
                Err(e) => {
                    let _ = self.poll.registry().deregister(&mut stream);
                    return Err(std::io::Error::other(e));
                }
            },
        };
        let io = Box::new(Io::new(transport, front.codec()));
        let id = self.next_id;
        self.next_id += 1;
        if refusal.is_none() {
            metrics::global().session_opened(front);
        }
        let registration = self.shared.config.registration.policy.name();
        entry.insert(Conn::open(
            id,
            peer,
            front,
            io,
            registration,
            refusal,
            &self.shared,
        ));
        log::debug!("{} connection from {peer}", front.name());
        self.dispatch(
            token,
            Event::Ready {
                channel: 0,
                readable: false,
                writable: true,
            },
        );
        Ok(())
    }

    /// New rates from a reloaded users file reach the users with sessions.
    fn refresh_rates(&mut self, now: Instant) {
        let generation = self.shared.users_generation();
        if generation == self.rates_seen {
            return;
        }
        self.rates_seen = generation;
        let db = self.shared.users();
        for user in db.users.iter() {
            let rates = throttle::Rates {
                up: user.rate_up,
                down: user.rate_down,
            };
            self.throttle.set_user_rates(&user.name, rates, now);
        }
    }

    fn on_signal(&mut self) {
        let mut got = false;
        if let Some(s) = self.signals.as_mut() {
            for signal in s.pending() {
                match signal {
                    signal_hook::consts::SIGHUP => crate::logging::reopen(),
                    _ => got = true,
                }
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
        for bound in self.listeners.iter_mut() {
            if let Some(mut b) = bound.take() {
                let _ = self.poll.registry().deregister(&mut b.socket);
            }
        }
        self.shutdown = Some(Instant::now() + grace);
        self.broadcast(|_| Event::Shutdown);
    }

    /// During a shutdown: ends what still runs after the grace period;
    /// true once everything has ended (or cleanup ran out of time).
    fn shutdown_done(&mut self, now: Instant) -> bool {
        let Some(deadline) = self.shutdown else {
            return false;
        };
        if self.conns.is_empty() && self.orphans == 0 {
            return true;
        }
        if now >= deadline {
            self.broadcast(|_| Event::ForceClose);
        }
        if now >= deadline + CLEANUP_GRACE {
            log::warn!("exiting with {} cleanup jobs unfinished", self.orphans);
            return true;
        }
        false
    }
}
