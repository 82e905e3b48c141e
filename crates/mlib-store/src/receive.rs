//! Receiving a model's files from a stream (an offline bundle read straight from its tar),
//! one file after another, each hashed while it is written.
//!
//! The files go into a private work folder in the staging area, as every other way into the
//! store does, and into the store only by [`Receiving::finish`]: a model whose bytes turn out
//! wrong, or whose stream ends early, is dropped with its work folder and never appears in
//! the store (a kill leaves the folder under a temporary name, removed by the next apply).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::PathBuf;

use crate::copy::copy_into_file;
use crate::hash::Hashes;
use crate::ingest::{WorkDir, entry_of, record};
use crate::layout::{ModelKey, Store, validate_key, validate_rel_path};
use crate::metadata::{FileRecord, Metadata};
use crate::util::{make_read_only, sync_dir};
use crate::{StoreError, layout};

/// A model being received; dropping it unfinished removes what was written.
pub struct Receiving<'a> {
    store: &'a Store,
    name: String,
    model_type: String,
    family: Option<String>,
    work: WorkDir,
    files: Vec<FileRecord>,
    dirs: BTreeSet<PathBuf>,
}

impl Store {
    /// Starts receiving the files of the model `key`.
    pub fn receive(&self, key: &ModelKey) -> Result<Receiving<'_>, StoreError> {
        validate_key(key)?;
        Ok(Receiving {
            store: self,
            name: key.name.to_owned(),
            model_type: key.model_type.to_owned(),
            family: key.family.map(str::to_owned),
            work: self.work_dir("receive")?,
            files: Vec::new(),
            dirs: BTreeSet::new(),
        })
    }
}

impl Receiving<'_> {
    /// Writes the file `rel_path` (relative to the model folder, `/`-separated) from
    /// `reader` to its end, fsynced and read-only, and returns its size and hashes: the
    /// caller compares them with what it expects before calling [`Self::finish`].
    pub fn file(
        &mut self,
        rel_path: &str,
        reader: &mut dyn Read,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Hashes, StoreError> {
        validate_rel_path(rel_path)?;
        self.store.validate_entry(entry_of(rel_path))?;
        if self.files.iter().any(|f| f.path == rel_path) {
            return Err(layout::invalid("file path", rel_path, "it is listed twice"));
        }
        let dest = self.work.path.join(rel_path);
        if let Some(parent) = dest.parent() {
            fs_err::create_dir_all(parent)?;
            self.dirs.insert(parent.to_owned());
        }
        let mut out = fs_err::File::create_new(&dest)?;
        let hashes = copy_into_file(reader, &mut out, self.store.direct_io(), progress)?;
        out.sync_all()?;
        drop(out);
        make_read_only(&dest)?;
        self.files.push(record(rel_path.to_owned(), hashes.clone()));
        Ok(hashes)
    }

    /// Puts the received files in the store as the model's new content, with its
    /// `metadata.json` naming `source` (the whole model at once, as `Store::commit` does).
    pub fn finish(self, source: &str) -> Result<Metadata, StoreError> {
        if self.files.is_empty() {
            return Err(StoreError::Empty { name: self.name });
        }
        for dir in &self.dirs {
            sync_dir(dir)?;
        }
        let key = ModelKey {
            name: &self.name,
            model_type: &self.model_type,
            family: self.family.as_deref(),
        };
        self.store.install(&key, self.work, self.files, source)
    }
}
