//! The apply executor: carries out a [`Plan`] in a safe order and records every link.
//!
//! Order: unlink what is no longer wanted (frees names a relink may need), fetch into the
//! store (in parallel; a store file found changed goes to quarantine first), adopt users'
//! identical files, then link and relink. A failed fetch skips only that model's links;
//! every other item still runs, and the report lists what failed. Conflicts are never
//! touched.
//!
//! Crash safety: an apply that changes anything is recorded as a run, and every link it is
//! about to make or remove is journaled before its first change; recording a link clears
//! its journal entry in the same transaction. A kill at any moment therefore leaves either
//! nothing, or a finished link the next plan recognises and records, or temporary names
//! (`mlib_fs::temp`) the next apply removes.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;

use mlib_fs::par::parallel_map;
use mlib_fs::{FileStamp, platform};
use mlib_manifest::{Manifest, Model, Source};

use mlib_registry::{FileStat, IndexEntry, LinkKind, LinkRecord, NewLink, Registry};
use mlib_store::{Expected, Metadata, StagedModel, Store};

use crate::action::{Action, Adopt, Bookkeeping, Fetch, Link, LinkHow, Rename, Verified};
use crate::desired::{key, rel_to};
use crate::error::{ApplyError, PlanError, RemoteError};
use crate::link;
use crate::paths;
use crate::placeholder::{self, Clear};
use crate::planner::kind_of;
use crate::saved::Plan;

/// Fetches a remote model into the store (the CLI wires mlib-fetch in here, mapping its
/// errors into [`RemoteError`]).
pub trait RemoteFetcher: Sync {
    fn fetch(
        &self,
        model: &Model,
        store: &Store,
        progress: &dyn ApplyEvents,
    ) -> Result<Metadata, RemoteError>;
}

/// A fetcher for manifests with local sources only.
pub struct NoRemote;

impl RemoteFetcher for NoRemote {
    fn fetch(
        &self,
        model: &Model,
        _: &Store,
        _: &dyn ApplyEvents,
    ) -> Result<Metadata, RemoteError> {
        Err(RemoteError::Unsupported {
            url: model.source.to_string(),
        })
    }
}

/// What apply tells its caller as it goes (the CLI prints it).
pub trait ApplyEvents: Sync {
    fn started(&self, _action: &Action) {}
    fn finished(&self, _action: &Action, _error: Option<&ApplyError>) {}
    /// Bytes copied into the store for `model` since the last call.
    fn progress(&self, _model: &str, _bytes: u64) {}
    fn warning(&self, _message: &str) {}
    /// How a person's file got into the store for `action` (an adopt): moved, reflinked or
    /// copied.
    fn transferred(&self, _action: &Action, _how: mlib_store::Transfer) {}
}

pub struct Silent;
impl ApplyEvents for Silent {}

pub struct ApplyContext<'a> {
    pub manifest: &'a Manifest,
    /// The environment applied (its registry id): it owns every link recorded.
    pub env: i64,
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
    /// Each action that failed, with why.
    pub failed: Vec<(Action, ApplyError)>,
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
    let changes = plan.has_changes();
    if changes {
        ctx.registry.begin_run(ctx.env)?;
    }
    let store = StoreFiles {
        root: &store_root,
        registry: ctx.registry,
    };
    // Records this environment takes over, before anything checks whose a record is.
    let claims: Vec<i64> = plan
        .bookkeeping
        .iter()
        .filter_map(|b| match b {
            Bookkeeping::Claim { record } => Some(*record),
            _ => None,
        })
        .collect();
    if !claims.is_empty() {
        ctx.registry.claim_links(&claims, ctx.env)?;
    }

    // Journal every link about to be made or removed, before the first change: a kill while
    // making one leaves nothing the next plan would take for a user's file, a kill after a
    // model's store entry was replaced but before its copies were made again leaves those
    // copies journaled (the next plan compares them with the store instead of trusting
    // them), and the folders where a kill may have left temporary names are known.
    let touching: Vec<std::path::PathBuf> = plan
        .actions
        .iter()
        .flat_map(|a| match a {
            Action::Link(l) | Action::Relink(l) => vec![Some(&l.target), l.moved_from.as_ref()],
            Action::Adopt(a) => vec![Some(&a.link.target)],
            Action::Unlink(u) => vec![Some(&u.target)],
            _ => Vec::new(),
        })
        .flatten()
        .cloned()
        // A rename rewrites metadata.json (under a temporary name) in the model's folder,
        // at its old or new place: journaled, recovery removes what a kill leaves there.
        .chain(plan.actions.iter().flat_map(|a| match a {
            Action::Rename(r) => vec![
                r.from_dir.join("metadata.json"),
                r.to_dir.join("metadata.json"),
            ],
            _ => Vec::new(),
        }))
        .collect();
    ctx.registry.journal_links(ctx.env, &touching)?;

    for action in &plan.actions {
        if let Action::Unlink(unlink) = action {
            ctx.events.started(action);
            let result = unlink_one(ctx, &store, unlink.record, &unlink.target);
            if result.is_ok()
                && let Some(farm) = &unlink.prune
            {
                prune_empty(&unlink.target, farm);
            }
            finish(ctx, &mut report, action, result);
        }
    }

    // Renames before fetches: a model moved from one type to another frees nothing a fetch
    // needs, but its links (made below) need it in place.
    let mut failed_models: HashSet<&str> = HashSet::new();
    for action in &plan.actions {
        if let Action::Rename(rename) = action {
            ctx.events.started(action);
            let result = rename_one(ctx, rename, &store_root);
            if result.is_err() {
                failed_models.insert(rename.model.as_str());
            }
            finish(ctx, &mut report, action, result);
        }
    }
    failed_models.extend(fetch_all(ctx, plan, &store_root, &mut report));

    // Adopts that fill the store go first: the model's other links and adopts need its store
    // copy, and nothing of a model whose copy failed is replaced by a link.
    for action in &plan.actions {
        if let Action::Adopt(adopt) = action
            && adopt.into_store
        {
            ctx.events.started(action);
            let result = adopt_one(ctx, adopt, &store_root);
            if result.is_err() {
                failed_models.insert(adopt.link.model.as_str());
            }
            finish(ctx, &mut report, action, result);
        }
    }
    let mut unrecorded = Unrecorded::default();
    let mut actions = plan.actions.iter().peekable();
    while let Some(action) = actions.next() {
        if new_symlink(action, &failed_models).is_some() {
            let mut run = vec![action];
            while run.len() < RECORD_BATCH
                && let Some(next) = actions.next_if(|a| new_symlink(a, &failed_models).is_some())
            {
                run.push(next);
            }
            make_symlinks(ctx, &store, &run, &mut report, &mut unrecorded);
            continue;
        }
        match action {
            Action::Adopt(adopt) if adopt.into_store => {}
            Action::Adopt(adopt) if failed_models.contains(adopt.link.model.as_str()) => {
                let model = adopt.link.model.clone();
                let skipped = ApplyError::SkippedFetchFailed { model };
                report.failed.push((action.clone(), skipped));
            }
            Action::Adopt(adopt) => {
                ctx.events.started(action);
                let result = adopt_one(ctx, adopt, &store_root);
                finish(ctx, &mut report, action, result);
            }
            Action::Link(l) | Action::Relink(l) => {
                if failed_models.contains(l.model.as_str()) {
                    let model = l.model.clone();
                    let skipped = ApplyError::SkippedFetchFailed { model };
                    report.failed.push((action.clone(), skipped));
                    continue;
                }
                ctx.events.started(action);
                match link_one(ctx, &store, l) {
                    Ok(Some(link)) => {
                        // Reported as made now (it is); a record refused later is reported
                        // then, and the next plan records the journaled link.
                        finish(ctx, &mut report, action, Ok(()));
                        unrecorded.push(action, link);
                        if unrecorded.links.len() >= RECORD_BATCH {
                            unrecorded.record(ctx, &mut report);
                        }
                    }
                    Ok(None) => finish(ctx, &mut report, action, Ok(())),
                    Err(err) => finish(ctx, &mut report, action, Err(err)),
                }
            }
            Action::Conflict(_) => report.refused += 1,
            Action::Fetch(_) | Action::Rename(_) | Action::Unlink(_) => {}
        }
    }
    unrecorded.record(ctx, &mut report);

    for item in &plan.bookkeeping {
        let result = match item {
            Bookkeeping::Record(l) => record(ctx, l, l.how),
            Bookkeeping::Forget { record, .. } => {
                ctx.registry.delete_link(*record).map_err(ApplyError::from)
            }
            Bookkeeping::Index { files, .. } => index_verified(ctx, &store_root, files),
            Bookkeeping::Claim { .. } => Ok(()),
        };
        if let Err(err) = result {
            ctx.events
                .warning(&format!("registry housekeeping failed: {err}"));
        }
    }
    // Links that failed were not made; what a killed apply journaled was dealt with by this
    // plan (recorded, or reported as a conflict).
    let leftover: Vec<_> = ctx
        .registry
        .pending()?
        .into_iter()
        .filter(|p| p.env == ctx.env)
        .map(|p| p.target)
        .collect();
    ctx.registry.unjournal(&leftover)?;
    // Also without changes: this apply finished what a killed one left (its run).
    ctx.registry.end_run(ctx.env)?;
    Ok(report)
}

/// Store files whose stamps an apply keeps in the index as it adds and removes hard links
/// to them (each moves the file's ctime and nothing else).
struct StoreFiles<'a> {
    root: &'a Path,
    registry: &'a Registry,
}

impl StoreFiles<'_> {
    /// The stamp of `source` if it is a store file, before a hard link to it changes.
    fn before(&self, source: &Path) -> Option<FileStamp> {
        source
            .starts_with(self.root)
            .then(|| FileStamp::read(source).ok())
            .flatten()
    }

    /// After mlib's own hard link to `source` came or went: the index follows its ctime.
    fn after(&self, source: &Path, before: Option<FileStamp>) {
        if let (Some(before), Ok(now)) = (before, FileStamp::read(source)) {
            let _ = self
                .registry
                .index_touch(&rel_to(self.root, source), &before, &now);
        }
    }
}

fn finish(
    ctx: &ApplyContext,
    report: &mut ApplyReport,
    action: &Action,
    result: Result<(), ApplyError>,
) {
    ctx.events.finished(action, result.as_ref().err());
    match result {
        Ok(()) => report.done += 1,
        Err(err) => report.failed.push((action.clone(), err)),
    }
}

fn unlink_one(
    ctx: &ApplyContext,
    store: &StoreFiles,
    record: i64,
    target: &Path,
) -> Result<(), ApplyError> {
    let Some(row) = our_row(ctx, target, record)? else {
        return Err(not_ours(target));
    };
    match link_stat(target, row.kind) {
        Ok(stat) if stat == row.stat => remove_link(store, &row, target)?,
        Ok(_) => return Err(changed_since_plan(target)),
        Err(_) => {}
    }
    Ok(ctx.registry.delete_link(record)?)
}

/// Removes the folders between a removed link farm link and the farm's folder (included)
/// that are empty now: mlib made them, and an empty folder holds nothing of anyone's.
fn prune_empty(target: &Path, farm: &Path) {
    let mut dir = target.parent();
    while let Some(path) = dir {
        if !path.starts_with(farm) || std::fs::remove_dir(path).is_err() {
            break;
        }
        dir = path.parent();
    }
}

fn not_ours(target: &Path) -> ApplyError {
    ApplyError::NotOurs {
        target: target.to_path_buf(),
    }
}

fn changed_since_plan(target: &Path) -> ApplyError {
    ApplyError::ChangedSincePlan {
        target: target.to_path_buf(),
    }
}

/// Local models are copied into staging and put in place in batches of this many bytes
/// ([`Store::install_staged`]: two filesystem syncs per batch instead of four or five fsyncs
/// per model). Bounded so that a kill in the middle of a large import loses at most this
/// much copying; a model larger than it is put in place on its own.
const INSTALL_BATCH_BYTES: u64 = 256 << 20;

/// What fetching one model left.
enum Fetched {
    /// In the store (a download; also what `install_staged` returns).
    Stored(Metadata),
    /// A local model copied into staging, to be put in place with a batch.
    Staged(StagedModel),
}

/// Local models staged and not yet put in place, with their bytes.
#[derive(Default)]
struct Batch<'p> {
    models: Vec<(&'p Fetch, StagedModel)>,
    bytes: u64,
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
    let batch: Mutex<Batch> = Mutex::new(Batch::default());
    let results: Mutex<Vec<(&Fetch, Result<Metadata, ApplyError>)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..ctx.jobs.max(1).min(fetches.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let next = queue.lock().expect("queue").next();
                    let Some(fetch) = next else { break };
                    let action = Action::Fetch(fetch.clone());
                    ctx.events.started(&action);
                    let done = match fetch_one(ctx, fetch) {
                        Ok(Fetched::Staged(staged)) => {
                            let full = {
                                let mut batch = batch.lock().expect("batch");
                                batch.bytes += staged.size();
                                batch.models.push((fetch, staged));
                                (batch.bytes >= INSTALL_BATCH_BYTES)
                                    .then(|| std::mem::take(&mut *batch))
                            };
                            full.map(|full| install_batch(ctx, full))
                                .unwrap_or_default()
                        }
                        Ok(Fetched::Stored(metadata)) => {
                            ctx.events.finished(&action, None);
                            vec![(fetch, Ok(metadata))]
                        }
                        Err(err) => {
                            ctx.events.finished(&action, Some(&err));
                            vec![(fetch, Err(err))]
                        }
                    };
                    results.lock().expect("results").extend(done);
                }
            });
        }
    });
    let last = install_batch(ctx, batch.into_inner().expect("batch"));
    let mut results = results.into_inner().expect("results");
    results.extend(last);

    let mut failed = HashSet::new();
    let mut index = Vec::new();
    for (fetch, result) in results {
        match result {
            Ok(metadata) => {
                report.done += 1;
                let model = &ctx.manifest.models[&fetch.model];
                match index_entries(ctx, store_root, model, &metadata) {
                    Ok(entries) => index.extend(entries),
                    Err(err) => ctx
                        .events
                        .warning(&format!("could not index model `{}`: {err}", model.name)),
                }
            }
            Err(err) => {
                failed.insert(fetch.model.as_str());
                report.failed.push((Action::Fetch(fetch.clone()), err));
            }
        }
    }
    // One transaction for every model fetched (a transaction each was a tenth of a first
    // apply of many small models).
    if let Err(err) = ctx.registry.index_put_many(&index) {
        ctx.events
            .warning(&format!("could not index the models fetched: {err}"));
    }
    failed
}

/// Puts a batch of staged models in place (their bytes made durable first) and tells the
/// caller how each went.
fn install_batch<'p>(
    ctx: &ApplyContext,
    batch: Batch<'p>,
) -> Vec<(&'p Fetch, Result<Metadata, ApplyError>)> {
    let (fetches, staged): (Vec<&Fetch>, Vec<StagedModel>) = batch.models.into_iter().unzip();
    let installed = ctx.store.install_staged(staged);
    fetches
        .into_iter()
        .zip(installed)
        .map(|(fetch, result)| {
            let result = result.map_err(|source| ApplyError::Store {
                model: fetch.model.clone(),
                source,
            });
            ctx.events
                .finished(&Action::Fetch(fetch.clone()), result.as_ref().err());
            (fetch, result)
        })
        .collect()
}

fn fetch_one(ctx: &ApplyContext, fetch: &Fetch) -> Result<Fetched, ApplyError> {
    let model = ctx
        .manifest
        .models
        .get(&fetch.model)
        .ok_or_else(|| ApplyError::UnknownModel {
            model: fetch.model.clone(),
        })?;
    if !fetch.quarantine.is_empty() {
        let dir = ctx
            .store
            .quarantine(&model.name, &fetch.quarantine)
            .map_err(|source| ApplyError::Quarantine {
                model: model.name.clone(),
                source,
            })?;
        for rel in &fetch.quarantine {
            let _ = ctx.registry.index_remove(rel);
        }
        ctx.events.warning(&format!(
            "model `{}`: moved {} changed store file{} to {}",
            model.name,
            fetch.quarantine.len(),
            if fetch.quarantine.len() == 1 { "" } else { "s" },
            dir.display()
        ));
    }
    match &model.source {
        Source::Local(path) => {
            let expected = Expected {
                sha256: model.sha256.clone(),
                blake3: model.blake3.clone(),
            };
            let mut progress = |bytes: u64| ctx.events.progress(&model.name, bytes);
            let selection =
                mlib_manifest::Selection::of(model).map_err(|bad| ApplyError::BadGlob {
                    model: model.name.clone(),
                    source: bad,
                })?;
            ctx.store
                .stage_local_selected(
                    &key(model),
                    path,
                    model.file.as_deref(),
                    &expected,
                    &model.source.to_string(),
                    &|rel| rel.ends_with('/') || selection.accepts(rel),
                    &mut progress,
                )
                .map(Fetched::Staged)
                .map_err(|source| ApplyError::Store {
                    model: model.name.clone(),
                    source,
                })
        }
        _ => ctx
            .remote
            .fetch(model, ctx.store, ctx.events)
            .map(Fetched::Stored)
            .map_err(|source| ApplyError::Fetch {
                model: model.name.clone(),
                source,
            }),
    }
}

/// Moves a model's store folder to its new name's place (`Store::rename_model`), and its
/// index entries with it.
fn rename_one(ctx: &ApplyContext, rename: &Rename, store_root: &Path) -> Result<(), ApplyError> {
    let model = ctx
        .manifest
        .models
        .get(&rename.model)
        .ok_or_else(|| ApplyError::UnknownModel {
            model: rename.model.clone(),
        })?;
    ctx.store
        .rename_model(&rename.from_dir, &key(model))
        .map_err(|source| ApplyError::Store {
            model: model.name.clone(),
            source,
        })?;
    for rel in &rename.old_files {
        ctx.registry.index_remove(rel)?;
    }
    index_verified(ctx, store_root, &rename.files)
}

fn adopt_one(ctx: &ApplyContext, adopt: &Adopt, store_root: &Path) -> Result<(), ApplyError> {
    let link = &adopt.link;
    // Look again: the plan may be minutes old and the file is about to be replaced. The
    // stamp taken before hashing tells, when the file moves, that these are still its bytes.
    let mut hashed = None;
    match &adopt.sha256 {
        Some(sha256) => {
            let unreadable = |source| ApplyError::Unreadable {
                target: link.target.clone(),
                source,
            };
            let stamp = FileStamp::read(&link.target).map_err(unreadable)?;
            let hashes = mlib_store::hash_file(&link.target).map_err(unreadable)?;
            if hashes.sha256 != *sha256 {
                return Err(changed_since_plan(&link.target));
            }
            hashed = Some((hashes, stamp));
        }
        None if !link.target.symlink_metadata().is_ok_and(|m| m.is_dir()) => {
            return Err(changed_since_plan(&link.target));
        }
        None => {}
    }
    let model = &ctx.manifest.models[&link.model];
    if adopt.into_store && !link.source.exists() {
        // The user's file becomes the store's copy: renamed on the store's filesystem (hashed
        // once, above), else reflinked or copied (hashed again as it is).
        let expected = Expected {
            sha256: adopt.sha256.clone(),
            blake3: adopt.sha256.as_ref().and(model.blake3.clone()),
        };
        let entry = link.source.file_name().and_then(|n| n.to_str());
        let store_error = |source| ApplyError::Store {
            model: model.name.clone(),
            source,
        };
        let (metadata, how) = match hashed {
            Some((hashes, stamp)) if ctx.store.can_move_in(&link.target) => {
                expected.check(&link.target, &hashes).map_err(store_error)?;
                let source = model.source.to_string();
                let meta = ctx
                    .store
                    .ingest_moved(&key(model), &link.target, entry, &hashes, stamp, &source)
                    .map_err(store_error)?;
                (meta, mlib_store::Transfer::Moved)
            }
            _ => {
                let mut progress = |bytes: u64| ctx.events.progress(&model.name, bytes);
                ctx.store
                    .ingest_local_how(
                        &key(model),
                        &link.target,
                        entry,
                        &expected,
                        &model.source.to_string(),
                        &|_| true,
                        &mut progress,
                    )
                    .map_err(store_error)?
            }
        };
        ctx.events.transferred(&Action::Adopt(adopt.clone()), how);
        if let Err(err) = index_model(ctx, store_root, model, &metadata) {
            ctx.events
                .warning(&format!("could not index model `{}`: {err}", model.name));
        }
    }
    // Never replace the user's copy by a link to nothing.
    if !link.source.exists() {
        return Err(ApplyError::Link {
            target: link.target.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the store has no copy of `{}` at {}: the file is left as it is",
                    link.model,
                    link.source.display()
                ),
            ),
        });
    }
    let store = StoreFiles {
        root: store_root,
        registry: ctx.registry,
    };
    if adopt.sha256.is_none() {
        return replace_folder(ctx, &store, link);
    }
    let made = make_link(&store, link, true)?;
    record(ctx, link, made.how)
}

/// A model's own folder gives way to the link once the store holds the same bytes: it is
/// renamed aside under a temporary name (after a kill, the next apply removes it: the store
/// has its copy), the link is made, then the folder is removed. A folder that differs from
/// the store's copy is left alone.
fn replace_folder(ctx: &ApplyContext, store: &StoreFiles, link: &Link) -> Result<(), ApplyError> {
    let same = crate::compare::same_content(&link.target, &link.source).map_err(|source| {
        ApplyError::Unreadable {
            target: link.target.clone(),
            source,
        }
    })?;
    if !same {
        return Err(changed_since_plan(&link.target));
    }
    let aside = mlib_fs::temp::sibling_of(&link.target);
    fs_err::rename(&link.target, &aside).map_err(|source| ApplyError::Link {
        target: link.target.clone(),
        source,
    })?;
    match make_link(store, link, false) {
        Ok(made) => {
            // Best effort: a folder left aside has a temporary name the next apply removes.
            let _ = mlib_fs::temp::remove_tree(&aside);
            record(ctx, link, made.how)
        }
        Err(err) => {
            let _ = fs_err::rename(&aside, &link.target);
            Err(err)
        }
    }
}

/// `action` if it makes a new symlink where nothing of mlib's is (the bulk of a first
/// apply): nothing else to check or replace, and no store file's stamp to follow, so such
/// links are made side by side (see [`make_symlinks`]).
fn new_symlink<'a>(action: &'a Action, failed_models: &HashSet<&str>) -> Option<&'a Link> {
    match action {
        Action::Link(l)
            if l.how.is_symlink()
                && l.replaces.is_none()
                && l.moved_from.is_none()
                && !l.farm
                && !l.is_folder_link()
                && !failed_models.contains(l.model.as_str()) =>
        {
            Some(l)
        }
        _ => None,
    }
}

/// Makes a run of [`new_symlink`]s on every core (each into its own target: the kernel
/// makes them side by side), then reports and records them in the plan's order, as
/// [`link_one`] one at a time would.
fn make_symlinks<'p>(
    ctx: &ApplyContext,
    store: &StoreFiles,
    run: &[&'p Action],
    report: &mut ApplyReport,
    unrecorded: &mut Unrecorded<'p>,
) {
    let env = ctx.env;
    let made = parallel_map(run, |action| {
        let Action::Link(l) = action else {
            unreachable!("a run holds new symlinks only")
        };
        make_link(store, l, false).and_then(|made| new_link(env, l, made.how))
    });
    for (action, result) in run.iter().zip(made) {
        ctx.events.started(action);
        match result {
            Ok(link) => {
                finish(ctx, report, action, Ok(()));
                unrecorded.push(action, link);
                if unrecorded.links.len() >= RECORD_BATCH {
                    unrecorded.record(ctx, report);
                }
            }
            Err(err) => finish(ctx, report, action, Err(err)),
        }
    }
}

/// The registry row `id` at `target`, if it is still there and this environment's.
fn our_row(ctx: &ApplyContext, target: &Path, id: i64) -> Result<Option<LinkRecord>, ApplyError> {
    let row = ctx.registry.link_at(target)?;
    Ok(row.filter(|r| r.id == id && r.env == ctx.env))
}

/// Makes `l`; returns the record to insert, unless it was recorded already (a move).
fn link_one(
    ctx: &ApplyContext,
    store: &StoreFiles,
    l: &Link,
) -> Result<Option<NewLink>, ApplyError> {
    if l.farm {
        farm_folder_is_real(store, l)?;
    }
    if let (Some(old), Some(id)) = (&l.moved_from, l.replaces) {
        return move_one(ctx, store, l, old, id).map(|()| None);
    }
    let mut old_hardlink = None;
    if let Some(id) = l.replaces {
        // Replace only what the registry says is ours and nobody changed since (or, healing
        // a hard link whose bytes changed, that is still the inode mlib linked).
        match our_row(ctx, &l.target, id)? {
            Some(row) => {
                if let Ok(stat) = link_stat(&l.target, row.kind) {
                    let ours = stat == row.stat || (l.heal && stat.ino == row.stat.ino);
                    if !ours {
                        return Err(changed_since_plan(&l.target));
                    }
                }
                if row.kind == LinkKind::Hardlink {
                    old_hardlink = Some(row.source);
                }
            }
            None if l.target.symlink_metadata().is_ok() => return Err(not_ours(&l.target)),
            None => {}
        }
    }
    if l.is_folder_link() {
        clear_for_folder_link(ctx, l)?;
    }
    let replace = l.replaces.is_some() && l.target.symlink_metadata().is_ok();
    let before_old = old_hardlink.as_deref().and_then(|old| store.before(old));
    let made = make_link(store, l, replace)?;
    if let Some(old) = &old_hardlink {
        store.after(old, before_old);
    }
    new_link(ctx.env, l, made.how).map(Some)
}

/// Before a whole-folder link is made: the store's folder it points at exists (a type with
/// no model yet), and a real folder where it goes is emptied of the app's placeholders and
/// removed, or, holding anything else, renamed to a backup. The folder is looked at again
/// here: what the plan saw may have changed, and nothing but placeholders is ever removed.
fn clear_for_folder_link(ctx: &ApplyContext, l: &Link) -> Result<(), ApplyError> {
    let failed = |source: std::io::Error| ApplyError::Link {
        target: l.target.clone(),
        source,
    };
    fs_err::create_dir_all(&l.source).map_err(failed)?;
    let real_dir = l.target.symlink_metadata().is_ok_and(|meta| meta.is_dir());
    if !real_dir {
        return Ok(());
    }
    if l.clear.is_none() {
        return Err(changed_since_plan(&l.target));
    }
    // mlib's own links in there were removed before (the plan's unlinks run first); any
    // left behind were changed by someone, and are kept with the folder.
    let backup = placeholder::clear(&l.target, &|_| false).map_err(failed)?;
    let planned = match l.clear.as_deref() {
        Some(Clear::Backup { to, .. }) => Some(to),
        _ => None,
    };
    if let Some(backup) = backup
        && planned != Some(&backup)
    {
        ctx.events.warning(&format!(
            "{} held more than the plan saw; moved to {} (nothing was removed)",
            l.target.display(),
            backup.display()
        ));
    }
    Ok(())
}

/// A link farm's folders must be real folders outside the store: were one of them a link
/// to the store's folder (the model's old folder link, changed by someone and so not
/// removed), the link would be written into the store itself.
fn farm_folder_is_real(store: &StoreFiles, l: &Link) -> Result<(), ApplyError> {
    let Some(parent) = l.target.parent() else {
        return Ok(());
    };
    let Ok(physical) = paths::physical(parent) else {
        return Ok(()); // Not there yet: link::make creates real folders.
    };
    if physical.starts_with(store.root) || parent.symlink_metadata().is_ok_and(|m| m.is_symlink()) {
        return Err(ApplyError::Link {
            target: l.target.clone(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!(
                    "{} is a link to a folder, not a folder: the model's files are linked one by one into a real folder there; remove that link first",
                    parent.display()
                ),
            ),
        });
    }
    Ok(())
}

/// Removes mlib's link `row` at `target` (checked untouched by the caller), keeping the
/// index in step with the store file's ctime when it was a hard link to it.
fn remove_link(store: &StoreFiles, row: &LinkRecord, target: &Path) -> Result<(), ApplyError> {
    let before = (row.kind == LinkKind::Hardlink)
        .then(|| store.before(&row.source))
        .flatten();
    link::remove(target).map_err(|source| ApplyError::Unlink {
        target: target.to_path_buf(),
        source,
    })?;
    store.after(&row.source, before);
    Ok(())
}

/// Makes `l` (replacing what is there when `replace`), keeping the index in step with the
/// store file's ctime when it is a hard link to it.
fn make_link(store: &StoreFiles, l: &Link, replace: bool) -> Result<link::Made, ApplyError> {
    let hardlink = l.how == LinkHow::Hardlink;
    let before = hardlink.then(|| store.before(&l.source)).flatten();
    let made =
        link::make(&l.source, l.text.as_deref(), &l.target, l.how, replace).map_err(|source| {
            let target = l.target.clone();
            // Making a link never replaces what mlib did not check: creating it in place, or
            // renaming it there, fails if anything appeared meanwhile.
            if source.kind() == std::io::ErrorKind::AlreadyExists
                && target.symlink_metadata().is_ok()
            {
                ApplyError::Appeared { target }
            } else {
                ApplyError::Link { target, source }
            }
        })?;
    if hardlink {
        store.after(&l.source, before);
    }
    Ok(made)
}

/// What a link's record holds about it: its `lstat`, or for a copied folder the stat of the
/// whole tree (see `FileStat::tree`).
fn link_stat(target: &Path, kind: LinkKind) -> std::io::Result<FileStat> {
    let stat = FileStat::lstat(target)?;
    if kind == LinkKind::Copy && target.symlink_metadata()?.is_dir() {
        return FileStat::tree(target);
    }
    Ok(stat)
}

/// A link whose folder changed: make the new one, then remove the old one if it is still
/// exactly what mlib made.
fn move_one(
    ctx: &ApplyContext,
    store: &StoreFiles,
    l: &Link,
    old: &Path,
    id: i64,
) -> Result<(), ApplyError> {
    let row = our_row(ctx, old, id)?;
    let made = make_link(store, l, false)?;
    record(ctx, l, made.how)?;
    if let Some(row) = row {
        match link_stat(old, row.kind) {
            Ok(stat) if stat == row.stat => remove_link(store, &row, old)?,
            Ok(_) => ctx.events.warning(&format!(
                "{} changed since mlib linked it; left in place",
                old.display()
            )),
            Err(_) => {}
        }
        ctx.registry.delete_link(id)?;
    }
    Ok(())
}

fn record(ctx: &ApplyContext, l: &Link, how: LinkHow) -> Result<(), ApplyError> {
    ctx.registry.insert_link(&new_link(ctx.env, l, how)?)?;
    Ok(())
}

/// Links made are recorded this many at a time, in one transaction (a transaction per link
/// was most of the registry's share of a first apply of 10,000 models into two apps). Until
/// then they are journaled: a kill leaves finished links the next plan recognises and
/// records (`decide::is_finished_link`), as it does for a kill between a link and its record.
const RECORD_BATCH: usize = 1000;

/// Links made and not recorded yet, with the actions that made them.
#[derive(Default)]
struct Unrecorded<'p> {
    actions: Vec<&'p Action>,
    links: Vec<NewLink>,
}

impl<'p> Unrecorded<'p> {
    fn push(&mut self, action: &'p Action, link: NewLink) {
        self.actions.push(action);
        self.links.push(link);
    }

    /// Records them all (one transaction); a link whose record is refused is reported as
    /// failed (it was counted as done when it was made).
    fn record(&mut self, ctx: &ApplyContext, report: &mut ApplyReport) {
        let actions = std::mem::take(&mut self.actions);
        let links = std::mem::take(&mut self.links);
        if ctx.registry.insert_links(&links).is_ok() {
            return;
        }
        // One refused record (another environment's at its target, taken since the plan)
        // refuses the whole transaction: record them one by one to tell which.
        for (action, link) in actions.into_iter().zip(&links) {
            if let Err(err) = ctx.registry.insert_link(link) {
                report.done = report.done.saturating_sub(1);
                report.failed.push((action.clone(), err.into()));
            }
        }
    }
}

/// The record of the link `l`, just made `how`.
fn new_link(env: i64, l: &Link, how: LinkHow) -> Result<NewLink, ApplyError> {
    let kind = kind_of(how);
    let stat = link_stat(&l.target, kind).map_err(|source| ApplyError::Link {
        target: l.target.clone(),
        source,
    })?;
    // Which version of the store entry a copy holds: a new inode there makes it stale.
    let source_ino = (kind == LinkKind::Copy)
        .then(|| l.source.metadata().ok().map(|m| platform::inode(&m)))
        .flatten();
    Ok(NewLink {
        env,
        model: l.model.clone(),
        app: l.app.clone(),
        target: l.target.clone(),
        source: l.source.clone(),
        kind,
        external: how == LinkHow::AbsoluteSymlink,
        stat,
        source_ino,
        text: l.text.clone(),
    })
}

/// Records every file of a model just stored in the index, with the hashes it was stored
/// with and the stamp metadata.json recorded (only while the file still has it).
fn index_model(
    ctx: &ApplyContext,
    store_root: &Path,
    model: &Model,
    metadata: &Metadata,
) -> Result<(), ApplyError> {
    let entries = index_entries(ctx, store_root, model, metadata)?;
    Ok(ctx.registry.index_put_many(&entries)?)
}

/// [`index_model`]'s entries, for a caller that records many models at once.
fn index_entries(
    ctx: &ApplyContext,
    store_root: &Path,
    model: &Model,
    metadata: &Metadata,
) -> Result<Vec<IndexEntry>, ApplyError> {
    let dir = store_root.join(rel_to(ctx.store.root(), &ctx.store.model_dir(&key(model))));
    let mut entries = Vec::with_capacity(metadata.files.len());
    for file in &metadata.files {
        let path = dir.join(&file.path);
        let stamp = FileStamp::read(&path).map_err(|source| ApplyError::Store {
            model: model.name.clone(),
            source: source.into(),
        })?;
        if file.stamp == Some(stamp) {
            entries.push(IndexEntry::new(
                rel_to(store_root, &path),
                &stamp,
                file.sha256.clone(),
                file.blake3.clone(),
            ));
        }
    }
    Ok(entries)
}

/// Indexes store files the plan verified, each only if it still has the stamp it had then:
/// a file that changed since is verified again by the next plan, never trusted unseen.
fn index_verified(
    ctx: &ApplyContext,
    store_root: &Path,
    files: &[Verified],
) -> Result<(), ApplyError> {
    let entries: Vec<IndexEntry> = files
        .iter()
        .filter(|f| FileStamp::read(&store_root.join(&f.path)).ok() == Some(f.stamp))
        .map(|f| IndexEntry::new(f.path.clone(), &f.stamp, f.sha256.clone(), f.blake3.clone()))
        .collect();
    Ok(ctx.registry.index_put_many(&entries)?)
}
