//! Remote models: resolving them against the manifest's lock file (or the network), and
//! fetching them into the store during apply.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use anyhow::{Context as _, Result, bail};
use mlib_fetch::{FetchConfig, Fetcher, Resolution, Variables};
use mlib_manifest::lock::{Lock, LockedModel};
use mlib_manifest::{Manifest, Model};
use mlib_plan::{ApplyEvents, RemoteError, RemoteFetcher};
use mlib_store::{Metadata, ModelKey, Store};

use crate::cli::RemoteArgs;
use crate::progress::Progress;

pub fn load_lock(manifest: &Manifest) -> Result<Option<Lock>> {
    Ok(Lock::load(&manifest.lock_path())?)
}

pub fn fetcher(args: &RemoteArgs, jobs: usize) -> Fetcher {
    let mut config = FetchConfig::from_env(&|name| std::env::var(name).ok());
    // `${VAR}` in URL sources is read when (and only when) the request is made.
    config.variables = Variables::new(|name| std::env::var(name).ok());
    config.offline |= args.offline;
    config.allow_http |= args.allow_http;
    config.allow_unpinned |= args.allow_unpinned;
    config.jobs = jobs.max(1);
    Fetcher::new(config)
}

/// Every remote model of the manifest, resolved.
pub struct Resolved {
    pub models: HashMap<String, LockedModel>,
    /// The lock as it should be written: fresh entries kept, new resolutions added, entries of
    /// models no longer in the manifest dropped.
    pub lock: Lock,
    /// Models resolved over the network (not covered by the lock).
    pub newly_resolved: Vec<String>,
    /// Whether `lock` differs from the file on disk.
    pub lock_changed: bool,
}

/// Resolves every remote model: from the lock when it covers the model (no request), else
/// over the network (HEAD/API only). `--locked` refuses to resolve anything new.
pub fn resolve(
    manifest: &Manifest,
    fetcher: &Fetcher,
    args: &RemoteArgs,
    saved: Option<&BTreeMap<String, LockedModel>>,
    progress: Option<&Progress>,
    lock_only: bool,
) -> Result<Resolved> {
    let on_disk = load_lock(manifest)?;
    let mut lock = on_disk.clone().unwrap_or_default();
    let mut models = HashMap::new();
    let mut newly_resolved = Vec::new();
    let mut uncovered = Vec::new();
    let reporter: &dyn mlib_fetch::Reporter = match progress {
        Some(p) => p,
        None => &mlib_fetch::NoReporter,
    };
    for model in manifest
        .models
        .values()
        .filter(|m| mlib_fetch::is_remote(&m.source))
    {
        // A saved plan carries what it resolved: apply exactly that, never a newer commit.
        if let Some(entry) = saved.and_then(|s| s.get(&model.name)) {
            lock.models.insert(model.name.clone(), entry.clone());
            models.insert(model.name.clone(), entry.clone());
            continue;
        }
        if let Some(entry) = lock.fresh(model) {
            models.insert(model.name.clone(), entry.clone());
            continue;
        }
        if lock_only {
            // Status and scan judge remote models by the lock and the store alone.
            continue;
        }
        if args.locked {
            let why = lock
                .models
                .get(&model.name)
                .and_then(|l| l.stale_reason(model))
                .unwrap_or_else(|| "not in the lock".into());
            uncovered.push(format!("{} ({why})", model.name));
            continue;
        }
        let (entry, how) = fetcher
            .resolve_with_lock(model, Some(&lock), reporter)
            .with_context(|| format!("cannot resolve model `{}` ({})", model.name, model.source))?;
        if how == Resolution::Resolved {
            newly_resolved.push(model.name.clone());
        }
        lock.models.insert(model.name.clone(), entry.clone());
        models.insert(model.name.clone(), entry);
    }
    if !uncovered.is_empty() {
        let lock = manifest.lock_path();
        let lock = lock.file_name().unwrap_or_default().to_string_lossy();
        bail!(
            "--locked: {lock} does not cover the manifest: {}\n\nRun `mlib lock` and commit {lock}.",
            uncovered.join(", ")
        );
    }
    lock.retain(|name| {
        manifest
            .models
            .get(name)
            .is_some_and(|m| mlib_fetch::is_remote(&m.source))
    });
    let lock_changed =
        on_disk.as_ref() != Some(&lock) && !(on_disk.is_none() && lock.models.is_empty());
    Ok(Resolved {
        models,
        lock,
        newly_resolved,
        lock_changed,
    })
}

/// Downloads remote models for apply and commits them to the store, learning hashes of
/// files no server published one for (they go into the lock afterwards).
pub struct CliRemote<'a> {
    pub fetcher: &'a Fetcher,
    pub resolved: &'a HashMap<String, LockedModel>,
    pub progress: &'a Progress,
    pub learned: Mutex<Vec<(String, Vec<mlib_store::StagedFile>)>>,
}

impl RemoteFetcher for CliRemote<'_> {
    fn fetch(
        &self,
        model: &Model,
        store: &Store,
        _events: &dyn ApplyEvents,
    ) -> Result<Metadata, RemoteError> {
        let locked = self
            .resolved
            .get(&model.name)
            .ok_or_else(|| RemoteError::NotResolved {
                model: model.name.clone(),
            })?;
        let staging = store.staging_dir()?;
        let staged = self
            .fetcher
            .fetch(&model.name, locked, &staging, self.progress)
            .map_err(|err| RemoteError::Download(Box::new(err)))?;
        self.learned
            .lock()
            .expect("learned")
            .push((model.name.clone(), staged.clone()));
        let key = ModelKey {
            name: &model.name,
            model_type: &model.model_type,
            family: model.family.as_deref(),
        };
        Ok(store.commit(&key, staged, &model.source.to_string())?)
    }
}

impl CliRemote<'_> {
    /// Writes hashes learned while downloading into `lock`; returns whether it changed.
    pub fn record_into(&self, lock: &mut Lock) -> bool {
        let mut changed = false;
        for (name, staged) in self.learned.lock().expect("learned").iter() {
            if let Some(entry) = lock.models.get_mut(name) {
                changed |= mlib_fetch::record_hashes(entry, staged);
            }
        }
        changed
    }
}

/// Files fetched at once when `--jobs` is not given: parallel writes help on SSDs and hurt on
/// spinning disks, where seeking between files costs more than it gains.
pub fn default_jobs(store: &std::path::Path) -> usize {
    if rotational(store) == Some(true) {
        2
    } else {
        4
    }
}

/// Whether the block device holding `path` (or its nearest existing ancestor) spins, as
/// Linux reports it in sysfs; `None` when that cannot be told (tmpfs, other systems).
fn rotational(path: &std::path::Path) -> Option<bool> {
    use std::os::unix::fs::MetadataExt;
    let dev = path.ancestors().find_map(|p| p.metadata().ok())?.dev();
    let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
    let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
    let base = std::path::PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    // A partition has no queue of its own: its parent disk's is one level up.
    [
        base.join("queue/rotational"),
        base.join("../queue/rotational"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|text| text.trim() == "1")
}
