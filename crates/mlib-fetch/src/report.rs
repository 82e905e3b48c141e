//! Progress reporting. Libraries never print: the CLI implements [`Reporter`] to draw bars
//! (or JSON events, or periodic plain lines) from these calls.

use crate::secret::{Secret, redact_text};

/// Receives download progress. Called from download threads, hence `Send + Sync`.
///
/// Each file gets a fresh `id`. `start` may be called again for the same id when a download
/// has to restart from zero (the server ignored a range request): the position resets.
pub trait Reporter: Send + Sync {
    /// A file starts; `total` is its size when known. Resumed bytes are reported with
    /// `advance` right after (they are re-hashed from disk).
    fn start(&self, id: u64, label: &str, total: Option<u64>);
    /// `bytes` more bytes are done (a delta, not a total).
    fn advance(&self, id: u64, bytes: u64);
    fn finish(&self, id: u64);
    /// The file failed (the error is returned to the caller, who reports it): the end of
    /// its progress, which must not read as a finished file.
    fn failed(&self, id: u64) {
        self.finish(id);
    }
    /// An attempt failed and will be retried; `reason` is redacted.
    fn retry(&self, label: &str, attempt: u32, reason: &str);
    /// Something worth a line: "reused from the HuggingFace cache", "resuming at 1.2 GiB".
    fn note(&self, _id: u64, _message: &str) {}
    /// Worth a line only when asked for details (`-v`): "not on mirror s3://team/models".
    fn detail(&self, _id: u64, _message: &str) {}
    /// Something the user should fix, said whatever the verbosity: a mirror that is set up
    /// wrong, or served bytes that were rejected.
    fn warn(&self, _message: &str) {}
}

/// Passes reports on with secrets replaced by `***` in retry reasons and notes (for a URL
/// whose `${VAR}` values are credentials).
pub(crate) struct Redacting<'a> {
    inner: &'a dyn Reporter,
    secrets: Vec<&'a Secret>,
}

impl<'a> Redacting<'a> {
    pub fn new(inner: &'a dyn Reporter, secrets: &'a [Secret]) -> Redacting<'a> {
        Redacting {
            inner,
            secrets: secrets.iter().collect(),
        }
    }
}

impl Reporter for Redacting<'_> {
    fn start(&self, id: u64, label: &str, total: Option<u64>) {
        self.inner.start(id, label, total);
    }
    fn advance(&self, id: u64, bytes: u64) {
        self.inner.advance(id, bytes);
    }
    fn finish(&self, id: u64) {
        self.inner.finish(id);
    }
    fn failed(&self, id: u64) {
        self.inner.failed(id);
    }
    fn retry(&self, label: &str, attempt: u32, reason: &str) {
        self.inner
            .retry(label, attempt, &redact_text(reason, &self.secrets));
    }
    fn note(&self, id: u64, message: &str) {
        self.inner.note(id, &redact_text(message, &self.secrets));
    }
    fn detail(&self, id: u64, message: &str) {
        self.inner.detail(id, &redact_text(message, &self.secrets));
    }
    fn warn(&self, message: &str) {
        self.inner.warn(&redact_text(message, &self.secrets));
    }
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn start(&self, _id: u64, _label: &str, _total: Option<u64>) {}
    fn advance(&self, _id: u64, _bytes: u64) {}
    fn finish(&self, _id: u64) {}
    fn retry(&self, _label: &str, _attempt: u32, _reason: &str) {}
}
