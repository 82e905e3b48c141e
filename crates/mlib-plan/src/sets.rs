//! Files that belong together: a sharded set (`model-00001-of-00005.safetensors`, a split
//! GGUF `llm-00001-of-00003.gguf`) with its `.index.json`, or a model with its companion files
//! (`x.yaml` config, `x.preview.png`, `x.civitai.info`) next to it. `mlib import` keeps each
//! group as one model, so the app finds the pieces side by side.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Extensions of files that accompany a model of the same stem (`x.yaml` next to
/// `x.safetensors`): configs, previews, notes.
const COMPANION_EXTENSIONS: &[&str] = &[
    "yaml", "yml", "json", "png", "jpg", "jpeg", "webp", "gif", "txt",
];

/// Image extensions of a preview named `x.preview.EXT` (A1111's and Forge's extra networks).
const PREVIEW_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "webp", "gif"];

/// Whether `rest` (a file name after the model's `stem.`) names one of its companions:
/// `yaml`, `preview.png`, `civitai.info`, and nothing else, so that `x.5.yaml` (the config
/// of `x.5.safetensors`) is never taken for `x`'s.
fn is_companion_suffix(rest: &str) -> bool {
    let lower = rest.to_ascii_lowercase();
    if lower == "civitai.info" {
        return true;
    }
    if let Some(ext) = lower.strip_prefix("preview.") {
        return PREVIEW_EXTENSIONS.contains(&ext);
    }
    COMPANION_EXTENSIONS.contains(&lower.as_str())
}

/// Stems that say nothing about the model (HuggingFace's shard names): the folder names it.
const GENERIC_STEMS: &[&str] = &["model", "pytorch_model", "diffusion_pytorch_model"];

/// The most shards a set is taken to have (HuggingFace splits at 5 GB, so this is 50 TB).
const MAX_SHARDS: u32 = 10_000;

/// Model files grouped: alone, or with the files that belong to them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Group {
    Single(PathBuf),
    Set(FileSet),
}

/// Files of one folder kept together as one model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSet {
    pub dir: PathBuf,
    /// The name of the set: the shards' or the model's stem (the folder's name for generic
    /// shard names such as `model`).
    pub stem: String,
    /// The file whose header tells what the set is (the first shard, or the model).
    pub head: PathBuf,
    /// The files' names in `dir`, sorted.
    pub files: Vec<String>,
}

/// A sharded set missing some of its shards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is a set of {count} shards, but {} missing: import it once every shard is there", dir.join(first).display(), missing_list(.missing))]
pub struct IncompleteSet {
    pub dir: PathBuf,
    pub first: String,
    pub count: u32,
    pub missing: Vec<String>,
}

fn missing_list(missing: &[String]) -> String {
    match missing {
        [one] => format!("{one} is"),
        many => format!("{} are", many.join(", ")),
    }
}

/// `(stem, index, count, extension)` of a shard's name: `model-00002-of-00005.safetensors`
/// → `("model", 2, 5, "safetensors")`.
pub fn shard_of(name: &str) -> Option<(&str, u32, u32, &str)> {
    let (base, ext) = name.rsplit_once('.')?;
    let (rest, count) = base.rsplit_once("-of-")?;
    let (stem, index) = rest.rsplit_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if stem.is_empty() || !digits(index) || !digits(count) {
        return None;
    }
    let (index, count): (u32, u32) = (index.parse().ok()?, count.parse().ok()?);
    // No real set has more shards than this; a larger count is a name that only looks
    // like one (and must not make import look for millions of files).
    (count <= MAX_SHARDS && (1..=count).contains(&index)).then_some((stem, index, count, ext))
}

/// Groups `files` (model files, each once): shards of one set into one group with their
/// index file, a model with its companions into one group, anything else alone.
pub fn group(files: Vec<PathBuf>) -> Result<Vec<Group>, IncompleteSet> {
    // (dir, stem, count, ext) → the set's shard names by index.
    let mut sets: BTreeMap<(PathBuf, String, u32, String), BTreeMap<u32, String>> = BTreeMap::new();
    let mut order: Vec<Result<PathBuf, (PathBuf, String, u32, String)>> = Vec::new();
    for path in files {
        // `x.gguf` named from its own folder has an empty parent: its folder is `.`.
        let path = std::path::absolute(&path).unwrap_or(path);
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            order.push(Ok(path));
            continue;
        };
        match shard_of(name) {
            Some((stem, index, count, ext)) if count > 1 => {
                let key = (dir.to_owned(), stem.to_owned(), count, ext.to_owned());
                let shards = sets.entry(key.clone()).or_default();
                if shards.is_empty() {
                    order.push(Err(key));
                }
                shards.insert(index, name.to_owned());
            }
            _ => order.push(Ok(path)),
        }
    }
    let mut groups = Vec::new();
    for item in order {
        match item {
            Ok(path) => groups.push(with_companions(&path)),
            Err(key) => {
                let shards = &sets[&key];
                let (dir, stem, count, ext) = key;
                groups.push(Group::Set(sharded(dir, &stem, count, &ext, shards)?));
            }
        }
    }
    Ok(unshared(groups))
}

/// A companion two models claim (`x.yaml` next to `x.safetensors` and `x.ckpt`) belongs to
/// neither: it stays where it is rather than go with the wrong one.
fn unshared(groups: Vec<Group>) -> Vec<Group> {
    let mut claims: BTreeMap<PathBuf, usize> = BTreeMap::new();
    for group in &groups {
        if let Group::Set(set) = group {
            for file in &set.files {
                *claims.entry(set.dir.join(file)).or_default() += 1;
            }
        }
    }
    groups
        .into_iter()
        .map(|group| match group {
            Group::Set(mut set) if set.files.iter().any(|f| claims[&set.dir.join(f)] > 1) => {
                let head = set.head.clone();
                set.files
                    .retain(|f| claims[&set.dir.join(f)] == 1 || set.dir.join(f) == head);
                if set.files.len() == 1 && shard_of(&set.files[0]).is_none() {
                    Group::Single(head)
                } else {
                    Group::Set(set)
                }
            }
            other => other,
        })
        .collect()
}

fn sharded(
    dir: PathBuf,
    stem: &str,
    count: u32,
    ext: &str,
    shards: &BTreeMap<u32, String>,
) -> Result<FileSet, IncompleteSet> {
    // Shard numbers keep the width the set's names have (`00001`, or `1` in `-1-of-3`).
    let width = shards.values().next().map_or(5, |first| {
        first[stem.len() + 1..]
            .split("-of-")
            .next()
            .map_or(5, str::len)
    });
    let name = |i: u32| format!("{stem}-{i:0width$}-of-{count:0width$}.{ext}");
    // Naming one shard imports the set: the others are taken from its folder.
    let mut shards = shards.clone();
    let mut missing = Vec::new();
    for i in 1..=count {
        if let std::collections::btree_map::Entry::Vacant(slot) = shards.entry(i) {
            if dir.join(name(i)).is_file() {
                slot.insert(name(i));
            } else {
                missing.push(name(i));
            }
        }
    }
    if !missing.is_empty() {
        return Err(IncompleteSet {
            dir,
            first: shards.values().next().cloned().unwrap_or_default(),
            count,
            missing,
        });
    }
    let mut files: Vec<String> = shards.values().cloned().collect();
    let index = format!("{stem}.{ext}.index.json");
    if dir.join(&index).is_file() {
        files.push(index);
    }
    files.sort();
    let set_name = if GENERIC_STEMS.contains(&stem) {
        dir.file_name()
            .map_or(stem.to_owned(), |n| n.to_string_lossy().into_owned())
    } else {
        stem.to_owned()
    };
    Ok(FileSet {
        head: dir.join(&shards[&1]),
        dir,
        stem: set_name,
        files,
    })
}

/// `model` alone, or with the companion files next to it that carry its stem.
fn with_companions(model: &Path) -> Group {
    let model = model.to_path_buf();
    let (Some(dir), Some(name), Some(stem)) = (
        model.parent(),
        model.file_name().and_then(|n| n.to_str()),
        model.file_stem().and_then(|n| n.to_str()),
    ) else {
        return Group::Single(model);
    };
    if !model.is_file() {
        return Group::Single(model);
    }
    let Ok(read) = std::fs::read_dir(dir) else {
        return Group::Single(model);
    };
    let prefix = format!("{stem}.");
    let mut files: Vec<String> = read
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|other| other != name)
        .filter(|other| other.strip_prefix(&prefix).is_some_and(is_companion_suffix))
        .filter(|other| dir.join(other).is_file())
        .collect();
    if files.is_empty() {
        return Group::Single(model);
    }
    files.push(name.to_owned());
    files.sort();
    Group::Set(FileSet {
        dir: dir.to_owned(),
        stem: stem.to_owned(),
        head: model.clone(),
        files,
    })
}

impl Group {
    /// The file whose header tells what the group is.
    pub fn head(&self) -> &Path {
        match self {
            Group::Single(path) => path,
            Group::Set(set) => &set.head,
        }
    }
}

#[cfg(test)]
mod tests;
