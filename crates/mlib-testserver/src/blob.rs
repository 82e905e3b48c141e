//! Static blobs with the HTTP semantics downloads rely on (Content-Length, ETag, single
//! `Range` requests answered with 206, `If-Range`), plus the faults real servers and networks
//! produce, so resume and retry paths are exercised for real.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use sha2::{Digest, Sha256};

use crate::http::{Body, Head, Response};

/// A file the server hands out. Build with [`Blob::new`] and the chained setters.
#[derive(Clone, Debug)]
pub struct Blob {
    pub(crate) data: Arc<[u8]>,
    pub(crate) content_type: String,
    pub(crate) etag: Option<String>,
    pub(crate) last_modified: Option<String>,
    pub(crate) disposition: Option<String>,
    pub(crate) faults: Faults,
    pub(crate) credential: Option<Credential>,
}

/// A credential a blob requires on every request; without it the answer is 403 (so a HEAD is
/// followed by a GET, which has a body), with a body that echoes what was sent (as careless
/// servers do), so tests can check it is redacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// `?{name}={value}` in the query (compared as sent, without decoding).
    Query { name: String, value: String },
    /// `Authorization: Basic` with this user and password.
    Basic { user: String, password: String },
}

impl Credential {
    /// `None` when `head` carries the credential, else the 401 body.
    fn rejection(&self, head: &Head) -> Option<String> {
        match self {
            Credential::Query { name, value } => {
                let sent = head.query(name);
                (sent != Some(value.as_str()))
                    .then(|| format!("invalid {name}: {}\n", sent.unwrap_or("(none)")))
            }
            Credential::Basic { user, password } => {
                let sent = head.header("authorization").unwrap_or("(none)");
                let expected = format!("Basic {}", base64(format!("{user}:{password}").as_bytes()));
                let decoded = sent
                    .strip_prefix("Basic ")
                    .and_then(unbase64)
                    .unwrap_or_default();
                (sent != expected)
                    .then(|| format!("invalid credentials {decoded} (Authorization: {sent})\n"))
            }
        }
    }
}

/// Misbehaviour injected into one blob's responses.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Faults {
    /// Answer the first N requests (GET or HEAD) with `fail_status` instead of the blob.
    pub fail_first: u32,
    /// The status for the failed requests; 503 when 0.
    pub fail_status: u16,
    /// `Retry-After` (seconds) sent with the failed requests.
    pub retry_after: Option<u32>,
    /// The seconds until the rate-limit window resets, sent with the failed requests as the
    /// Hub sends them (`RateLimit: "resolvers";r=0;t=N` and its `RateLimit-Policy`).
    pub rate_limit_reset: Option<u32>,
    /// Answer only request number N (0-based, GET or HEAD) with `fail_status`: a failure in
    /// the middle of a multi-request (parallel ranges) download.
    pub fail_nth: Option<u32>,
    /// On the first GET only: send K body bytes, then close the connection.
    pub close_after: Option<u64>,
    /// Answer every `Range` request with 200 and the full body.
    pub ignore_range: bool,
    /// Send the body at this many bytes per second.
    pub throttle: Option<u64>,
}

impl Blob {
    /// An `application/octet-stream` blob whose ETag is the quoted sha256 of its bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Blob {
        let bytes: Vec<u8> = bytes.into();
        let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
        Blob {
            data: bytes.into(),
            content_type: "application/octet-stream".into(),
            etag: Some(etag),
            last_modified: None,
            disposition: None,
            faults: Faults::default(),
            credential: None,
        }
    }

    /// Answers only requests that carry `credential` (see [`Credential`]).
    pub fn require(mut self, credential: Credential) -> Blob {
        self.credential = Some(credential);
        self
    }

    pub fn content_type(mut self, value: &str) -> Blob {
        self.content_type = value.into();
        self
    }

    /// Replaces the ETag (`None`: send none, so `If-Range` can only match Last-Modified).
    pub fn etag(mut self, value: Option<&str>) -> Blob {
        self.etag = value.map(|v| format!("\"{}\"", v.trim_matches('"')));
        self
    }

    pub fn last_modified(mut self, http_date: &str) -> Blob {
        self.last_modified = Some(http_date.into());
        self
    }

    /// Sends `Content-Disposition: attachment; filename="..."`.
    pub fn filename(mut self, name: &str) -> Blob {
        self.disposition = Some(format!("attachment; filename=\"{name}\""));
        self
    }

    pub fn faults(mut self, faults: Faults) -> Blob {
        self.faults = faults;
        self
    }

    /// The first `n` requests are answered 429 as the Hub's rate limiter does: no
    /// `Retry-After`, the window's reset in `RateLimit` (`t=reset` seconds).
    pub fn rate_limited(mut self, n: u32, reset: u32) -> Blob {
        self.faults.fail_first = n;
        self.faults.fail_status = 429;
        self.faults.rate_limit_reset = Some(reset);
        self
    }

    pub fn fail_first(mut self, n: u32, retry_after: Option<u32>) -> Blob {
        self.faults.fail_first = n;
        self.faults.retry_after = retry_after;
        self
    }

    pub fn close_after(mut self, bytes: u64) -> Blob {
        self.faults.close_after = Some(bytes);
        self
    }

    pub fn ignore_range(mut self) -> Blob {
        self.faults.ignore_range = true;
        self
    }

    pub fn throttle(mut self, bytes_per_second: u64) -> Blob {
        self.faults.throttle = Some(bytes_per_second);
        self
    }

    pub fn len(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// A blob as served: the fault counters live here, not in the (cloneable) description.
pub(crate) struct Served {
    pub blob: Blob,
    requests: AtomicU32,
    cut_done: AtomicBool,
}

impl Served {
    pub fn new(blob: Blob) -> Served {
        Served {
            blob,
            requests: AtomicU32::new(0),
            cut_done: AtomicBool::new(false),
        }
    }

    pub fn respond(&self, head: &Head) -> Response {
        let blob = &self.blob;
        let faults = &blob.faults;
        if let Some(body) = blob.credential.as_ref().and_then(|c| c.rejection(head)) {
            return Response::text(403, "text/plain", &body);
        }
        let n = self.requests.fetch_add(1, Ordering::SeqCst);
        if n < faults.fail_first || faults.fail_nth == Some(n) {
            let status = if faults.fail_status == 0 {
                503
            } else {
                faults.fail_status
            };
            let mut resp = Response::text(status, "text/plain", "injected failure\n");
            if let Some(secs) = faults.retry_after {
                resp = resp.header("Retry-After", secs.to_string());
            }
            if let Some(secs) = faults.rate_limit_reset {
                resp = resp
                    .header("RateLimit", format!("\"resolvers\";r=0;t={secs}"))
                    .header(
                        "RateLimit-Policy",
                        "\"fixed window\";\"resolvers\";q=5000;w=300".to_owned(),
                    );
            }
            return resp;
        }
        let total = blob.data.len();
        let range = if faults.ignore_range || !self.if_range_matches(head) {
            None
        } else {
            head.header("range").and_then(|r| parse_range(r, total))
        };
        let (status, start, end) = match range {
            Some(Ok((s, e))) => (206, s, e),
            Some(Err(())) => {
                return Response::new(416).header("Content-Range", format!("bytes */{total}"));
            }
            None => (200, 0, total),
        };
        let mut resp = Response::new(status)
            .header("Content-Type", &blob.content_type)
            .header("Accept-Ranges", "bytes");
        if status == 206 {
            resp = resp.header(
                "Content-Range",
                format!("bytes {start}-{}/{total}", end.saturating_sub(1)),
            );
        }
        if let Some(etag) = &blob.etag {
            resp = resp.header("ETag", etag);
        }
        if let Some(lm) = &blob.last_modified {
            resp = resp.header("Last-Modified", lm);
        }
        if let Some(cd) = &blob.disposition {
            resp = resp.header("Content-Disposition", cd);
        }
        let cut_after = match faults.close_after {
            Some(k) if !head.is_head() && !self.cut_done.swap(true, Ordering::SeqCst) => Some(k),
            _ => None,
        };
        resp.body = Body::Slice {
            data: blob.data.clone(),
            start,
            end,
            throttle: faults.throttle,
            cut_after,
        };
        resp
    }

    /// `If-Range` absent, or equal to the current validator: the range may be honoured.
    fn if_range_matches(&self, head: &Head) -> bool {
        let Some(cond) = head.header("if-range") else {
            return true;
        };
        self.blob.etag.as_deref() == Some(cond) || self.blob.last_modified.as_deref() == Some(cond)
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The text `base64` encoded, if it is base64 of UTF-8.
fn unbase64(text: &str) -> Option<String> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// One `bytes=` range as a half-open interval; `Err` when unsatisfiable; `None` (serve the
/// whole body) for anything else, as RFC 9110 allows.
fn parse_range(value: &str, total: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let suffix: usize = b.parse().ok()?;
        if suffix == 0 {
            return Some(Err(()));
        }
        return Some(Ok((total.saturating_sub(suffix), total)));
    }
    let start: usize = a.parse().ok()?;
    let end = if b.is_empty() {
        total
    } else {
        (b.parse::<usize>().ok()? + 1).min(total)
    };
    if start >= total || start >= end {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

#[cfg(test)]
mod tests {
    use super::{base64, parse_range, unbase64};

    #[test]
    fn base64_round_trips() {
        for text in ["", "u", "us", "user:pa55 wörd"] {
            assert_eq!(unbase64(&base64(text.as_bytes())).as_deref(), Some(text));
        }
        assert_eq!(
            base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-", 10), Some(Ok((0, 10))));
        assert_eq!(parse_range("bytes=4-5", 10), Some(Ok((4, 6))));
        assert_eq!(parse_range("bytes=4-100", 10), Some(Ok((4, 10))));
        assert_eq!(parse_range("bytes=-3", 10), Some(Ok((7, 10))));
        assert_eq!(parse_range("bytes=10-", 10), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,4-5", 10), None);
        assert_eq!(parse_range("items=0-1", 10), None);
    }
}
