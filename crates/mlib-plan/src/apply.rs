//! The apply executor: carries out a [`Plan`] in a safe order and records every link.
//!
//! Order: unlink what is no longer wanted (frees names a relink may need), fetch into the
//! store (in parallel), adopt users' identical files, then link and relink. A failed fetch
//! skips only that model's links; every other item still runs, and the report lists what
//! failed. Conflicts are never touched.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use mlib_manifest::{Manifest, Model, Source};
use mlib_registry::{FileStat, IndexEntry, LinkRecord, NewLink, Registry};
use mlib_store::{Expected, Metadata, Store};

use crate::action::{Action, Adopt, Bookkeeping, Fetch, Link, LinkHow};
use crate::desired::{key, rel_to};
use crate::error::PlanError;
use crate::link;
use crate::paths;
use crate::planner::kind_of;
use crate::saved::Plan;

/// Fetches a remote model into the store (the CLI wires mlib-fetch in here).
pub trait RemoteFetcher: Sync {
    fn fetch(
        &self,
        model: &Model,
        store: &Store,
        progress: &dyn ApplyEvents,
    ) -> Result<Metadata, Box<dyn std::error::Error + Send + Sync>>;
}

/// A fetcher for manifests with local sources only.
pub struct NoRemote;

impl RemoteFetcher for NoRemote {
    fn fetch(
        &self,
        model: &Model,
        _: &Store,
        _: &dyn ApplyEvents,
    ) -> Result<Metadata, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("remote source {} cannot be fetched here", model.source).into())
    }
}

/// What apply tells its caller as it goes (the CLI prints it).
pub trait ApplyEvents: Sync {
    fn started(&self, _action: &Action) {}
    fn finished(&self, _action: &Action, _error: Option<&str>) {}
    /// Bytes copied into the store for `model` since the last call.
    fn progress(&self, _model: &str, _bytes: u64) {}
    fn warning(&self, _message: &str) {}
}

pub struct Silent;
impl ApplyEvents for Silent {}

pub struct ApplyContext<'a> {
    pub manifest: &'a Manifest,
    pub manifest_id: &'a str,
    pub store: &'a Store,
    pub registry: &'a Registry,
    pub remote: &'a dyn RemoteFetcher,
    pub events: &'a dyn ApplyEvents,
    /// Models fetched at once.
    pub jobs: usize,
}

#[derive(Debug, Default)]
pub struct ApplyReport {
    pub done: usize,
    pub failed: Vec<(Action, String)>,
    pub refused: usize,
}

impl ApplyReport {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.refused == 0
    }
}

pub fn apply(ctx: &ApplyContext, plan: &Plan) -> Result<ApplyReport, PlanError> {
    let mut report = ApplyReport::default();
    let store_root = paths::physical(ctx.store.root()).map_err(|source| PlanError::Io {
        path: ctx.store.root().to_path_buf(),
        source,
    })?;

    for action in &plan.actions {
        if let Action::Unlink(unlink) = action {
            ctx.events.started(action);
            let result = unlink_one(ctx, unlink.record, &unlink.target);
            finish(ctx, &mut report, action, result);
        }
    }

    let failed_models = fetch_all(ctx, plan, &store_root, &mut report);

    for action in &plan.actions {
        match action {
            Action::Adopt(adopt) => {
                ctx.events.started(action);
                let result = adopt_one(ctx, adopt, &store_root);
                finish(ctx, &mut report, action, result);
            }
            Action::Link(l) | Action::Relink(l) => {
                if failed_models.contains(l.model.as_str()) {
                    report.failed.push((
                        action.clone(),
                        format!("skipped: model `{}` could not be fetched", l.model),
                    ));
                    continue;
                }
                ctx.events.started(action);
                let result = link_one(ctx, l);
                finish(ctx, &mut report, action, result);
            }
            Action::Conflict(_) => report.refused += 1,
            Action::Fetch(_) | Action::Unlink(_) => {}
        }
    }

    for item in &plan.bookkeeping {
        let result = match item {
            Bookkeeping::Record(l) => record(ctx, l, l.how),
            Bookkeeping::Forget { record, .. } => {
                ctx.registry.delete_link(*record).map_err(|e| e.to_string())
            }
            Bookkeeping::Index { model } => reindex(ctx, &store_root, model),
        };
        if let Err(err) = result {
            ctx.events
                .warning(&format!("registry housekeeping failed: {err}"));
        }
    }
    Ok(report)
}

fn finish(
    ctx: &ApplyContext,
    report: &mut ApplyReport,
    action: &Action,
    result: Result<(), String>,
) {
    ctx.events
        .finished(action, result.as_ref().err().map(String::as_str));
    match result {
        Ok(()) => report.done += 1,
        Err(err) => report.failed.push((action.clone(), err)),
    }
}

fn unlink_one(ctx: &ApplyContext, record: i64, target: &Path) -> Result<(), String> {
    let Some(row) = our_row(ctx, target, record)? else {
        return Err("the registry no longer has this link; left alone".into());
    };
    match FileStat::lstat(target) {
        Ok(stat) if stat == row.stat => link::remove(target).map_err(|e| e.to_string())?,
        Ok(_) => return Err("changed since the plan was made; left alone".into()),
        Err(_) => {}
    }
    ctx.registry.delete_link(record).map_err(|e| e.to_string())
}

/// Fetches every model the plan needs, `jobs` at a time; returns the models that failed.
fn fetch_all<'p>(
    ctx: &ApplyContext,
    plan: &'p Plan,
    store_root: &Path,
    report: &mut ApplyReport,
) -> HashSet<&'p str> {
    let fetches: Vec<&Fetch> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Fetch(f) => Some(f),
            _ => None,
        })
        .collect();
    let queue = Mutex::new(fetches.iter().copied());
    let results: Mutex<Vec<(&Fetch, Result<Metadata, String>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..ctx.jobs.max(1).min(fetches.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue").next();
                    let Some(fetch) = next else { break };
                    let action = Action::Fetch(fetch.clone());
                    ctx.events.started(&action);
                    let result = fetch_one(ctx, fetch);
                    ctx.events
                        .finished(&action, result.as_ref().err().map(String::as_str));
                    results.lock().expect("results").push((fetch, result));
                }
            });
        }
    });
    let mut failed = HashSet::new();
    for (fetch, result) in results.into_inner().expect("results") {
        match result {
            Ok(metadata) => {
                report.done += 1;
                let model = &ctx.manifest.models[&fetch.model];
                if let Err(err) = index_model(ctx, store_root, model, &metadata) {
                    ctx.events
                        .warning(&format!("could not index model `{}`: {err}", model.name));
                }
            }
            Err(err) => {
                failed.insert(fetch.model.as_str());
                report.failed.push((Action::Fetch(fetch.clone()), err));
            }
        }
    }
    failed
}

fn fetch_one(ctx: &ApplyContext, fetch: &Fetch) -> Result<Metadata, String> {
    let model = ctx
        .manifest
        .models
        .get(&fetch.model)
        .ok_or_else(|| format!("model `{}` is not in the manifest", fetch.model))?;
    match &model.source {
        Source::Local(path) => {
            let expected = Expected {
                sha256: model.sha256.clone(),
                blake3: model.blake3.clone(),
            };
            let mut progress = |bytes: u64| ctx.events.progress(&model.name, bytes);
            ctx.store
                .ingest_local_as(
                    &key(model),
                    path,
                    model.file.as_deref(),
                    &expected,
                    &model.source.to_string(),
                    &mut progress,
                )
                .map_err(|e| e.to_string())
        }
        _ => ctx
            .remote
            .fetch(model, ctx.store, ctx.events)
            .map_err(|e| e.to_string()),
    }
}

fn adopt_one(ctx: &ApplyContext, adopt: &Adopt, store_root: &Path) -> Result<(), String> {
    let link = &adopt.link;
    // Hash again: the plan may be minutes old and the file is about to be replaced.
    let hashes = mlib_store::hash_file(&link.target).map_err(|e| e.to_string())?;
    if hashes.sha256 != adopt.sha256 {
        return Err("the file changed since the plan was made; left alone".into());
    }
    let model = &ctx.manifest.models[&link.model];
    if adopt.into_store && !link.source.exists() {
        // The user's file becomes the store's copy (a move on one filesystem, else a copy).
        let expected = Expected {
            sha256: Some(adopt.sha256.clone()),
            blake3: model.blake3.clone(),
        };
        let mut progress = |bytes: u64| ctx.events.progress(&model.name, bytes);
        let metadata = ctx
            .store
            .ingest_local_as(
                &key(model),
                &link.target,
                link.source.file_name().and_then(|n| n.to_str()),
                &expected,
                &model.source.to_string(),
                &mut progress,
            )
            .map_err(|e| e.to_string())?;
        if let Err(err) = index_model(ctx, store_root, model, &metadata) {
            ctx.events
                .warning(&format!("could not index model `{}`: {err}", model.name));
        }
    }
    let made = link::make(&link.source, &link.target, link.how, true).map_err(|e| e.to_string())?;
    record(ctx, link, made.how)
}

/// The registry row `id` at `target`, if it is still there and this manifest's.
fn our_row(ctx: &ApplyContext, target: &Path, id: i64) -> Result<Option<LinkRecord>, String> {
    let row = ctx.registry.link_at(target).map_err(|e| e.to_string())?;
    Ok(row.filter(|r| r.id == id && r.manifest == ctx.manifest_id))
}

fn link_one(ctx: &ApplyContext, l: &Link) -> Result<(), String> {
    if let (Some(old), Some(id)) = (&l.moved_from, l.replaces) {
        return move_one(ctx, l, old, id);
    }
    if let Some(id) = l.replaces {
        // Replace only what the registry says is ours and nobody changed since.
        match our_row(ctx, &l.target, id)? {
            Some(row) => {
                if let Ok(stat) = FileStat::lstat(&l.target)
                    && stat != row.stat
                {
                    return Err("changed since the plan was made; left alone".into());
                }
            }
            None if l.target.symlink_metadata().is_ok() => {
                return Err("the registry no longer has this link; left alone".into());
            }
            None => {}
        }
    }
    let replace = l.replaces.is_some() && l.target.symlink_metadata().is_ok();
    let made = link::make(&l.source, &l.target, l.how, replace).map_err(|e| e.to_string())?;
    record(ctx, l, made.how)
}

/// A link whose folder changed: make the new one, then remove the old one if it is still
/// exactly what mlib made.
fn move_one(ctx: &ApplyContext, l: &Link, old: &Path, id: i64) -> Result<(), String> {
    let row = our_row(ctx, old, id)?;
    let made = link::make(&l.source, &l.target, l.how, false).map_err(|e| e.to_string())?;
    record(ctx, l, made.how)?;
    if let Some(row) = row {
        match FileStat::lstat(old) {
            Ok(stat) if stat == row.stat => link::remove(old).map_err(|e| e.to_string())?,
            Ok(_) => ctx.events.warning(&format!(
                "{} changed since mlib linked it; left in place",
                old.display()
            )),
            Err(_) => {}
        }
        ctx.registry.delete_link(id).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn record(ctx: &ApplyContext, l: &Link, how: LinkHow) -> Result<(), String> {
    let stat = FileStat::lstat(&l.target).map_err(|e| format!("{}: {e}", l.target.display()))?;
    ctx.registry
        .insert_link(&NewLink {
            manifest: ctx.manifest_id.to_string(),
            model: l.model.clone(),
            app: l.app.clone(),
            target: l.target.clone(),
            source: l.source.clone(),
            kind: kind_of(how),
            external: how == LinkHow::AbsoluteSymlink,
            stat,
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// Records the stat and hashes of every file of a stored model in the index (the hashes
/// come from its metadata.json: nothing is re-hashed).
fn index_model(
    ctx: &ApplyContext,
    store_root: &Path,
    model: &Model,
    metadata: &Metadata,
) -> Result<(), String> {
    let dir = store_root.join(rel_to(ctx.store.root(), &ctx.store.model_dir(&key(model))));
    for file in &metadata.files {
        let path = dir.join(&file.path);
        let stat = FileStat::stat(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        ctx.registry
            .index_put(&IndexEntry {
                path: rel_to(store_root, &path),
                size: stat.size,
                mtime_ns: stat.mtime_ns,
                ino: stat.ino,
                sha256: file.sha256.clone(),
                blake3: file.blake3.clone(),
            })
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn reindex(ctx: &ApplyContext, store_root: &Path, name: &str) -> Result<(), String> {
    let model = ctx
        .manifest
        .models
        .get(name)
        .ok_or_else(|| format!("model `{name}` is not in the manifest"))?;
    let metadata = ctx
        .store
        .read_metadata(&key(model))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("model `{name}` has no metadata in the store"))?;
    index_model(ctx, store_root, model, &metadata)
}
