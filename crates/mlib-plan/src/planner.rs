//! Desired vs observed → [`Plan`]. Planning reads the disk and the registry and changes
//! nothing.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use mlib_manifest::lock::LockedModel;
use mlib_manifest::{App, LinkMode, Manifest, Model};
use mlib_registry::{FileStat, LinkKind, LinkRecord, Registry};
use mlib_store::Store;

use crate::action::{
    Action, Adopt, Bookkeeping, Conflict, Drift, Fetch, FetchReason, Link, LinkHow, Summary, Unlink,
};
use crate::desired::{self, DesiredModel};
use crate::environment::{EnvIdentity, Ownership};
use crate::error::PlanError;
use crate::observed::{Observed, Recorded, Split};
use crate::par::parallel_map;
use crate::paths::{self, PhysicalCache};
use crate::saved::Plan;
use crate::stat::{Dirs, Follow, Kind, Seen};

#[derive(Clone, Debug, Default)]
pub struct PlanOptions {
    /// Replace a real file that is in the way by a link when its sha256 equals the model's.
    pub adopt: bool,
}

pub struct PlanInput<'a> {
    pub manifest: &'a Manifest,
    /// The environment planned for (it owns the links the plan may change).
    pub env: &'a EnvIdentity,
    pub store: &'a Store,
    pub registry: &'a Registry,
    /// Remote models resolved from the lock (or the network): their files, sizes and hashes.
    pub remote: &'a HashMap<String, LockedModel>,
    /// Digest of the lock file, if there is one, for saved-plan staleness.
    pub lock_digest: Option<String>,
    pub options: PlanOptions,
    /// Whether apply may write into the store; when not, what it would have to add is
    /// planned with a warning (apply refuses it).
    pub store_writable: bool,
    /// Told about store files hashed while planning (their stamp changed since verified).
    pub hashing: &'a dyn HashProgress,
}

/// Progress of hashing store files while planning, for people: a file whose stamp changed is
/// read whole before it is trusted, which takes a while for a model of many GB.
pub trait HashProgress: Sync {
    fn start(&self, _id: u64, _what: &str, _bytes: u64) {}
    fn advance(&self, _id: u64, _bytes: u64) {}
    fn finish(&self, _id: u64) {}
}

/// No progress to show.
pub struct NoHashProgress;
impl HashProgress for NoHashProgress {}

pub fn plan(input: &PlanInput) -> Result<Plan, PlanError> {
    let observed = Observed::read(input.registry, input.store.root(), &input.env.manifest)?;
    plan_observed(input, observed)
}

/// [`plan`] from an [`Observed`] snapshot read beforehand (from the same registry and store,
/// e.g. on another thread while the manifest was parsed).
pub fn plan_observed(input: &PlanInput, observed: Observed) -> Result<Plan, PlanError> {
    let mut planner = Planner::new(input, observed)?;
    planner.models()?;
    planner.links()?;
    planner.leftovers();
    Ok(planner.finish())
}

struct Planner<'a> {
    input: &'a PlanInput<'a>,
    store_dev: Option<u64>,
    store_mount: Option<Option<u64>>,
    physical: PhysicalCache,
    devices: HashMap<PathBuf, Option<u64>>,
    models: HashMap<String, DesiredModel>,
    observed: Observed,
    /// Keyed by the target's bytes: `Path`'s own `Hash` walks components, which dominated
    /// planning with 20,000 links.
    mine: HashMap<OsString, Recorded>,
    others: HashMap<OsString, LinkRecord>,
    /// Targets this environment's last apply journaled but did not record (it was killed):
    /// what is there may be mlib's own finished work.
    pending: HashSet<OsString>,
    owner: Ownership,

    actions: Vec<Action>,
    bookkeeping: Vec<Bookkeeping>,
    drift: Vec<Drift>,
    warnings: Vec<String>,
}

impl<'a> Planner<'a> {
    fn new(input: &'a PlanInput<'a>, mut observed: Observed) -> Result<Self, PlanError> {
        let store_dev = device_of(observed.store_root());
        let owner = Ownership::resolve(input.registry, input.env)?;
        let Split {
            mine,
            others,
            pending,
        } = observed.split(&owner);
        // Links this environment owns but that are recorded under another (legacy) id.
        let mut claims: Vec<i64> = mine
            .values()
            .filter(|r| Some(r.record.env) != owner.env())
            .map(|r| r.record.id)
            .collect();
        claims.sort_unstable();
        let bookkeeping = claims
            .into_iter()
            .map(|record| Bookkeeping::Claim { record })
            .collect();
        Ok(Planner {
            input,
            store_dev,
            store_mount: None,
            physical: PhysicalCache::default(),
            devices: HashMap::new(),
            models: HashMap::new(),
            observed,
            mine,
            others,
            pending,
            owner,

            actions: Vec::new(),
            bookkeeping,
            drift: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn models(&mut self) -> Result<(), PlanError> {
        let models: Vec<&mlib_manifest::Model> = self.input.manifest.models.values().collect();
        let (store, observed, remote) = (self.input.store, &self.observed, self.input.remote);
        let hashing = self.input.hashing;
        let desired = parallel_map(&models, |model| {
            desired::desire(model, store, observed, remote.get(&model.name), hashing)
        });
        for (model, desired) in models.into_iter().zip(desired) {
            let mut desired = desired?;
            for (path, what) in desired.store_drift.drain(..) {
                self.drift.push(Drift {
                    target: path,
                    model: model.name.clone(),
                    app: String::new(),
                    what,
                });
            }
            if let Some(reason) = desired.fetch.clone() {
                if !self.input.store_writable {
                    self.warnings.push(format!(
                        "the store is read-only: apply cannot add model `{}` to it (ask whoever manages the store, or leave the model out)",
                        model.name
                    ));
                }
                self.actions.push(Action::Fetch(Fetch {
                    model: model.name.clone(),
                    source: model.source.to_string(),
                    reason,
                    bytes: desired.fetch_bytes,
                    quarantine: std::mem::take(&mut desired.quarantine),
                }));
            }
            if !desired.reindex.is_empty() && desired.fetch.is_none() {
                self.bookkeeping.push(Bookkeeping::Index {
                    model: model.name.clone(),
                    files: std::mem::take(&mut desired.reindex),
                });
            }
            self.models.insert(model.name.clone(), desired);
        }
        Ok(())
    }

    fn links(&mut self) -> Result<(), PlanError> {
        let manifest = self.input.manifest;
        // Which entry of which model goes into which app folder. Each model type's folder in
        // an app, and how links into it are made, is worked out once per type.
        let mut folders: Vec<Folder> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        for app in manifest.apps.values() {
            let mut by_type: HashMap<&str, Option<usize>> = HashMap::new();
            for model in manifest.models.values() {
                if !app.selects(model) {
                    continue;
                }
                let slot = match by_type.get(model.model_type.as_str()) {
                    Some(slot) => *slot,
                    None => {
                        let slot = self.folder(app, &model.model_type)?.map(|folder| {
                            folders.push(folder);
                            folders.len() - 1
                        });
                        by_type.insert(&model.model_type, slot);
                        slot
                    }
                };
                let Some(slot) = slot else {
                    self.warnings.push(format!(
                        "app `{}` has no folder for type `{}`: model `{}` is not linked there",
                        app.name, model.model_type, model.name
                    ));
                    continue;
                };
                // Empty for a remote model not resolved yet: its links appear once fetched.
                for (entry, e) in self.models[&model.name].entries.iter().enumerate() {
                    if folders[slot].how(e.is_dir) == LinkHow::AbsoluteSymlink {
                        let warning = format!(
                            "app `{}` is on another filesystem than the store: using absolute symlinks, which break if the store's mount point changes",
                            app.name
                        );
                        if !self.warnings.contains(&warning) {
                            self.warnings.push(warning);
                        }
                    }
                    items.push(Item {
                        app,
                        model,
                        slot,
                        entry,
                        taken_by: None,
                    });
                }
            }
        }
        self.claim_shared_targets(&folders, &mut items);
        // Each link's paths, and whether it is the recorded, untouched link (the bulk of a
        // no-op plan), over the cores.
        enum Verdict<'m> {
            Unchanged(PathBuf),
            Wanted(Link, String),
            Taken(Link, &'m str),
        }
        let (mine, models, pending) = (&self.mine, &self.models, &self.pending);
        let verdicts = parallel_map(&items, |item| {
            let (folder, desired) = (&folders[item.slot], &models[&item.model.name]);
            let entry = &desired.entries[item.entry];
            let target = folder.path.join(&entry.name);
            let source = desired.dir.join(&entry.name);
            let how = folder.how(entry.is_dir);
            let untouched = mine.get(target.as_os_str()).is_some_and(|recorded| {
                let current = Current {
                    source: &source,
                    fetching: desired.fetch.is_some(),
                    journaled: pending.contains(target.as_os_str()),
                };
                recorded.untouched() && current.holds(&recorded.record, &target, how)
            });
            if item.taken_by.is_none() && untouched {
                return Verdict::Unchanged(target);
            }
            let link = Link {
                model: item.model.name.clone(),
                app: item.app.name.clone(),
                target,
                source,
                how,
                replaces: None,
                moved_from: None,
                heal: false,
            };
            match item.taken_by {
                Some(other) => Verdict::Taken(link, other),
                None => Verdict::Wanted(link, entry.name.clone()),
            }
        });
        let mut wanted: Vec<(Link, String)> = Vec::new();
        for verdict in verdicts {
            match verdict {
                // Taken out of `mine`: what is left there afterwards is no longer wanted.
                Verdict::Unchanged(target) => {
                    self.mine.remove(target.as_os_str());
                }
                Verdict::Wanted(link, name) => wanted.push((link, name)),
                Verdict::Taken(link, other) => self.conflict(
                    &link,
                    format!(
                        "app `{other}` of this manifest links the same path; give the apps different folders"
                    ),
                ),
            }
        }
        // Targets with a record were lstat'ed with the snapshot; the others (new links) are
        // lstat'ed here, spread over the cores.
        let mut metas: Vec<Option<io::Result<Seen>>> = wanted
            .iter()
            .map(|(link, _)| {
                self.mine
                    .get_mut(link.target.as_os_str())
                    .map(Recorded::take_meta)
            })
            .collect();
        let unseen: Vec<usize> = (0..wanted.len()).filter(|&i| metas[i].is_none()).collect();
        let dirs = Dirs::parents_of(unseen.iter().map(|&i| wanted[i].0.target.as_path()));
        let fresh = parallel_map(&unseen, |&i| dirs.stat(&wanted[i].0.target, Follow::No));
        for (i, meta) in unseen.into_iter().zip(fresh) {
            metas[i] = Some(meta);
        }
        for ((link, name), meta) in wanted.into_iter().zip(metas) {
            let meta = meta.expect("every wanted target was looked at");
            self.observe(link, &name, meta);
        }
        Ok(())
    }

    /// The folder `app` links models of `model_type` into (physical), and how.
    fn folder(&mut self, app: &App, model_type: &str) -> Result<Option<Folder>, PlanError> {
        let Some(folder) = app.folder_for(model_type) else {
            return Ok(None);
        };
        let path = self.physical.dir(&folder).map_err(|source| PlanError::Io {
            path: folder.clone(),
            source,
        })?;
        // Validation compares the paths as written; a symlink can still make an app folder
        // and the store the same place, and a link there could replace a store file.
        let store = self.observed.store_root();
        if path.starts_with(store) || store.starts_with(&path) {
            return Err(PlanError::NestedStore {
                app: app.name.clone(),
                folder: path,
                store: store.to_path_buf(),
            });
        }
        Ok(Some(Folder {
            how_file: self.link_how(app, &path, false),
            how_dir: self.link_how(app, &path, true),
            path,
        }))
    }

    /// Two apps of one manifest can share a folder (same root, or folders that resolve to the
    /// same place): the first (in manifest order) to want a path there gets it, every later
    /// one is marked as taken, and becomes a conflict. Only folders that are shared are
    /// checked, so the usual plan pays nothing for it.
    fn claim_shared_targets<'m>(&self, folders: &[Folder], items: &mut [Item<'m>]) {
        let mut first_slot: HashMap<&Path, usize> = HashMap::new();
        let mut shared = vec![false; folders.len()];
        for (slot, folder) in folders.iter().enumerate() {
            if let Some(&first) = first_slot.get(folder.path.as_path()) {
                shared[first] = true;
                shared[slot] = true;
            } else {
                first_slot.insert(&folder.path, slot);
            }
        }
        if !shared.contains(&true) {
            return;
        }
        let mut claimed: HashMap<PathBuf, &'m str> = HashMap::new();
        for item in items.iter_mut().filter(|item| shared[item.slot]) {
            let name = &self.models[&item.model.name].entries[item.entry].name;
            let target = folders[item.slot].path.join(name);
            match claimed.get(&target) {
                Some(&app) if app != item.app.name => item.taken_by = Some(app),
                Some(_) => {}
                None => {
                    claimed.insert(target, &item.app.name);
                }
            }
        }
    }

    /// How a link into `folder` is made for this app's link mode.
    fn link_how(&mut self, app: &App, folder: &Path, is_dir: bool) -> LinkHow {
        let same_fs = {
            let dev = match self.devices.get(folder) {
                Some(dev) => *dev,
                None => {
                    let dev = device_of(folder);
                    self.devices.insert(folder.to_path_buf(), dev);
                    dev
                }
            };
            dev.is_some() && dev == self.store_dev
        };
        // A hard link needs one filesystem and one mount (a read-only bind mount of the store
        // shares its device number with the app's folder, yet the kernel refuses).
        let hardlinkable = same_fs && self.same_mount(folder);
        if app.link == LinkMode::Hardlink && !is_dir && !hardlinkable {
            let warning = format!(
                "app `{}` asks for hard links, but its folder {} is not on the store's filesystem and mount: using symlinks",
                app.name,
                folder.display()
            );
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        match app.link {
            LinkMode::Copy => LinkHow::Copy,
            // A folder cannot be hardlinked; a symlink to it is the closest safe thing.
            LinkMode::Hardlink if !is_dir && hardlinkable => LinkHow::Hardlink,
            LinkMode::Auto | LinkMode::Symlink | LinkMode::Hardlink => {
                if same_fs {
                    LinkHow::RelativeSymlink
                } else {
                    LinkHow::AbsoluteSymlink
                }
            }
        }
    }

    /// Whether `folder` is on the store's mount (unknown counts as yes: the device matched).
    fn same_mount(&mut self, folder: &Path) -> bool {
        let store = *self
            .store_mount
            .get_or_insert_with(|| mlib_fs::mount_id(self.observed.store_root()));
        match (store, mlib_fs::mount_id(folder)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Compares one desired link with what is on disk and in the registry.
    fn observe(&mut self, mut link: Link, entry: &str, meta: io::Result<Seen>) {
        // Taken out of `mine`: what is left there afterwards is no longer wanted.
        let mut record = self.mine.remove(link.target.as_os_str()).map(|r| r.record);
        if record.is_none() {
            record = self.take_over(&link);
        }
        let fetch = self.models[&link.model].fetch.clone();
        let fetching = fetch.is_some();
        if let Some(other) = self.others.get(link.target.as_os_str()) {
            // Another environment's link, here or removed since: it is theirs to remake or
            // remove, and a link made here would be taken from them.
            let reason = format!(
                "already linked by another environment ({})",
                self.owner.owner_label(other)
            );
            self.conflict(&link, reason);
            return;
        }
        let meta = match meta {
            Ok(meta) => meta,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Some(record) = record {
                    self.drift_at(&link, "was removed since mlib linked it");
                    link.replaces = Some(record.id);
                }
                self.actions.push(Action::Link(link));
                return;
            }
            Err(err) => {
                self.conflict(&link, format!("cannot be inspected: {err}"));
                return;
            }
        };

        if let Some(record) = &record {
            if current_stat(record, &link.target, &meta) == record.stat {
                let current = Current {
                    source: &link.source,
                    fetching,
                    journaled: self.pending.contains(link.target.as_os_str()),
                };
                if !current.holds(record, &link.target, link.how) {
                    link.replaces = Some(record.id);
                    self.actions.push(Action::Relink(link));
                }
                return;
            }
            // Changed since mlib made it. Still fine if it is the right link.
            if self.is_finished_link(&link, &meta, fetching) {
                link.replaces = Some(record.id);
                self.bookkeeping.push(Bookkeeping::Record(link));
                return;
            }
            if self.heals(record, &link, &meta, fetch.as_ref()) {
                self.drift_at(
                    &link,
                    "was modified through this hard link (its bytes are the store file's)",
                );
                link.replaces = Some(record.id);
                link.heal = true;
                self.actions.push(Action::Relink(link));
                return;
            }
            let what = match record.kind {
                LinkKind::Copy => "was modified since mlib copied it",
                LinkKind::Hardlink | LinkKind::Symlink => "was changed since mlib linked it",
            };
            self.drift_at(&link, what);
            self.conflict(
                &link,
                format!("{what}; left alone (remove it to let mlib link it again)"),
            );
            return;
        }

        if self.is_finished_link(&link, &meta, fetching) {
            // The right link, made by mlib before the registry was lost or by an apply that
            // was killed before recording it (or by hand).
            self.bookkeeping.push(Bookkeeping::Record(link));
            return;
        }
        match meta.kind {
            Kind::Symlink => {
                let points = std::fs::read_link(&link.target)
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|_| "?".into());
                self.conflict(
                    &link,
                    format!("a symlink mlib did not make is in the way (-> {points})"),
                );
            }
            Kind::File => self.real_file_in_the_way(link, entry),
            Kind::Dir | Kind::Other => {
                self.conflict(&link, "a directory mlib did not make is in the way".into())
            }
        }
    }

    /// A link at a target this environment wants, recorded by another environment that is
    /// this one under another identity: the same manifest (other variable values that still
    /// put the link here, an `environment:` name added), or a manifest that no longer exists
    /// (it was moved). Two environments that want the same path cannot both have it; the one
    /// applying takes it over (see [`Bookkeeping::Claim`]).
    fn take_over(&mut self, link: &Link) -> Option<LinkRecord> {
        let other = self.others.get(link.target.as_os_str())?;
        if !self.owner.may_take_over(other) {
            return None;
        }
        let record = self.others.remove(link.target.as_os_str())?;
        self.bookkeeping
            .push(Bookkeeping::Claim { record: record.id });
        Some(record)
    }

    /// Whether a hard link whose bytes changed may be made again: it is still the inode mlib
    /// linked, and those bytes are kept elsewhere. Either they are the store file's, found
    /// changed, which apply moves to quarantine first; or the store file was replaced already
    /// (by another environment's apply, or one that was killed) and another name (the
    /// quarantine's) still holds them. The last name of changed bytes is never removed.
    fn heals(
        &self,
        record: &LinkRecord,
        link: &Link,
        meta: &Seen,
        fetch: Option<&FetchReason>,
    ) -> bool {
        if record.kind != LinkKind::Hardlink
            || meta.kind != Kind::File
            || meta.stat.ino != record.stat.ino
        {
            return false;
        }
        if same_inode(&link.source, meta.stat.ino) {
            fetch == Some(&FetchReason::Corrupt)
        } else {
            meta.nlink >= 2
        }
    }

    /// Whether what is at the link's target is exactly the link wanted there: a symlink to
    /// the store entry, a hard link to the store file, or (only where this environment's
    /// last apply was making it when it was killed) a copy with the store entry's bytes.
    fn is_finished_link(&self, link: &Link, meta: &Seen, fetching: bool) -> bool {
        match link.how {
            LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink => {
                meta.kind == Kind::Symlink && self.points_to(&link.target, &link.source)
            }
            LinkHow::Hardlink => {
                meta.kind == Kind::File && !fetching && same_inode(&link.source, meta.stat.ino)
            }
            LinkHow::Copy => {
                !fetching
                    && self.pending.contains(link.target.as_os_str())
                    && crate::compare::same_content(&link.target, &link.source).unwrap_or(false)
            }
        }
    }

    fn real_file_in_the_way(&mut self, link: Link, entry: &str) {
        if !self.input.options.adopt {
            self.conflict(
                &link,
                "a file mlib did not make is in the way (run with --adopt to replace it by a link if it is identical to the model)".into(),
            );
            return;
        }
        let model = &self.models[&link.model];
        let Some(want) = model.entry_sha256.get(entry).cloned() else {
            self.conflict(
                &link,
                "a file is in the way and the model has no sha256 to compare it with; pin one in the manifest to adopt it".into(),
            );
            return;
        };
        match mlib_store::hash_file(&link.target) {
            Ok(hashes) if hashes.sha256 == want => {
                let into_store = model.fetch.is_some();
                if into_store {
                    // The user's copy becomes the store's copy: nothing to fetch.
                    let name = link.model.clone();
                    self.actions
                        .retain(|a| !matches!(a, Action::Fetch(f) if f.model == name));
                    if let Some(m) = self.models.get_mut(&name) {
                        m.fetch = None;
                    }
                }
                self.actions.push(Action::Adopt(Adopt {
                    link,
                    sha256: want,
                    into_store,
                }));
            }
            Ok(hashes) => self.conflict(
                &link,
                format!(
                    "a file mlib did not make is in the way and differs from the model (sha256 {} instead of {want}); left alone",
                    hashes.sha256
                ),
            ),
            Err(err) => self.conflict(&link, format!("a file is in the way and cannot be read: {err}")),
        }
    }

    /// Links this manifest made that the manifest no longer wants.
    fn leftovers(&mut self) {
        let mut stale: Vec<Recorded> = std::mem::take(&mut self.mine).into_values().collect();
        stale.sort_by(|a, b| a.record.target.cmp(&b.record.target));
        let mut unlinks = Vec::new();
        for recorded in &mut stale {
            let target = recorded.record.target.clone();
            let stat = recorded
                .take_meta()
                .map(|meta| current_stat(&recorded.record, &target, &meta));
            let record = &recorded.record;
            match stat {
                Ok(stat) if stat == record.stat && self.moves(record) => {}
                Ok(stat) if stat == record.stat => unlinks.push(Action::Unlink(Unlink {
                    model: record.model.clone(),
                    app: record.app.clone(),
                    target: record.target.clone(),
                    record: record.id,
                })),
                Ok(_) => {
                    self.drift.push(Drift {
                        target: record.target.clone(),
                        model: record.model.clone(),
                        app: record.app.clone(),
                        what: "was changed since mlib linked it; it is no longer wanted, but mlib leaves it in place".into(),
                    });
                    self.bookkeeping.push(Bookkeeping::Forget {
                        record: record.id,
                        target: record.target.clone(),
                    });
                }
                Err(_) => {
                    self.drift.push(Drift {
                        target: record.target.clone(),
                        model: record.model.clone(),
                        app: record.app.clone(),
                        what: "was removed since mlib linked it".into(),
                    });
                    self.bookkeeping.push(Bookkeeping::Forget {
                        record: record.id,
                        target: record.target.clone(),
                    });
                }
            }
        }
        self.actions.extend(unlinks);
    }

    /// When the app's folder mapping changed, the model's new link is a move of its old one:
    /// turn the pending link into a relink that also removes the old link.
    fn moves(&mut self, record: &LinkRecord) -> bool {
        let name = record.target.file_name();
        let pending = self.actions.iter_mut().find_map(|action| match action {
            Action::Link(link)
                if link.replaces.is_none()
                    && link.model == record.model
                    && link.app == record.app
                    && link.target.file_name() == name =>
            {
                Some(link)
            }
            _ => None,
        });
        let Some(link) = pending else { return false };
        link.replaces = Some(record.id);
        link.moved_from = Some(record.target.clone());
        let moved = link.clone();
        self.actions
            .retain(|a| !matches!(a, Action::Link(l) if l.target == moved.target));
        self.actions.push(Action::Relink(moved));
        true
    }

    fn finish(self) -> Plan {
        // What the plan was computed from is some 200,000 small allocations for 10,000 models;
        // freeing them takes a no-op plan's last ~15 ms. They are freed on a thread of their
        // own, so the caller (usually a CLI about to print and exit) does not wait for it.
        let scratch = (
            self.models,
            self.observed,
            self.mine,
            self.others,
            self.physical,
        );
        let spawned = std::thread::Builder::new()
            .name("plan-free".into())
            .spawn(move || drop(scratch));
        drop(spawned);
        let registry = self.input.registry;
        let mut plan = Plan {
            format: crate::saved::FORMAT,
            manifest: self.input.manifest.path.clone(),
            environment: self.input.env.key.clone(),
            manifest_digest: self.input.manifest.digest.clone(),
            lock_digest: self.input.lock_digest.clone(),
            registry_lineage: registry.lineage().unwrap_or_default(),
            registry_serial: registry.serial().unwrap_or_default(),
            adopt: self.input.options.adopt,
            drift: self.drift,
            actions: self.actions,
            bookkeeping: self.bookkeeping,
            warnings: self.warnings,
            summary: Summary::default(),
            resolved: Default::default(),
        };
        plan.sort();
        plan.summary = Summary::of(&plan.actions);
        plan
    }

    fn conflict(&mut self, link: &Link, reason: String) {
        self.actions.push(Action::Conflict(Conflict {
            model: link.model.clone(),
            app: link.app.clone(),
            target: link.target.clone(),
            reason,
        }));
    }

    fn drift_at(&mut self, link: &Link, what: &str) {
        self.drift.push(Drift {
            target: link.target.clone(),
            model: link.model.clone(),
            app: link.app.clone(),
            what: what.into(),
        });
    }

    fn points_to(&self, link: &Path, source: &Path) -> bool {
        match std::fs::read_link(link) {
            Ok(content) => {
                let resolved = paths::resolve_link_target(link, &content);
                resolved == source || paths::physical(&resolved).is_ok_and(|real| real == source)
            }
            Err(_) => false,
        }
    }
}

/// What a recorded link must still show to be current, besides its untouched stat.
struct Current<'a> {
    /// The store entry it should give the app.
    source: &'a Path,
    /// The model is being fetched again: copies and hard links of the old bytes go stale.
    fetching: bool,
    /// An apply that was killed journaled this target: what is there may predate it.
    journaled: bool,
}

impl Current<'_> {
    /// Whether `record`'s link (its stat unchanged) is of the wanted kind, to the wanted store
    /// entry, and gives the app the entry's current bytes. Read-only, so the links of a plan
    /// are checked on every core at once.
    fn holds(&self, record: &LinkRecord, target: &Path, how: LinkHow) -> bool {
        record.kind == kind_of(how)
            && record.source.as_os_str() == self.source.as_os_str()
            && match how {
                LinkHow::Hardlink => !self.fetching && same_inode(self.source, record.stat.ino),
                // A store entry replaced since the copy (by this environment or another) has
                // another inode. Copies recorded before that was known are compared when an
                // apply was killed around them.
                LinkHow::Copy => {
                    !self.fetching
                        && match record.source_ino {
                            Some(ino) => same_inode(self.source, ino),
                            None => {
                                !self.journaled
                                    || crate::compare::same_content(target, self.source)
                                        .unwrap_or(false)
                            }
                        }
                }
                LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink => true,
            }
    }
}

/// What to compare with a record's stat: the target's `lstat`, or for a copied folder the
/// stat of the whole tree (a file written or added inside changes nothing at the top).
pub(crate) fn current_stat(record: &LinkRecord, target: &Path, seen: &Seen) -> FileStat {
    if record.kind == LinkKind::Copy && seen.kind == Kind::Dir {
        FileStat::tree(target).unwrap_or_default()
    } else {
        seen.stat
    }
}

fn same_inode(source: &Path, ino: u64) -> bool {
    source.metadata().is_ok_and(|m| m.ino() == ino)
}

/// An app's folder for one model type.
#[derive(Clone)]
struct Folder {
    path: PathBuf,
    how_file: LinkHow,
    how_dir: LinkHow,
}

impl Folder {
    fn how(&self, is_dir: bool) -> LinkHow {
        if is_dir { self.how_dir } else { self.how_file }
    }
}

/// One entry of one model that one app wants linked.
struct Item<'m> {
    app: &'m App,
    model: &'m Model,
    /// Index into the app folders.
    slot: usize,
    /// Index into the model's entries.
    entry: usize,
    /// Another app of this manifest that wants the same path first.
    taken_by: Option<&'m str>,
}

pub(crate) fn kind_of(how: LinkHow) -> LinkKind {
    match how {
        LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink => LinkKind::Symlink,
        LinkHow::Hardlink => LinkKind::Hardlink,
        LinkHow::Copy => LinkKind::Copy,
    }
}

/// The device of `path`, or of its nearest existing ancestor (a folder mlib will create lives
/// on the filesystem of the folder it is created in).
fn device_of(path: &Path) -> Option<u64> {
    paths::nearest_existing(path)
        .and_then(|p| p.metadata().ok())
        .map(|m| m.dev())
}
