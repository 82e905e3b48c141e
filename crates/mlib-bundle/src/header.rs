//! What a bundle says about itself, written first so a reader knows every hash before the
//! bytes arrive.

use serde::{Deserialize, Serialize};

/// The format this mlib writes and reads; a bundle of a later format is refused by name.
pub const FORMAT: u32 = 1;

/// The tar entry names, in the order they are written.
pub(crate) const HEADER_ENTRY: &str = "mlib-bundle.json";
pub(crate) const MANIFEST_ENTRY: &str = "manifest.yaml";
pub(crate) const LOCK_ENTRY: &str = "manifest.lock";

/// The largest header and manifest read into memory: a bound, so a tar that is not a bundle
/// (or a hostile one) cannot make mlib allocate what it claims.
pub(crate) const MAX_HEADER_BYTES: u64 = 64 << 20;
pub(crate) const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// `mlib-bundle.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub created: jiff::Timestamp,
    /// The version of mlib that made it.
    pub mlib_version: String,
    /// The manifest's file name where the bundle was made (`models.yaml`), for messages.
    pub manifest_name: String,
    /// Whether `manifest.lock` follows the manifest.
    pub has_lock: bool,
    pub models: Vec<BundledModel>,
}

/// One model and its files, as the store that was bundled recorded them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledModel {
    pub name: String,
    #[serde(rename = "type")]
    pub model_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// The manifest's `source:` as written (what the store's metadata.json records).
    pub source: String,
    pub files: Vec<BundledFile>,
}

/// One file of a model: its path inside the model's store folder, size and hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundledFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

impl BundledModel {
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The tar entry of one of its files.
    pub(crate) fn entry_name(&self, file: &BundledFile) -> String {
        format!("models/{}/{}", self.name, file.path)
    }
}

impl Header {
    /// Bytes of model files in the bundle.
    pub fn size(&self) -> u64 {
        self.models.iter().map(BundledModel::size).sum()
    }

    /// Why this header cannot be a bundle's (a name twice, a path that leaves its folder),
    /// checked before anything is read into the store.
    pub(crate) fn problem(&self) -> Option<String> {
        let mut names = std::collections::BTreeSet::new();
        for model in &self.models {
            if !names.insert(model.name.as_str()) {
                return Some(format!("model {} is listed twice", model.name));
            }
            if !safe_component(&model.name) {
                return Some(format!("model name {:?} is not a plain name", model.name));
            }
            if model.files.is_empty() {
                return Some(format!("model {} has no files", model.name));
            }
            let mut paths = std::collections::BTreeSet::new();
            for file in &model.files {
                if !file.path.split('/').all(safe_component) {
                    return Some(format!(
                        "model {} lists an unsafe path {:?}",
                        model.name, file.path
                    ));
                }
                if !paths.insert(file.path.as_str()) {
                    return Some(format!("model {} lists {} twice", model.name, file.path));
                }
            }
        }
        None
    }
}

fn safe_component(part: &str) -> bool {
    !part.is_empty() && part != "." && part != ".." && !part.contains(['/', '\\', '\0'])
}
