//! Typed, blocking S3 calls. Each call is signed (AWS SigV4, presigned query:
//! the payload is covered by `x-amz-checksum-sha256` where it matters), sent
//! on a pooled connection, and bounded in time: a connect deadline, a stall
//! deadline on every read and write, and a total deadline that grows with
//! the bytes sent. Nothing here retries an operation the store may already
//! have applied; a request that never reached the store is sent once more.
//!
//! Keys are taken as given: building them (and the jail) is [`super::keys`]'s
//! job, and every key that reaches this module came from there.

use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use rusty_s3::Method;

use super::error::{S3Error, S3Result};
use super::reader::ObjectReader;
use super::request::{
    answer_text, header_str, header_u64, object_info, ok_or_error, parse_iso8601, protocol,
    read_answer, tls_config, Budget, Req,
};
use super::xml;
use crate::limits::s3::{CONNECT_TIMEOUT, STALL_TIMEOUT};

/// Where the store is and who we are to it.
#[derive(Clone)]
pub struct ClientConfig {
    /// `http://127.0.0.1:3900`, `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// `https://host/bucket/key` (Garage, MinIO, IP endpoints) rather than
    /// `https://bucket.host/key`.
    pub path_style: bool,
    /// Extra CA certificates (PEM) for an https endpoint, as the AWS tools
    /// read `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<PathBuf>,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// Why a [`ClientConfig`] cannot be used (before any call is made).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("endpoint {0:?} is not an http:// or https:// URL with a host")]
    Endpoint(String),
    #[error("bucket {bucket:?} cannot be used with endpoint {endpoint:?} ({why}); try path_style = true")]
    Bucket {
        bucket: String,
        endpoint: String,
        why: String,
    },
    #[error("CA bundle {path}: {why}")]
    CaBundle { path: String, why: String },
}

/// One connection pool to one bucket. Cheap to share (`Arc`) between the
/// io workers: every method takes `&self`.
pub struct Client {
    pub(super) bucket: rusty_s3::Bucket,
    pub(super) credentials: rusty_s3::Credentials,
    pub(super) agent: ureq::Agent,
}

/// What a HEAD tells about an object.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub size: u64,
    pub etag: String,
    /// Seconds since the epoch (0 when the store sent none).
    pub mtime: i64,
    /// `x-amz-meta-*` headers, names without the prefix, lowercase.
    pub meta: Vec<(String, String)>,
}

impl ObjectInfo {
    pub fn meta(&self, name: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One object of a listing.
#[derive(Debug, Clone)]
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub mtime: i64,
}

/// One page of ListObjectsV2: objects, and with a delimiter the common
/// prefixes ("subdirectories"); `next` continues the listing.
#[derive(Debug, Default)]
pub struct ListPage {
    pub objects: Vec<Listed>,
    pub prefixes: Vec<String>,
    pub next: Option<String>,
}

/// A multipart upload in progress.
#[derive(Debug, Clone)]
pub struct Upload {
    pub key: String,
    pub upload_id: String,
    /// Seconds since the epoch.
    pub initiated: i64,
}

#[derive(Debug, Default)]
pub struct UploadsPage {
    pub uploads: Vec<Upload>,
    /// (key marker, upload id marker) of the next page.
    pub next: Option<(String, String)>,
}

/// A part the store holds for a multipart upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub number: u32,
    pub etag: String,
    pub size: u64,
}

/// `x-amz-checksum-sha256`: the base64 of the digest.
pub fn checksum_header(sha256: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha256)
}

impl Client {
    pub fn new(cfg: &ClientConfig) -> Result<Client, ConfigError> {
        let endpoint: url::Url = cfg
            .endpoint
            .parse()
            .map_err(|_| ConfigError::Endpoint(cfg.endpoint.clone()))?;
        let tls = if endpoint.scheme() == "https" {
            tls_config(cfg.ca_bundle.as_deref())?
        } else {
            ureq::tls::TlsConfig::default()
        };
        let style = if cfg.path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let bucket = rusty_s3::Bucket::new(endpoint, style, cfg.bucket.clone(), cfg.region.clone())
            .map_err(|e| match e {
                rusty_s3::BucketError::UnsupportedScheme | rusty_s3::BucketError::MissingHost => {
                    ConfigError::Endpoint(cfg.endpoint.clone())
                }
                rusty_s3::BucketError::ParseError(p) => ConfigError::Bucket {
                    bucket: cfg.bucket.clone(),
                    endpoint: cfg.endpoint.clone(),
                    why: p.to_string(),
                },
            })?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(STALL_TIMEOUT))
            .timeout_per_write(Some(STALL_TIMEOUT))
            .max_idle_connections_per_host(64)
            .tls_config(tls)
            .user_agent(concat!("miniftp/", env!("CARGO_PKG_VERSION")))
            .build()
            .new_agent();
        let credentials =
            rusty_s3::Credentials::new(cfg.access_key_id.clone(), cfg.secret_access_key.clone());
        Ok(Client {
            bucket,
            credentials,
            agent,
        })
    }

    /// `s3 http://host:port bucket`.
    pub fn describe(&self) -> String {
        format!("{} bucket {}", self.bucket.base_url(), self.bucket.name())
    }

    /// HEAD of the bucket: the store answers, has the bucket, and takes our
    /// credentials. What `serve` checks at start.
    pub fn probe(&self) -> S3Result<()> {
        let req = Req::new(
            Method::Head,
            None,
            &format!("bucket {}", self.bucket.name()),
        );
        match self.send(&req, &[]) {
            Ok(_) => Ok(()),
            // HEAD answers carry no body: a 404 can only be the bucket.
            Err(S3Error::NotFound { op, .. }) => Err(S3Error::NoSuchBucket {
                op,
                message: "the store has no bucket of that name".into(),
            }),
            Err(e) => Err(e),
        }
    }

    /// HEAD: size, ETag, mtime and `x-amz-meta-*` of `key`.
    pub fn head(&self, key: &str) -> S3Result<ObjectInfo> {
        let req = Req::new(Method::Head, Some(key), "");
        let resp = self.send(&req, &[])?;
        Ok(object_info(resp.headers()))
    }

    /// A whole object of at most [`MAX_ANSWER_BYTES`] (state records).
    pub fn get_small(&self, key: &str) -> S3Result<Vec<u8>> {
        let req = Req::new(Method::Get, Some(key), "");
        let resp = self.send(&req, &[])?;
        read_answer(resp, &req.op)
    }

    /// Streams `key` from byte `start`: `len` bytes, or to the end. A read
    /// that waits longer than [`STALL_TIMEOUT`] fails (TimedOut); a body
    /// that ends early fails (UnexpectedEof).
    pub fn get_range(&self, key: &str, start: u64, len: Option<u64>) -> S3Result<ObjectReader> {
        self.get_range_of(key, None, start, len)
    }

    /// As [`Client::get_range`], of the version with ETag `etag` only: a
    /// replaced object fails with HTTP 412 (Rejected) rather than mixing
    /// two versions in one download.
    pub fn get_range_of(
        &self,
        key: &str,
        etag: Option<&str>,
        start: u64,
        len: Option<u64>,
    ) -> S3Result<ObjectReader> {
        let range = match len {
            Some(0) => return Ok(ObjectReader::empty()),
            Some(n) => format!("bytes={start}-{}", start + n - 1),
            None => format!("bytes={start}-"),
        };
        let mut req = Req::new(Method::Get, Some(key), "")
            .header("range", range)
            .budget(Budget::Stream);
        if let Some(etag) = etag {
            req = req.header("if-match", etag);
        }
        let resp = self.send(&req, &[])?;
        let remaining =
            header_u64(resp.headers(), "content-length").ok_or_else(|| S3Error::Protocol {
                op: req.op.clone(),
                detail: "no Content-Length in the answer".into(),
            })?;
        Ok(ObjectReader {
            body: Some(resp.into_body().into_reader()),
            remaining,
            op: Arc::from(req.op),
        })
    }

    /// PutObject. With `sha256` the store checks the bytes against it
    /// (`x-amz-checksum-sha256`) and refuses damaged ones. Returns the ETag.
    pub fn put(
        &self,
        key: &str,
        body: &[u8],
        sha256: Option<&[u8; 32]>,
        meta: &[(&str, &str)],
    ) -> S3Result<String> {
        let mut req = Req::new(Method::Put, Some(key), "")
            .header("content-type", "application/octet-stream")
            .meta(meta)
            .budget(Budget::Upload(body.len() as u64));
        if let Some(d) = sha256 {
            req = req.header("x-amz-checksum-sha256", checksum_header(d));
        }
        let resp = self.send(&req, body)?;
        Ok(header_str(resp.headers(), "etag").unwrap_or_default())
    }

    /// DeleteObject. Deleting a missing key succeeds (S3 semantics).
    pub fn delete(&self, key: &str) -> S3Result<()> {
        let req = Req::new(Method::Delete, Some(key), "");
        match self.send(&req, &[]) {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One page (at most `max_keys`, capped at 1000 by S3) of the keys
    /// under `prefix`; with `delimiter` "/" one directory level.
    pub fn list(
        &self,
        prefix: &str,
        delimiter: Option<&str>,
        token: Option<&str>,
        max_keys: usize,
    ) -> S3Result<ListPage> {
        let mut req = Req::new(Method::Get, None, &format!("list {prefix}"))
            .query("list-type", "2")
            .query("encoding-type", "url")
            .query("prefix", prefix)
            .query("max-keys", max_keys.min(1000).to_string());
        if let Some(d) = delimiter {
            req = req.query("delimiter", d);
        }
        if let Some(t) = token {
            req = req.query("continuation-token", t);
        }
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        let parsed = rusty_s3::actions::ListObjectsV2::parse_response(&text)
            .map_err(|e| protocol(&req.op, e))?;
        Ok(ListPage {
            objects: parsed
                .contents
                .into_iter()
                .map(|c| Listed {
                    key: c.key,
                    size: c.size.unwrap_or(0),
                    mtime: c.last_modified.as_deref().map_or(0, parse_iso8601),
                })
                .collect(),
            prefixes: parsed
                .common_prefixes
                .into_iter()
                .map(|p| p.prefix)
                .collect(),
            next: parsed.next_continuation_token,
        })
    }

    /// CreateMultipartUpload; the metadata is fixed here for good.
    pub fn create_upload(&self, key: &str, meta: &[(&str, &str)]) -> S3Result<String> {
        let req = Req::new(Method::Post, Some(key), "create upload ")
            .query("uploads", "")
            .header("content-type", "application/octet-stream")
            .meta(meta);
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        xml::first(&text, "UploadId").ok_or_else(|| protocol(&req.op, "no UploadId"))
    }

    /// UploadPart with its own `x-amz-checksum-sha256`. Returns the ETag.
    pub fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: &[u8],
        sha256: &[u8; 32],
    ) -> S3Result<String> {
        let req = Req::new(Method::Put, Some(key), &format!("part {number} of "))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .header("x-amz-checksum-sha256", checksum_header(sha256))
            .budget(Budget::Upload(body.len() as u64));
        let resp = self.send(&req, body)?;
        header_str(resp.headers(), "etag").ok_or_else(|| protocol(&req.op, "no ETag"))
    }

    /// UploadPartCopy: bytes `range` (start, end exclusive) of `src` become
    /// part `number` of the upload to `key`. Returns the ETag.
    pub fn upload_part_copy(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        src: &str,
        range: (u64, u64),
    ) -> S3Result<String> {
        let req = Req::new(Method::Put, Some(key), &format!("copy part {number} to "))
            .query("partNumber", number.to_string())
            .query("uploadId", upload_id)
            .header("x-amz-copy-source", self.copy_source(src))
            .header(
                "x-amz-copy-source-range",
                format!("bytes={}-{}", range.0, range.1 - 1),
            )
            .budget(Budget::Copy);
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        ok_or_error(&req.op, &text)?;
        xml::first(&text, "ETag").ok_or_else(|| protocol(&req.op, "no ETag"))
    }

    /// CompleteMultipartUpload of `parts` (number, ETag), in order.
    pub fn complete_upload(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> S3Result<String> {
        let body = xml::complete_body(parts);
        let req = Req::new(Method::Post, Some(key), "complete upload ")
            .query("uploadId", upload_id)
            .header("content-type", "application/xml")
            .budget(Budget::Copy);
        let resp = self.send(&req, body.as_bytes())?;
        // S3 may answer 200 and report a failure in the body.
        let text = answer_text(resp, &req.op)?;
        ok_or_error(&req.op, &text)?;
        Ok(xml::first(&text, "ETag").unwrap_or_default())
    }

    /// AbortMultipartUpload: the parts are freed. NotFound if no such upload.
    pub fn abort_upload(&self, key: &str, upload_id: &str) -> S3Result<()> {
        let req = Req::new(Method::Delete, Some(key), "abort upload ").query("uploadId", upload_id);
        self.send(&req, &[]).map(drop)
    }

    /// One page of ListMultipartUploads under `prefix`.
    pub fn list_uploads(
        &self,
        prefix: &str,
        marker: Option<&(String, String)>,
    ) -> S3Result<UploadsPage> {
        let mut req = Req::new(Method::Get, None, &format!("list uploads {prefix}"))
            .query("uploads", "")
            .query("prefix", prefix);
        if let Some((key, id)) = marker {
            req = req
                .query("key-marker", key.clone())
                .query("upload-id-marker", id.clone());
        }
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        let uploads = xml::blocks(&text, "Upload")
            .into_iter()
            .filter_map(|u| {
                Some(Upload {
                    key: xml::first(u, "Key")?,
                    upload_id: xml::first(u, "UploadId")?,
                    initiated: xml::first(u, "Initiated").map_or(0, |t| parse_iso8601(&t)),
                })
            })
            .collect();
        let truncated = xml::first(&text, "IsTruncated").is_some_and(|t| t == "true");
        let next = match (
            truncated,
            xml::first(&text, "NextKeyMarker"),
            xml::first(&text, "NextUploadIdMarker"),
        ) {
            (true, Some(k), Some(i)) => Some((k, i)),
            (true, _, _) => return Err(protocol(&req.op, "truncated list without a marker")),
            _ => None,
        };
        Ok(UploadsPage { uploads, next })
    }

    /// The parts the store holds for an upload (up to 1000 from `after`).
    pub fn list_parts(&self, key: &str, upload_id: &str, after: u32) -> S3Result<Vec<Part>> {
        let req = Req::new(Method::Get, Some(key), "list parts of ")
            .query("uploadId", upload_id)
            .query("part-number-marker", after.to_string());
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        xml::blocks(&text, "Part")
            .into_iter()
            .map(|p| {
                let number = xml::first(p, "PartNumber").and_then(|n| n.parse().ok());
                let size = xml::first(p, "Size").and_then(|n| n.parse().ok());
                match (number, xml::first(p, "ETag"), size) {
                    (Some(number), Some(etag), Some(size)) => Ok(Part { number, etag, size }),
                    _ => Err(protocol(&req.op, "a part without number, ETag or size")),
                }
            })
            .collect()
    }

    /// CopyObject `src` to `dst` (at most 5 GiB on AWS). `meta`: None keeps
    /// the source's metadata, Some replaces it. Returns the ETag.
    pub fn copy(&self, src: &str, dst: &str, meta: Option<&[(&str, &str)]>) -> S3Result<String> {
        self.copy_if(src, dst, meta, None)
    }

    /// As [`Client::copy`], of the version of `src` with ETag `etag` only
    /// (else HTTP 412, Rejected): what was checked is what is copied.
    pub fn copy_if(
        &self,
        src: &str,
        dst: &str,
        meta: Option<&[(&str, &str)]>,
        etag: Option<&str>,
    ) -> S3Result<String> {
        let mut req = Req::new(Method::Put, Some(dst), &format!("copy {src} to "))
            .header("x-amz-copy-source", self.copy_source(src))
            .budget(Budget::Copy);
        if let Some(etag) = etag {
            req = req.header("x-amz-copy-source-if-match", etag);
        }
        if let Some(meta) = meta {
            req = req
                .header("x-amz-metadata-directive", "REPLACE")
                .header("content-type", "application/octet-stream")
                .meta(meta);
        }
        let resp = self.send(&req, &[])?;
        let text = answer_text(resp, &req.op)?;
        ok_or_error(&req.op, &text)?;
        Ok(xml::first(&text, "ETag").unwrap_or_default())
    }

    /// `/bucket/key`, percent-encoded like a URL path.
    fn copy_source(&self, key: &str) -> String {
        use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
        const KEEP: &percent_encoding::AsciiSet = &NON_ALPHANUMERIC
            .remove(b'/')
            .remove(b'-')
            .remove(b'_')
            .remove(b'.')
            .remove(b'~');
        format!("/{}/{}", self.bucket.name(), utf8_percent_encode(key, KEEP))
    }
}
