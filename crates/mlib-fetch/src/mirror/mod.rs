//! Team mirrors: buckets and static servers holding model bytes by sha256, tried after the
//! store and the HuggingFace cache and before each model's origin ([`layout`] names the
//! objects).
//!
//! A mirror is a cache, never an authority: what it serves is hashed as it arrives and
//! checked against the lock exactly as the origin's bytes are, and anything wrong with it (a
//! missing object, a corrupted one, a bucket that does not exist, a server that is down)
//! sends the download to the next source instead of failing the apply. What means the mirror
//! is set up wrong is said once per run, and that mirror is not asked again in the run.

pub mod aws;
mod http;
pub mod layout;
mod pull;
mod s3;

use std::sync::{Mutex, OnceLock};

use mlib_manifest::MirrorUrl;

use crate::Fetcher;
use crate::config::FetchConfig;
pub use aws::AwsSettings;
pub use s3::PART_SIZE;

/// A mirror operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error("mirror {mirror}: {message}")]
    Failed {
        mirror: String,
        message: String,
        /// The mirror is set up wrong (no such bucket, refused credentials, unreachable),
        /// not merely missing an object.
        misconfigured: bool,
    },
    #[error(
        "mirror {mirror} is read over plain HTTP(S) and cannot be written: push to the s3:// \
         bucket behind it (`mlib mirror push --to s3://BUCKET/PREFIX`)"
    )]
    ReadOnly { mirror: String },
    #[error(
        "{path} does not match its metadata.json (sha256 expected {expected}, found {actual}): \
         it was not uploaded. Run `mlib verify` and `mlib apply` to restore it."
    )]
    StoreChanged {
        path: String,
        expected: String,
        actual: String,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// One mirror, opened: reads for every kind, writes for S3.
pub struct MirrorClient {
    url: MirrorUrl,
    kind: Kind,
}

enum Kind {
    S3(s3::S3Mirror),
    Http(http::HttpMirror),
}

impl MirrorClient {
    /// Opens `url` with the fetcher's settings (AWS variables and profiles for `s3://`).
    /// Nothing is sent yet.
    pub fn open(url: &MirrorUrl, config: &FetchConfig) -> Result<MirrorClient, MirrorError> {
        let shown = url.to_string();
        let kind = match url {
            MirrorUrl::S3 { bucket, prefix } => {
                Kind::S3(s3::S3Mirror::open(bucket, prefix, &shown, &config.aws)?)
            }
            MirrorUrl::Http { base } => Kind::Http(http::HttpMirror::new(base, config)),
        };
        Ok(MirrorClient {
            url: url.clone(),
            kind,
        })
    }

    pub fn url(&self) -> &MirrorUrl {
        &self.url
    }

    /// The size of the object `key` (relative to the mirror's prefix), `None` if absent.
    pub fn head(&self, key: &str) -> Result<Option<u64>, MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.head(key),
            Kind::Http(m) => m.head(key),
        }
    }

    /// A small object (a model index), `None` if absent.
    pub fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.get_small(key),
            Kind::Http(m) => m.get_small(key),
        }
    }

    /// The URL the downloader GETs `key` from: a presigned one for S3 (it carries its
    /// signature in `X-Amz-*` parameters, which every message redacts).
    pub(crate) fn download_url(&self, key: &str) -> Result<url::Url, MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.presigned_get(key),
            Kind::Http(m) => m.url(key),
        }
    }

    /// Every object under `folder` with its size (names relative to the prefix). Plain
    /// HTTP servers cannot list.
    pub fn list(&self, folder: &str) -> Result<Option<Vec<(String, u64)>>, MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.list(folder).map(Some),
            Kind::Http(_) => Ok(None),
        }
    }

    /// One cheap request that fails when the mirror is set up wrong (S3: the first page of a
    /// listing, which names a missing bucket; HTTP: nothing to ask).
    pub fn probe(&self) -> Result<(), MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.probe(),
            Kind::Http(_) => Ok(()),
        }
    }

    pub fn put_small(&self, key: &str, bytes: Vec<u8>) -> Result<(), MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.put_small(key, bytes),
            Kind::Http(_) => Err(self.read_only()),
        }
    }

    /// Uploads a store file, checking on the way that its bytes are `sha256`.
    pub fn put_file(
        &self,
        key: &str,
        src: &std::path::Path,
        sha256: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), MirrorError> {
        match &self.kind {
            Kind::S3(m) => m.put_file(key, src, sha256, progress),
            Kind::Http(_) => Err(self.read_only()),
        }
    }

    pub fn writable(&self) -> bool {
        matches!(self.kind, Kind::S3(_))
    }

    fn read_only(&self) -> MirrorError {
        MirrorError::ReadOnly {
            mirror: self.url.to_string(),
        }
    }
}

/// The mirrors of one `Fetcher`, opened on first use, with what this run learned about each.
pub(crate) struct Mirrors {
    urls: Vec<MirrorUrl>,
    clients: Vec<OnceLock<Result<MirrorClient, String>>>,
    state: Mutex<Vec<State>>,
    /// Downloads from mirrors: a fetcher without tokens (a mirror never gets a hub's token)
    /// and with fewer, shorter retries (a mirror that fails falls back to the next source).
    pub fetcher: Box<Fetcher>,
    /// Model indexes read in this run: (mirror, index key) → the index, if there is one.
    indexes: Mutex<std::collections::HashMap<(usize, String), Option<layout::ModelIndex>>>,
}

#[derive(Default, Clone)]
struct State {
    /// Set up wrong or unreachable: said once, then skipped.
    given_up: bool,
    /// A miss made us check, once, that an S3 bucket exists.
    bucket_checked: bool,
}

impl Mirrors {
    pub fn new(config: &FetchConfig) -> Option<Mirrors> {
        if config.mirrors.is_empty() {
            return None;
        }
        let mut inner = config.clone();
        inner.mirrors = Vec::new();
        inner.hf_token = None;
        inner.civitai_token = None;
        inner.hf_cache = None;
        // Mirrors are addresses the user configured (a LAN MinIO, a static server): plain
        // http is their choice, and every byte is verified by hash anyway.
        inner.allow_http = true;
        inner.retries = config.retries.min(2);
        inner.backoff_base = config
            .backoff_base
            .min(std::time::Duration::from_millis(200));
        inner.backoff_max = config.backoff_max.min(std::time::Duration::from_secs(2));
        Some(Mirrors {
            clients: config.mirrors.iter().map(|_| OnceLock::new()).collect(),
            state: Mutex::new(vec![State::default(); config.mirrors.len()]),
            urls: config.mirrors.clone(),
            fetcher: Box::new(Fetcher::new(inner)),
            indexes: Mutex::new(Default::default()),
        })
    }
}
