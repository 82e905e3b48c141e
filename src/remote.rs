//! Remote models: resolving them against the manifest's lock file (or the network), and
//! fetching them into the store during apply.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use anyhow::Result;
use mlib_fetch::{FetchConfig, Fetcher, Resolved, Variables};
use mlib_manifest::lock::{Lock, LockedModel};
use mlib_manifest::{Manifest, Model};
use mlib_plan::{ApplyEvents, RemoteError, RemoteFetcher};
use mlib_store::{Metadata, ModelKey, Store};

use crate::progress::Progress;
use crate::settings::RemoteSettings;

pub fn load_lock(manifest: &Manifest) -> Result<Option<Lock>> {
    Ok(Lock::load(&manifest.lock_path())?)
}

/// A fetcher for `manifest`'s downloads: its mirrors (or `--mirrors`) tried before each origin.
pub fn fetcher_for(manifest: &Manifest, remote: &RemoteSettings, jobs: usize) -> Fetcher {
    fetcher_with(remote, jobs, remote.mirrors_for(manifest))
}

/// A fetcher for resolving (`lock`, `update`, `add`...), which never downloads model bytes.
pub fn fetcher(remote: &RemoteSettings, jobs: usize) -> Fetcher {
    fetcher_with(remote, jobs, Vec::new())
}

/// The fetch settings of this process: the environment (`HF_*`, `CIVITAI_*`, `AWS_*`) under
/// the flags.
pub fn fetch_config(remote: &RemoteSettings, jobs: usize) -> FetchConfig {
    let mut config = FetchConfig::from_env(&|name| std::env::var(name).ok());
    // `${VAR}` in URL sources is read when (and only when) the request is made.
    config.variables = Variables::new(|name| std::env::var(name).ok());
    config.offline |= remote.offline;
    config.allow_http |= remote.allow_http;
    config.allow_unpinned |= remote.allow_unpinned;
    config.jobs = jobs.max(1);
    config
}

fn fetcher_with(
    remote: &RemoteSettings,
    jobs: usize,
    mirrors: Vec<mlib_manifest::MirrorUrl>,
) -> Fetcher {
    let mut config = fetch_config(remote, jobs);
    config.mirrors = mirrors;
    Fetcher::new(config)
}

/// Resolves every remote model of the manifest by the lock file's rules
/// ([`mlib_fetch::LockPolicy`]: the lock first, `--locked`, a saved plan's resolutions, entries
/// of removed models dropped), against the lock file on disk.
pub fn resolve(
    manifest: &Manifest,
    fetcher: &Fetcher,
    remote: &RemoteSettings,
    saved: Option<&BTreeMap<String, LockedModel>>,
    progress: Option<&Progress>,
) -> Result<Resolved> {
    let on_disk = load_lock(manifest)?;
    let reporter: &dyn mlib_fetch::Reporter = match progress {
        Some(p) => p,
        None => &mlib_fetch::NoReporter,
    };
    let policy = remote.lock_policy(saved);
    Ok(fetcher.resolve_manifest(manifest, on_disk.as_ref(), &policy, reporter)?)
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
    if mlib_fs::platform::rotational(store) == Some(true) {
        2
    } else {
        4
    }
}
