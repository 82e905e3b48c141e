//! The validated manifest: what the rest of mlib consumes.
//!
//! Everything here has been checked and expanded (absolute paths, lowercase hashes, parsed
//! sources), so consumers never re-validate and never see a `${VAR}`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mirror::MirrorUrl;
use crate::preset::Preset;
use crate::requires::{Version, VersionSpecifiers};

/// A parsed, expanded and validated `models.yaml`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Absolute path of the manifest file.
    pub path: PathBuf,
    /// Its directory: relative paths in the manifest resolve against it.
    pub dir: PathBuf,
    /// sha256 (lowercase hex) of the manifest bytes; saved plans use it to notice edits.
    pub digest: String,
    pub version: u32,
    /// Absolute, with `${VAR}` and `~` expanded.
    pub store: PathBuf,
    pub layout: StoreLayout,
    /// `state:`: where mlib keeps its state (registry, apply lock) for this store, when given.
    /// Absolute, expanded.
    pub state: Option<PathBuf>,
    /// `environment:`: the name of the environment that owns this manifest's links, when
    /// given.
    pub environment: Option<String>,
    /// Every environment variable looked up while expanding `store:` and each app's `root:`
    /// (a leading `~` counts as `HOME`), with the value it had (`None`: unset), sorted by name,
    /// each once.
    ///
    /// Together with the manifest's path they identify an environment that has no
    /// `environment:` name: a template manifest (`root: /srv/${WS_USER}/ComfyUI`) applied with
    /// other values is another environment, while editing a literal root keeps the same one.
    pub identity_vars: Vec<(String, Option<String>)>,
    /// `mirrors:`, in the order they are tried (`${VAR}` expanded).
    pub mirrors: Vec<MirrorUrl>,
    pub models: IndexMap<String, Model>,
    pub apps: IndexMap<String, App>,
}

impl Manifest {
    /// This manifest's lock file, next to it: its path with the extension replaced by `lock`
    /// (`models.yaml` → `models.lock`, `small.yml` → `small.lock`, `foo` → `foo.lock`), so
    /// manifests sharing a folder keep their own locks. A manifest named `*.lock` is refused
    /// when it is read, so this is never the manifest itself.
    pub fn lock_path(&self) -> PathBuf {
        self.path.with_extension("lock")
    }
}

/// One model entry of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    pub name: String,
    pub source: Source,
    /// For `hf://` sources: the branch, tag or commit.
    pub revision: Option<String>,
    /// Lowercase, 64 hex digits.
    pub sha256: Option<String>,
    /// Lowercase, 64 hex digits.
    pub blake3: Option<String>,
    /// The YAML key `type`: `checkpoints`, `loras`, `vae`, `diffusers`, ...
    pub model_type: String,
    pub family: Option<String>,
    /// Globs of the files to take from folder and repository sources.
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub tags: Vec<String>,
    /// File name in the store and app folders, when it differs from the source's.
    pub file: Option<String>,
    /// `requires:`: app or preset name → the versions of it this model works with
    /// ([`Model::requirements_for`] picks those of one app).
    pub requires: BTreeMap<String, VersionSpecifiers>,
}

impl Model {
    /// The name this model's entry gets in the store and the app folders when the manifest alone
    /// decides it: `file`, else the last component of a local path or of an `hf://` path.
    /// `None` for whole repositories, URLs and Civitai sources, whose names come from the server.
    pub fn file_name(&self) -> Option<String> {
        if let Some(file) = &self.file {
            return Some(file.clone());
        }
        match &self.source {
            Source::Local(path) => local_file_name(path),
            Source::HuggingFace {
                path: Some(path), ..
            } => path.rsplit('/').next().map(str::to_owned),
            _ => None,
        }
    }
}

/// `path`'s last name, as `Path::file_name` finds it: cut as text where it is a plain name
/// (a plan asks for 10,000 of them, and `Path` takes the path apart by components).
fn local_file_name(path: &Path) -> Option<String> {
    let plain = path
        .to_str()
        .and_then(|text| text.rsplit_once('/'))
        .map(|(_, name)| name)
        .filter(|name| !matches!(*name, "" | "." | ".."));
    match plain {
        Some(name) => Some(name.to_owned()),
        None => path.file_name().map(|n| n.to_string_lossy().into_owned()),
    }
}

/// Where a model's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Source {
    /// A local file or folder, absolute (resolved against the manifest's directory).
    Local(PathBuf),
    /// An `https://` or `http://` URL (whether plain http is allowed is decided when fetching).
    Url(String),
    /// `hf://{org}/{repo}[/path/in/repo]`; no path means the whole repository.
    HuggingFace { repo: String, path: Option<String> },
    /// `civitai:{model}@{version}`, `civitai:@{version}` or a Civitai AIR urn.
    Civitai {
        model_id: Option<u64>,
        version_id: u64,
    },
}

impl fmt::Display for Source {
    /// The canonical spelling, suitable for `metadata.json` and the lock.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Local(path) => write!(f, "{}", path.display()),
            Source::Url(url) => f.write_str(url),
            Source::HuggingFace { repo, path: None } => write!(f, "hf://{repo}"),
            Source::HuggingFace {
                repo,
                path: Some(path),
            } => write!(f, "hf://{repo}/{path}"),
            Source::Civitai {
                model_id: Some(model),
                version_id,
            } => write!(f, "civitai:{model}@{version_id}"),
            Source::Civitai {
                model_id: None,
                version_id,
            } => write!(f, "civitai:@{version_id}"),
        }
    }
}

/// An app that receives links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub name: String,
    pub preset: Option<Preset>,
    /// Absolute, expanded.
    pub root: PathBuf,
    pub models: ModelSelection,
    pub link: LinkMode,
    /// Model type → folder relative to `root`; overrides the preset's table.
    pub folders: BTreeMap<String, String>,
    /// `version:`: the app's version set by hand, which wins over what its tree says.
    pub version: Option<Version>,
    /// `link_folders:`: model types whose whole folder is one link to the store's folder of
    /// that type (with `link: folder`, the app's whole models folder is one link instead).
    pub link_folders: Vec<String>,
    /// `container:`: how the container the app runs in sees the store and the app's root.
    pub container: Option<Container>,
}

/// Paths as a container sees them (absolute), for an app that runs in one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Container {
    /// Where the store is mounted in the container.
    pub store: Option<PathBuf>,
    /// Where the app's root is in the container.
    pub root: Option<PathBuf>,
}

impl App {
    /// The folder (absolute) models of `model_type` link into, or None if this app has none.
    pub fn folder_for(&self, model_type: &str) -> Option<PathBuf> {
        let relative = match self.folders.get(model_type) {
            Some(folder) => folder.as_str(),
            None => self.preset?.folder(model_type)?,
        };
        Some(join_relative(&self.root, relative))
    }

    /// Whether this app's `models:` selection includes `model` (by name or by one of its tags).
    pub fn selects(&self, model: &Model) -> bool {
        self.models.selects(model)
    }

    /// Whether models of `model_type` reach this app through a link to a whole store folder
    /// (`link: folder`, or the type listed in `link_folders:`) rather than one link each.
    pub fn links_folder_of(&self, model_type: &str) -> bool {
        self.link == LinkMode::Folder || self.link_folders.iter().any(|t| t == model_type)
    }

    /// For `link: folder`: the folder that becomes one link to the store's root, i.e. the
    /// one folder holding this app's folder of each of `types`, each named as its type (as
    /// the store's flat layout names them). `Err` names the first type whose folder is not
    /// `{that folder}/{type}`. Without types, the folder of the preset's checkpoints.
    pub fn whole_models_folder<'t>(
        &self,
        types: impl IntoIterator<Item = &'t str>,
    ) -> Result<PathBuf, WholeFolderMismatch> {
        let mut found: Option<PathBuf> = None;
        for ty in types {
            let Some(folder) = self.folder_for(ty) else {
                continue;
            };
            let named = folder.file_name().is_some_and(|n| n == ty);
            let parent = folder.parent().map(Path::to_path_buf);
            let fits = named
                && parent.is_some()
                && found
                    .as_ref()
                    .is_none_or(|dir| Some(dir) == parent.as_ref());
            if !fits {
                return Err(WholeFolderMismatch {
                    model_type: ty.to_owned(),
                    folder,
                    models_folder: found,
                });
            }
            found = parent;
        }
        Ok(found.unwrap_or_else(|| {
            self.folder_for("checkpoints")
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| self.root.join("models"))
        }))
    }
}

/// A type whose folder in an app does not fit one link of the app's whole models folder to
/// the store's root (see [`App::whole_models_folder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WholeFolderMismatch {
    pub model_type: String,
    /// The app's folder for that type.
    pub folder: PathBuf,
    /// The models folder the types before it agreed on.
    pub models_folder: Option<PathBuf>,
}

/// Joins a validated relative folder (`/`-separated, maybe `.`) onto `root`, so that the result
/// uses the platform's separators and carries no `.` components.
pub(crate) fn join_relative(root: &Path, relative: &str) -> PathBuf {
    let mut out = root.to_path_buf();
    for part in relative.split('/').filter(|p| !p.is_empty() && *p != ".") {
        out.push(part);
    }
    out
}

/// In an app's `models:` list, `family:sdxl` selects every model declared `family: sdxl`.
pub const FAMILY_PREFIX: &str = "family:";

/// Which models an app gets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ModelSelection {
    #[default]
    All,
    /// Model names and tags.
    Names(Vec<String>),
}

impl ModelSelection {
    pub fn selects(&self, model: &Model) -> bool {
        match self {
            ModelSelection::All => true,
            ModelSelection::Names(names) => names.iter().any(|n| {
                *n == model.name
                    || model.tags.contains(n)
                    || n.strip_prefix(FAMILY_PREFIX).is_some_and(|family| {
                        model
                            .family
                            .as_deref()
                            .is_some_and(|f| f.eq_ignore_ascii_case(family))
                    })
            }),
        }
    }
}

/// How models are placed into app folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum LinkMode {
    /// The best the filesystem supports, decided once per filesystem.
    #[default]
    Auto,
    /// Symbolic links.
    Symlink,
    /// Hard links: the app folder must be on the store's filesystem.
    Hardlink,
    /// Real copies: uses the disk space again; for apps that do not follow links.
    Copy,
    /// The app's whole models folder is one symlink to the store's root (which needs the
    /// store's flat layout, where each type's folder holds the model files as apps expect).
    Folder,
}

impl LinkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMode::Auto => "auto",
            LinkMode::Symlink => "symlink",
            LinkMode::Hardlink => "hardlink",
            LinkMode::Copy => "copy",
            LinkMode::Folder => "folder",
        }
    }
}

impl fmt::Display for LinkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the store arranges model files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum StoreLayout {
    /// `{type}/{family}/{name}/` holding the model's entries and `metadata.json`.
    #[default]
    Nested,
    /// `{type}/{file}`, like a ComfyUI models folder.
    Flat,
}

impl StoreLayout {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreLayout::Nested => "nested",
            StoreLayout::Flat => "flat",
        }
    }
}

impl fmt::Display for StoreLayout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_name_is_what_path_finds() {
        for path in [
            "/a/b.safetensors",
            "/a//b",
            "/a/b/",
            "/a/b/.",
            "/a/..",
            "/",
            "b",
            "/a/.hidden",
            "/a/b c.ckpt",
        ] {
            let std = Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned());
            assert_eq!(local_file_name(Path::new(path)), std, "{path:?}");
        }
    }
}
