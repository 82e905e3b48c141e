//! The lock file's rules: for each remote model of a manifest, whether it comes from the lock,
//! from a saved plan, or from the network, and what the lock file should say afterwards.
//!
//! The rules, in the order they apply to each remote model:
//!
//! 1. A saved plan's resolution wins: `mlib apply plan.json` fetches exactly what the plan
//!    resolved, never a newer commit, and the lock is updated to it.
//! 2. A lock entry that is fresh for the model ([`Lock::fresh`]) is used as it is: no request.
//! 3. With [`LockPolicy::lock_only`] (status, scan) a model the lock does not cover is left
//!    out: nothing is resolved.
//! 4. With [`LockPolicy::locked`] (`--locked`) it is refused, with why (not in the lock, or
//!    what changed in the manifest since it was locked); every refused model is named in one
//!    error.
//! 5. Otherwise it is resolved by the [`Fetcher`] (HEAD/API requests only). Offline
//!    ([`crate::FetchConfig::offline`]) the fetcher resolves from the HuggingFace cache or
//!    fails with [`FetchError::Offline`]: offline is the fetcher's rule, applied here too.
//!
//! Then entries of models no longer in the manifest (or no longer remote) are dropped, and
//! [`Resolved::lock_changed`] says whether the lock differs from the file on disk (no file and
//! no remote model is no change: a manifest without remote models gets no lock file).
//!
//! Why here, next to [`Fetcher::resolve_with_lock`], and not in `mlib_manifest::lock`: rule 5
//! and the offline rule are the fetcher's, only this crate knows which sources are remote
//! ([`crate::is_remote`]), and a failed resolution is a [`FetchError`]. In the manifest crate
//! the policy would take the fetcher as a callback, and its tests would test the callback;
//! here they run against the real fetcher and a real server on loopback
//! (`tests/fetch/policy.rs`).

use std::collections::{BTreeMap, HashMap};

use mlib_manifest::Manifest;
use mlib_manifest::lock::{Lock, LockedModel};
use tracing::debug;

use crate::{FetchError, Fetcher, Reporter, Resolution, is_remote};

/// What a command allows when resolving its manifest's remote models.
#[derive(Debug, Clone, Copy, Default)]
pub struct LockPolicy<'a> {
    /// `--locked`: a model the lock does not cover is an error, never resolved.
    pub locked: bool,
    /// Only what the lock (or a saved plan) says: a model it does not cover is left out of
    /// [`Resolved::models`], and nothing is resolved (`status`, `scan`).
    pub lock_only: bool,
    /// Resolutions a saved plan carries, by model name: they win over the lock and the network.
    pub saved: Option<&'a BTreeMap<String, LockedModel>>,
}

/// Every remote model of a manifest, resolved.
#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub models: HashMap<String, LockedModel>,
    /// The lock as it should be written: fresh entries kept, new resolutions added, entries of
    /// models no longer in the manifest dropped.
    pub lock: Lock,
    /// Models resolved over the network (not covered by the lock), in manifest order.
    pub newly_resolved: Vec<String>,
    /// Whether `lock` differs from the lock file on disk.
    pub lock_changed: bool,
}

/// A model `--locked` refused to resolve, and why the lock does not cover it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    pub name: String,
    pub why: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "--locked: {lock_file} does not cover the manifest: {}\n\nRun `mlib lock` and commit {lock_file}.",
        list(.uncovered)
    )]
    NotCovered {
        /// The lock file's name (`models.lock`).
        lock_file: String,
        uncovered: Vec<Uncovered>,
    },
    #[error("cannot resolve model `{name}` ({model_source})")]
    Resolve {
        name: String,
        /// The source as written in the manifest (`${VAR}` unexpanded).
        model_source: String,
        /// Boxed: a `FetchError` is large and this error is returned on every path.
        #[source]
        error: Box<FetchError>,
    },
    /// More than one model could not be resolved: each [`ResolveError::Resolve`], in
    /// manifest order.
    #[error("cannot resolve {} models:\n{}", errors.len(), each(errors))]
    Several { errors: Vec<ResolveError> },
}

/// One line per error, with its causes (a list has no single `source()` to chain).
fn each(errors: &[ResolveError]) -> String {
    let lines: Vec<String> = errors
        .iter()
        .map(|e| {
            let mut line = format!("  - {e}");
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                line.push_str(&format!(": {c}"));
                cause = c.source();
            }
            line
        })
        .collect();
    lines.join("\n")
}

fn list(uncovered: &[Uncovered]) -> String {
    let items: Vec<String> = uncovered
        .iter()
        .map(|u| format!("{} ({})", u.name, u.why))
        .collect();
    items.join(", ")
}

impl Fetcher {
    /// Resolves every remote model of `manifest` by the rules above, against `on_disk` (its
    /// lock file's content, if there is one). Resolving reports retries to `reporter`.
    pub fn resolve_manifest(
        &self,
        manifest: &Manifest,
        on_disk: Option<&Lock>,
        policy: &LockPolicy<'_>,
        reporter: &dyn Reporter,
    ) -> Result<Resolved, ResolveError> {
        let mut lock = on_disk.cloned().unwrap_or_default();
        let mut models = HashMap::new();
        let mut newly_resolved = Vec::new();
        let mut uncovered = Vec::new();
        // Every broken source is reported at once, not only the first: fixing a manifest one
        // source per run is slow when each run waits on the network.
        let mut failed = Vec::new();
        for model in manifest.models.values().filter(|m| is_remote(&m.source)) {
            let name = model.name.as_str();
            if let Some(entry) = policy.saved.and_then(|s| s.get(name)) {
                debug!(model = name, "from the saved plan");
                lock.models.insert(name.to_owned(), entry.clone());
                models.insert(name.to_owned(), entry.clone());
                continue;
            }
            if let Some(entry) = lock.fresh(model) {
                debug!(model = name, "from the lock");
                models.insert(name.to_owned(), entry.clone());
                continue;
            }
            let why = lock
                .models
                .get(name)
                .and_then(|entry| entry.stale_reason(model))
                .unwrap_or_else(|| "not in the lock".into());
            if policy.lock_only {
                debug!(
                    model = name,
                    why, "not covered by the lock: left out (lock only)"
                );
                continue;
            }
            if policy.locked {
                debug!(
                    model = name,
                    why, "refused: --locked and the lock does not cover it"
                );
                uncovered.push(Uncovered {
                    name: name.to_owned(),
                    why,
                });
                continue;
            }
            debug!(model = name, source = %model.source, why, "resolving");
            let (entry, how) = match self.resolve_with_lock(model, Some(&lock), reporter) {
                Ok(resolved) => resolved,
                Err(error) => {
                    debug!(model = name, %error, "cannot resolve");
                    failed.push(ResolveError::Resolve {
                        name: name.to_owned(),
                        model_source: model.source.to_string(),
                        error: Box::new(error),
                    });
                    continue;
                }
            };
            if how == Resolution::Resolved {
                debug!(
                    model = name,
                    commit = entry.commit.as_deref(),
                    version = entry.version_id,
                    files = entry.files.len(),
                    "resolved"
                );
                newly_resolved.push(name.to_owned());
            }
            lock.models.insert(name.to_owned(), entry.clone());
            models.insert(name.to_owned(), entry);
        }
        if failed.len() == 1 {
            return Err(failed.remove(0));
        }
        if !failed.is_empty() {
            return Err(ResolveError::Several { errors: failed });
        }
        if !uncovered.is_empty() {
            let lock_path = manifest.lock_path();
            let lock_file = lock_path.file_name().unwrap_or_default().to_string_lossy();
            return Err(ResolveError::NotCovered {
                lock_file: lock_file.into_owned(),
                uncovered,
            });
        }
        lock.retain(|name| {
            let keep = manifest
                .models
                .get(name)
                .is_some_and(|m| is_remote(&m.source));
            if !keep {
                debug!(
                    model = name,
                    "dropped from the lock: not a remote model of the manifest"
                );
            }
            keep
        });
        let lock_changed = on_disk != Some(&lock) && !(on_disk.is_none() && lock.models.is_empty());
        debug!(
            changed = lock_changed,
            remote = models.len(),
            resolved = newly_resolved.len(),
            "lock"
        );
        Ok(Resolved {
            models,
            lock,
            newly_resolved,
            lock_changed,
        })
    }
}
