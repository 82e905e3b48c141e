//! `mlib doctor`: everything that can be wrong with a store, its registry and its links, what
//! each finding means, and which ones can be repaired without touching a person's file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use mlib_fs::temp::TempName;
use mlib_registry::{IndexEntry, LinkRecord, Registry};
use mlib_store::{Store, StoreError};

use super::{Inventory, LinkState, UpkeepError, link_state};
use crate::integrity::{self, FileCheck};

/// A partial download untouched this long is abandoned: `--fix` removes it. A younger one is
/// kept, since the next apply resumes it (a preempted pod's download, say).
pub const ABANDONED_DOWNLOAD: Duration = Duration::from_secs(24 * 3600);

/// One thing doctor found.
#[derive(Debug, Clone)]
pub enum Finding {
    /// A registered symlink, untouched, pointing at nothing.
    BrokenLink(LinkRecord),
    /// A registered link whose file is gone.
    LinkGone(LinkRecord),
    /// A registered link a person replaced or edited.
    LinkChanged(LinkRecord),
    /// A symlink into the store that no environment registered.
    UnregisteredLink { path: PathBuf, points_to: PathBuf },
    /// A store file metadata.json lists that is not there.
    StoreFileMissing { model: String, path: PathBuf },
    /// A store file whose bytes are not metadata.json's.
    StoreFileChanged {
        model: String,
        /// Relative to the store root.
        rel: String,
        why: String,
    },
    /// A metadata.json that cannot be read.
    BadMetadata { path: PathBuf, why: String },
    /// Files in the store no metadata.json describes.
    NoMetadata { path: PathBuf, size: u64 },
    /// What a killed mlib left in the staging folder.
    StaleTemp { path: PathBuf },
    /// A download that was never finished.
    PartialDownload {
        path: PathBuf,
        size: u64,
        idle: Duration,
    },
    /// An environment whose manifest no longer exists.
    ManifestGone { label: String, manifest: String },
    /// Files kept in the quarantine (changed store files moved aside).
    Quarantined {
        dir: PathBuf,
        files: usize,
        bytes: u64,
    },
}

impl Finding {
    /// A stable name for `--json`.
    pub fn kind(&self) -> &'static str {
        match self {
            Finding::BrokenLink(_) => "broken_link",
            Finding::LinkGone(_) => "link_gone",
            Finding::LinkChanged(_) => "link_changed",
            Finding::UnregisteredLink { .. } => "unregistered_link",
            Finding::StoreFileMissing { .. } => "store_file_missing",
            Finding::StoreFileChanged { .. } => "store_file_changed",
            Finding::BadMetadata { .. } => "bad_metadata",
            Finding::NoMetadata { .. } => "no_metadata",
            Finding::StaleTemp { .. } => "stale_temp",
            Finding::PartialDownload { .. } => "partial_download",
            Finding::ManifestGone { .. } => "manifest_gone",
            Finding::Quarantined { .. } => "quarantined",
        }
    }

    /// One line: what and where.
    pub fn describe(&self) -> String {
        match self {
            Finding::BrokenLink(r) => {
                format!("broken link {} (points at nothing)", r.target.display())
            }
            Finding::LinkGone(r) => format!("registered link {} is gone", r.target.display()),
            Finding::LinkChanged(r) => {
                format!("{} changed since mlib linked it", r.target.display())
            }
            Finding::UnregisteredLink { path, points_to } => format!(
                "{} points into the store ({}) but no environment registered it",
                path.display(),
                points_to.display()
            ),
            Finding::StoreFileMissing { model, path } => {
                format!("store file of `{model}` is missing: {}", path.display())
            }
            Finding::StoreFileChanged { model, rel, why } => {
                format!("store file of `{model}` changed: {rel} ({why})")
            }
            Finding::BadMetadata { path, why } => {
                format!("unreadable metadata {}: {why}", path.display())
            }
            Finding::NoMetadata { path, size } => format!(
                "{} ({} bytes) is described by no metadata.json",
                path.display(),
                size
            ),
            Finding::StaleTemp { path } if is_move(path) => format!(
                "{} is a person's file a killed mlib was moving into the store (its folder, or its note of where it came from)",
                path.display()
            ),
            Finding::StaleTemp { path } => {
                format!("{} was left by a killed mlib", path.display())
            }
            Finding::PartialDownload { path, size, idle } => format!(
                "unfinished download {} ({} bytes, untouched for {})",
                path.display(),
                size,
                human(*idle)
            ),
            Finding::ManifestGone { label, manifest } if label == manifest => {
                format!("the manifest of environment {manifest} no longer exists")
            }
            Finding::ManifestGone { label, manifest } => {
                format!("the manifest of {label} ({manifest}) no longer exists")
            }
            Finding::Quarantined { dir, files, bytes } => format!(
                "{files} file(s), {bytes} bytes, kept in the quarantine {}",
                dir.display()
            ),
        }
    }

    /// What it means, and what to do.
    pub fn meaning(&self) -> &'static str {
        match self {
            Finding::BrokenLink(_) => {
                "its store entry is gone or the store moved: --fix removes the link and its record; `mlib apply` links the model again if its manifest declares it (`mlib relocate` if the store moved)"
            }
            Finding::LinkGone(_) => {
                "someone deleted it: --fix forgets the record; `mlib apply` makes it again if its manifest declares it"
            }
            Finding::LinkChanged(_) => {
                "a person replaced or edited it, so it is theirs: --fix forgets the record and leaves the file; `mlib plan` then shows it as a conflict if a model should be linked there"
            }
            Finding::UnregisteredLink { .. } => {
                "made by hand or by an mlib whose registry was lost: `mlib scan` records the ones a manifest declares; remove the others yourself (doctor never removes a link it did not make)"
            }
            Finding::StoreFileMissing { .. } => "`mlib apply` fetches the model again",
            Finding::StoreFileChanged { .. } => {
                "the bytes apps read are not the model's (an edit through a hard link, or a failing disk): --fix moves the file to the quarantine; `mlib apply` then restores the model"
            }
            Finding::BadMetadata { .. } => {
                "mlib leaves this model alone: fix the file, or delete the model's folder and let `mlib apply` fetch it again"
            }
            Finding::NoMetadata { .. } => {
                "not mlib's (a person's files, or a model whose metadata.json was lost): left alone; `mlib gc --include-foreign` deletes such files"
            }
            Finding::StaleTemp { path } if is_move(path) => {
                "--fix puts the file back where it was (into the quarantine if that place is taken since), as the next apply would; it is never deleted"
            }
            Finding::StaleTemp { .. } => "--fix removes it (the next apply would too)",
            Finding::PartialDownload { .. } => {
                "the next apply resumes it; --fix removes it once it is untouched for a day"
            }
            Finding::ManifestGone { .. } => {
                "its links keep their models in use: `mlib env forget` removes its links and records (if the manifest is on a drive not mounted now, mount it instead)"
            }
            Finding::Quarantined { .. } => {
                "mlib never deletes them (they may be someone's work): look, keep what you need, delete the rest by hand"
            }
        }
    }

    /// Whether `--fix` repairs it.
    pub fn fixable(&self) -> bool {
        match self {
            Finding::BrokenLink(_)
            | Finding::LinkGone(_)
            | Finding::LinkChanged(_)
            | Finding::StoreFileChanged { .. }
            | Finding::StaleTemp { .. } => true,
            Finding::PartialDownload { idle, .. } => *idle >= ABANDONED_DOWNLOAD,
            _ => false,
        }
    }
}

/// Where doctor looks.
pub struct Examine<'a> {
    /// At its physical path.
    pub store: &'a Store,
    pub registry: &'a Registry,
    pub inventory: &'a Inventory,
    /// App roots of the manifest being worked with: searched (three levels deep) for links
    /// into the store that nobody registered, next to the folders registered links live in.
    pub app_roots: Vec<PathBuf>,
}

/// Everything doctor finds, in a stable order. Store files are checked by stat, and hashed
/// only when their stamp is not one the index or metadata.json vouches for; files found
/// intact that way are returned for the index.
pub fn examine(input: &Examine) -> Result<(Vec<Finding>, Vec<IndexEntry>), UpkeepError> {
    let mut findings = Vec::new();
    let links = input.registry.links()?;
    for record in &links {
        match link_state(record) {
            LinkState::Intact => {}
            LinkState::Broken => findings.push(Finding::BrokenLink(record.clone())),
            LinkState::Gone => findings.push(Finding::LinkGone(record.clone())),
            LinkState::Changed => findings.push(Finding::LinkChanged(record.clone())),
        }
    }
    findings.extend(unregistered_links(input, &links));
    let verified = store_files(input, &mut findings)?;
    for error in &input.inventory.unreadable {
        if let StoreError::Metadata { path, source } = error {
            findings.push(Finding::BadMetadata {
                path: path.clone(),
                why: source.to_string(),
            });
        }
    }
    for (path, size) in input.inventory.foreign(input.store)? {
        findings.push(Finding::NoMetadata { path, size });
    }
    staging(input.store, &mut findings);
    for env_use in input.inventory.envs.iter().filter(|e| !e.manifest_exists) {
        findings.push(Finding::ManifestGone {
            label: env_use.env.label.clone(),
            manifest: env_use.env.manifest.clone(),
        });
    }
    let quarantine = input.store.quarantine_dir();
    let (files, bytes) = count_files(&quarantine);
    if files > 0 {
        findings.push(Finding::Quarantined {
            dir: quarantine,
            files,
            bytes,
        });
    }
    Ok((findings, verified))
}

/// Repairs `finding` if [`Finding::fixable`]; returns whether it did.
pub fn fix(store: &Store, registry: &Registry, finding: &Finding) -> Result<bool, UpkeepError> {
    if !finding.fixable() {
        return Ok(false);
    }
    match finding {
        Finding::BrokenLink(record) | Finding::LinkGone(record) | Finding::LinkChanged(record) => {
            super::remove_link(registry, record)?;
        }
        Finding::StoreFileChanged { model, rel, .. } => {
            let name = model.rsplit('/').next().unwrap_or(model);
            store.quarantine(name, std::slice::from_ref(rel))?;
            registry.index_remove(rel)?;
        }
        Finding::StaleTemp { .. } => {
            store.clean_staging()?;
        }
        Finding::PartialDownload { path, .. } => {
            for path in download_files(path) {
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(UpkeepError::Io { path, source }),
                }
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

fn store_files(
    input: &Examine,
    findings: &mut Vec<Finding>,
) -> Result<Vec<IndexEntry>, UpkeepError> {
    let index = input.registry.index_all()?;
    let mut verified = Vec::new();
    for model in &input.inventory.models {
        let key = model.meta.key();
        let dir = input.store.model_dir(&key);
        let rel_dir = dir
            .strip_prefix(input.store.root())
            .unwrap_or(&dir)
            .to_string_lossy()
            .into_owned();
        for file in &model.meta.files {
            let path = dir.join(&file.path);
            let rel = if rel_dir.is_empty() {
                file.path.clone()
            } else {
                format!("{rel_dir}/{}", file.path)
            };
            let stamp = mlib_fs::FileStamp::read(&path).ok();
            match integrity::check(file, &rel, &path, stamp, index.get(&rel), &mut |_| {}) {
                FileCheck::Trusted => {}
                FileCheck::Verified(v) => {
                    verified.push(IndexEntry::new(v.path, &v.stamp, v.sha256, v.blake3))
                }
                FileCheck::Missing => findings.push(Finding::StoreFileMissing {
                    model: model.id.clone(),
                    path,
                }),
                FileCheck::Changed(why) => findings.push(Finding::StoreFileChanged {
                    model: model.id.clone(),
                    rel,
                    why,
                }),
            }
        }
    }
    Ok(verified)
}

/// Symlinks into the store, in the folders links live in, that no record describes.
fn unregistered_links(input: &Examine, links: &[LinkRecord]) -> Vec<Finding> {
    let registered: std::collections::HashSet<&Path> =
        links.iter().map(|l| l.target.as_path()).collect();
    let mut folders: std::collections::BTreeSet<PathBuf> = links
        .iter()
        .filter_map(|l| l.target.parent().map(Path::to_path_buf))
        .collect();
    for root in &input.app_roots {
        collect_folders(root, 3, &mut folders);
    }
    let store = input.store.root();
    let mut found = Vec::new();
    for folder in folders {
        let Ok(items) = std::fs::read_dir(&folder) else {
            continue;
        };
        for item in items.flatten() {
            let path = item.path();
            if !item.file_type().is_ok_and(|t| t.is_symlink())
                || registered.contains(path.as_path())
            {
                continue;
            }
            let Ok(content) = std::fs::read_link(&path) else {
                continue;
            };
            let points_to = crate::paths::normalize(&folder.join(&content));
            if points_to.starts_with(store) {
                found.push(Finding::UnregisteredLink { path, points_to });
            }
        }
    }
    found
}

/// `dir` and its subfolders down to `depth` levels, not following links, skipping hidden
/// folders and the ones apps keep code in.
fn collect_folders(dir: &Path, depth: usize, into: &mut std::collections::BTreeSet<PathBuf>) {
    const SKIP: [&str; 5] = [
        "custom_nodes",
        "venv",
        "node_modules",
        "__pycache__",
        "extensions",
    ];
    into.insert(dir.to_path_buf());
    if depth == 0 {
        return;
    }
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    for item in items.flatten() {
        let name = item.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || SKIP.contains(&name.as_ref()) {
            continue;
        }
        if item.file_type().is_ok_and(|t| t.is_dir()) {
            collect_folders(&item.path(), depth - 1, into);
        }
    }
}

/// A moved file's work folder or its note (`mlib_store::moved`): a person's file, put back.
fn is_move(path: &Path) -> bool {
    path.file_name()
        .and_then(TempName::parse)
        .is_some_and(|t| t.name == "move" || t.name == "moved")
}

fn staging(store: &Store, findings: &mut Vec<Finding>) {
    let Ok(items) = std::fs::read_dir(store.mlib_dir().join("tmp")) else {
        return;
    };
    let mut found: Vec<Finding> = Vec::new();
    for item in items.flatten() {
        let path = item.path();
        let name = item.file_name();
        if let Some(temp) = TempName::parse(&name) {
            if temp.is_stale() {
                found.push(Finding::StaleTemp { path });
            }
            continue;
        }
        if name.to_string_lossy().ends_with(".part") {
            let Ok(meta) = item.metadata() else { continue };
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| SystemTime::now().duration_since(m).ok())
                .unwrap_or_default();
            found.push(Finding::PartialDownload {
                path,
                size: meta.len(),
                idle,
            });
        }
    }
    found.sort_by_key(|f| f.describe());
    findings.extend(found);
}

/// A partial download and the files that go with it (`.part.json`, `.done`).
fn download_files(part: &Path) -> Vec<PathBuf> {
    let base = part.to_string_lossy();
    let stem = base.strip_suffix(".part").unwrap_or(&base);
    vec![
        part.to_path_buf(),
        PathBuf::from(format!("{stem}.part.json")),
        PathBuf::from(format!("{stem}.done")),
    ]
}

/// How many files are under `dir`, and their bytes (0 when it does not exist).
pub fn count_files(dir: &Path) -> (usize, u64) {
    let mut files = 0;
    let mut bytes = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(items) = std::fs::read_dir(&dir) else {
            continue;
        };
        for item in items.flatten() {
            match item.file_type() {
                Ok(t) if t.is_dir() => stack.push(item.path()),
                Ok(_) => {
                    files += 1;
                    bytes += item.metadata().map_or(0, |m| m.len());
                }
                Err(_) => {}
            }
        }
    }
    (files, bytes)
}

fn human(d: Duration) -> String {
    let secs = d.as_secs();
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
