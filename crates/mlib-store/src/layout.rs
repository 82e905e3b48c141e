//! Where a model lives in the store.
//!
//! Paths are derived from (type, family, name) alone, so anyone can find a model by browsing,
//! and `mlib scan` can rebuild everything from the folders and their metadata.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::metadata::{self, Metadata};

/// How models are arranged under the store root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `{type}/{family}/{name}/` with the entries and `metadata.json` (default).
    #[default]
    Nested,
    /// `{type}/{entry}` as ComfyUI expects, metadata in `{type}/.mlib-meta/{name}.json`.
    Flat,
}

/// Identifies one model in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelKey<'a> {
    pub name: &'a str,
    pub model_type: &'a str,
    pub family: Option<&'a str>,
}

impl ModelKey<'_> {
    /// The family folder used by the nested layout.
    pub fn family_or_unknown(&self) -> &str {
        self.family.unwrap_or(UNKNOWN_FAMILY)
    }

    /// `type/family/name` (family `unknown` when not set): what names one stored model in
    /// every layout, independent of where the store is mounted. The registry records which
    /// environments declare which ids.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.model_type,
            self.family_or_unknown(),
            self.name
        )
    }
}

pub(crate) const UNKNOWN_FAMILY: &str = "unknown";
pub(crate) const METADATA_FILE: &str = "metadata.json";
pub const FLAT_META_DIR: &str = ".mlib-meta";
/// mlib's own folder at the store root (registry, lock, staging); never holds models.
pub(crate) const MLIB_DIR: &str = ".mlib";

/// A model store rooted at one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Store {
    root: PathBuf,
    layout: Layout,
    /// Large copies are written with direct I/O where the file system allows (see
    /// `copy.rs`); off, they go through the page cache.
    direct_io: bool,
}

impl Store {
    pub fn new(root: PathBuf, layout: Layout) -> Store {
        Store {
            root,
            layout,
            direct_io: true,
        }
    }

    /// The same store, copying large files with direct I/O or not (on by default; the CLI
    /// turns it off with `MLIB_DIRECT_IO=0`, as for downloads).
    pub fn with_direct_io(self, direct_io: bool) -> Store {
        Store { direct_io, ..self }
    }

    pub fn direct_io(&self) -> bool {
        self.direct_io
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The folder that holds the model's entries. Nested: `{root}/{type}/{family}/{name}`
    /// (family `unknown` when not set); flat: `{root}/{type}`, shared by every model of the type.
    pub fn model_dir(&self, key: &ModelKey) -> PathBuf {
        // One place knows the layout: `model_rel_dir`.
        self.root.join(self.model_rel_dir(key))
    }

    /// [`Store::model_dir`] relative to the root, `/`-separated (`{type}/{family}/{name}` or
    /// `{type}`): the file index's keys start with it.
    pub fn model_rel_dir(&self, key: &ModelKey) -> String {
        match self.layout {
            // Pushed, not `format!`ted: 10,000 models ask on every plan.
            Layout::Nested => {
                let family = key.family_or_unknown();
                let mut rel =
                    String::with_capacity(key.model_type.len() + family.len() + key.name.len() + 2);
                for (i, part) in [key.model_type, family, key.name].into_iter().enumerate() {
                    if i > 0 {
                        rel.push('/');
                    }
                    rel.push_str(part);
                }
                rel
            }
            Layout::Flat => key.model_type.to_owned(),
        }
    }

    /// Nested: `{model_dir}/metadata.json`; flat: `{root}/{type}/.mlib-meta/{name}.json`.
    pub fn metadata_path(&self, key: &ModelKey) -> PathBuf {
        match self.layout {
            Layout::Nested => self.model_dir(key).join(METADATA_FILE),
            Layout::Flat => self
                .root
                .join(key.model_type)
                .join(FLAT_META_DIR)
                .join(format!("{}.json", key.name)),
        }
    }

    /// Where an entry of the model (a top-level name from [`Metadata::entries`]) lives.
    pub fn entry_path(&self, key: &ModelKey, entry: &str) -> PathBuf {
        self.model_dir(key).join(entry)
    }

    /// `{root}/.mlib`: registry, apply lock and staging live here.
    pub fn mlib_dir(&self) -> PathBuf {
        self.root.join(MLIB_DIR)
    }

    /// The model's metadata, or `None` when the model is not in the store.
    pub fn read_metadata(&self, key: &ModelKey) -> Result<Option<Metadata>, StoreError> {
        validate_key(key)?;
        metadata::read_optional(&self.metadata_path(key))
    }

    /// `{root}/.mlib/tmp`, created if missing. Being inside the store puts it on the store's
    /// filesystem, so finished files can be renamed (atomically) rather than copied into place.
    /// A new work folder in the staging folder (made if missing), removed on drop.
    pub(crate) fn work_dir(&self, prefix: &str) -> Result<crate::ingest::WorkDir, StoreError> {
        Ok(crate::ingest::WorkDir::create(
            &self.mlib_dir().join("tmp"),
            prefix,
        )?)
    }

    pub fn staging_dir(&self) -> Result<PathBuf, StoreError> {
        let dir = self.mlib_dir().join("tmp");
        fs_err::create_dir_all(&dir)?;
        Ok(dir)
    }
}

/// Checks that each part of the key is one safe path component.
pub(crate) fn validate_key(key: &ModelKey) -> Result<(), StoreError> {
    validate_component("model name", key.name)?;
    validate_component("model type", key.model_type)?;
    if key.model_type == MLIB_DIR {
        return Err(invalid("model type", key.model_type, "reserved for mlib"));
    }
    if let Some(family) = key.family {
        validate_component("model family", family)?;
    }
    Ok(())
}

/// One file or folder name: not empty, no separators, no `.`/`..`, no NUL, no leading dot
/// (hidden names are where mlib keeps its own things).
pub(crate) fn validate_component(what: &'static str, value: &str) -> Result<(), StoreError> {
    let reason = if value.is_empty() {
        "it is empty"
    } else if value == "." || value == ".." {
        "`.` and `..` are not names"
    } else if value.contains(['/', '\\']) {
        "it must be a single name, without `/` or `\\`"
    } else if value.contains('\0') {
        "it contains a NUL character"
    } else if value.starts_with('.') {
        "names starting with `.` are reserved for mlib's own files"
    } else {
        return Ok(());
    };
    Err(invalid(what, value, reason))
}

/// A `/`-separated path relative to the model dir. The first component is an entry name
/// (strict rules); deeper ones may be hidden files such as a repo's `.gitattributes`.
pub(crate) fn validate_rel_path(value: &str) -> Result<(), StoreError> {
    let mut parts = value.split('/');
    let entry = parts.next().unwrap_or_default();
    validate_component("entry name", entry)?;
    for part in parts {
        if part.is_empty() || part == "." || part == ".." || part.contains(['\\', '\0']) {
            return Err(invalid(
                "file path",
                value,
                "it must be relative and `/`-separated, without empty, `.` or `..` parts",
            ));
        }
    }
    Ok(())
}

/// A `/`-separated path relative to the store root, inside it: no empty, `.` or `..` parts,
/// not absolute, not into mlib's own folder.
pub(crate) fn validate_store_path(value: &str) -> Result<(), StoreError> {
    let bad = value.is_empty()
        || value.starts_with('/')
        || value.split('/').next() == Some(MLIB_DIR)
        || value
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == ".." || part.contains('\0'));
    if bad {
        return Err(invalid(
            "store path",
            value,
            "it must be relative to the store root, inside it and outside `.mlib`",
        ));
    }
    Ok(())
}

pub(crate) fn invalid(what: &'static str, value: &str, reason: &'static str) -> StoreError {
    StoreError::InvalidName {
        what,
        value: value.to_owned(),
        reason,
    }
}
