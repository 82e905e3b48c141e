//! `mlib init`: what existing app folders hold, as manifest entries.
//!
//! Each app's preset says which folder holds which model type; every model file (or model
//! folder, such as a diffusers repo) found there becomes an entry with its type, its family
//! (from its header, `mlib_inspect`), its size and its hashes. The same bytes under the same
//! name and type in two apps are one model linked twice. A file in a subfolder
//! (`loras/sdxl/x.safetensors`) gets a type of its own (`loras-sdxl`) mapped to that
//! subfolder, so that every app lists exactly the names it listed before. A symlink is
//! followed: the entry describes the file it points at.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlib_manifest::Preset;

/// One app to describe.
#[derive(Debug, Clone)]
pub struct AppTree {
    pub name: String,
    pub preset: Preset,
    pub root: PathBuf,
}

/// Where one model was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub app: String,
    /// The file or folder in the app (a symlink stays the symlink).
    pub path: PathBuf,
}

/// One model found.
#[derive(Debug, Clone)]
pub struct Found {
    pub name: String,
    /// The preset's type, or `{type}-{subfolder}` for a file in a subfolder.
    pub model_type: String,
    /// The folder of `model_type` relative to the app root, when it is not the preset's own.
    pub custom_folder: Option<String>,
    pub family: Option<String>,
    /// The bytes: the file itself, or what a symlink points at.
    pub source: PathBuf,
    pub file_name: String,
    pub is_dir: bool,
    pub size: u64,
    /// For files: (sha256, blake3).
    pub hashes: Option<(String, String)>,
    pub places: Vec<Place>,
}

/// Files skipped, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub why: String,
}

/// What the app trees hold.
#[derive(Debug, Default)]
pub struct Census {
    pub models: Vec<Found>,
    pub skipped: Vec<Skipped>,
}

/// Extensions of model files (configs are only taken in a `configs` folder).
pub const MODEL_EXTENSIONS: &[&str] = &[
    "safetensors",
    "sft",
    "ckpt",
    "pt",
    "pth",
    "bin",
    "gguf",
    "onnx",
    "pkl",
    "engine",
];

/// Files apps ship in their model folders that are not models.
fn is_placeholder(name: &str) -> bool {
    name.starts_with("put_") || name.starts_with('.')
}

/// Reads every app's model folders. `progress(bytes)` is told what hashing reads.
pub fn census(apps: &[AppTree], progress: &mut dyn FnMut(u64)) -> std::io::Result<Census> {
    let mut census = Census::default();
    // (sha256 or folder path, file name, type) → index in census.models.
    let mut seen: BTreeMap<(String, String, String), usize> = BTreeMap::new();
    for app in apps {
        let mut folders_done: Vec<&str> = Vec::new();
        for model_type in app.preset.model_types() {
            let Some(folder) = app.preset.folder(model_type) else {
                continue;
            };
            // Forge keeps checkpoints and diffusion models in one folder: read it once.
            if folders_done.contains(&folder) {
                continue;
            }
            folders_done.push(folder);
            let dir = app.root.join(folder);
            let mut items = Vec::new();
            collect(&dir, &dir, model_type, &mut items, &mut census.skipped);
            for (path, sub) in items {
                let entry = describe(&path, model_type, sub.as_deref(), folder, progress);
                let mut found = match entry {
                    Ok(found) => found,
                    Err(why) => {
                        census.skipped.push(Skipped { path, why });
                        continue;
                    }
                };
                let identity = found
                    .hashes
                    .as_ref()
                    .map_or_else(|| found.source.display().to_string(), |h| h.0.clone());
                let place = Place {
                    app: app.name.clone(),
                    path: path.clone(),
                };
                let key = (identity, found.file_name.clone(), found.model_type.clone());
                match seen.get(&key) {
                    Some(&i) => census.models[i].places.push(place),
                    None => {
                        found.places.push(place);
                        seen.insert(key, census.models.len());
                        census.models.push(found);
                    }
                }
            }
        }
    }
    name_models(&mut census.models);
    Ok(census)
}

/// Files and model folders under `dir` (the type's folder), with the subfolder they are in.
fn collect(
    top: &Path,
    dir: &Path,
    model_type: &str,
    into: &mut Vec<(PathBuf, Option<String>)>,
    skipped: &mut Vec<Skipped>,
) {
    let Ok(items) = std::fs::read_dir(dir) else {
        return;
    };
    let mut items: Vec<_> = items.flatten().collect();
    items.sort_by_key(|i| i.file_name());
    for item in items {
        let path = item.path();
        let name = item.file_name().to_string_lossy().into_owned();
        if is_placeholder(&name) {
            continue;
        }
        let sub = dir
            .strip_prefix(top)
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(|rel| rel.to_string_lossy().replace('\\', "/"));
        let is_dir = std::fs::metadata(&path).is_ok_and(|m| m.is_dir());
        if is_dir {
            if is_model_folder(&path) {
                into.push((path, sub));
            } else if !item.file_type().is_ok_and(|t| t.is_symlink()) {
                collect(top, &path, model_type, into, skipped);
            }
            continue;
        }
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase())
            .unwrap_or_default();
        let wanted = MODEL_EXTENSIONS.contains(&ext.as_str())
            || (model_type == "configs" && matches!(ext.as_str(), "yaml" | "yml" | "json"));
        if wanted {
            into.push((path, sub));
        } else {
            skipped.push(Skipped {
                path,
                why: "not a model file (by its extension)".into(),
            });
        }
    }
}

/// A folder that is one model: a diffusers repo, an ONNX or transformers export.
pub fn is_model_folder(dir: &Path) -> bool {
    ["model_index.json", "config.json"]
        .iter()
        .any(|f| dir.join(f).is_file())
}

fn describe(
    path: &Path,
    model_type: &str,
    sub: Option<&str>,
    folder: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Found, String> {
    let source = std::fs::canonicalize(path).map_err(|e| format!("cannot be read: {e}"))?;
    let meta = std::fs::metadata(&source).map_err(|e| format!("cannot be read: {e}"))?;
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("its name is not UTF-8")?
        .to_owned();
    let (model_type, custom_folder) = match sub {
        // `loras/pony #2/x` → type `loras-pony-2`: a type is one plain name.
        Some(sub) => (
            model_name(&format!("{model_type}-{}", sub.replace('/', "-"))),
            Some(format!("{folder}/{sub}")),
        ),
        None => (model_type.to_owned(), None),
    };
    if meta.is_dir() {
        return Ok(Found {
            name: String::new(),
            model_type,
            custom_folder,
            family: None,
            size: dir_size(&source),
            source,
            file_name,
            is_dir: true,
            hashes: None,
            places: Vec::new(),
        });
    }
    let header = matches!(
        source.extension().and_then(|e| e.to_str()),
        Some("safetensors" | "sft" | "gguf")
    );
    let family = if header {
        match mlib_inspect::inspect(&source) {
            Ok(report) => report.family,
            Err(mlib_inspect::InspectError::NotAModel { what }) => {
                return Err(format!("not a model: it looks like {what}"));
            }
            Err(_) => None,
        }
    } else {
        None
    };
    let mut file = std::fs::File::open(&source).map_err(|e| format!("cannot be read: {e}"))?;
    let hashes = mlib_store::copy_hashing(&mut file, &mut std::io::sink(), progress)
        .map_err(|e| format!("cannot be read: {e}"))?;
    Ok(Found {
        name: String::new(),
        model_type,
        custom_folder,
        family,
        size: meta.len(),
        source,
        file_name,
        is_dir: false,
        hashes: Some((hashes.sha256, hashes.blake3)),
        places: Vec::new(),
    })
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|item| match item.metadata() {
            Ok(m) if m.is_dir() => dir_size(&item.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Names from file names: letters, digits, `.`, `_`, `-`, starting with a letter or digit,
/// at most 128 characters, unique (`-2`, `-3`... for repeats).
fn name_models(models: &mut [Found]) {
    let mut taken: BTreeMap<String, usize> = BTreeMap::new();
    for model in models.iter_mut() {
        let stem = if model.is_dir {
            model.file_name.clone()
        } else {
            Path::new(&model.file_name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let base = model_name(&stem);
        let mut name = base.clone();
        let mut n = 1;
        // `a` twice next to an existing `a-2`: the second `a` is `a-3`.
        while taken.contains_key(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        taken.insert(name.clone(), 1);
        model.name = name;
    }
}

/// `stem` as a manifest model name.
pub fn model_name(stem: &str) -> String {
    let mut name: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    // `what? v2` is `what-v2`, not `what--v2`.
    while name.contains("--") {
        name = name.replace("--", "-");
    }
    let trimmed = name
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .trim_end_matches('-');
    name = trimmed.to_owned();
    name.truncate(120);
    if name.is_empty() {
        name = "model".into();
    }
    name
}
