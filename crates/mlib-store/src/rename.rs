//! Moving a model inside the store: a rename of its folder, never a copy.
//!
//! A model renamed in a manifest, or given another type or family, has the same bytes: its
//! folder `{type}/{family}/{name}` is renamed to the new place, so every file keeps its inode
//! (and with it the stamp its hashes were verified with, and every hard link to it).
//!
//! Crash safety: `metadata.json` is rewritten with the new name first (atomically, in the old
//! folder), then the folder is renamed in one `rename(2)`. A kill before the rename leaves
//! the old folder with the new name in its metadata: the model is still missing at its new
//! place, so the next plan finds it again by its hashes and renames it then. A kill after
//! the rename leaves the model where it belongs. Both orders of a repeated call are safe:
//! a model already at the new place, and gone from the old, is the finished rename.

use std::path::Path;

use crate::StoreError;
use crate::layout::{Layout, METADATA_FILE, ModelKey, Store, validate_key};
use crate::metadata::Metadata;

impl Store {
    /// Moves the model whose folder is `from_dir` to `to`'s place (nested layout only),
    /// and returns its metadata there.
    pub fn rename_model(&self, from_dir: &Path, to: &ModelKey) -> Result<Metadata, StoreError> {
        validate_key(to)?;
        if self.layout() != Layout::Nested {
            return Err(StoreError::RenameFlat {
                path: from_dir.to_path_buf(),
            });
        }
        let to_dir = self.model_dir(to);
        let old_meta = from_dir.join(METADATA_FILE);
        let new_meta = to_dir.join(METADATA_FILE);
        if fs_err::symlink_metadata(from_dir).is_err() && new_meta.is_file() {
            // A repeated call (a saved plan applied after the rename was done).
            return Metadata::read(&new_meta);
        }
        let mut metadata = Metadata::read(&old_meta)?;
        metadata.name = to.name.to_owned();
        metadata.model_type = to.model_type.to_owned();
        metadata.family = to.family.map(str::to_owned);
        metadata.updated = jiff::Timestamp::now();
        metadata.write(&old_meta)?;
        let parent = mlib_fs::parent_dir(&to_dir);
        fs_err::create_dir_all(parent)?;
        // `rename(2)` of a folder replaces an empty folder at the destination, and fails on
        // one with anything in it: a person's files there are never touched.
        fs_err::rename(from_dir, &to_dir)?;
        mlib_fs::sync_dir(parent)?;
        mlib_fs::sync_dir(mlib_fs::parent_dir(from_dir))?;
        Ok(metadata)
    }
}
