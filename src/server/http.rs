//! The little HTTP/1.1 the metrics listener needs, sans I/O: a bounded
//! parser for one request head (`GET /metrics`) and a response writer. The
//! loop reads into a buffer, asks [`parse`] whether a whole head is there
//! (`Ok(None)` is the normal "not yet"), writes [`respond`]'s bytes, and
//! closes: one request per connection, no keep-alive, no body, so a scraper
//! costs a few hundred bytes of state and nothing can make it grow.

use crate::limits::MAX_HTTP_REQUEST_HEAD;

/// What a whole request head asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `GET /metrics` (a query string is ignored).
    Metrics,
    /// `HEAD /metrics`: the headers of the same answer, no body.
    MetricsHead,
    /// Another path: 404.
    NotFound,
    /// Another method: 405.
    MethodNotAllowed,
}

/// A request that gets an error status and the connection closed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("the request head is longer than {MAX_HTTP_REQUEST_HEAD} bytes")]
    TooLarge,
    #[error("not an HTTP/1.x request line")]
    Malformed,
}

impl HttpError {
    /// The response for this error.
    pub fn response(&self) -> Vec<u8> {
        match self {
            HttpError::TooLarge => respond(431, "text/plain", b"request head too large\n", false),
            HttpError::Malformed => respond(400, "text/plain", b"bad request\n", false),
        }
    }
}

/// Looks for a whole request head in `buf`: `Ok(None)` until its blank
/// line has arrived; an error once `buf` holds more than
/// [`MAX_HTTP_REQUEST_HEAD`] bytes without one, or the request line is not
/// HTTP. Headers are not interpreted: nothing in them changes the answer.
pub fn parse(buf: &[u8]) -> Result<Option<Request>, HttpError> {
    let window = &buf[..buf.len().min(MAX_HTTP_REQUEST_HEAD)];
    let Some(end) = find_blank_line(window) else {
        return if buf.len() >= MAX_HTTP_REQUEST_HEAD {
            Err(HttpError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let head = std::str::from_utf8(&window[..end]).map_err(|_| HttpError::Malformed)?;
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed);
    };
    if !matches!(version, "HTTP/1.0" | "HTTP/1.1") || !target.starts_with('/') {
        return Err(HttpError::Malformed);
    }
    let path = target.split('?').next().unwrap_or(target);
    Ok(Some(match (method, path) {
        ("GET", "/metrics") => Request::Metrics,
        ("HEAD", "/metrics") => Request::MetricsHead,
        ("GET" | "HEAD", _) => Request::NotFound,
        _ => Request::MethodNotAllowed,
    }))
}

/// The offset where the head ends (before `\r\n\r\n`, or `\n\n` from a
/// lenient client), if it has.
fn find_blank_line(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = buf.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The answer to a parsed request, `metrics` giving the body for a scrape
/// (called only then).
pub fn answer(request: &Request, metrics: impl FnOnce() -> String) -> Vec<u8> {
    match request {
        Request::Metrics | Request::MetricsHead => respond(
            200,
            super::metrics::CONTENT_TYPE,
            metrics().as_bytes(),
            *request == Request::MetricsHead,
        ),
        Request::NotFound => respond(404, "text/plain", b"only /metrics is here\n", false),
        Request::MethodNotAllowed => {
            let mut r = respond(405, "text/plain", b"only GET /metrics\n", false);
            // RFC 9110 wants the allowed methods named with a 405.
            let at = r.windows(2).position(|w| w == b"\r\n").unwrap_or(0) + 2;
            r.splice(at..at, b"Allow: GET, HEAD\r\n".iter().copied());
            r
        }
    }
}

/// A whole HTTP/1.1 response that closes the connection. With `head_only`
/// the Content-Length is the body's but the body is left out (HEAD).
pub fn respond(status: u16, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_arrives_in_pieces() {
        let req = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n";
        for cut in 0..req.len() {
            assert_eq!(parse(&req[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse(req), Ok(Some(Request::Metrics)));
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.0\n\n"),
            Ok(Some(Request::Metrics))
        );
        assert_eq!(
            parse(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Ok(Some(Request::MetricsHead))
        );
    }

    #[test]
    fn other_paths_methods_and_garbage() {
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\n\r\n"),
            Ok(Some(Request::NotFound))
        );
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Ok(Some(Request::MethodNotAllowed))
        );
        for bad in [
            &b"GET /metrics\r\n\r\n"[..],
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET metrics HTTP/1.1\r\n\r\n",
            b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert_eq!(parse(bad), Err(HttpError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn a_head_without_end_is_capped() {
        let mut buf = b"GET /metrics HTTP/1.1\r\n".to_vec();
        buf.resize(MAX_HTTP_REQUEST_HEAD - 1, b'a');
        assert_eq!(parse(&buf), Ok(None));
        buf.push(b'a');
        assert_eq!(parse(&buf), Err(HttpError::TooLarge));
        // A blank line beyond the cap does not count.
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&buf), Err(HttpError::TooLarge));
        let r = String::from_utf8(HttpError::TooLarge.response()).unwrap();
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
    }

    #[test]
    fn responses() {
        let r = answer(&Request::Metrics, || "miniftp_x 1\n".into());
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Type: text/plain; version=0.0.4"), "{r}");
        assert!(r.contains("Content-Length: 12\r\n"), "{r}");
        assert!(r.ends_with("\r\n\r\nminiftp_x 1\n"), "{r}");
        let h = String::from_utf8(answer(&Request::MetricsHead, || "abc".into())).unwrap();
        assert!(
            h.contains("Content-Length: 3\r\n") && h.ends_with("\r\n\r\n"),
            "{h}"
        );
        let n = String::from_utf8(answer(&Request::NotFound, || unreachable!())).unwrap();
        assert!(n.starts_with("HTTP/1.1 404 "), "{n}");
        let m = answer(&Request::MethodNotAllowed, || unreachable!());
        let m = String::from_utf8(m).unwrap();
        assert!(
            m.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"),
            "{m}"
        );
    }
}
