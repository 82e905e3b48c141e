//! `metadata.json`: the single source of truth about one stored model.
//!
//! The registry's file index is a cache rebuilt from these files (`mlib scan`), so they hold
//! everything needed to verify the bytes without the registry: every file's size and hashes.
//! They are pretty JSON because people read them while browsing the store.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::layout::METADATA_FILE;

/// What mlib knows about one stored model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    #[serde(rename = "type")]
    pub model_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Where the bytes came from, as the manifest wrote it (a path, URL, `hf://`, `civitai:`).
    pub source: String,
    /// Top-level names inside the model dir that get linked into apps: a file, or the folder
    /// of a multi-file model.
    pub entries: Vec<String>,
    /// Every file under the entries, sorted by path.
    pub files: Vec<FileRecord>,
    pub added: jiff::Timestamp,
    pub updated: jiff::Timestamp,
}

/// One stored file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Relative to the model dir, `/`-separated; starts with one of the entries.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
    /// The file's stamp (inode, size, mtime, ctime) right after mlib wrote and hashed it: a
    /// file that still has it holds these hashes, so a registry that has never seen this
    /// store (another user's, a fresh pod's) can trust it without hashing. Any later change,
    /// even a new hard link, moves the stamp; then the file is hashed before it is trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<mlib_fs::FileStamp>,
}

impl Metadata {
    /// The key of the model this metadata describes.
    pub fn key(&self) -> crate::ModelKey<'_> {
        crate::ModelKey {
            name: &self.name,
            model_type: &self.model_type,
            family: self.family.as_deref(),
        }
    }

    /// Total size of the model's files.
    pub fn size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Parses a metadata file.
    pub fn read(path: &Path) -> Result<Metadata, StoreError> {
        let text = fs_err::read(path)?;
        serde_json::from_slice(&text).map_err(|source| StoreError::Metadata {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes pretty JSON atomically and durably ([`mlib_fs::write_atomic`]), so readers see
    /// the old or the new file, never half of one.
    pub fn write(&self, path: &Path) -> Result<(), StoreError> {
        let text = self.to_json()?;
        fs_err::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
        mlib_fs::write_atomic(path, &text)?;
        Ok(())
    }

    /// The file's bytes: pretty JSON and a final newline.
    pub(crate) fn to_json(&self) -> Result<Vec<u8>, StoreError> {
        let mut text = serde_json::to_vec_pretty(self).map_err(|source| StoreError::Metadata {
            path: METADATA_FILE.into(),
            source,
        })?;
        text.push(b'\n');
        Ok(text)
    }
}

pub(crate) fn read_optional(path: &Path) -> Result<Option<Metadata>, StoreError> {
    match fs_err::symlink_metadata(path) {
        Ok(_) => Metadata::read(path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}
