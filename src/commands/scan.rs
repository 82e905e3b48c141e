//! `mlib scan`: rebuild the registry's file index from the store's metadata.json files, and
//! record links that are already in place.
//!
//! The index is a cache of trust: an entry says "this file, with this stamp, has these
//! hashes". Scan keeps entries that still hold, indexes files that the stamp in their
//! metadata.json vouches for, and hashes every other file before indexing it, so a file
//! changed behind mlib's back is reported, never blessed with its old hashes.

use std::collections::HashSet;

use anyhow::{Context as _, Result};
use mlib_plan::integrity::{self, FileCheck};
use mlib_plan::{ApplyContext, NoRemote, Silent};
use mlib_registry::IndexEntry;
use mlib_store::ModelKey;
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn run(global: &GlobalSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let state = ctx.state_dir();
    fs_err::create_dir_all(state).with_context(|| format!("cannot create {}", state.display()))?;
    let _lock = mlib_registry::ApplyLock::acquire(
        state,
        "mlib scan",
        std::time::Duration::from_secs(300),
        &mut |_| printer.warn("waiting for an apply on this store to finish"),
    )?;
    let registry = ctx.open_registry()?;
    let store_root = &ctx.store_root;
    let old_index = registry.index_all()?;

    let mut models = 0;
    let mut entries = Vec::new();
    let mut hashed = 0;
    let mut problems = Vec::new();
    let mut listed = HashSet::new();
    for (_, metadata) in ctx.store.scan()? {
        models += 1;
        let key = ModelKey {
            name: &metadata.name,
            model_type: &metadata.model_type,
            family: metadata.family.as_deref(),
        };
        let dir = mlib_plan::paths::physical(&ctx.store.model_dir(&key))?;
        for file in &metadata.files {
            let path = dir.join(&file.path);
            let rel = mlib_plan::desired::rel_to(store_root, &path);
            listed.insert(rel.clone());
            let stamp = mlib_fs::FileStamp::read(&path).ok();
            let indexed = old_index.get(&rel);
            let was_trusted = stamp
                .is_some_and(|s| indexed.is_some_and(|ix| ix.matches(&s)) || file.stamp == Some(s));
            match integrity::check(file, &rel, &path, stamp, indexed, &mut |_| {}) {
                FileCheck::Trusted => {}
                FileCheck::Verified(v) => {
                    hashed += usize::from(!was_trusted);
                    entries.push(IndexEntry::new(v.path, &v.stamp, v.sha256, v.blake3));
                }
                FileCheck::Missing => {
                    registry.index_remove(&rel)?;
                    problems.push(format!("{rel} is listed in its metadata.json but missing"));
                }
                FileCheck::Changed(what) => {
                    registry.index_remove(&rel)?;
                    problems.push(format!(
                        "{rel} changed: {what}; `mlib apply` moves it to quarantine and restores the model"
                    ));
                }
            }
        }
    }
    registry.index_put_many(&entries)?;
    for gone in old_index.keys().filter(|path| !listed.contains(*path)) {
        registry.index_remove(gone)?;
    }

    // Links already in place (made before the registry was lost) become known again.
    let mut plan = super::planning::compute(
        &ctx,
        &registry,
        true,
        &super::planning::PlanRequest::lock_only(),
        None,
    )?
    .plan;
    plan.actions.clear();
    // Records of links in place, and the claims they may need (links an older mlib recorded).
    plan.bookkeeping.retain(|b| {
        matches!(
            b,
            mlib_plan::Bookkeeping::Record(_) | mlib_plan::Bookkeeping::Claim { .. }
        )
    });
    let recorded = plan
        .bookkeeping
        .iter()
        .filter(|b| matches!(b, mlib_plan::Bookkeeping::Record(_)))
        .count();
    if !plan.bookkeeping.is_empty() {
        let env = registry.record_environment(&ctx.env.to_record(&ctx.manifest))?;
        mlib_plan::apply(
            &ApplyContext {
                manifest: &ctx.manifest,
                env: env.id,
                store: &ctx.store,
                registry: &registry,
                remote: &NoRemote,
                events: &Silent,
                jobs: 1,
            },
            &plan,
        )?;
    }

    for problem in &problems {
        printer.warn(problem);
    }
    let files = listed.len() - problems.len();
    if printer.json {
        printer.event(json!({
            "type": "scan_complete",
            "models": models,
            "files": files,
            "hashed": hashed,
            "links_recorded": recorded,
            "problems": problems,
        }));
    } else {
        printer.info(format!(
            "Indexed {files} file{} of {models} model{} ({hashed} hashed); recorded {recorded} link{} already in place.",
            if files == 1 { "" } else { "s" },
            if models == 1 { "" } else { "s" },
            if recorded == 1 { "" } else { "s" },
        ));
    }
    Ok(if problems.is_empty() {
        Status::Success
    } else {
        Status::Failure
    })
}
