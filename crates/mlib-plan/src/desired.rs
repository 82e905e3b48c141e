//! Desired state of the store: for each model, where it lives, which entries it has, and
//! whether the stored copy is current and intact.
//!
//! A store file is trusted only while its stamp (inode, size, mtime, ctime) is the one it had
//! when its hashes were last verified: first the registry's index says so (no hashing, the
//! no-op plan's path), else the stamp metadata.json recorded when mlib wrote the file, else
//! the file is hashed now (both hashes, one read) and compared with metadata.json. A file that
//! differs is drift (`store file changed: ...`): apply moves it to quarantine and fetches the
//! model again. A changed stamp never becomes trusted without hashing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlib_manifest::lock::LockedModel;
use mlib_manifest::{Model, Source};
use mlib_store::{Metadata, ModelKey, Store};

use crate::action::{FetchReason, Verified};
use crate::error::PlanError;
use crate::integrity::{self, FileCheck};
use crate::observed::Observed;
use crate::planner::HashProgress;
use crate::stat::{Kind, Seen};
use std::sync::atomic::{AtomicU64, Ordering};

/// What the plan knows about one model of the manifest.
#[derive(Debug)]
pub struct DesiredModel {
    pub name: String,
    /// Physical path of the model's directory in the store.
    pub dir: PathBuf,
    /// Top-level names inside `dir` that are linked into apps, with whether each is a folder.
    /// Empty when unknown before fetching (a remote model that is neither locked nor stored).
    pub entries: Vec<Entry>,
    /// `Some` when the store copy is missing or out of date.
    pub fetch: Option<FetchReason>,
    /// Bytes a fetch would transfer, if known.
    pub fetch_bytes: Option<u64>,
    /// sha256 of each single-file entry as stored (or as pinned, before the fetch), and of
    /// each file inside a folder entry, by its path (`entry/file`).
    pub entry_sha256: HashMap<String, String>,
    /// Store files verified now (hashed, or trusted by the stamp in their metadata.json)
    /// whose index entry is missing or stale: apply records them in the index.
    pub reindex: Vec<Verified>,
    /// Store files (relative to the store root) whose bytes are not what metadata.json says:
    /// apply moves them to quarantine before fetching the model again.
    pub quarantine: Vec<String>,
    /// What is wrong in the store, for the plan's drift section.
    pub store_drift: Vec<(PathBuf, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    /// For a folder: its files, `/`-separated relative to it, sorted, where known (from the
    /// store's metadata, the lock or the local source). An app that does not look inside
    /// linked folders gets these linked one by one (a link farm).
    pub files: Vec<String>,
}

pub fn key(model: &Model) -> ModelKey<'_> {
    ModelKey {
        name: &model.name,
        model_type: &model.model_type,
        family: model.family.as_deref(),
    }
}

/// Works out the desired state of `model`.
pub fn desire(
    model: &Model,
    store: &Store,
    observed: &Observed,
    locked: Option<&LockedModel>,
    hashing: &dyn HashProgress,
) -> Result<DesiredModel, PlanError> {
    let store_root = observed.store_root();
    // Index keys are built from the store's layout, not by taking paths apart (on a no-op
    // plan of 10,000 models, path parsing was a tenth of the CPU time).
    let rel_dir = store.model_rel_dir(&key(model));
    let dir = join_text(store_root, &rel_dir);
    let dir = match pinned_and_stored(model, dir, &rel_dir, observed) {
        Ok(stored) => return Ok(stored),
        Err(dir) => dir,
    };
    // One stat of a local source serves its entry name, size and change detection.
    let source_meta = match &model.source {
        Source::Local(path) => observed.source_meta(path),
        _ => None,
    };
    let expected = expected_entries(model, locked, source_meta.as_ref());
    let mut stored_size = None;
    let mut desired = DesiredModel {
        name: model.name.clone(),
        dir,
        entries: expected.entries.clone(),
        fetch: None,
        fetch_bytes: expected.bytes,
        entry_sha256: expected.sha256.clone(),
        reindex: Vec::new(),
        quarantine: Vec::new(),
        store_drift: Vec::new(),
    };

    // Fast path: every expected single-file entry is in the index with an unchanged stamp.
    if !expected.entries.is_empty() && expected.entries.iter().all(|e| !e.is_dir) {
        let mut all_indexed = true;
        for entry in &expected.entries {
            let path = desired.dir.join(&entry.name);
            let rel = rel_in(&rel_dir, &entry.name);
            match observed.store_file(&rel, &path) {
                None => {
                    all_indexed = false;
                    break;
                }
                Some(stamp) => {
                    if expected.entries.len() == 1 {
                        stored_size = Some(stamp.size);
                    }
                    match observed.indexed(&rel) {
                        Some(ix) if ix.matches(&stamp) => {
                            desired
                                .entry_sha256
                                .insert(entry.name.clone(), ix.sha256.clone());
                        }
                        _ => all_indexed = false,
                    }
                }
            }
        }
        if all_indexed {
            desired.fetch = stale_reason(
                &expected,
                &desired.entry_sha256,
                source_meta.as_ref(),
                stored_size,
            );
            return Ok(desired);
        }
    }

    // Slow path: read metadata.json and check every recorded file's size.
    let metadata = store
        .read_metadata(&key(model))
        .map_err(|source| PlanError::Store {
            model: model.name.clone(),
            source,
        })?;
    let Some(metadata) = metadata else {
        desired.fetch = Some(FetchReason::Missing);
        return Ok(desired);
    };
    desired.entries = metadata_entries(&metadata, &desired.dir);
    if !expected.entries.is_empty() && !same_names(&expected.entries, &desired.entries) {
        // The manifest now names a different file (renamed, or another source).
        desired.entries = expected.entries.clone();
        desired.fetch = Some(FetchReason::HashChanged);
        return Ok(desired);
    }
    // A local folder that now selects a file the store copy lacks (wider globs, a file added
    // to the folder): copied again. Files missing from the folder never shrink the store's
    // copy: they may be gone because `import --move` was killed half-way through removing
    // them, and the store holds the only complete set.
    if matches!(model.source, Source::Local(_)) {
        let changed = expected.entries.iter().any(|want| {
            want.is_dir
                && desired.entries.iter().any(|have| {
                    have.name == want.name
                        && want
                            .files
                            .iter()
                            .any(|file| have.files.binary_search(file).is_err())
                })
        });
        if changed {
            desired.entries = expected.entries.clone();
            desired.fetch = Some(FetchReason::SourceChanged);
            return Ok(desired);
        }
    }
    for file in &metadata.files {
        let path = desired.dir.join(&file.path);
        let rel = rel_to(store_root, &path);
        let stamp = observed.store_file(&rel, &path);
        let check = with_progress(hashing, &rel, file.size, |progress| {
            integrity::check(file, &rel, &path, stamp, observed.indexed(&rel), progress)
        });
        match check {
            FileCheck::Trusted => {}
            FileCheck::Verified(verified) => desired.reindex.push(verified),
            FileCheck::Missing => {
                desired
                    .store_drift
                    .push((path, format!("store file missing: {rel}")));
                desired.fetch.get_or_insert(FetchReason::Damaged);
            }
            FileCheck::Changed(what) => {
                desired
                    .store_drift
                    .push((path, format!("store file changed: {rel}: {what}")));
                desired.quarantine.push(rel);
                desired.fetch = Some(FetchReason::Corrupt);
            }
        }
        // Files inside a folder entry too: a link farm adopts them one by one.
        desired
            .entry_sha256
            .insert(file.path.clone(), file.sha256.clone());
    }
    if desired.fetch.is_some() {
        desired.reindex.clear();
        return Ok(desired);
    }
    let stored_size = match metadata.files.as_slice() {
        [only] if !only.path.contains('/') => Some(only.size),
        _ => None,
    };
    desired.fetch = stale_reason(
        &expected,
        &desired.entry_sha256,
        source_meta.as_ref(),
        stored_size,
    );
    Ok(desired)
}

/// A local file pinned by sha256 whose store copy the index vouches for, with that sha256:
/// nothing to do, and its source is not looked at (10,000 `stat`s fewer in a no-op plan of
/// 10,000 pinned models, and no wait on a source drive that is slow or gone). Anything else
/// (`Err`, the model folder handed back) goes the ordinary way, which looks at the source.
fn pinned_and_stored(
    model: &Model,
    dir: PathBuf,
    rel_dir: &str,
    observed: &Observed,
) -> Result<DesiredModel, PathBuf> {
    let (Source::Local(_), Some(sha256)) = (&model.source, &model.sha256) else {
        return Err(dir);
    };
    let Some(name) = model.file_name() else {
        return Err(dir);
    };
    let rel = rel_in(rel_dir, &name);
    let Some((ix, Some(stamp))) = observed.indexed_file(&rel, || dir.join(&name)) else {
        return Err(dir);
    };
    if !ix.matches(&stamp) || ix.sha256 != *sha256 {
        return Err(dir);
    }
    Ok(DesiredModel {
        name: model.name.clone(),
        dir,
        entries: vec![Entry {
            name: name.clone(),
            is_dir: false,
            files: Vec::new(),
        }],
        fetch: None,
        fetch_bytes: Some(stamp.size),
        entry_sha256: HashMap::from([(name, ix.sha256.clone())]),
        reindex: Vec::new(),
        quarantine: Vec::new(),
        store_drift: Vec::new(),
    })
}

/// Runs `f`, telling `hashing` about it only if it does hash (calls its progress).
fn with_progress<T>(
    hashing: &dyn HashProgress,
    what: &str,
    bytes: u64,
    f: impl FnOnce(&mut dyn FnMut(u64)) -> T,
) -> T {
    static NEXT_ID: AtomicU64 = AtomicU64::new(0);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let mut started = false;
    let result = f(&mut |n| {
        if !started {
            started = true;
            hashing.start(id, what, bytes);
        }
        hashing.advance(id, n);
    });
    if started {
        hashing.finish(id);
    }
    result
}

fn same_names(a: &[Entry], b: &[Entry]) -> bool {
    let mut a: Vec<&str> = a.iter().map(|e| e.name.as_str()).collect();
    let mut b: Vec<&str> = b.iter().map(|e| e.name.as_str()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

fn metadata_entries(metadata: &Metadata, dir: &Path) -> Vec<Entry> {
    metadata
        .entries
        .iter()
        .map(|name| {
            let is_dir = dir.join(name).is_dir();
            let prefix = format!("{name}/");
            let files = if is_dir {
                let mut files: Vec<String> = metadata
                    .files
                    .iter()
                    .filter_map(|f| f.path.strip_prefix(&prefix).map(str::to_owned))
                    .collect();
                files.sort();
                files
            } else {
                Vec::new()
            };
            Entry {
                name: name.clone(),
                is_dir,
                files,
            }
        })
        .collect()
}

/// Whether a present store copy is out of date with respect to the manifest or lock.
fn stale_reason(
    expected: &Expected,
    stored: &HashMap<String, String>,
    source_meta: Option<&Seen>,
    stored_size: Option<u64>,
) -> Option<FetchReason> {
    for (name, want) in &expected.sha256 {
        if stored.get(name).is_some_and(|have| have != want) {
            return Some(FetchReason::HashChanged);
        }
    }
    // An unpinned local file that changed size since it was copied in is copied again; pin a
    // sha256 in the manifest to make that decision by content.
    if expected.sha256.is_empty()
        && let (Some(src), Some(stored_size)) = (source_meta, stored_size)
        && src.kind == Kind::File
        && src.stat.size != stored_size
    {
        return Some(FetchReason::SourceChanged);
    }
    None
}

#[derive(Clone, Debug, Default)]
struct Expected {
    entries: Vec<Entry>,
    sha256: HashMap<String, String>,
    bytes: Option<u64>,
}

/// The entries a model will have in the store, known from the manifest (local sources) or
/// the lock (remote sources) without fetching anything.
fn expected_entries(
    model: &Model,
    locked: Option<&LockedModel>,
    source_meta: Option<&Seen>,
) -> Expected {
    let mut expected = Expected::default();
    match (&model.source, locked) {
        (Source::Local(path), _) => {
            let Some(meta) = source_meta else {
                return expected;
            };
            let Some(name) = model.file_name() else {
                return expected;
            };
            if let Some(sha) = &model.sha256 {
                expected.sha256.insert(name.clone(), sha.clone());
            }
            let is_dir = meta.kind == Kind::Dir;
            let mut files = Vec::new();
            expected.bytes = Some(if is_dir {
                // Validation checked the globs; a bad one selects nothing here.
                match mlib_manifest::Selection::of(model) {
                    Ok(selection) => dir_files(path, "", &selection, &mut files),
                    Err(_) => 0,
                }
            } else {
                meta.stat.size
            });
            files.sort();
            expected.entries.push(Entry {
                name,
                is_dir,
                files,
            });
        }
        (_, Some(locked)) => {
            let mut bytes = 0;
            for file in &locked.files {
                bytes += file.size;
                let (top, nested) = match file.path.split_once('/') {
                    Some((top, _)) => (top, true),
                    None => (file.path.as_str(), false),
                };
                if !nested && let Some(sha) = &file.sha256 {
                    expected.sha256.insert(top.to_string(), sha.clone());
                }
                let at = match expected.entries.iter().position(|e| e.name == top) {
                    Some(at) => at,
                    None => {
                        expected.entries.push(Entry {
                            name: top.to_string(),
                            is_dir: nested,
                            files: Vec::new(),
                        });
                        expected.entries.len() - 1
                    }
                };
                if let Some((_, rest)) = file.path.split_once('/') {
                    expected.entries[at].files.push(rest.to_owned());
                }
            }
            for entry in &mut expected.entries {
                entry.files.sort();
            }
            expected.bytes = Some(bytes);
        }
        (_, None) => {}
    }
    expected
}

/// The files under `path` that `selection` takes, into `files` (relative to the source
/// folder, as `within` is `path`), and their bytes.
fn dir_files(
    path: &Path,
    within: &str,
    selection: &mlib_manifest::Selection,
    files: &mut Vec<String>,
) -> u64 {
    // As deep as the store copies (a link loop in the folder ends here, not in ELOOP).
    if within.matches('/').count() >= 64 {
        return 0;
    }
    let Ok(read) = std::fs::read_dir(path) else {
        return 0;
    };
    let mut bytes = 0;
    for entry in read.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let within = if within.is_empty() {
            name
        } else {
            format!("{within}/{name}")
        };
        match std::fs::metadata(entry.path()) {
            Ok(m) if m.is_dir() => bytes += dir_files(&entry.path(), &within, selection, files),
            Ok(m) if selection.accepts(&within) => {
                bytes += m.len();
                files.push(within);
            }
            _ => {}
        }
    }
    bytes
}

/// The index key of `name` in the model folder whose key is `rel_dir`
/// ([`Store::model_rel_dir`]): what [`rel_to`] gives for its full path.
fn rel_in(rel_dir: &str, name: &str) -> String {
    let mut rel = String::with_capacity(rel_dir.len() + 1 + name.len());
    rel.push_str(rel_dir);
    rel.push('/');
    rel.push_str(name);
    if rel.contains('\\') {
        return rel.replace('\\', "/");
    }
    rel
}

/// `base.join(rel)` for a plain relative `rel`, in one allocation of the right size (`join`
/// copies `base`, then grows it for `rel`: 20,000 times a plan).
fn join_text(base: &Path, rel: &str) -> PathBuf {
    let base = base.as_os_str();
    let mut joined = std::ffi::OsString::with_capacity(base.len() + 1 + rel.len());
    joined.push(base);
    if !base.as_encoded_bytes().ends_with(b"/") {
        joined.push("/");
    }
    joined.push(rel);
    PathBuf::from(joined)
}

/// `path` relative to the store root, '/'-separated: the file index's key.
pub fn rel_to(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_as_text_is_joined_by_path() {
        for base in ["/store", "/store/", "/", "/a b/ü"] {
            for rel in ["loras/sdxl/m", "m", "a/b.safetensors"] {
                assert_eq!(join_text(Path::new(base), rel), Path::new(base).join(rel));
            }
        }
    }

    #[test]
    fn an_index_key_built_from_the_layout_is_the_one_taken_from_the_path() {
        let root = Path::new("/mnt/store");
        for (dir, name) in [
            ("loras/sdxl/m", "m.safetensors"),
            ("checkpoints", "x.ckpt"),
            ("loras/unknown/a b", "a b.gguf"),
            ("vae/sd15/v", "odd\\name.pt"),
        ] {
            let path = root.join(dir).join(name);
            assert_eq!(rel_in(dir, name), rel_to(root, &path), "{dir} {name}");
        }
    }
}
