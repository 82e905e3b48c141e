//! The request log: every request either host received, so tests can assert what went over
//! the wire (which host saw a token, how many bytes were sent again after a resume).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One request as received, with the status answered and the body bytes sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query as sent.
    pub path: String,
    /// `ip:port` of the listener that received it.
    pub host: String,
    /// Whether it reached the CDN host (the one redirects point to).
    pub cdn: bool,
    /// Every header as received, including `Authorization`.
    pub headers: Vec<(String, String)>,
    pub status: u16,
    /// Body bytes written (counted before each write, so complete once the client has them).
    pub bytes_sent: u64,
    pub at: Instant,
}

impl Request {
    /// A header's value, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without its query string.
    pub fn path_only(&self) -> &str {
        self.path.split('?').next().unwrap_or("")
    }
}

/// A log entry whose byte count is still being written by a connection thread.
pub(crate) struct Entry {
    pub request: Request,
    pub sent: Arc<AtomicU64>,
}

impl Entry {
    pub fn snapshot(&self) -> Request {
        let mut r = self.request.clone();
        r.bytes_sent = self.sent.load(Ordering::SeqCst);
        r
    }
}
