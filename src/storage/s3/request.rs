//! How one S3 call is made: the request (method, key, query, headers), its
//! signature, its deadlines, one resend of a request that never reached the
//! store, and the translation of what comes back into [`S3Error`]s.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use rusty_s3::Method;
use ureq::http;
use ureq::RequestExt as _;

use super::client::{Client, ConfigError, ObjectInfo};
use super::error::{S3Error, S3Result};
use super::xml;
use crate::limits::s3::{
    CONTROL_TIMEOUT, COPY_TIMEOUT, MAX_ANSWER_BYTES, MIN_RATE, SEND_ATTEMPTS, SIGNATURE_TTL,
};

/// How long a call may take in all (connect and stall deadlines always
/// apply besides).
#[derive(Clone, Copy, Debug)]
pub(super) enum Budget {
    /// No bulk data: [`CONTROL_TIMEOUT`].
    Control,
    /// Sends this many bytes: [`CONTROL_TIMEOUT`] + 1 s per [`MIN_RATE`].
    Upload(u64),
    /// A server-side copy: [`COPY_TIMEOUT`].
    Copy,
    /// A body read at the caller's pace: the answer must come within
    /// [`CONTROL_TIMEOUT`], then each read within [`STALL_TIMEOUT`].
    Stream,
}

/// One request, before signing.
pub(super) struct Req<'a> {
    method: Method,
    /// None: the bucket itself.
    key: Option<&'a str>,
    query: Vec<(&'static str, String)>,
    /// Lowercase names; all are signed.
    headers: Vec<(String, String)>,
    budget: Budget,
    /// Whether sending it twice does no harm (then a connection error is
    /// retried even if the request may have reached the store).
    idempotent: bool,
    /// For messages: `PUT homes/u/f`.
    pub(super) op: String,
}

impl<'a> Req<'a> {
    pub(super) fn new(method: Method, key: Option<&'a str>, what: &str) -> Req<'a> {
        let verb = match method {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Delete => "DELETE",
        };
        Req {
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            budget: Budget::Control,
            idempotent: !matches!(method, Method::Post),
            op: format!("{verb} {what}{}", key.unwrap_or("")),
        }
    }

    pub(super) fn query(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.query.push((name, value.into()));
        self
    }

    pub(super) fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub(super) fn meta(mut self, meta: &[(&str, &str)]) -> Self {
        for (k, v) in meta {
            self = self.header(&format!("x-amz-meta-{k}"), *v);
        }
        self
    }

    pub(super) fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }
}

impl Client {
    /// Signs, sends, and turns a non-2xx answer into an [`S3Error`].
    pub(super) fn send(&self, req: &Req<'_>, body: &[u8]) -> S3Result<http::Response<ureq::Body>> {
        let mut attempt = 1;
        loop {
            let request = self.build(req, body)?;
            let mut run = request.with_agent(&self.agent).configure();
            run = match req.budget {
                Budget::Control => run.timeout_global(Some(CONTROL_TIMEOUT)),
                Budget::Upload(n) => run.timeout_global(Some(upload_deadline(n))),
                Budget::Copy => run.timeout_global(Some(COPY_TIMEOUT)),
                Budget::Stream => run.timeout_recv_response(Some(CONTROL_TIMEOUT)),
            };
            match run.build().run() {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => return Err(error_answer(resp, &req.op)),
                Err(e) if attempt < SEND_ATTEMPTS && worth_resending(&e, req.idempotent) => {
                    log::debug!("{}: {e}; sending again", req.op);
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(transport_error(&req.op, e)),
            }
        }
    }

    fn build<'b>(&self, req: &Req<'_>, body: &'b [u8]) -> S3Result<http::Request<&'b [u8]>> {
        let url = match req.key {
            Some(k) => self.bucket.object_url(k),
            None => self.bucket.base_url().clone(),
        };
        let mut query: Vec<(&str, &str)> =
            req.query.iter().map(|(k, v)| (*k, v.as_str())).collect();
        query.sort_unstable();
        let mut headers: Vec<(&str, &str)> = req
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        headers.sort_unstable();
        let signed = rusty_s3::signing::sign(
            &jiff02::Timestamp::now(),
            req.method,
            url,
            self.credentials.key(),
            self.credentials.secret(),
            None,
            self.bucket.region(),
            SIGNATURE_TTL.as_secs(),
            query.into_iter(),
            headers.iter().copied(),
        );
        let mut b = http::Request::builder()
            .method(match req.method {
                Method::Get => http::Method::GET,
                Method::Head => http::Method::HEAD,
                Method::Put => http::Method::PUT,
                Method::Post => http::Method::POST,
                Method::Delete => http::Method::DELETE,
            })
            .uri(signed.as_str());
        for (k, v) in headers {
            b = b.header(k, v);
        }
        b.body(body).map_err(|e| protocol(&req.op, e))
    }
}

/// Deadline of a call that sends `bytes`.
fn upload_deadline(bytes: u64) -> Duration {
    CONTROL_TIMEOUT + Duration::from_secs(bytes / MIN_RATE)
}

/// A connection that failed before the request went out is always worth a
/// second try; one that broke later only if the request is idempotent (a
/// pooled connection the store had closed looks like this too).
fn worth_resending(e: &ureq::Error, idempotent: bool) -> bool {
    match e {
        ureq::Error::ConnectionFailed => true,
        ureq::Error::Io(io) => {
            idempotent
                && matches!(
                    io.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::BrokenPipe
                        | io::ErrorKind::UnexpectedEof
                )
        }
        _ => false,
    }
}

fn transport_error(op: &str, e: ureq::Error) -> S3Error {
    match e {
        ureq::Error::Timeout(t) => S3Error::Unavailable {
            op: op.to_string(),
            detail: format!("no answer in time ({t})"),
        },
        ureq::Error::Io(_)
        | ureq::Error::ConnectionFailed
        | ureq::Error::HostNotFound
        | ureq::Error::Protocol(_) => S3Error::Unavailable {
            op: op.to_string(),
            detail: e.to_string(),
        },
        other => S3Error::Protocol {
            op: op.to_string(),
            detail: other.to_string(),
        },
    }
}

pub(super) fn protocol(op: &str, detail: impl std::fmt::Display) -> S3Error {
    S3Error::Protocol {
        op: op.to_string(),
        detail: detail.to_string(),
    }
}

/// A non-2xx answer: its status and the Code/Message of its XML body (HEAD
/// has none: 404 is then NoSuchKey).
fn error_answer(resp: http::Response<ureq::Body>, op: &str) -> S3Error {
    let status = resp.status().as_u16();
    let text = answer_text(resp, op).unwrap_or_default();
    let code = xml::first(&text, "Code").unwrap_or_else(|| match status {
        404 => "NoSuchKey".into(),
        _ => String::new(),
    });
    let message = xml::first(&text, "Message").unwrap_or_default();
    S3Error::from_answer(op.to_string(), status, code, message)
}

/// A 200 whose body is an `<Error>` (CopyObject, CompleteMultipartUpload).
pub(super) fn ok_or_error(op: &str, text: &str) -> S3Result<()> {
    if !text.contains("<Error>") {
        return Ok(());
    }
    let code = xml::first(text, "Code").unwrap_or_default();
    let message = xml::first(text, "Message").unwrap_or_default();
    let status = match code.as_str() {
        "InternalError" | "ServiceUnavailable" | "SlowDown" => 503,
        _ => 400,
    };
    Err(S3Error::from_answer(op.to_string(), status, code, message))
}

pub(super) fn read_answer(mut resp: http::Response<ureq::Body>, op: &str) -> S3Result<Vec<u8>> {
    resp.body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_vec()
        .map_err(|e| transport_error(op, e))
}

pub(super) fn answer_text(resp: http::Response<ureq::Body>, op: &str) -> S3Result<String> {
    let bytes = read_answer(resp, op)?;
    String::from_utf8(bytes).map_err(|_| protocol(op, "an answer that is not UTF-8"))
}

pub(super) fn header_str(h: &http::HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(str::to_string)
}

pub(super) fn header_u64(h: &http::HeaderMap, name: &str) -> Option<u64> {
    header_str(h, name)?.parse().ok()
}

pub(super) fn object_info(h: &http::HeaderMap) -> ObjectInfo {
    let meta = h
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_string(), v.to_str().ok()?.to_string()))
        })
        .collect();
    ObjectInfo {
        size: header_u64(h, "content-length").unwrap_or(0),
        etag: header_str(h, "etag").unwrap_or_default(),
        mtime: header_str(h, "last-modified").map_or(0, |t| parse_http_date(&t)),
        meta,
    }
}

/// `2026-11-29T10:00:00.000Z` → seconds (0 if unreadable).
pub(super) fn parse_iso8601(s: &str) -> i64 {
    s.parse::<jiff::Timestamp>().map_or(0, |t| t.as_second())
}

/// `Sun, 29 Nov 2026 10:00:00 GMT` → seconds (0 if unreadable).
fn parse_http_date(s: &str) -> i64 {
    jiff::fmt::rfc2822::parse(s).map_or(0, |z| z.timestamp().as_second())
}

/// TLS roots: the system's, plus those of `ca_bundle`.
pub(super) fn tls_config(
    ca_bundle: Option<&std::path::Path>,
) -> Result<ureq::tls::TlsConfig, ConfigError> {
    use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_bundle {
        let bad = |why: String| ConfigError::CaBundle {
            path: path.display().to_string(),
            why,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        for item in ureq::tls::parse_pem(&pem) {
            if let PemItem::Certificate(c) = item.map_err(|e| bad(e.to_string()))? {
                roots.push(c);
            }
        }
    }
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::Specific(Arc::new(roots))
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}
