//! Before an apply plans: what a killed apply left behind, removed.
//!
//! A kill can leave temporary names (`mlib_fs::temp`) next to links being made, staged work
//! in the store, a half-written metadata file in the flat layout's metadata folders, or a
//! lock file being replaced next to the manifest. All carry their writer's pid and start
//! time, so those of processes that are gone are removed here, under the apply lock. Finished
//! but unrecorded links are not this module's: the plan recognises them (the journal says
//! which targets were being made) and records them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mlib_registry::{Registry, Run};
use mlib_store::Store;

use crate::error::PlanError;

/// What [`recover`] found and did.
#[derive(Debug, Default)]
pub struct Recovery {
    /// An apply of this environment that was killed (the last run did not finish).
    pub interrupted: Option<Run>,
    /// Temporary files and folders removed.
    pub removed: Vec<PathBuf>,
    /// Files a person had added to a model folder being replaced, kept in the quarantine.
    pub kept: Vec<PathBuf>,
    /// Files a person was moving into the store, put back where they were.
    pub restored: Vec<PathBuf>,
    /// Files a person was moving into the store, kept in the quarantine (their place was
    /// taken since).
    pub moved_kept: Vec<PathBuf>,
}

/// Where to look.
pub struct RecoverInput<'a> {
    pub registry: &'a Registry,
    pub store: &'a Store,
    /// The environment about to be applied (`None` before it was ever applied).
    pub env: Option<i64>,
    /// The manifest's folder (a lock file is replaced there).
    pub manifest_dir: &'a Path,
    /// The state folder (the apply lock's holder file is replaced there).
    pub state_dir: &'a Path,
    /// Whether the store may be written (a read-only store has nothing of ours to remove).
    pub store_writable: bool,
}

pub fn recover(input: &RecoverInput) -> Result<Recovery, PlanError> {
    let mut recovery = Recovery::default();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PlanError::Io { path, source }
    };
    recovery
        .removed
        .extend(mlib_fs::temp::remove_stale(input.state_dir).map_err(io(input.state_dir))?);
    // The lock file is replaced there by `apply` before and after its run, and by `mlib lock`
    // and `mlib update`, which have no run: a kill in any of them leaves a temporary name.
    recovery
        .removed
        .extend(mlib_fs::temp::remove_stale(input.manifest_dir).map_err(io(input.manifest_dir))?);
    if input.store_writable {
        let cleaned = input
            .store
            .clean_staging()
            .map_err(|source| PlanError::Store {
                model: String::new(),
                source,
            })?;
        recovery.removed.extend(cleaned.removed);
        recovery.kept.extend(cleaned.kept);
        recovery.restored.extend(cleaned.restored);
        recovery.moved_kept.extend(cleaned.moved_kept);
    }
    let Some(env) = input.env else {
        return Ok(recovery);
    };
    recovery.interrupted = input
        .registry
        .interrupted_runs()?
        .into_iter()
        .find(|run| run.env == env);
    // Folders where links were being made or removed by a process that is gone.
    let folders: BTreeSet<PathBuf> = input
        .registry
        .pending()?
        .into_iter()
        .filter(|p| p.env == env && !p.writer.is_alive())
        .filter_map(|p| p.target.parent().map(Path::to_path_buf))
        .collect();
    for folder in &folders {
        recovery
            .removed
            .extend(mlib_fs::temp::remove_stale(folder).map_err(io(folder))?);
    }
    if recovery.interrupted.is_some() && input.store_writable {
        let flat = input
            .store
            .clean_flat_metadata()
            .map_err(|source| PlanError::Store {
                model: String::new(),
                source,
            })?;
        recovery.removed.extend(flat);
    }
    Ok(recovery)
}
