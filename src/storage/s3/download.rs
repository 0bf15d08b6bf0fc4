//! Reading one object for a download: HEAD once (size, ETag, stored
//! digest), then one ranged GET streamed from the first offset asked for.
//! A read that is not where the stream is, or a stream that stalled or
//! broke, opens a new ranged GET at that offset, pinned to the same ETag so
//! a file replaced meanwhile fails instead of mixing two versions.

use std::io::{self, Read};
use std::sync::Arc;

use super::client::{Client, ObjectInfo};
use super::error::{S3Error, S3Result};
use super::reader::ObjectReader;
use super::writer::META_SHA256;

pub struct ObjectRead {
    client: Arc<Client>,
    key: String,
    info: ObjectInfo,
    /// The open stream and the offset of its next byte.
    stream: Option<(u64, ObjectReader)>,
}

impl ObjectRead {
    pub fn open(client: Arc<Client>, key: String) -> S3Result<ObjectRead> {
        let info = client.head(&key)?;
        Ok(ObjectRead {
            client,
            key,
            info,
            stream: None,
        })
    }

    pub fn size(&self) -> u64 {
        self.info.size
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn info(&self) -> &ObjectInfo {
        &self.info
    }

    /// The SHA-256 stored with the object, if it has a valid one.
    pub fn digest(&self) -> Option<[u8; 32]> {
        let hexd = self.info.meta(META_SHA256)?;
        let bytes = hex::decode(hexd).ok()?;
        bytes.try_into().ok()
    }

    /// Reads at `offset`; 0 at or past the end.
    pub fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        if offset >= self.info.size || buf.is_empty() {
            return Ok(0);
        }
        let had_stream = self.stream.is_some();
        match self.read_from_stream(buf, offset) {
            Ok(n) => Ok(n),
            // A stream that broke or stalled gets one fresh start.
            Err(e) if had_stream => {
                log::debug!("{}: {e}; reopening at {offset}", self.key);
                self.stream = None;
                self.read_from_stream(buf, offset)
            }
            Err(e) => Err(e),
        }
    }

    fn read_from_stream(&mut self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let positioned = matches!(&self.stream, Some((pos, _)) if *pos == offset);
        if !positioned {
            let reader = self
                .client
                .get_range_of(&self.key, Some(&self.info.etag), offset, None)
                .map_err(changed_or_io)?;
            self.stream = Some((offset, reader));
        }
        let Some((pos, reader)) = self.stream.as_mut() else {
            unreachable!("a stream was just opened");
        };
        match reader.read(buf) {
            Ok(n) => {
                *pos += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }
}

/// HTTP 412 on a pinned GET: the object was replaced since it was opened.
fn changed_or_io(e: S3Error) -> io::Error {
    match e {
        S3Error::Rejected {
            status: 412, op, ..
        } => io::Error::other(format!(
            "{op}: the file was replaced while it was being read"
        )),
        other => other.into_io(),
    }
}
