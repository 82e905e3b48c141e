//! `mlib scan`: rebuild the registry's file index from metadata.json, and record links that
//! are already in place. The index is a cache; metadata.json is the truth.

use std::path::Path;

use anyhow::{Context as _, Result};
use mlib_plan::{ApplyContext, NoRemote, Silent};
use mlib_registry::{FileStat, IndexEntry};
use mlib_store::ModelKey;
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;

pub fn run(file: &Path, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(file, printer)?;
    let state = ctx.state_dir();
    fs_err::create_dir_all(&state).with_context(|| format!("cannot create {}", state.display()))?;
    let _lock = mlib_registry::ApplyLock::acquire(
        &state,
        "mlib scan",
        std::time::Duration::from_secs(300),
        &mut |_| printer.warn("waiting for an apply on this store to finish"),
    )?;
    let registry = ctx.open_registry()?;
    let store_root = mlib_plan::paths::physical(ctx.store.root())?;

    registry.index_clear()?;
    let mut models = 0;
    let mut files = 0;
    let mut missing = Vec::new();
    for (_, metadata) in ctx.store.scan()? {
        models += 1;
        let key = ModelKey {
            name: &metadata.name,
            model_type: &metadata.model_type,
            family: metadata.family.as_deref(),
        };
        let dir = ctx.store.model_dir(&key);
        for record in &metadata.files {
            let path = dir.join(&record.path);
            let Ok(stat) = FileStat::stat(&path) else {
                missing.push(path);
                continue;
            };
            let physical = mlib_plan::paths::physical(&path)?;
            registry.index_put(&IndexEntry {
                path: mlib_plan::desired::rel_to(&store_root, &physical),
                size: stat.size,
                mtime_ns: stat.mtime_ns,
                ino: stat.ino,
                sha256: record.sha256.clone(),
                blake3: record.blake3.clone(),
            })?;
            files += 1;
        }
    }

    // Links already in place (made before the registry was lost) become known again.
    let offline = crate::cli::RemoteArgs {
        offline: true,
        ..Default::default()
    };
    let mut plan = super::planning::compute(
        &ctx,
        &registry,
        true,
        &super::planning::PlanRequest::lock_only(&offline),
        None,
    )?
    .plan;
    plan.actions.clear();
    let recorded = plan
        .bookkeeping
        .iter()
        .filter(|b| matches!(b, mlib_plan::Bookkeeping::Record(_)))
        .count();
    mlib_plan::apply(
        &ApplyContext {
            manifest: &ctx.manifest,
            manifest_id: &ctx.manifest_id,
            store: &ctx.store,
            registry: &registry,
            remote: &NoRemote,
            events: &Silent,
            jobs: 1,
        },
        &plan,
    )?;

    for path in &missing {
        printer.warn(format!(
            "{} is listed in its metadata.json but missing",
            path.display()
        ));
    }
    if printer.json {
        printer.event(json!({"type": "scan_complete", "models": models, "files": files, "links_recorded": recorded, "missing": missing.len()}));
    } else {
        printer.info(format!(
            "Indexed {files} file{} of {models} model{}; recorded {recorded} link{} already in place.",
            if files == 1 { "" } else { "s" },
            if models == 1 { "" } else { "s" },
            if recorded == 1 { "" } else { "s" },
        ));
    }
    Ok(if missing.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}
