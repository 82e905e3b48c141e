//! Remote sources for mlib: resolving `https://`, `hf://` and `civitai:` models to exact files
//! (the lock), and downloading them into the store's staging directory — resumable, retried,
//! verified, and careful with tokens.
//!
//! Two steps, so the CLI can skip the first whenever the lock covers a model:
//!
//! 1. [`Fetcher::resolve`]: HEAD and API requests only → a [`LockedModel`] (commit, file ids,
//!    sizes, hashes). Cheap; never downloads model bytes. [`Fetcher::resolve_manifest`]
//!    applies the lock file's rules to a whole manifest ([`LockPolicy`]: the lock first,
//!    `--locked`, saved plans, dropped entries).
//! 2. [`Fetcher::fetch`]: downloads a locked model's files to `.part` files in the staging
//!    directory, hashing (sha256 + blake3) while streaming, and returns verified
//!    [`StagedFile`]s for `mlib_store::Store::commit` to move into place.
//!
//! Blocking I/O with std threads (ureq, no async runtime): a download is disk- and
//! network-bound, and threads keep the code and the stack traces plain.
//!
//! Libraries never print: progress goes through [`Reporter`]; errors are [`FetchError`]s
//! whose messages say what to do, with tokens and credential-looking URL parameters redacted.

// `FetchError` carries the names, URL and both hashes a mismatch message needs (~136 bytes).
// Every function here is network- or disk-bound, so moving it is free; boxing would only make
// matching on errors clumsier for the CLI.
#![allow(clippy::result_large_err)]

mod client;
mod config;
mod download;
mod error;
mod fetch;
mod hfcache;
pub use hfcache::{CacheOrigin, origin_of as hf_cache_origin};
mod lock_policy;
pub mod mirror;
mod names;
mod report;
mod resolve;
mod retry;
mod reuse;
mod secret;
mod source_url;

use std::path::Path;
use std::sync::atomic::AtomicU64;

use mlib_manifest::lock::{Lock, LockedModel};
use mlib_manifest::{Model, Source};
use mlib_store::StagedFile;

pub use config::{FetchConfig, Variables};
pub use error::FetchError;
pub use lock_policy::{LockPolicy, ResolveError, Resolved, Uncovered};
pub use mirror::{AwsSettings, MirrorClient, MirrorError};
pub use report::{NoReporter, Reporter};
pub use resolve::civitai::{CivitaiInfo, CivitaiMatch};
pub use secret::{Secret, redact_text, redact_url};

use client::{Client, Token, token_for};
use fetch::Slots;

/// Resolves and downloads remote models. `Sync`: share one across threads (its `jobs` limit
/// is global to it).
pub struct Fetcher {
    pub(crate) config: FetchConfig,
    pub(crate) client: Client,
    pub(crate) hf_token: Option<Token>,
    pub(crate) civitai_token: Option<Token>,
    slots: Slots,
    next_id: AtomicU64,
    /// The configured mirrors, tried before each origin; `None` when there are none.
    mirrors: Option<mirror::Mirrors>,
}

impl std::fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fetcher")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Whether a lock entry was reused or had to be (re)resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The lock covered the model: no request was made.
    Locked,
    /// Resolved now (not in the lock, or stale).
    Resolved,
}

impl Fetcher {
    pub fn new(config: FetchConfig) -> Fetcher {
        Fetcher {
            client: Client::new(&config),
            hf_token: token_for(&config.hf_endpoint, config.hf_token.as_ref()),
            civitai_token: client::civitai_token_for(
                &config.civitai_endpoint,
                config.civitai_token.as_ref(),
            ),
            slots: Slots::new(config.jobs),
            next_id: AtomicU64::new(0),
            mirrors: mirror::Mirrors::new(&config),
            config,
        }
    }

    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Resolves a remote model to exact files with HEAD/API requests only (or, offline, from
    /// the HuggingFace cache). Local sources are an error: the store copies them.
    pub fn resolve(&self, model: &Model) -> Result<LockedModel, FetchError> {
        self.resolve_reporting(model, &NoReporter)
    }

    /// [`Self::resolve`], reporting retries.
    pub fn resolve_reporting(
        &self,
        model: &Model,
        reporter: &dyn Reporter,
    ) -> Result<LockedModel, FetchError> {
        match &model.source {
            Source::Local(_) => Err(FetchError::NotRemote {
                name: model.name.clone(),
            }),
            Source::Url(url) => resolve::url::resolve(self, model, url, reporter),
            Source::HuggingFace { repo, path } => {
                resolve::hf::resolve(self, model, repo, path.as_deref(), reporter)
            }
            Source::Civitai {
                model_id,
                version_id,
            } => resolve::civitai::resolve(self, model, *model_id, *version_id, reporter),
        }
    }

    /// The lock's entry when it is fresh for `model` (no request at all), else a new
    /// resolution. The caller stores a `Resolved` result in the lock.
    pub fn resolve_with_lock(
        &self,
        model: &Model,
        lock: Option<&Lock>,
        reporter: &dyn Reporter,
    ) -> Result<(LockedModel, Resolution), FetchError> {
        if let Some(locked) = lock.and_then(|l| l.fresh(model)) {
            return Ok((locked.clone(), Resolution::Locked));
        }
        let locked = self.resolve_reporting(model, reporter)?;
        Ok((locked, Resolution::Resolved))
    }

    /// Downloads every file of `locked` into `staging` (a directory on the store's filesystem)
    /// and returns them verified, in the lock's file order. Up to `jobs` files at a time;
    /// large files in parallel ranges. Interrupted downloads resume on the next call.
    pub fn fetch(
        &self,
        name: &str,
        locked: &LockedModel,
        staging: &Path,
        reporter: &dyn Reporter,
    ) -> Result<Vec<StagedFile>, FetchError> {
        fs_err::create_dir_all(staging)?;
        let jobs = self.jobs_for(name, locked, staging)?;
        self.fetch_all(&jobs, reporter)
    }

    /// The token whose origin `url` is on (plain URL sources pointing at a hub get its token).
    pub(crate) fn token_for_url(&self, url: &url::Url) -> Option<&Token> {
        [&self.hf_token, &self.civitai_token]
            .into_iter()
            .flatten()
            .find(|t| t.belongs_to(url))
    }
}

/// Whether a source is fetched by this crate (everything but local paths).
pub fn is_remote(source: &Source) -> bool {
    !matches!(source, Source::Local(_))
}

/// Records the hashes computed while downloading into the lock entry (files no server
/// published a hash for); returns whether the entry changed and the lock should be saved.
pub fn record_hashes(locked: &mut LockedModel, staged: &[StagedFile]) -> bool {
    let mut changed = false;
    for s in staged {
        changed |= locked.record_hashes(&s.rel_path, &s.hashes.sha256, &s.hashes.blake3);
    }
    changed
}

#[cfg(test)]
mod tests {
    /// The CLI shares one `Fetcher` between threads and reports from download threads.
    #[test]
    fn fetcher_is_shareable() {
        fn shareable<T: Send + Sync>() {}
        shareable::<super::Fetcher>();
        shareable::<super::FetchError>();
    }
}
