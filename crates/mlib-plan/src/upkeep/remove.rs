//! Taking a registered link away: only when it is still exactly what mlib made.

use mlib_registry::{FileStat, LinkKind, LinkRecord, Registry};

use super::UpkeepError;

/// What is at a registered link's place now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// What mlib made, untouched, and what it points at exists.
    Intact,
    /// A symlink mlib made, untouched, pointing at nothing (its store entry is gone, or the
    /// store moved).
    Broken,
    /// Nothing is there any more.
    Gone,
    /// Something else is there now (a person replaced or edited it): theirs.
    Changed,
}

impl LinkState {
    pub fn describe(self) -> &'static str {
        match self {
            LinkState::Intact => "linked",
            LinkState::Broken => "broken: points at nothing",
            LinkState::Gone => "gone: nothing is there any more",
            LinkState::Changed => "changed since mlib made it",
        }
    }
}

/// Looks at `record`'s place, comparing it with the stat recorded when mlib made it.
pub fn link_state(record: &LinkRecord) -> LinkState {
    let target = &record.target;
    let stat = match FileStat::lstat(target) {
        Ok(stat) => stat,
        Err(_) => return LinkState::Gone,
    };
    let stat = if record.kind == LinkKind::Copy && target.is_dir() {
        FileStat::tree(target).unwrap_or_default()
    } else {
        stat
    };
    if stat != record.stat {
        return LinkState::Changed;
    }
    // A link for a container resolves only in there (it names the store as mounted in the
    // container): intact while its store entry is here.
    let points_at_nothing = match &record.text {
        Some(_) => record.source.symlink_metadata().is_err(),
        None => std::fs::metadata(target).is_err(),
    };
    if record.kind == LinkKind::Symlink && points_at_nothing {
        return LinkState::Broken;
    }
    LinkState::Intact
}

/// What [`remove_link`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// The link was mlib's and untouched: removed, and its record with it.
    Removed,
    /// Nothing was there: the record is forgotten.
    WasGone,
    /// A person changed it: left in place (it is theirs now), the record forgotten.
    KeptChanged,
}

/// Removes the link `record` describes if it is untouched, then forgets the record. A changed
/// file is never removed. The file goes first: a kill in between leaves a record whose file is
/// gone, which every later command treats as gone.
pub fn remove_link(registry: &Registry, record: &LinkRecord) -> Result<Removed, UpkeepError> {
    let removed = match link_state(record) {
        LinkState::Gone => Removed::WasGone,
        LinkState::Changed => Removed::KeptChanged,
        LinkState::Intact | LinkState::Broken => {
            // Journaled as apply journals its removals: a copied folder is renamed aside under
            // a temporary name before it is deleted, and after a kill the next apply removes
            // what is left only in the folders of journaled links.
            let target = [record.target.clone()];
            registry.journal_links(record.env, &target)?;
            crate::link::remove(&record.target).map_err(|source| UpkeepError::Io {
                path: record.target.clone(),
                source,
            })?;
            registry.delete_link(record.id)?;
            registry.unjournal(&target)?;
            return Ok(Removed::Removed);
        }
    };
    registry.delete_link(record.id)?;
    Ok(removed)
}

/// Deletes a stored model's files and metadata (atomically for apps: the model folder is
/// renamed into staging first) and drops its files from the registry's index; returns the
/// bytes freed. Its links must be gone already (see [`remove_link`]).
pub fn delete_model(
    store: &mlib_store::Store,
    registry: &Registry,
    model: &super::StoredModel,
) -> Result<u64, UpkeepError> {
    let key = model.meta.key();
    let dir = store.model_dir(&key);
    // Measured before: a file with another name frees nothing.
    let freed = model.unshared_size(store);
    // Files a person put into the model's folder are not the model's: they go to the
    // quarantine first, never with the model.
    if store.layout() == mlib_store::Layout::Nested {
        let added = added_files(&dir, &model.meta);
        if !added.is_empty() {
            store.quarantine(&model.meta.name, &added)?;
        }
    }
    let removed = store.remove_model(&key)?;
    if store.layout() == mlib_store::Layout::Nested {
        // The family and type folders, when this was their last model (remove_dir refuses a
        // folder that is not empty).
        for folder in dir.ancestors().skip(1).take(2) {
            let _ = std::fs::remove_dir(folder);
        }
    }
    if let Ok(rel) = dir.strip_prefix(store.root()) {
        let rel = rel.to_string_lossy();
        for file in &model.meta.files {
            let path = if rel.is_empty() {
                file.path.clone()
            } else {
                format!("{rel}/{}", file.path)
            };
            registry.index_remove(&path)?;
        }
    }
    Ok(removed.map_or(0, |_| freed))
}

/// Files under a nested model folder (store-relative paths) that are neither one of the
/// model's files nor its metadata.json.
fn added_files(dir: &std::path::Path, meta: &mlib_store::Metadata) -> Vec<String> {
    let Some(store_rel) = dir
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.parent())
        .and_then(|root| dir.strip_prefix(root).ok())
    else {
        return Vec::new();
    };
    let own: std::collections::HashSet<&str> = meta.files.iter().map(|f| f.path.as_str()).collect();
    let mut added = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for item in std::fs::read_dir(&folder).into_iter().flatten().flatten() {
            let path = item.path();
            if item.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
                continue;
            }
            let Ok(rel) = path.strip_prefix(dir) else {
                continue;
            };
            let rel = rel.to_string_lossy().replace('\\', "/");
            if rel != "metadata.json" && !own.contains(rel.as_str()) {
                added.push(format!("{}/{rel}", store_rel.to_string_lossy()));
            }
        }
    }
    added.sort();
    added
}
