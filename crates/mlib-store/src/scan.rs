//! Finding every stored model from the folders alone.
//!
//! The walk follows the layout instead of descending everywhere: a diffusers repo can hold
//! thousands of files, and metadata can only be at `{type}/{family}/{name}/metadata.json` or
//! `{type}/.mlib-meta/{name}.json`. Hidden folders (mlib's `.mlib/`) are skipped.

use std::io;
use std::path::{Path, PathBuf};

use crate::StoreError;
use crate::layout::{FLAT_META_DIR, METADATA_FILE, Store};
use crate::metadata::Metadata;

impl Store {
    /// Every metadata file in the store (both layouts), sorted by path. Fails on the first
    /// unreadable one; see [`Store::scan_lenient`] to collect those instead.
    pub fn scan(&self) -> Result<Vec<(PathBuf, Metadata)>, StoreError> {
        let mut found = Vec::new();
        for path in self.metadata_paths()? {
            let meta = Metadata::read(&path)?;
            found.push((path, meta));
        }
        Ok(found)
    }

    /// Like [`Store::scan`], but an unreadable metadata file is returned as an error next to
    /// the others instead of stopping the scan (for `doctor`-style reports).
    #[allow(clippy::type_complexity)]
    pub fn scan_lenient(&self) -> Result<(Vec<(PathBuf, Metadata)>, Vec<StoreError>), StoreError> {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for path in self.metadata_paths()? {
            match Metadata::read(&path) {
                Ok(meta) => found.push((path, meta)),
                Err(e) => errors.push(e),
            }
        }
        Ok((found, errors))
    }

    fn metadata_paths(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut paths = Vec::new();
        for type_dir in subdirs(self.root())? {
            let flat_meta = type_dir.join(FLAT_META_DIR);
            if flat_meta.is_dir() {
                for item in fs_err::read_dir(&flat_meta)? {
                    let path = item?.path();
                    if path.extension().is_some_and(|ext| ext == "json") && path.is_file() {
                        paths.push(path);
                    }
                }
            }
            for family_dir in subdirs(&type_dir)? {
                for model_dir in subdirs(&family_dir)? {
                    let path = model_dir.join(METADATA_FILE);
                    if path.is_file() {
                        paths.push(path);
                    }
                }
            }
        }
        paths.sort();
        Ok(paths)
    }
}

/// Non-hidden subfolders (not symlinks to folders: the store's own tree only).
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let items = match fs_err::read_dir(dir) {
        Ok(items) => items,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut dirs = Vec::new();
    for item in items {
        let item = item?;
        let hidden = item.file_name().as_encoded_bytes().starts_with(b".");
        if !hidden && item.file_type()?.is_dir() {
            dirs.push(item.path());
        }
    }
    Ok(dirs)
}
