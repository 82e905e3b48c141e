//! Where store files whose bytes are not what their metadata.json says go: never deleted,
//! since they may be someone's work (a model edited through a hard link) or evidence of a
//! failing disk. `{store}/.mlib/quarantine/{time}-{model}/{path as in the store}`, on the
//! store's filesystem, so moving a file there is a rename.

use std::path::{Path, PathBuf};

use crate::layout::Store;
use crate::{StoreError, util};

impl Store {
    /// `{root}/.mlib/quarantine`.
    pub fn quarantine_dir(&self) -> PathBuf {
        self.mlib_dir().join("quarantine")
    }

    /// Moves store files (paths relative to the store root, `/`-separated) into a new folder
    /// of the quarantine; returns that folder. Files already gone are skipped.
    pub fn quarantine(&self, model: &str, files: &[String]) -> Result<PathBuf, StoreError> {
        crate::layout::validate_component("model name", model)?;
        let stamp = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let dir = unique_dir(&self.quarantine_dir(), &format!("{stamp}-{model}"))?;
        for rel in files {
            crate::layout::validate_store_path(rel)?;
            let from = self.root().join(rel);
            if fs_err::symlink_metadata(&from).is_err() {
                continue;
            }
            let to = dir.join(rel);
            if let Some(parent) = to.parent() {
                fs_err::create_dir_all(parent)?;
            }
            fs_err::rename(&from, &to)?;
            util::sync_dir(from.parent().unwrap_or(self.root()))?;
        }
        Ok(dir)
    }
}

/// `parent/name`, or `parent/name-2`... if taken: a second quarantine of the same model in
/// the same second must not mix with the first.
fn unique_dir(parent: &Path, name: &str) -> Result<PathBuf, StoreError> {
    fs_err::create_dir_all(parent)?;
    for n in 1.. {
        let dir = match n {
            1 => parent.join(name),
            n => parent.join(format!("{name}-{n}")),
        };
        match fs_err::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("some name is free")
}
