//! Desired vs observed → [`Plan`]. Planning reads the disk and the registry and changes
//! nothing.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use mlib_fs::platform;
use mlib_manifest::lock::LockedModel;
use mlib_manifest::{App, LinkMode, Manifest, Model, Source};
use mlib_registry::{FileStat, LinkKind, LinkRecord, Registry};
use mlib_store::{Layout, Metadata, Store};

use crate::action::{
    Action, Adopt, Bookkeeping, Conflict, Drift, Fetch, FetchReason, Link, LinkHow, Previous,
    Rename, Skip, Summary, Unlink, Verified,
};
use crate::app_version::{self, AppVersion};
use crate::by_key::ByKey;
use crate::decide::{
    self, Asked, ConflictReason, DriftWhat, Facts, Finder, Leftover, OnDisk, OtherFacts, Outcome,
    Present, RecordFacts, Wanted,
};
use crate::desired::{self, DesiredModel};
use crate::environment::{EnvIdentity, Ownership};
use crate::error::PlanError;
use crate::observed::{Observed, Recorded, Split};
use crate::paths::{self, PhysicalCache};
use crate::saved::Plan;
use crate::stat::{Dirs, Follow, Kind, Seen};
use mlib_fs::par::parallel_map;

mod whole_folders;

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
    models: ByKey<DesiredModel>,
    observed: Observed,
    mine: ByKey<Recorded>,
    others: ByKey<LinkRecord>,
    /// Targets this environment's last apply journaled but did not record (it was killed):
    /// what is there may be mlib's own finished work.
    pending: HashSet<OsString>,
    owner: Ownership,

    actions: Vec<Action>,
    bookkeeping: Vec<Bookkeeping>,
    drift: Vec<Drift>,
    warnings: Vec<String>,
    skipped: Vec<Skip>,
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
            models: ByKey::default(),
            observed,
            mine,
            others,
            pending,
            owner,

            actions: Vec::new(),
            bookkeeping,
            drift: Vec::new(),
            warnings: Vec::new(),
            skipped: Vec::new(),
        })
    }

    fn models(&mut self) -> Result<(), PlanError> {
        let models: Vec<&mlib_manifest::Model> = self.input.manifest.models.values().collect();
        let (store, observed, remote) = (self.input.store, &self.observed, self.input.remote);
        let hashing = self.input.hashing;
        let desired = parallel_map(&models, |model| {
            desired::desire(model, store, observed, remote.get(&model.name), hashing)
        });
        let desired = desired.into_iter().collect::<Result<Vec<_>, _>>()?;
        self.models = ByKey::with_capacity(desired.len());
        let mut renames = self.renames(&models, &desired);
        let mut missing = Vec::new();
        for (model, mut desired) in models.into_iter().zip(desired) {
            for (path, what) in desired.store_drift.drain(..) {
                self.drift.push(Drift {
                    target: path,
                    model: model.name.clone(),
                    app: String::new(),
                    what,
                });
            }
            if let Source::Local(path) = &model.source
                && !(model.include.is_empty() && model.exclude.is_empty())
                && self
                    .observed
                    .source_meta(path)
                    .is_some_and(|seen| seen.kind != crate::stat::Kind::Dir)
            {
                self.warnings.push(format!(
                    "model `{}`: include/exclude take files out of a folder, and {} is a file: they are ignored",
                    model.name,
                    path.display()
                ));
            }
            if let Some(rename) = renames.remove(&model.name) {
                // Its bytes are in the store under another name: moved there, not fetched.
                desired.fetch = None;
                self.actions.push(Action::Rename(rename));
            } else if let Some(reason) = desired.fetch.clone() {
                if let Source::Local(path) = &model.source
                    && self.observed.source_meta(path).is_none()
                {
                    missing.push((model.name.clone(), path.clone(), reason));
                    continue;
                }
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
            self.models.insert(desired);
        }
        if !missing.is_empty() {
            missing.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            // A person's file a killed mlib was moving in waits in staging to go back.
            let waiting = (self.input.store).moved_files_waiting().unwrap_or_default();
            return Err(PlanError::MissingSources { missing, waiting });
        }
        Ok(())
    }

    /// Models the manifest wants that are not in the store, whose bytes are: a model it no
    /// longer declares (renamed, or moved to another type or family) with the same files and
    /// hashes. Each becomes a rename of that model's store folder instead of a fetch, when
    /// - the wanted model pins a sha256 for every entry (manifest or lock), all single files;
    /// - the stored model has exactly those files and hashes, and is trusted without hashing
    ///   (its index entry or metadata.json stamp is the file's stamp now);
    /// - no other environment's link points into it, and no other environment whose manifest
    ///   exists declared it at its last apply (it would lose its model: then the model is
    ///   fetched as before, and both stay);
    /// - the store is writable, in the nested layout, and nothing is at the new place.
    ///
    /// The store is scanned (every metadata.json) only when some model is missing and pinned.
    fn renames(&self, models: &[&Model], desired: &[DesiredModel]) -> HashMap<String, Rename> {
        let mut found = HashMap::new();
        let store = self.input.store;
        if !self.input.store_writable || store.layout() != Layout::Nested {
            return found;
        }
        let wanted: Vec<usize> = (0..models.len())
            .filter(|&i| {
                let d = &desired[i];
                d.fetch == Some(FetchReason::Missing)
                    && !d.entries.is_empty()
                    && d.entries
                        .iter()
                        .all(|e| !e.is_dir && d.entry_sha256.contains_key(&e.name))
                    && d.dir.symlink_metadata().is_err()
            })
            .collect();
        if wanted.is_empty() {
            return found;
        }
        let Ok((stored, _unreadable)) = store.scan_lenient() else {
            return found;
        };
        let root = self.observed.store_root();
        let declared: HashSet<&Path> = desired.iter().map(|d| d.dir.as_path()).collect();
        // What other environments (whose manifests still exist) declared at their last apply:
        // they would fetch it back, so it is not this manifest's to move.
        let elsewhere: HashSet<String> = self
            .input
            .registry
            .environments()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.key != self.input.env.key && Path::new(&e.manifest).exists())
            .flat_map(|e| e.models.unwrap_or_default())
            .collect();
        let mut taken: HashSet<PathBuf> = HashSet::new();
        for i in wanted {
            let (model, d) = (models[i], &desired[i]);
            for (meta_path, metadata) in &stored {
                let Some(rel) = meta_path
                    .parent()
                    .and_then(|dir| dir.strip_prefix(store.root()).ok())
                else {
                    continue;
                };
                let dir = root.join(rel);
                if declared.contains(dir.as_path())
                    || taken.contains(&dir)
                    || !same_files(model, d, metadata)
                    || self.others.values().any(|r| r.source.starts_with(&dir))
                    || elsewhere.contains(&metadata.key().id())
                {
                    continue;
                }
                let Some((files, old_files)) = self.trusted_move(&dir, &d.dir, metadata) else {
                    continue;
                };
                taken.insert(dir.clone());
                found.insert(
                    model.name.clone(),
                    Rename {
                        model: model.name.clone(),
                        from: metadata.name.clone(),
                        from_dir: dir,
                        to_dir: d.dir.clone(),
                        bytes: metadata.size(),
                        files,
                        old_files,
                    },
                );
                break;
            }
        }
        found
    }

    /// The files of the stored model at `from` as they will be indexed at `to`, if every one
    /// is trusted now without hashing; with the index keys of the old place.
    fn trusted_move(
        &self,
        from: &Path,
        to: &Path,
        metadata: &Metadata,
    ) -> Option<(Vec<Verified>, Vec<String>)> {
        let root = self.observed.store_root();
        let mut files = Vec::new();
        let mut old_files = Vec::new();
        for file in &metadata.files {
            let path = from.join(&file.path);
            let rel = desired::rel_to(root, &path);
            let stamp = self.observed.store_file(&rel, &path)?;
            let indexed = self
                .observed
                .indexed(&rel)
                .is_some_and(|ix| ix.matches(&stamp) && ix.sha256 == file.sha256);
            if !indexed && file.stamp != Some(stamp) {
                return None;
            }
            files.push(Verified {
                path: desired::rel_to(root, &to.join(&file.path)),
                stamp,
                sha256: file.sha256.clone(),
                blake3: file.blake3.clone(),
            });
            old_files.push(rel);
        }
        Some((files, old_files))
    }

    fn links(&mut self) -> Result<(), PlanError> {
        let manifest = self.input.manifest;
        // Which entry of which model goes into which app folder. Each model type's folder in
        // an app, and how links into it are made, is worked out once per type.
        let mut folders: Vec<Folder> = Vec::new();
        // One per model and app, usually (a link farm has more): sized once, not grown by
        // doubling through 20,000.
        let mut items: Vec<Item> = Vec::with_capacity(manifest.models.len() * manifest.apps.len());
        // Whether the app lists files of an extension in a folder: (folder, extension, listed).
        // A handful of pairs, searched without allocating (20,000 links ask).
        let mut listed_fine: Vec<(usize, String, bool)> = Vec::new();
        // Each model's place among the desired models, found once (not once per app and
        // again per link): they were filed in the manifest's order.
        let desired_at: Vec<u32> = (0u32..)
            .zip(manifest.models.values())
            .map(|(i, model)| match self.models.at(i) {
                Some(desired) if desired.name == model.name => i,
                _ => self
                    .models
                    .position(&model.name)
                    .expect("every model was desired"),
            })
            .collect();
        for app in manifest.apps.values() {
            // A handful of types, asked 10,000 times.
            let mut by_type: hashbrown::HashMap<&str, Option<usize>> = Default::default();
            // Read from the app's tree once, and only when a model it selects has `requires:`.
            let mut version: Option<AppVersion> = None;
            let mut unchecked: Vec<&str> = Vec::new();
            if let Some(mlib_manifest::Container {
                store: None,
                root: Some(root),
            }) = &app.container
                && !matches!(app.link, LinkMode::Copy | LinkMode::Hardlink)
            {
                self.warnings.push(format!(
                    "app `{}` runs in a container (its root there: {}) that is not told where the store is: its symlinks name {} on this machine, and dangle in the container unless the store is mounted there at that same path; set `container.store` to where it is mounted",
                    app.name,
                    root.display(),
                    self.observed.store_root().display()
                ));
            }
            // An app whose folders lie in the store until apply removes its old folder link
            // gets its models linked one by one by the next plan.
            let deferred = self.retiring_folder_link(app);
            if deferred {
                self.warnings.push(format!(
                    "app `{}`: its folder link to the store is removed first; run `mlib apply` again to link its models one by one",
                    app.name
                ));
            }
            for (model, &desired_at) in manifest.models.values().zip(&desired_at) {
                if !app.selects(model) || deferred {
                    continue;
                }
                if app.links_folder_of(&model.model_type) {
                    // The app sees the store's whole folder: nothing to link per model, and
                    // nothing `requires:` could keep from it.
                    if model.requirements_for(app).next().is_some() {
                        self.warnings.push(format!(
                            "app `{}` sees every model in the store's `{}` folder through its folder link: `requires:` of model `{}` is not checked there",
                            app.name, model.model_type, model.name
                        ));
                    }
                    continue;
                }
                if !model.requires.is_empty()
                    && !self.allowed(app, model, &mut version, &mut unchecked)
                {
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
                let desired = self.models.at(desired_at).expect("every model was desired");
                for (entry, e) in desired.entries.iter().enumerate() {
                    // Whether the app lists the extension depends on the folder (`slot`) and
                    // the extension only: asked once per pair, not for each of 20,000 links.
                    let ext = extension_of(&e.name);
                    let fine = ext.and_then(|ext| {
                        listed_fine
                            .iter()
                            .find(|(s, x, _)| *s == slot && x == ext)
                            .map(|(_, _, fine)| *fine)
                    });
                    if !e.is_dir && fine != Some(true) {
                        let unlisted = crate::listing::unlisted(app, model, &e.name);
                        if let Some(ext) = ext
                            && fine.is_none()
                        {
                            listed_fine.push((slot, ext.to_owned(), unlisted.is_none()));
                        }
                        if let Some(unlisted) = unlisted
                            && !self.warnings.contains(&unlisted.message)
                        {
                            self.warnings.push(unlisted.message);
                        }
                    }
                    let farmed = e.is_dir && folders[slot].farm;
                    // A farm's model files are listed one by one, so each is judged as a file
                    // (its previews and configs are not meant to be listed).
                    if farmed {
                        for file in &e.files {
                            let name = file.rsplit('/').next().unwrap_or(file);
                            let is_model = name.rsplit_once('.').is_some_and(|(_, ext)| {
                                crate::onboard::MODEL_EXTENSIONS
                                    .contains(&ext.to_ascii_lowercase().as_str())
                            });
                            if !is_model {
                                continue;
                            }
                            if let Some(unlisted) = crate::listing::unlisted(app, model, name)
                                && !self.warnings.contains(&unlisted.message)
                            {
                                self.warnings.push(unlisted.message);
                            }
                        }
                    }
                    if farmed && e.files.is_empty() {
                        // Its files are known once it is fetched: linked then.
                        continue;
                    }
                    if (farmed || !e.is_dir) && folders[slot].how_file.is_none() {
                        return Err(PlanError::HardlinkAcrossFilesystems {
                            app: app.name.clone(),
                            folder: folders[slot].path.clone(),
                            store: self.observed.store_root().to_path_buf(),
                        });
                    }
                    if e.is_dir && !folders[slot].farm && app.link == LinkMode::Symlink {
                        let follows = app
                            .preset
                            .is_none_or(|p| p.follows_linked_folders(&model.model_type));
                        if !follows {
                            self.warnings.push(format!(
                                "app `{}` does not look inside linked folders in {}: model `{}` (a folder) linked as one symlink is not listed there; `link: auto` links it file by file",
                                app.name,
                                folders[slot].path.display(),
                                model.name
                            ));
                        }
                    }
                    if folders[slot].how(e.is_dir && !farmed) == LinkHow::AbsoluteSymlink
                        && folders[slot].container_store.is_none()
                    {
                        let warning = format!(
                            "app `{}` is on another filesystem than the store: using absolute symlinks, which break if the store's mount point changes{}",
                            app.name,
                            mlib_fs::platform::container()
                                .map(|c| format!(
                                    "; mlib runs inside {c}, so they name the store as {} is seen in here: they resolve on the host or in another container only where the store is mounted at that same path",
                                    self.observed.store_root().display()
                                ))
                                .unwrap_or_default()
                        );
                        if !self.warnings.contains(&warning) {
                            self.warnings.push(warning);
                        }
                    }
                    if farmed {
                        for file in 0..e.files.len() {
                            items.push(Item {
                                app,
                                model,
                                desired: desired_at,
                                slot,
                                entry,
                                file: Some(file),
                                taken_by: None,
                            });
                        }
                        continue;
                    }
                    items.push(Item {
                        app,
                        model,
                        desired: desired_at,
                        slot,
                        entry,
                        file: None,
                        taken_by: None,
                    });
                }
            }
            if let (Some(AppVersion::Unknown { why }), false) = (&version, unchecked.is_empty()) {
                self.warnings.push(format!(
                    "app `{}`: its version is unknown ({why}), so {} linked without checking `requires`: {}; set `version:` on the app to check {}",
                    app.name,
                    if unchecked.len() == 1 { "this model is" } else { "these models are" },
                    unchecked.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", "),
                    if unchecked.len() == 1 { "it" } else { "them" },
                ));
            }
        }
        self.claim_shared_targets(&folders, &mut items);
        // Each link's paths, and whether it is the recorded, untouched link (the bulk of a
        // no-op plan), over the cores.
        enum Verdict<'m> {
            /// The recorded link, untouched: its position in `mine`.
            Unchanged(u32),
            // Boxed: on a no-op plan every verdict is `Unchanged`, and 20,000 of them the size
            // of a `Link` were ~7 MB.
            Wanted(Box<(Link, String)>),
            Taken(Box<Link>, &'m str),
        }
        let (mine, models, pending) = (&self.mine, &self.models, &self.pending);
        let store_root = self.observed.store_root();
        let verdicts = parallel_map(&items, |item| {
            let (folder, desired) = (&folders[item.slot], item.desired(models));
            let entry = &desired.entries[item.entry];
            let name = item.name(desired);
            let how = folder.how(entry.is_dir && item.file.is_none());
            // Joined in buffers kept per thread: on a no-op plan these 40,000 paths are only
            // compared, never kept.
            let unchanged = JOINED.with_borrow_mut(|(target, source)| {
                join_into(target, &folder.path, &name);
                join_into(source, &desired.dir, &name);
                let position = mine.position(target.as_os_str())?;
                let recorded = mine.at(position)?;
                let text = Self::container_text(
                    store_root,
                    folder.container_store.as_deref(),
                    how,
                    source,
                );
                let untouched = recorded.untouched() && {
                    let record = RecordFacts::of(&recorded.record, source, text.as_deref());
                    let wanted = Wanted {
                        how,
                        fetch: desired.fetch.clone(),
                        journaled: pending.contains(target.as_os_str()),
                    };
                    let probe = Probe {
                        target,
                        source,
                        text: text.as_deref(),
                        record: Some(&recorded.record),
                        meta: None,
                    };
                    decide::settle(&mut Asked::default(), &probe, |asked| {
                        decide::holds(&record, &wanted, asked)
                    })
                };
                untouched.then_some(position)
            });
            if let (None, Some(position)) = (item.taken_by, unchanged) {
                return Verdict::Unchanged(position);
            }
            let source = desired.dir.join(&*name);
            let text =
                Self::container_text(store_root, folder.container_store.as_deref(), how, &source);
            let link = Link {
                model: item.model.name.clone(),
                app: item.app.name.clone(),
                target: folder.path.join(&*name),
                source,
                how,
                replaces: None,
                moved_from: None,
                heal: false,
                previous: None,
                farm: item.file.is_some(),
                clear: None,
                text,
            };
            match item.taken_by {
                Some(other) => Verdict::Taken(Box::new(link), other),
                None => Verdict::Wanted(Box::new((link, name.into_owned()))),
            }
        });
        let mut wanted: Vec<(Link, String)> = Vec::new();
        for verdict in verdicts {
            match verdict {
                // Taken out of `mine`: what is left there afterwards is no longer wanted.
                Verdict::Unchanged(position) => {
                    self.mine.retire(position);
                }
                Verdict::Wanted(wants) => wanted.push(*wants),
                Verdict::Taken(link, other) => {
                    let app = other.to_owned();
                    self.conflict(&link, ConflictReason::SameManifestApp { app });
                }
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
        let mut farm_roots: HashMap<PathBuf, FarmRoot> = HashMap::new();
        for ((link, name), meta) in wanted.into_iter().zip(metas) {
            let mut meta = meta.expect("every wanted target was looked at");
            // mlib's own link farm where the model is now linked as one folder: its links go
            // first (each unlink removes the folders it empties), then the folder link is made.
            if !link.farm
                && matches!(&meta, Ok(seen) if seen.kind == crate::stat::Kind::Dir)
                && self.is_our_farm(&link.target, &link.model, &link.app, 0)
            {
                meta = Err(io::ErrorKind::NotFound.into());
            }
            if link.farm {
                match self.farm_root(&mut farm_roots, &link, &name) {
                    FarmRoot::Real => {}
                    // mlib's old link to the whole folder, removed first: what is seen
                    // through it is the store, and the farm's files are not there yet.
                    FarmRoot::OurLink => meta = Err(io::ErrorKind::NotFound.into()),
                    FarmRoot::Foreign(reason) => {
                        self.conflict(&link, reason);
                        continue;
                    }
                }
            }
            self.observe(link, &name, meta);
        }
        self.whole_folders()
    }

    /// The folder of the link farm `record` belongs to (the link's ancestor standing for the
    /// model's entry), when its source is a file inside a folder entry of the store.
    fn farm_folder_of(&self, record: &LinkRecord) -> Option<PathBuf> {
        let rel = record
            .source
            .strip_prefix(self.observed.store_root())
            .ok()?;
        // Store path: type/family/name/ENTRY/... (nested) or type/ENTRY/... (flat).
        let entry_depth = match self.input.store.layout() {
            mlib_store::Layout::Nested => 4,
            mlib_store::Layout::Flat => 2,
        };
        let below = rel.components().count().checked_sub(entry_depth)?;
        (below > 0).then(|| record.target.ancestors().nth(below).map(Path::to_path_buf))?
    }

    /// Whether `dir` holds nothing but untouched links of `model` in `app` that this plan
    /// removes (a link farm mlib made, now to become one folder link or a copy), and folders.
    fn is_our_farm(&self, dir: &Path, model: &str, app: &str, depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        let Ok(read) = std::fs::read_dir(dir) else {
            return false;
        };
        read.flatten().all(|entry| {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => self.is_our_farm(&path, model, app, depth + 1),
                Ok(_) => self.mine.get(path.as_os_str()).is_some_and(|r| {
                    r.record.model == model && r.record.app == app && r.untouched()
                }),
                Err(_) => false,
            }
        })
    }

    /// What the top folder of a link farm (`{app folder}/{entry}`) is now, looked at once per
    /// farm.
    fn farm_root(
        &self,
        seen: &mut HashMap<PathBuf, FarmRoot>,
        link: &Link,
        name: &str,
    ) -> FarmRoot {
        let depth = Path::new(name).components().count();
        let Some(root) = link.target.ancestors().nth(depth - 1) else {
            return FarmRoot::Real;
        };
        seen.entry(root.to_path_buf())
            .or_insert_with(|| match root.symlink_metadata() {
                Ok(meta) if meta.is_symlink() => {
                    if let Some(mine) = self.mine.get(root.as_os_str()) {
                        let r = &mine.record;
                        if r.model == link.model && r.app == link.app && mine.untouched() {
                            return FarmRoot::OurLink;
                        }
                        if r.app != link.app {
                            return FarmRoot::Foreign(ConflictReason::SameManifestApp {
                                app: r.app.clone(),
                            });
                        }
                        return FarmRoot::Foreign(ConflictReason::Changed(r.kind));
                    }
                    if let Some(record) = self.others.get(root.as_os_str()) {
                        return FarmRoot::Foreign(ConflictReason::OtherEnvironment {
                            owner: self.owner.owner_label(record),
                        });
                    }
                    let points = std::fs::read_link(root)
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    FarmRoot::Foreign(ConflictReason::ForeignSymlink { points })
                }
                _ => FarmRoot::Real,
            })
            .clone()
    }

    /// Whether `app`'s version is one `model`'s `requires:` allows for it; when not, the plan
    /// says why (a [`Skip`]). An app whose version cannot be found gets the model (listed in
    /// `unchecked` for one warning per app): its version files may have moved or not exist
    /// in a download, and `version:` on the app makes the check strict.
    fn allowed<'m>(
        &mut self,
        app: &App,
        model: &'m Model,
        version: &mut Option<AppVersion>,
        unchecked: &mut Vec<&'m str>,
    ) -> bool {
        let mut requirements = model.requirements_for(app).peekable();
        if requirements.peek().is_none() {
            return true;
        }
        match version.get_or_insert_with(|| app_version::detect(app)) {
            AppVersion::Known { version, from } => {
                for (key, specifiers) in requirements {
                    if !specifiers.contains(version) {
                        self.skipped.push(Skip {
                            model: model.name.clone(),
                            app: app.name.clone(),
                            key: key.to_owned(),
                            requires: specifiers.to_string(),
                            found: version.to_string(),
                            from: from.clone(),
                        });
                        return false;
                    }
                }
                true
            }
            AppVersion::Unknown { .. } => {
                unchecked.push(&model.name);
                true
            }
        }
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
        if let Some(other) = inside_a_store(&path) {
            return Err(PlanError::InsideAnotherStore {
                app: app.name.clone(),
                folder: path,
                store: other,
            });
        }
        let how_dir = self
            .link_how(app, &path, true)
            .expect("folders never need a hard link");
        // Fooocus and Forge list some folders with a plain os.walk, which never enters a
        // linked folder (see the preset's tables): there a folder model is linked file by file,
        // unless the manifest asks for symlinks or copies by name.
        let follows = app
            .preset
            .is_none_or(|preset| preset.follows_linked_folders(model_type));
        let farm = !follows
            && matches!(
                app.link,
                LinkMode::Auto | LinkMode::Hardlink | LinkMode::Folder
            );
        Ok(Some(Folder {
            how_file: self.link_how(app, &path, false),
            how_dir,
            farm,
            path,
            container_store: app.container.as_ref().and_then(|c| c.store.clone()),
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
            // By entry: an app's link farm and another's folder link of one model collide.
            let desired = item.desired(&self.models);
            let target = folders[item.slot]
                .path
                .join(&desired.entries[item.entry].name);
            match claimed.get(&target) {
                Some(&app) if app != item.app.name => item.taken_by = Some(app),
                Some(_) => {}
                None => {
                    claimed.insert(target, &item.app.name);
                }
            }
        }
    }

    /// How a link into `folder` is made for this app's link mode; `None` when the app asks
    /// for hard links there and they cannot be made (an error once a file is to be linked).
    fn link_how(&mut self, app: &App, folder: &Path, is_dir: bool) -> Option<LinkHow> {
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
        let how = choose_link(app.link, is_dir, same_fs, hardlinkable)?;
        // A link for a container names the store where the container has it mounted: an
        // absolute path there, whatever the two filesystems are.
        let in_container = app.container.as_ref().is_some_and(|c| c.store.is_some());
        Some(if in_container && how.is_symlink() {
            LinkHow::AbsoluteSymlink
        } else {
            how
        })
    }

    /// What a symlink to `source` says for an app whose container sees the store at
    /// `container_store`: the same path below the store, there. `None`: the path itself.
    fn container_text(
        store_root: &Path,
        container_store: Option<&Path>,
        how: LinkHow,
        source: &Path,
    ) -> Option<PathBuf> {
        // Most apps run outside a container: asked first, it spares 20,000 `strip_prefix`es.
        let container_store = container_store.filter(|_| how.is_symlink())?;
        let inside = source.strip_prefix(store_root).ok()?;
        Some(if inside.as_os_str().is_empty() {
            container_store.to_path_buf()
        } else {
            container_store.join(inside)
        })
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

    /// Compares one desired link with what is on disk and in the registry: gathers the facts
    /// the rules of [`decide`] go by, and carries out their decision.
    fn observe(&mut self, mut link: Link, entry: &str, meta: io::Result<Seen>) {
        // Taken out of `mine`: what is left there afterwards is no longer wanted.
        let mine = self.mine.remove(link.target.as_os_str()).map(|r| r.record);
        let other = self.others.get(link.target.as_os_str());
        let model = &self.models[&link.model];
        let journaled = self.pending.contains(link.target.as_os_str());
        let facts = Facts {
            wanted: Wanted {
                how: link.how,
                fetch: model.fetch.clone(),
                journaled,
            },
            mine: mine
                .as_ref()
                .map(|r| RecordFacts::of(r, &link.source, link.text.as_deref())),
            other: other.map(|record| OtherFacts {
                record: RecordFacts::of(record, &link.source, link.text.as_deref()),
                owner: self.owner.owner_label(record),
                manifest: self.owner.manifest_of(record),
            }),
            disk: match &meta {
                Ok(meta) => OnDisk::Present(Present {
                    kind: meta.kind,
                    ino: meta.stat.ino,
                    nlink: meta.nlink,
                }),
                Err(err) if err.kind() == io::ErrorKind::NotFound => OnDisk::Missing,
                Err(err) => OnDisk::Uninspectable(err.to_string()),
            },
            adopt: self.input.options.adopt,
            want_sha256: model.entry_sha256.get(entry).cloned(),
            target_is_source: self.input.options.adopt
                && meta.as_ref().is_ok_and(|m| m.kind == Kind::Dir)
                && self.is_local_source(&link.model, &link.target),
        };
        let taken = other.filter(|_| facts.takes_over());
        let record = mine.as_ref().or(taken);
        let probe = Probe {
            target: &link.target,
            source: &link.source,
            text: link.text.as_deref(),
            record,
            meta: meta.as_ref().ok(),
        };
        let decision = decide::settle(&mut Asked::default(), &probe, |asked| {
            decide::decide(&facts, asked)
        });
        let replaces = record.map(|r| r.id);
        // What the link there is now, for the plan line (taken before `record` is let go).
        let previous = record.map(|r| Previous {
            source: r.source.clone(),
            kind: r.kind.as_str().to_owned(),
        });
        if decision.claim
            && let Some(taken) = self.others.remove(link.target.as_os_str())
        {
            self.bookkeeping
                .push(Bookkeeping::Claim { record: taken.id });
        }
        if let Some(what) = decision.drift {
            self.drift_at(&link, what);
        }
        match decision.outcome {
            Outcome::Unchanged => {}
            Outcome::Link => {
                link.replaces = replaces;
                self.actions.push(Action::Link(link));
            }
            Outcome::Relink { heal } => {
                link.replaces = replaces;
                link.heal = heal;
                link.previous = previous;
                self.actions.push(Action::Relink(link));
            }
            Outcome::Record => {
                link.replaces = replaces;
                self.bookkeeping.push(Bookkeeping::Record(link));
            }
            Outcome::Adopt => self.adopt(link, facts.want_sha256),
            Outcome::Conflict(reason) => self.conflict(&link, reason),
        }
    }

    /// Whether `target` is the model's own local source (both resolved).
    fn is_local_source(&self, model: &str, target: &Path) -> bool {
        let Some(model) = self.input.manifest.models.get(model) else {
            return false;
        };
        let mlib_manifest::Source::Local(source) = &model.source else {
            return false;
        };
        match (paths::physical(source), paths::physical(target)) {
            (Ok(source), Ok(target)) => source == target,
            _ => false,
        }
    }

    /// Replaces a user's file identical to the model (or a folder that is its own source) by
    /// a link (`--adopt`).
    fn adopt(&mut self, link: Link, sha256: Option<String>) {
        // Only a model the store does not have at all takes the user's copy as its own; a
        // damaged or outdated store copy is fetched again (and its bytes quarantined) first.
        let into_store = self.models[&link.model]
            .fetch
            .as_ref()
            .is_some_and(|f| *f == FetchReason::Missing);
        if into_store {
            // The user's copy becomes the store's copy: nothing to fetch.
            let name = link.model.clone();
            self.actions
                .retain(|a| !matches!(a, Action::Fetch(f) if f.model == name));
            if let Some(m) = self.models.get_mut(&name) {
                m.fetch = None;
            }
        }
        let how = into_store.then(|| {
            if sha256.is_some() && self.input.store.can_move_in(&link.target) {
                mlib_store::Transfer::Moved
            } else if mlib_fs::platform::may_reflink(self.input.store.root()) {
                mlib_store::Transfer::Reflinked
            } else {
                mlib_store::Transfer::Copied
            }
        });
        self.actions.push(Action::Adopt(Adopt {
            link,
            sha256,
            into_store,
            how,
        }));
    }

    /// Links this manifest made that the manifest no longer wants.
    fn leftovers(&mut self) {
        // The retired records (the unchanged links) stay in the table, which is dropped on
        // another thread (`finish`).
        let mut stale: Vec<Recorded> = self.mine.take_all();
        stale.sort_by(|a, b| a.record.target.cmp(&b.record.target));
        let mut unlinks = Vec::new();
        let mut pending = self.pending_links();
        for recorded in &mut stale {
            let target = recorded.record.target.clone();
            let unchanged = recorded
                .take_meta()
                .ok()
                .map(|meta| current_stat(&recorded.record, &target, &meta) == recorded.record.stat);
            let record = &recorded.record;
            let leftover = decide::leftover(unchanged);
            match leftover {
                Leftover::Remove if self.moves(&mut pending, record) => {}
                Leftover::Remove => unlinks.push(Action::Unlink(Unlink {
                    model: record.model.clone(),
                    app: record.app.clone(),
                    target: record.target.clone(),
                    record: record.id,
                    prune: self.farm_folder_of(record),
                })),
                Leftover::Forget(what) => {
                    self.drift.push(Drift {
                        target: record.target.clone(),
                        model: record.model.clone(),
                        app: record.app.clone(),
                        what: what.to_string(),
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

    /// The new links (replacing nothing) by model, app and file name: where a leftover link
    /// looks for the link it moved to, in one lookup rather than a scan of every action.
    fn pending_links(&self) -> HashMap<(String, String, OsString), Vec<usize>> {
        let mut pending: HashMap<_, Vec<usize>> = HashMap::new();
        for (at, action) in self.actions.iter().enumerate().rev() {
            if let Action::Link(link) = action
                && link.replaces.is_none()
                && !link.farm
                && let Some(name) = link.target.file_name()
            {
                pending
                    .entry((link.model.clone(), link.app.clone(), name.to_owned()))
                    .or_default()
                    .push(at);
            }
        }
        pending
    }

    /// When the app's folder mapping changed, the model's new link is a move of its old one:
    /// turn the pending link into a relink that also removes the old link.
    fn moves(
        &mut self,
        pending: &mut HashMap<(String, String, OsString), Vec<usize>>,
        record: &LinkRecord,
    ) -> bool {
        let Some(name) = record.target.file_name() else {
            return false;
        };
        let key = (record.model.clone(), record.app.clone(), name.to_owned());
        // The first such link in plan order (the positions are stacked last first).
        let Some(at) = pending.get_mut(&key).and_then(Vec::pop) else {
            return false;
        };
        // pending_links holds the positions of links only, and nothing moves them meanwhile.
        let Some(Action::Link(link)) = self.actions.get(at) else {
            return false;
        };
        let mut link = link.clone();
        link.replaces = Some(record.id);
        link.moved_from = Some(record.target.clone());
        self.actions[at] = Action::Relink(link);
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
            skipped: self.skipped,
            summary: Summary::default(),
            resolved: Default::default(),
        };
        plan.sort();
        plan.summary = Summary::of(&plan.actions);
        plan
    }

    fn conflict(&mut self, link: &Link, reason: ConflictReason) {
        self.actions.push(Action::Conflict(Conflict {
            model: link.model.clone(),
            app: link.app.clone(),
            target: link.target.clone(),
            reason: reason.to_string(),
        }));
    }

    fn drift_at(&mut self, link: &Link, what: DriftWhat) {
        self.drift.push(Drift {
            target: link.target.clone(),
            model: link.model.clone(),
            app: link.app.clone(),
            what: what.to_string(),
        });
    }
}

/// Whether a stored model has exactly the files `desired` expects, with the pinned hashes.
fn same_files(model: &Model, desired: &DesiredModel, metadata: &Metadata) -> bool {
    let mut names: Vec<&str> = desired.entries.iter().map(|e| e.name.as_str()).collect();
    let mut stored: Vec<&str> = metadata.entries.iter().map(String::as_str).collect();
    names.sort_unstable();
    stored.sort_unstable();
    names == stored
        && metadata.files.len() == names.len()
        && metadata.files.iter().all(|file| {
            desired.entry_sha256.get(&file.path) == Some(&file.sha256)
                && model.blake3.as_ref().is_none_or(|b3| *b3 == file.blake3)
        })
}

/// Finds, on disk, the facts about one target that the rules ask for (see [`decide`]).
/// Read-only, so the links of a plan are looked at on every core at once.
struct Probe<'p> {
    target: &'p Path,
    /// The store entry the link should give the app.
    source: &'p Path,
    /// What the symlink should say, when not the path of `source` (a container's view).
    text: Option<&'p Path>,
    /// The record the rules go by, if any.
    record: Option<&'p LinkRecord>,
    /// The target's `lstat`, if it could be taken.
    meta: Option<&'p Seen>,
}

impl Finder for Probe<'_> {
    fn unchanged(&self) -> bool {
        match (self.record, self.meta) {
            (Some(record), Some(meta)) => current_stat(record, self.target, meta) == record.stat,
            _ => false,
        }
    }

    fn source_ino(&self) -> Option<u64> {
        self.source.metadata().ok().map(|m| platform::inode(&m))
    }

    fn points_to_source(&self) -> bool {
        if let Some(text) = self.text {
            // It resolves in the container only: compared as written.
            return std::fs::read_link(self.target).is_ok_and(|content| content == text);
        }
        match std::fs::read_link(self.target) {
            Ok(content) => {
                let resolved = paths::resolve_link_target(self.target, &content);
                resolved == self.source
                    || paths::physical(&resolved).is_ok_and(|real| real == self.source)
            }
            Err(_) => false,
        }
    }

    fn symlink(&self) -> String {
        std::fs::read_link(self.target)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "?".into())
    }

    fn same_content(&self) -> bool {
        crate::compare::same_content(self.target, self.source).unwrap_or(false)
    }

    fn sha256(&self) -> Result<String, String> {
        mlib_store::hash_file(self.target)
            .map(|hashes| hashes.sha256)
            .map_err(|err| err.to_string())
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

/// How a link is made for an app's link mode, given where its folder is relative to the
/// store. `None`: the app asks for hard links to a file where none can be made. That is an
/// error, not a quiet fallback: a person who wrote `link: hardlink` wants the app's files to
/// survive the store moving or going offline, which symlinks do not give. `auto` falls back
/// to symlinks (absolute ones across filesystems); a folder is never hardlinked, so it gets
/// the closest safe thing, a symlink.
fn choose_link(mode: LinkMode, is_dir: bool, same_fs: bool, hardlinkable: bool) -> Option<LinkHow> {
    let symlink = if same_fs {
        LinkHow::RelativeSymlink
    } else {
        LinkHow::AbsoluteSymlink
    };
    match mode {
        LinkMode::Copy => Some(LinkHow::Copy),
        LinkMode::Hardlink if is_dir => Some(symlink),
        LinkMode::Hardlink if hardlinkable => Some(LinkHow::Hardlink),
        LinkMode::Hardlink => None,
        // A whole-folder link is a symlink; its app's other links are made as `auto` would.
        LinkMode::Auto | LinkMode::Symlink | LinkMode::Folder => Some(symlink),
    }
}

/// An app's folder for one model type.
#[derive(Clone)]
struct Folder {
    path: PathBuf,
    /// `None` when the app asks for hard links here and none can be made.
    how_file: Option<LinkHow>,
    how_dir: LinkHow,
    /// The app does not look inside linked folders here: a folder model is linked as a real
    /// folder of per-file links (a link farm), which it lists.
    farm: bool,
    /// Where the app's container sees the store (`container.store`): symlinks name it there.
    container_store: Option<PathBuf>,
}

impl Folder {
    fn how(&self, is_dir: bool) -> LinkHow {
        if is_dir {
            self.how_dir
        } else {
            // Checked for every file entry before any link into the folder is planned.
            self.how_file
                .expect("a hard link refused before planning links")
        }
    }
}

/// One entry of one model that one app wants linked.
struct Item<'m> {
    app: &'m App,
    model: &'m Model,
    /// Where its desired model is (see [`Item::desired`]).
    desired: u32,
    /// Index into the app folders.
    slot: usize,
    /// Index into the model's entries.
    entry: usize,
    /// For a folder entry linked file by file (a link farm): index into its files.
    file: Option<usize>,
    /// Another app of this manifest that wants the same path first.
    taken_by: Option<&'m str>,
}

/// The top folder of a link farm, as it is before apply.
#[derive(Clone)]
enum FarmRoot {
    /// A folder, or nothing yet.
    Real,
    /// mlib's untouched link to the model's folder (the way it was linked before): the plan
    /// removes it before the farm is made.
    OurLink,
    /// A link this plan does not remove (someone else's, another app's or environment's,
    /// or mlib's own changed since): the farm is not made through it.
    Foreign(ConflictReason),
}

impl Item<'_> {
    /// What the plan wants of its model.
    fn desired<'d>(&self, models: &'d ByKey<DesiredModel>) -> &'d DesiredModel {
        models.at(self.desired).expect("every model was desired")
    }

    /// The path of what this item links, relative to the model's folder in the store and to
    /// the app's folder: the entry, or for a link farm one file inside it.
    fn name<'d>(&self, desired: &'d DesiredModel) -> Cow<'d, str> {
        let entry = &desired.entries[self.entry];
        match self.file {
            Some(file) => Cow::Owned(format!("{}/{}", entry.name, entry.files[file])),
            None => Cow::Borrowed(&entry.name),
        }
    }
}

thread_local! {
    /// A wanted link's target and source, joined for comparing (see [`Planner::links`]).
    static JOINED: RefCell<(PathBuf, PathBuf)> = RefCell::default();
}

/// The extension of the last name in `path` (a `/`-separated path), as `Path::extension`
/// finds it: none for a name that starts with its only dot. Taken from the text: for 20,000
/// links, `Path`'s component parser was a serial millisecond.
fn extension_of(path: &str) -> Option<&str> {
    // Byte by byte from the end: names are short, and `rsplit` sets up a searcher each time.
    let bytes = path.as_bytes();
    let name = bytes
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(path, |at| &path[at + 1..]);
    if name.is_empty() || name == "." || name == ".." {
        // Odd paths (a trailing `/`, a `.` component): as the component parser sees them.
        return Path::new(path).extension()?.to_str();
    }
    match name.as_bytes().iter().rposition(|&b| b == b'.') {
        Some(0) | None => None,
        Some(dot) => Some(&name[dot + 1..]),
    }
}

/// `dir.join(name)`, into `buf`'s allocation.
fn join_into(buf: &mut PathBuf, dir: &Path, name: &str) {
    buf.as_mut_os_string().clear();
    buf.push(dir);
    buf.push(name);
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
/// The flat mlib store `path` (physical) lies in, if any: a folder of it holds mlib's
/// metadata folder (`.mlib-meta/`, one per type folder). An app folder resolves there
/// through another manifest's folder link to its store (only flat stores are linked whole).
pub(crate) fn inside_a_store(path: &Path) -> Option<PathBuf> {
    path.ancestors()
        .find(|dir| dir.join(mlib_store::FLAT_META_DIR).is_dir())
        .map(|dir| dir.parent().unwrap_or(dir).to_path_buf())
}

fn device_of(path: &Path) -> Option<u64> {
    paths::nearest_existing(path)
        .and_then(|p| p.metadata().ok())
        .map(|m| platform::device(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_is_what_path_finds() {
        for path in [
            "m.safetensors",
            "sub/dir/m.ckpt",
            "m.tar.gz",
            "noext",
            ".hidden",
            "dir/.hidden",
            "m.",
            "..",
            ".",
            "a/..",
            "a/.",
            "a.b/",
            "a.b/.",
            "",
            "x/y.z/w",
            "...",
            "a..b",
        ] {
            let std = Path::new(path).extension().and_then(|e| e.to_str());
            assert_eq!(extension_of(path), std, "{path:?}");
        }
    }

    #[test]
    fn choose_link_refuses_only_an_explicit_hardlink_that_cannot_be_made() {
        use LinkHow::{AbsoluteSymlink, RelativeSymlink};
        // (mode, is_dir, same_fs, hardlinkable) → how
        let table = [
            (
                LinkMode::Hardlink,
                false,
                true,
                true,
                Some(LinkHow::Hardlink),
            ),
            // Another filesystem, or the same one through another mount (a bind mount).
            (LinkMode::Hardlink, false, false, false, None),
            (LinkMode::Hardlink, false, true, false, None),
            // Folders are never hardlinked: symlinks, as before.
            (
                LinkMode::Hardlink,
                true,
                false,
                false,
                Some(AbsoluteSymlink),
            ),
            (LinkMode::Hardlink, true, true, true, Some(RelativeSymlink)),
            // `auto` keeps its fallback.
            (LinkMode::Auto, false, false, false, Some(AbsoluteSymlink)),
            (LinkMode::Auto, false, true, true, Some(RelativeSymlink)),
            (
                LinkMode::Symlink,
                false,
                false,
                false,
                Some(AbsoluteSymlink),
            ),
            (LinkMode::Copy, false, false, false, Some(LinkHow::Copy)),
        ];
        for (mode, is_dir, same_fs, hardlinkable, want) in table {
            assert_eq!(
                choose_link(mode, is_dir, same_fs, hardlinkable),
                want,
                "{mode:?} dir={is_dir} same_fs={same_fs} hardlinkable={hardlinkable}"
            );
        }
    }
}
