//! Getting bytes into the store safely.
//!
//! Everything is assembled in a private folder under `{root}/.mlib/tmp` (same filesystem as
//! the store) and renamed into place only once it is complete, fsynced, verified and
//! read-only. A failure at any step removes the staging folder: nothing half-done or
//! unverified ever appears where apps look.
//!
//! Replacing a model that is already stored never leaves it missing for longer than the gap
//! between two renames: the new version is staged, the old one renamed aside, the new one
//! renamed in, and only then is the old one deleted.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use mlib_fs::par::parallel_map_owned;

use crate::copy::copy_into_file;
use crate::hash::{Hashes, copy_hashing};
use crate::layout::{
    FLAT_META_DIR, Layout, METADATA_FILE, ModelKey, Store, validate_component, validate_key,
    validate_rel_path,
};
use crate::metadata::{FileRecord, Metadata};
use crate::util::{make_read_only, remove_any, sync_dir};
use crate::{StoreError, Transfer, layout};

/// Hashes a model is pinned to (lowercase or uppercase hex); `None` means not pinned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub sha256: Option<String>,
    pub blake3: Option<String>,
}

impl Expected {
    pub fn is_empty(&self) -> bool {
        self.sha256.is_none() && self.blake3.is_none()
    }

    /// Compares `actual` with every pinned hash; `path` names the file in the error.
    pub fn check(&self, path: &Path, actual: &Hashes) -> Result<(), StoreError> {
        let pins = [
            ("sha256", &self.sha256, &actual.sha256),
            ("blake3", &self.blake3, &actual.blake3),
        ];
        for (algorithm, expected, actual) in pins {
            if let Some(expected) = expected
                && !expected.eq_ignore_ascii_case(actual)
            {
                return Err(StoreError::HashMismatch {
                    path: path.to_owned(),
                    algorithm,
                    expected: expected.to_ascii_lowercase(),
                    actual: actual.clone(),
                });
            }
        }
        Ok(())
    }
}

/// A finished, hashed file waiting in [`Store::staging_dir`] (a completed download).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// Where it is now; renamed (not copied) into the store when on the same filesystem.
    pub staged: PathBuf,
    /// Where it goes, relative to the model dir, `/`-separated: `model.safetensors`, or
    /// `{folder}/sub/file` for a multi-file model.
    pub rel_path: String,
    pub hashes: Hashes,
}

/// A local model copied into staging, hashed and verified, waiting for
/// [`Store::install_staged`] (see [`Store::stage_local_selected`]).
#[derive(Debug)]
pub struct StagedModel {
    name: String,
    model_type: String,
    family: Option<String>,
    source: String,
    work: WorkDir,
    files: Vec<FileRecord>,
}

impl StagedModel {
    /// Bytes copied.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    fn key(&self) -> ModelKey<'_> {
        ModelKey {
            name: &self.name,
            model_type: &self.model_type,
            family: self.family.as_deref(),
        }
    }
}

/// When staged bytes are made durable: fsync by fsync as they are written (one model at a
/// time), or all at once by the caller ([`Store::install_staged`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    EachFile,
    Batch,
}

/// A staged model with its metadata.json written, and the entries of the version it replaces.
type Prepared = (StagedModel, Metadata, Vec<String>);

/// What [`Store::stage`] made: the work folder and the records of the files in it.
struct Staged {
    work: WorkDir,
    files: Vec<FileRecord>,
    transfer: Transfer,
}

/// Folder trees deeper than this are symlink loops in practice.
const MAX_DEPTH: usize = 64;

impl Store {
    /// Copies a local file or folder in (hash while copying into a private work folder, fsync,
    /// rename the folder into place; read-only). The entry is named after `src`. `progress` gets byte deltas.
    pub fn ingest_local(
        &self,
        key: &ModelKey,
        src: &Path,
        expect: &Expected,
        source: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Metadata, StoreError> {
        self.ingest_local_as(key, src, None, expect, source, progress)
    }

    /// [`Store::ingest_local`] with the entry renamed to `entry` (the manifest's `file:`).
    pub fn ingest_local_as(
        &self,
        key: &ModelKey,
        src: &Path,
        entry: Option<&str>,
        expect: &Expected,
        source: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Metadata, StoreError> {
        self.ingest_local_how(key, src, entry, expect, source, &|_| true, progress)
            .map(|(meta, _)| meta)
    }

    /// [`Store::ingest_local_as`] taking from a folder `src` only the files `accept` takes
    /// (given their `/`-separated path relative to `src`): a sharded set or a model with its
    /// companion files out of a downloads folder. `accept` is also asked about each folder,
    /// as its path with a trailing `/`, before it is entered: a folder that cannot hold a
    /// taken file is never read (nor is the store itself, when it lies inside `src`). Folders
    /// holding no taken file are not made. Also says how the bytes got in: reflinked where the filesystem could clone every
    /// file, else copied.
    #[allow(clippy::too_many_arguments)]
    pub fn ingest_local_how(
        &self,
        key: &ModelKey,
        src: &Path,
        entry: Option<&str>,
        expect: &Expected,
        source: &str,
        accept: &dyn Fn(&str) -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(Metadata, Transfer), StoreError> {
        let staged = self.stage(
            key,
            src,
            entry,
            expect,
            accept,
            progress,
            Durability::EachFile,
        )?;
        let meta = self.install(key, staged.work, staged.files, source)?;
        Ok((meta, staged.transfer))
    }

    /// [`Store::ingest_local_how`]'s first half for many models at once: the model is
    /// copied into staging, hashed and verified, but neither made durable nor put in place.
    /// [`Store::install_staged`] then does both for a whole batch with two filesystem syncs,
    /// instead of four or five fsyncs per model (which is what ten thousand small models
    /// cost: each fsync is a journal commit). Dropped without being installed, the staged
    /// copy is removed; a kill leaves a work folder the next apply removes.
    #[allow(clippy::too_many_arguments)]
    pub fn stage_local_selected(
        &self,
        key: &ModelKey,
        src: &Path,
        entry: Option<&str>,
        expect: &Expected,
        source: &str,
        accept: &dyn Fn(&str) -> bool,
        progress: &mut dyn FnMut(u64),
    ) -> Result<StagedModel, StoreError> {
        let staged = self.stage(key, src, entry, expect, accept, progress, Durability::Batch)?;
        Ok(StagedModel {
            name: key.name.to_owned(),
            model_type: key.model_type.to_owned(),
            family: key.family.map(str::to_owned),
            source: source.to_owned(),
            work: staged.work,
            files: staged.files,
        })
    }

    /// Puts staged models in place, each as [`Store::ingest_local_how`] would, with the
    /// same guarantee: a model appears in the store only once its bytes and metadata are
    /// durable, and its folder's rename is durable when this returns. The batch is synced
    /// once before the renames and once after, whatever its size. One result per model, in
    /// order: a model that fails leaves the others alone.
    pub fn install_staged(&self, batch: Vec<StagedModel>) -> Vec<Result<Metadata, StoreError>> {
        if batch.is_empty() {
            return Vec::new();
        }
        if self.layout() == Layout::Flat {
            // The flat layout replaces entries one by one among other models' files: after
            // the staged bytes are synced, it keeps its per-model path, which syncs what it
            // renames and writes itself.
            if let Err(e) = self.sync_staging() {
                return batch.into_iter().map(|_| Err(same_error(&e))).collect();
            }
            return batch
                .into_iter()
                .map(|staged| {
                    let StagedModel {
                        name,
                        model_type,
                        family,
                        source,
                        work,
                        files,
                    } = staged;
                    let key = ModelKey {
                        name: &name,
                        model_type: &model_type,
                        family: family.as_deref(),
                    };
                    self.install(&key, work, files, &source)
                })
                .collect();
        }
        // Each model's metadata.json is written into its private work folder (stamps taken
        // there: renaming the folder later moves no file's stamp), then everything is made
        // durable at once, and only then does any folder move into place.
        // On every core: each model writes into its own folder, and the kernel makes files
        // in different folders side by side (renames, below, it makes one at a time).
        let prepared: Vec<Result<Prepared, StoreError>> =
            parallel_map_owned(batch, |mut staged| {
                let files = std::mem::take(&mut staged.files);
                let (mut meta, old_entries) =
                    self.metadata_for(&staged.key(), files, &staged.source)?;
                stamp_files(&staged.work.path, &mut meta.files)?;
                fs_err::write(staged.work.path.join(METADATA_FILE), meta.to_json()?)?;
                Ok((staged, meta, old_entries))
            });
        if let Err(e) = self.sync_staging() {
            return prepared.into_iter().map(|_| Err(same_error(&e))).collect();
        }
        let installed: Vec<Result<Metadata, StoreError>> = prepared
            .into_iter()
            .map(|prepared| {
                let (staged, meta, old_entries) = prepared?;
                let key = meta.key();
                self.swap_model_dir(
                    &key,
                    staged.work,
                    &old_entries,
                    &meta.entries,
                    Durability::Batch,
                )?;
                Ok(meta)
            })
            .collect();
        // The renames: durable before anyone records these models.
        match self.sync_staging() {
            Ok(()) => installed,
            Err(e) => installed
                .into_iter()
                .map(|r| r.and(Err(same_error(&e))))
                .collect(),
        }
    }

    /// Makes everything written on the store's filesystem durable (one `syncfs`).
    fn sync_staging(&self) -> Result<(), StoreError> {
        Ok(mlib_fs::platform::sync_filesystem(&self.staging_dir()?)?)
    }

    /// Copies `src` into a new work folder, hashing and verifying it.
    #[allow(clippy::too_many_arguments)]
    fn stage(
        &self,
        key: &ModelKey,
        src: &Path,
        entry: Option<&str>,
        expect: &Expected,
        accept: &dyn Fn(&str) -> bool,
        progress: &mut dyn FnMut(u64),
        durability: Durability,
    ) -> Result<Staged, StoreError> {
        validate_key(key)?;
        let src_meta = match fs_err::metadata(src) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(StoreError::SourceMissing {
                    path: src.to_owned(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        let entry = match entry {
            Some(entry) => entry.to_owned(),
            None => utf8_name(src)?,
        };
        self.validate_entry(&entry)?;
        if src_meta.is_dir() && !expect.is_empty() {
            return Err(StoreError::PinOnFolder {
                path: src.to_owned(),
            });
        }

        let work = self.work_dir("ingest")?;
        let mut files = Vec::new();
        let mut transfer = Transfer::Reflinked;
        if src_meta.is_file() {
            // Written under its own name: the work folder is private until it is renamed into
            // place whole, so a `.part` name and a rename per file would add nothing.
            let dest = work.path.join(&entry);
            let (hashes, how) = copy_file(src, &dest, progress, durability, self.direct_io())?;
            transfer = how;
            if let Err(e) = expect.check(src, &hashes) {
                fs_err::remove_file(&dest)?;
                return Err(e);
            }
            files.push(record(entry, hashes));
        } else if src_meta.is_dir() {
            let store_root = std::fs::canonicalize(self.root()).ok();
            let mut tree = Tree {
                accept,
                store_root: store_root.as_deref(),
                files: &mut files,
                progress,
                durability,
                direct_io: self.direct_io(),
                transfer: &mut transfer,
            };
            tree.copy(src, &work.path.join(&entry), &entry, "", 0)?;
            if files.is_empty() {
                return Err(StoreError::Empty {
                    name: key.name.to_owned(),
                });
            }
        } else {
            return Err(StoreError::UnsupportedFileType {
                path: src.to_owned(),
            });
        }
        if durability == Durability::EachFile {
            sync_dir(&work.path)?;
        }
        Ok(Staged {
            work,
            files,
            transfer,
        })
    }

    /// Moves already-hashed staged files (paths inside [`Store::staging_dir`]) into the model
    /// dir and writes the metadata. The staged files must already be fsynced; a file on
    /// another filesystem is copied instead of renamed.
    pub fn commit(
        &self,
        key: &ModelKey,
        staged: Vec<StagedFile>,
        source: &str,
    ) -> Result<Metadata, StoreError> {
        validate_key(key)?;
        if staged.is_empty() {
            return Err(StoreError::Empty {
                name: key.name.to_owned(),
            });
        }
        let mut seen = BTreeSet::new();
        for file in &staged {
            validate_rel_path(&file.rel_path)?;
            self.validate_entry(entry_of(&file.rel_path))?;
            if !seen.insert(file.rel_path.as_str()) {
                return Err(layout::invalid(
                    "file path",
                    &file.rel_path,
                    "it is listed twice",
                ));
            }
            let actual = fs_err::metadata(&file.staged)?.len();
            if actual != file.hashes.size {
                return Err(StoreError::SizeMismatch {
                    path: file.staged.clone(),
                    expected: file.hashes.size,
                    actual,
                });
            }
        }

        let work = self.work_dir("commit")?;
        let mut files = Vec::with_capacity(staged.len());
        let mut dirs = BTreeSet::new();
        for file in staged {
            let dest = work.path.join(&file.rel_path);
            if let Some(parent) = dest.parent() {
                fs_err::create_dir_all(parent)?;
                dirs.insert(parent.to_owned());
            }
            move_file(&file.staged, &dest)?;
            make_read_only(&dest)?;
            files.push(record(file.rel_path, file.hashes));
        }
        for dir in dirs {
            sync_dir(&dir)?;
        }
        self.install(key, work, files, source)
    }

    /// Removes a model's entries and metadata from the store; returns what was removed, or
    /// `None` when the model was not stored.
    pub fn remove_model(&self, key: &ModelKey) -> Result<Option<Metadata>, StoreError> {
        let Some(meta) = self.read_metadata(key)? else {
            return Ok(None);
        };
        let trash = self.work_dir("remove")?;
        match self.layout() {
            Layout::Nested => {
                // Renaming first makes the removal atomic from the apps' point of view.
                fs_err::rename(self.model_dir(key), trash.path.join("model"))?;
            }
            Layout::Flat => {
                for entry in &meta.entries {
                    let path = self.entry_path(key, entry);
                    if fs_err::symlink_metadata(&path).is_ok() {
                        fs_err::rename(&path, trash.path.join(entry))?;
                    }
                }
                fs_err::remove_file(self.metadata_path(key))?;
            }
        }
        drop(trash);
        Ok(Some(meta))
    }

    pub(crate) fn validate_entry(&self, entry: &str) -> Result<(), StoreError> {
        validate_component("entry name", entry)?;
        if self.layout() == Layout::Nested && entry == METADATA_FILE {
            return Err(layout::invalid(
                "entry name",
                entry,
                "metadata.json is where mlib keeps the model's metadata: rename the file",
            ));
        }
        Ok(())
    }

    /// Puts the finished `work` folder (entries only) in place and writes the metadata.
    pub(crate) fn install(
        &self,
        key: &ModelKey,
        work: WorkDir,
        files: Vec<FileRecord>,
        source: &str,
    ) -> Result<Metadata, StoreError> {
        let (mut meta, old_entries) = self.metadata_for(key, files, source)?;
        match self.layout() {
            Layout::Nested => {
                // Renaming the folder into place moves no file's stamp: take them now.
                stamp_files(&work.path, &mut meta.files)?;
                meta.write(&work.path.join(METADATA_FILE))?;
                self.swap_model_dir(key, work, &old_entries, &meta.entries, Durability::EachFile)?;
            }
            Layout::Flat => {
                self.swap_flat_entries(key, work, &old_entries, &meta.entries)?;
                stamp_files(&self.model_dir(key), &mut meta.files)?;
                meta.write(&self.metadata_path(key))?;
            }
        }
        Ok(meta)
    }

    /// The metadata of `key` with `files`, keeping the old version's `added` time; and the
    /// old version's entries.
    fn metadata_for(
        &self,
        key: &ModelKey,
        mut files: Vec<FileRecord>,
        source: &str,
    ) -> Result<(Metadata, Vec<String>), StoreError> {
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let entries: Vec<String> = files
            .iter()
            .map(|f| entry_of(&f.path).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let old = self.read_metadata(key)?;
        let now = now();
        let meta = Metadata {
            name: key.name.to_owned(),
            model_type: key.model_type.to_owned(),
            family: key.family.map(str::to_owned),
            source: source.to_owned(),
            entries,
            files,
            added: old.as_ref().map_or(now, |m| m.added),
            updated: now,
        };
        Ok((meta, old.map(|m| m.entries).unwrap_or_default()))
    }

    /// Nested layout: the whole model dir is replaced. Files a person added to the old dir
    /// (a preview image, notes) are carried over, never deleted.
    fn swap_model_dir(
        &self,
        key: &ModelKey,
        work: WorkDir,
        old_entries: &[String],
        new_entries: &[String],
        durability: Durability,
    ) -> Result<(), StoreError> {
        let model_dir = self.model_dir(key);
        let parent = model_dir.parent().unwrap_or(self.root());
        let sync_parent = || match durability {
            Durability::EachFile => sync_dir(parent),
            Durability::Batch => Ok(()),
        };
        // A new model (the common case) is one rename that never replaces anything; its
        // type/family folder is made only when missing. Three system calls fewer per model
        // than looking first. Not found: the folder is made (`create_dir_all` also accepts
        // it made meanwhile by another writer, as `link::make` does) and the rename tried
        // once more; a work folder that is gone fails that second rename too.
        let mut placed = mlib_fs::platform::rename_noreplace(&work.path, &model_dir);
        if matches!(&placed, Err(e) if e.kind() == io::ErrorKind::NotFound) {
            fs_err::create_dir_all(parent)?;
            placed = mlib_fs::platform::rename_noreplace(&work.path, &model_dir);
        }
        match placed {
            Ok(()) => {
                work.keep();
                sync_parent()?;
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        match fs_err::symlink_metadata(&model_dir) {
            Err(e) => return Err(e.into()),
            Ok(meta) if !meta.is_dir() => {
                return Err(StoreError::InTheWay { path: model_dir });
            }
            Ok(_) => {}
        }
        let old = WorkDir {
            path: mlib_fs::temp::path_for(&self.staging_dir()?, "old"),
            keep: false,
        };
        fs_err::rename(&model_dir, &old.path)?;
        if let Err(e) = fs_err::rename(&work.path, &model_dir) {
            let _ = fs_err::rename(&old.path, &model_dir);
            old.keep();
            return Err(e.into());
        }
        work.keep();
        sync_parent()?;

        for item in fs_err::read_dir(&old.path)? {
            let name = item?.file_name();
            let known = name == METADATA_FILE
                || old_entries.iter().any(|e| name == e.as_str())
                || new_entries.iter().any(|e| name == e.as_str());
            if !known && let Err(e) = fs_err::rename(old.path.join(&name), model_dir.join(&name)) {
                // Keep the old folder so the person's file is not lost with it.
                old.keep();
                return Err(e.into());
            }
        }
        for path in old_version_removal(&old.path, old_entries) {
            // Best effort: what is left has a temporary name, removed by the next apply.
            if remove_any(&path).is_err() {
                break;
            }
        }
        Ok(())
    }

    /// Flat layout: entries of all models of a type share one folder, so each entry is
    /// replaced on its own, after checking no other model owns that name.
    fn swap_flat_entries(
        &self,
        key: &ModelKey,
        work: WorkDir,
        old_entries: &[String],
        new_entries: &[String],
    ) -> Result<(), StoreError> {
        let type_dir = self.model_dir(key);
        fs_err::create_dir_all(&type_dir)?;
        // Only a name already taken can belong to another model (its file is there): the
        // other models' metadata is read only then, not on every install, which made adding
        // N models to one type folder read N²/2 metadata files.
        let taken: Vec<&String> = new_entries
            .iter()
            .filter(|entry| !old_entries.contains(entry))
            .filter(|entry| fs_err::symlink_metadata(type_dir.join(entry)).is_ok())
            .collect();
        if !taken.is_empty() {
            let owners = self.flat_owners(key)?;
            if let Some((entry, owner)) = taken
                .iter()
                .find_map(|entry| owners.get(*entry).map(|owner| (entry, owner)))
            {
                return Err(StoreError::EntryConflict {
                    path: type_dir.join(entry),
                    owner: owner.clone(),
                });
            }
            // A name no model's metadata claims, yet taken: someone's file (an app writing
            // through a folder link to this store, a copy by hand). Never replaced: moved to
            // the quarantine first, where `mlib status` and `doctor` count it.
            let foreign: Vec<String> = taken
                .iter()
                .map(|entry| format!("{}/{entry}", key.model_type))
                .collect();
            self.quarantine(key.name, &foreign)?;
        }
        let old = self.work_dir("old")?;
        for entry in new_entries {
            let target = type_dir.join(entry);
            let staged = work.path.join(entry);
            match fs_err::symlink_metadata(&target) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
                // A file is replaced by rename(2) itself, atomically.
                Ok(meta) if !meta.is_dir() && !fs_err::metadata(&staged)?.is_dir() => {}
                Ok(_) => fs_err::rename(&target, old.path.join(entry))?,
            }
            fs_err::rename(&staged, &target)?;
        }
        for entry in old_entries {
            if !new_entries.contains(entry) {
                let path = type_dir.join(entry);
                if fs_err::symlink_metadata(&path).is_ok() {
                    fs_err::rename(&path, old.path.join(entry))?;
                }
            }
        }
        sync_dir(&type_dir)?;
        Ok(())
    }

    /// Flat layout: entry name → the other model of this type that owns it.
    fn flat_owners(&self, key: &ModelKey) -> Result<BTreeMap<String, String>, StoreError> {
        let meta_dir = self.root().join(key.model_type).join(FLAT_META_DIR);
        let ours = self.metadata_path(key);
        let mut owners = BTreeMap::new();
        let items = match fs_err::read_dir(&meta_dir) {
            Ok(items) => items,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(owners),
            Err(e) => return Err(e.into()),
        };
        for item in items {
            let path = item?.path();
            if path == ours || path.extension().is_none_or(|ext| ext != "json") {
                continue;
            }
            let other = Metadata::read(&path)?;
            for entry in other.entries {
                owners.insert(entry, other.name.clone());
            }
        }
        Ok(owners)
    }
}

/// What removing the old folder of a replaced model deletes, in this order: its entries,
/// then its metadata.json, then the folder. As long as metadata.json is there, what a kill
/// leaves can be told apart from files a person added ([`Store::clean_staging`] keeps
/// those); once it is gone, nothing else is left.
pub(crate) fn old_version_removal(old: &Path, entries: &[String]) -> Vec<PathBuf> {
    let mut order: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.as_str() != METADATA_FILE)
        .map(|e| old.join(e))
        .collect();
    order.push(old.join(METADATA_FILE));
    order.push(old.to_path_buf());
    order
}

/// A private folder in the staging area, removed on drop unless kept. Its name is a temporary
/// name ([`mlib_fs::temp`]): when a kill leaves it behind, the next apply removes it.
#[derive(Debug)]
pub(crate) struct WorkDir {
    pub(crate) path: PathBuf,
    keep: bool,
}

impl WorkDir {
    /// A new folder in `staging`, which is made first if it is missing (it exists for all but
    /// the first of many models: not checking first saves two system calls per model).
    pub(crate) fn create(staging: &Path, prefix: &str) -> io::Result<WorkDir> {
        let mut made_staging = false;
        loop {
            let path = mlib_fs::temp::path_for(staging, prefix);
            match fs_err::create_dir(&path) {
                Ok(()) => return Ok(WorkDir { path, keep: false }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) if e.kind() == io::ErrorKind::NotFound && !made_staging => {
                    fs_err::create_dir_all(staging)?;
                    made_staging = true;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A work folder that is never removed on drop: it may hold a person's file moved in
    /// (see [`crate::moved`]), which only its own code may put back or remove.
    pub(crate) fn create_kept(staging: &Path, prefix: &str) -> io::Result<WorkDir> {
        let mut work = WorkDir::create(staging, prefix)?;
        work.keep = true;
        Ok(work)
    }

    /// The folder was renamed into the store (or must survive): do not remove it.
    fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep {
            // Best effort: leftovers in .mlib/tmp are harmless and never seen by apps.
            let _ = remove_any(&self.path);
        }
    }
}

/// Copies one file, hashing on the way; the copy is read-only, and fsynced unless the
/// caller syncs a whole batch. Where the filesystem can, the copy is a reflink (no bytes
/// copied; the clone is then hashed, so the hashes are those of what is stored); else a
/// large file is written with direct I/O when `direct_io` is set (`copy.rs`).
fn copy_file(
    src: &Path,
    dest: &Path,
    progress: &mut dyn FnMut(u64),
    durability: Durability,
    direct_io: bool,
) -> Result<(Hashes, Transfer), StoreError> {
    let mut reader = fs_err::File::open(src)?;
    let mut writer = fs_err::File::create_new(dest)?;
    let (hashes, how) = match mlib_fs::platform::reflink(reader.file(), writer.file()) {
        Ok(()) => (hash_file_with(dest, progress)?, Transfer::Reflinked),
        Err(e) if e.kind() == io::ErrorKind::Unsupported => {
            let hashes = copy_into_file(&mut reader, &mut writer, direct_io, progress)?;
            (hashes, Transfer::Copied)
        }
        Err(e) => {
            return Err(StoreError::Io(io::Error::new(
                e.kind(),
                format!("cloning {} to {}: {e}", src.display(), dest.display()),
            )));
        }
    };
    if durability == Durability::EachFile {
        writer.sync_all()?;
    }
    drop(writer);
    make_read_only(dest)?;
    Ok((hashes, how))
}

/// Hashes a file (one read), reporting progress.
fn hash_file_with(path: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<Hashes> {
    let mut file = fs_err::File::open(path)?;
    copy_hashing(&mut file, &mut io::sink(), progress)
}

/// Copies a source folder's taken files into the staging folder, hashing each.
struct Tree<'a> {
    accept: &'a dyn Fn(&str) -> bool,
    /// Never copied into itself.
    store_root: Option<&'a Path>,
    files: &'a mut Vec<FileRecord>,
    progress: &'a mut dyn FnMut(u64),
    durability: Durability,
    direct_io: bool,
    /// How the files got in so far (copied as soon as one file was).
    transfer: &'a mut Transfer,
}

impl Tree<'_> {
    /// Copies `src` to `dest`; `rel` is the store path (entry first), `within` the path
    /// relative to the source root that the globs see. Returns whether a file was taken;
    /// `dest` is left only when one was (no empty folders in the store).
    fn copy(
        &mut self,
        src: &Path,
        dest: &Path,
        rel: &str,
        within: &str,
        depth: usize,
    ) -> Result<bool, StoreError> {
        if depth >= MAX_DEPTH {
            return Err(StoreError::TooDeep {
                path: src.to_owned(),
                max: MAX_DEPTH,
            });
        }
        fs_err::create_dir(dest)?;
        let mut items = fs_err::read_dir(src)?.collect::<Result<Vec<_>, _>>()?;
        items.sort_by_key(|item| item.file_name());
        let mut taken = false;
        for item in items {
            let path = item.path();
            // What is not taken is not looked at: an odd name or a broken link next to the
            // taken files is none of the model's business.
            let lossy = item.file_name().to_string_lossy().into_owned();
            let within = if within.is_empty() {
                lossy.clone()
            } else {
                format!("{within}/{lossy}")
            };
            let (as_file, as_dir) = ((self.accept)(&within), (self.accept)(&format!("{within}/")));
            if !as_file && !as_dir {
                continue;
            }
            // Following symlinks on purpose: a HuggingFace cache snapshot is symlinks to blobs.
            let meta = match fs_err::metadata(&path) {
                Ok(meta) => meta,
                Err(_) if !as_file => continue,
                Err(e) => return Err(e.into()),
            };
            if meta.is_dir() {
                let is_store = self.store_root.is_some_and(|root| {
                    std::fs::canonicalize(&path).is_ok_and(|p| p.starts_with(root))
                });
                if as_dir && !is_store {
                    let name = utf8_name(&path)?;
                    let rel = format!("{rel}/{name}");
                    taken |= self.copy(&path, &dest.join(&name), &rel, &within, depth + 1)?;
                }
                continue;
            }
            if !as_file {
                continue;
            }
            let name = utf8_name(&path)?;
            let rel = format!("{rel}/{name}");
            if meta.is_file() {
                let (hashes, how) = copy_file(
                    &path,
                    &dest.join(&name),
                    self.progress,
                    self.durability,
                    self.direct_io,
                )?;
                *self.transfer = self.transfer.and(how);
                self.files.push(record(rel, hashes));
                taken = true;
            } else {
                return Err(StoreError::UnsupportedFileType { path });
            }
        }
        if taken {
            if self.durability == Durability::EachFile {
                sync_dir(dest)?;
            }
        } else {
            fs_err::remove_dir(dest)?;
        }
        Ok(taken)
    }
}

/// Renames, or copies when the staged file is on another filesystem.
fn move_file(from: &Path, to: &Path) -> Result<(), StoreError> {
    match fs_err::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::CrossesDevices => {
            let mut reader = fs_err::File::open(from)?;
            let mut writer = fs_err::File::create_new(to)?;
            io::copy(&mut reader, &mut writer)?;
            writer.sync_all()?;
            fs_err::remove_file(from)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// `err` again, for each model of a batch it failed (io errors cannot be cloned).
fn same_error(err: &StoreError) -> StoreError {
    let kind = match err {
        StoreError::Io(e) => e.kind(),
        _ => io::ErrorKind::Other,
    };
    StoreError::Io(io::Error::new(kind, err.to_string()))
}

pub(crate) fn record(path: String, hashes: Hashes) -> FileRecord {
    FileRecord {
        path,
        size: hashes.size,
        sha256: hashes.sha256,
        blake3: hashes.blake3,
        stamp: None,
    }
}

/// Records each file's stamp, once it is where it stays (renaming a file moves its ctime).
fn stamp_files(dir: &Path, files: &mut [FileRecord]) -> Result<(), StoreError> {
    for file in files {
        file.stamp = Some(mlib_fs::FileStamp::read(&dir.join(&file.path))?);
    }
    Ok(())
}

pub(crate) fn entry_of(rel_path: &str) -> &str {
    rel_path.split('/').next().unwrap_or(rel_path)
}

pub(crate) fn utf8_name(path: &Path) -> Result<String, StoreError> {
    let name = path.file_name().unwrap_or_default();
    name.to_str().map(str::to_owned).ok_or_else(|| {
        layout::invalid(
            "file name",
            &name.to_string_lossy(),
            "it is not valid UTF-8: rename the file",
        )
    })
}

/// Whole seconds: the metadata is for people, and sub-second noise only churns diffs.
fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now)
}
