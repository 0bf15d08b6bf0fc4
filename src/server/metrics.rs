//! The server's metrics, in the Prometheus text exposition format that
//! `GET /metrics` serves (see [`super::http`]). Every metric is an atomic
//! held by the `prometheus-client` registry, so the loop and the workers
//! count without locks and a scrape reads them all at once. Labels take
//! only values from fixed sets (listener names, results, reply codes from
//! the status table): the number of series is bounded whatever peers send.
//!
//! There is one set per process ([`global`]), as with Prometheus' own
//! default registry: counting is a call from wherever the event happens
//! (the loop, a command job, a pump), with nothing threaded through.
//! Sessions are counted by [`Front`], so every front-end is counted alike.
//!
//! Names start with `miniftp_`; docs/OPERATIONS.md lists them with what to
//! watch.

use std::sync::LazyLock;

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use super::front::Front;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds of the latency histogram (seconds): 100 µs (a cached
/// `stat`) to 5 s (a login on a saturated auth pool).
const LATENCY_BUCKETS: [f64; 10] = [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0];

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process's metrics.
pub fn global() -> &'static Metrics {
    &METRICS
}

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginResult {
    Ok,
    /// Wrong user or password.
    Failed,
    /// Refused because the address is locked out.
    LockedOut,
    /// The server could not open the user's home.
    Error,
}

impl LoginResult {
    pub fn as_str(self) -> &'static str {
        match self {
            LoginResult::Ok => "ok",
            LoginResult::Failed => "failed",
            LoginResult::LockedOut => "locked_out",
            LoginResult::Error => "error",
        }
    }
}

/// A transfer's operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferOp {
    Put,
    Get,
}

impl TransferOp {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferOp::Put => "put",
            TransferOp::Get => "get",
        }
    }
}

/// How a transfer ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferResult {
    Ok,
    /// The client went away or gave up; an upload is kept for resuming.
    Aborted,
    /// The SHA-256 did not match.
    Integrity,
    /// Refused by the quota.
    Quota,
    /// Refused for another reason (the jail, a busy file, a bad offset).
    Refused,
    /// A server-side failure (I/O error, disk full).
    Error,
}

impl TransferResult {
    pub fn as_str(self) -> &'static str {
        match self {
            TransferResult::Ok => "ok",
            TransferResult::Aborted => "aborted",
            TransferResult::Integrity => "integrity",
            TransferResult::Quota => "quota",
            TransferResult::Refused => "refused",
            TransferResult::Error => "error",
        }
    }
}

/// Which worker pool a queue belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pool {
    Io,
    Auth,
}

type Label = [(&'static str, &'static str); 1];
type Labels2 = [(&'static str, &'static str); 2];

/// Every metric the server keeps; one per process, shared by the loop and
/// the workers.
pub struct Metrics {
    registry: Registry,
    sessions: Family<Label, Gauge>,
    logins: Family<Label, Counter>,
    lockouts: Counter,
    received_bytes: Counter,
    sent_bytes: Counter,
    transfers: Family<Labels2, Counter>,
    replies: Family<[(&'static str, u16); 1], Counter>,
    queue_depth: Family<Label, Gauge>,
    request_seconds: Histogram,
    pending_registrations: Gauge,
    disk_full: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("miniftp");
        let m = Metrics {
            sessions: Family::default(),
            logins: Family::default(),
            lockouts: Counter::default(),
            received_bytes: Counter::default(),
            sent_bytes: Counter::default(),
            transfers: Family::default(),
            replies: Family::default(),
            queue_depth: Family::default(),
            request_seconds: Histogram::new(LATENCY_BUCKETS),
            pending_registrations: Gauge::default(),
            disk_full: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "sessions",
            "Open connections, by listener",
            m.sessions.clone(),
        );
        r.register("logins", "Login attempts, by result", m.logins.clone());
        r.register(
            "lockouts",
            "Addresses locked out after failed logins",
            m.lockouts.clone(),
        );
        r.register(
            "received_bytes",
            "File bytes received (uploads)",
            m.received_bytes.clone(),
        );
        r.register(
            "sent_bytes",
            "File bytes sent (downloads)",
            m.sent_bytes.clone(),
        );
        r.register(
            "transfers",
            "Finished transfers, by op and result",
            m.transfers.clone(),
        );
        r.register("replies", "Replies sent, by status code", m.replies.clone());
        r.register(
            "worker_queue_depth",
            "Jobs waiting for a worker, by pool",
            m.queue_depth.clone(),
        );
        r.register(
            "request_duration_seconds",
            "Time from a request to its reply",
            m.request_seconds.clone(),
        );
        r.register(
            "pending_registrations",
            "Registration requests awaiting approval",
            m.pending_registrations.clone(),
        );
        r.register(
            "disk_full",
            "Writes that failed because the disk was full",
            m.disk_full.clone(),
        );
        Metrics { registry, ..m }
    }

    /// A listener of `front` is open: its sessions show (as 0) from the
    /// first scrape on.
    pub fn listening(&self, front: Front) {
        let _ = self.sessions.get_or_create(&[("listener", front.name())]);
    }

    pub fn session_opened(&self, front: Front) {
        self.sessions
            .get_or_create(&[("listener", front.name())])
            .inc();
    }

    pub fn session_closed(&self, front: Front) {
        self.sessions
            .get_or_create(&[("listener", front.name())])
            .dec();
    }

    pub fn login(&self, result: LoginResult) {
        self.logins
            .get_or_create(&[("result", result.as_str())])
            .inc();
    }

    pub fn lockout(&self) {
        self.lockouts.inc();
    }

    pub fn received(&self, bytes: u64) {
        self.received_bytes.inc_by(bytes);
    }

    pub fn sent(&self, bytes: u64) {
        self.sent_bytes.inc_by(bytes);
    }

    pub fn transfer(&self, op: TransferOp, result: TransferResult) {
        self.transfers
            .get_or_create(&[("op", op.as_str()), ("result", result.as_str())])
            .inc();
    }

    /// A reply with `code` (a code from the status table) was sent.
    pub fn reply(&self, code: u16) {
        self.replies.get_or_create(&[("status", code)]).inc();
    }

    /// A request was answered `seconds` after it arrived.
    pub fn request_took(&self, seconds: f64) {
        self.request_seconds.observe(seconds);
    }

    pub fn set_queue_depth(&self, pool: Pool, depth: usize) {
        let pool = match pool {
            Pool::Io => "io",
            Pool::Auth => "auth",
        };
        let depth = i64::try_from(depth).unwrap_or(i64::MAX);
        self.queue_depth.get_or_create(&[("pool", pool)]).set(depth);
    }

    pub fn set_pending_registrations(&self, n: usize) {
        self.pending_registrations
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    }

    pub fn disk_full(&self) {
        self.disk_full.inc();
    }

    /// Every metric in the Prometheus text format, for one scrape.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        prometheus_text::encode(&mut out, &self.registry)
            .expect("writing into a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line starting with `series ` in `text`.
    fn sample(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    #[test]
    fn every_metric_is_exposed_with_its_prefix() {
        let m = Metrics::new();
        m.session_opened(Front::Native);
        m.session_opened(Front::Native);
        m.session_opened(Front::Native);
        m.session_closed(Front::Native);
        m.login(LoginResult::Ok);
        m.login(LoginResult::Failed);
        m.login(LoginResult::Failed);
        m.lockout();
        m.received(1000);
        m.sent(2500);
        m.transfer(TransferOp::Put, TransferResult::Ok);
        m.transfer(TransferOp::Get, TransferResult::Aborted);
        m.reply(226);
        m.reply(226);
        m.reply(552);
        m.request_took(0.002);
        m.set_queue_depth(Pool::Io, 3);
        m.set_pending_registrations(2);
        m.disk_full();
        let text = m.render();
        let expect = [
            ("miniftp_sessions{listener=\"miniftp\"}", 2.0),
            ("miniftp_logins_total{result=\"ok\"}", 1.0),
            ("miniftp_logins_total{result=\"failed\"}", 2.0),
            ("miniftp_lockouts_total", 1.0),
            ("miniftp_received_bytes_total", 1000.0),
            ("miniftp_sent_bytes_total", 2500.0),
            ("miniftp_transfers_total{op=\"put\",result=\"ok\"}", 1.0),
            (
                "miniftp_transfers_total{op=\"get\",result=\"aborted\"}",
                1.0,
            ),
            ("miniftp_replies_total{status=\"226\"}", 2.0),
            ("miniftp_replies_total{status=\"552\"}", 1.0),
            ("miniftp_worker_queue_depth{pool=\"io\"}", 3.0),
            ("miniftp_pending_registrations", 2.0),
            ("miniftp_disk_full_total", 1.0),
            ("miniftp_request_duration_seconds_count", 1.0),
            ("miniftp_request_duration_seconds_bucket{le=\"0.001\"}", 0.0),
            ("miniftp_request_duration_seconds_bucket{le=\"0.005\"}", 1.0),
        ];
        for (series, value) in expect {
            assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
        }
        assert!(
            text.contains("# TYPE miniftp_logins_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# HELP miniftp_sessions Open connections"),
            "{text}"
        );
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("miniftp_"), "{line}");
        }
    }
}
