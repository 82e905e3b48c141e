//! What the store holds, and who uses each model.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use mlib_registry::{Environment, LinkRecord, Registry};
use mlib_store::{Metadata, Store, StoreError};

use super::UpkeepError;

/// How deep below its entry a link farm's link may be (the store's own nesting limit).
const MAX_FARM_DEPTH: usize = 65;

/// The environment being worked in: its manifest is read now, so what it declares is
/// newer than what its last apply recorded.
pub struct Current<'a> {
    pub key: &'a str,
    /// Store model ids (`mlib_store::ModelKey::id`) its manifest declares.
    pub models: Vec<String>,
}

/// A recorded environment and whether its manifest still exists.
#[derive(Debug, Clone)]
pub struct EnvUse {
    pub env: Environment,
    /// A missing manifest (deleted, or on a drive not mounted now) no longer declares
    /// anything; its links still protect their models until the environment is forgotten.
    pub manifest_exists: bool,
}

/// One model in the store and who uses it.
#[derive(Debug, Clone)]
pub struct StoredModel {
    /// `type/family/name`.
    pub id: String,
    pub meta: Metadata,
    pub metadata_path: PathBuf,
    /// Bytes of its files, as its metadata records them.
    pub size: u64,
    /// Registered links into it, of every environment.
    pub links: Vec<LinkRecord>,
    /// Other environments (ids) whose manifest exists and declared it at their last apply.
    pub declared_by: Vec<i64>,
    /// The manifest being worked with ([`Current`]) declares it.
    pub declared_here: bool,
}

impl StoredModel {
    /// Bytes deleting it gives back: those of its files that have no other name. A file
    /// hard linked elsewhere (a HuggingFace cache blob, a file `init --into-store` took in)
    /// keeps its bytes under that name.
    pub fn unshared_size(&self, store: &Store) -> u64 {
        let dir = store.model_dir(&self.meta.key());
        self.meta
            .files
            .iter()
            .filter(|f| {
                std::fs::symlink_metadata(dir.join(&f.path))
                    .map_or(true, |m| mlib_fs::platform::link_count(&m) <= 1)
            })
            .map(|f| f.size)
            .sum()
    }

    /// Nothing links it and no live manifest declares it.
    pub fn unused(&self) -> bool {
        self.links.is_empty() && self.declared_by.is_empty() && !self.declared_here
    }
}

/// Everything the store holds, with its users.
#[derive(Debug)]
pub struct Inventory {
    pub models: Vec<StoredModel>,
    /// Metadata files that cannot be read: those models are left alone by every command.
    pub unreadable: Vec<StoreError>,
    pub envs: Vec<EnvUse>,
    /// The recorded environment of [`Current`], if it was ever applied.
    pub current: Option<i64>,
    /// Registered links whose source is no model of the store (a local file linked in place,
    /// or a model whose metadata is gone).
    pub elsewhere: Vec<LinkRecord>,
}

impl Inventory {
    /// Reads the store's metadata and the registry. `store` must be rooted at the store's
    /// physical path (as link sources are recorded).
    pub fn read(
        store: &Store,
        registry: &Registry,
        current: Option<&Current>,
    ) -> Result<Inventory, UpkeepError> {
        let (found, unreadable) = store.scan_lenient()?;
        let envs: Vec<EnvUse> = registry
            .environments()?
            .into_iter()
            .map(|env| EnvUse {
                manifest_exists: Path::new(&env.manifest).exists(),
                env,
            })
            .collect();
        let mut declared: HashMap<&str, Vec<i64>> = HashMap::new();
        for env_use in envs.iter().filter(|e| e.manifest_exists) {
            let env = &env_use.env;
            if current.is_some_and(|c| c.key == env.key) {
                continue;
            }
            for id in env.models.iter().flatten() {
                declared.entry(id.as_str()).or_default().push(env.id);
            }
        }
        let here: HashSet<&str> = current
            .iter()
            .flat_map(|c| c.models.iter().map(String::as_str))
            .collect();
        let mut models: Vec<StoredModel> = found
            .into_iter()
            .map(|(metadata_path, meta)| {
                let id = meta.key().id();
                StoredModel {
                    size: meta.size(),
                    declared_here: here.contains(id.as_str()),
                    declared_by: declared.get(id.as_str()).cloned().unwrap_or_default(),
                    id,
                    meta,
                    metadata_path,
                    links: Vec::new(),
                }
            })
            .collect();
        let mut by_entry: HashMap<PathBuf, usize> = HashMap::new();
        for (i, model) in models.iter().enumerate() {
            for entry in &model.meta.entries {
                by_entry.insert(store.entry_path(&model.meta.key(), entry), i);
            }
        }
        let mut elsewhere = Vec::new();
        for link in registry.links()? {
            // A link farm's links point at files inside a folder entry: the entry is the
            // nearest ancestor that is one (a flat store's type folder is not an entry).
            let owner = link
                .source
                .ancestors()
                .take(MAX_FARM_DEPTH)
                .find_map(|path| by_entry.get(path));
            match owner {
                Some(&i) => models[i].links.push(link),
                None => elsewhere.push(link),
            }
        }
        let current = current.and_then(|c| envs.iter().find(|e| e.env.key == c.key));
        Ok(Inventory {
            current: current.map(|e| e.env.id),
            models,
            unreadable,
            envs,
            elsewhere,
        })
    }

    /// The model with this id, or every model with this name.
    pub fn find(&self, name_or_id: &str) -> Vec<&StoredModel> {
        if let Some(model) = self.models.iter().find(|m| m.id == name_or_id) {
            return vec![model];
        }
        self.models
            .iter()
            .filter(|m| m.meta.name == name_or_id)
            .collect()
    }

    /// The recorded environment with this id.
    pub fn env(&self, id: i64) -> Option<&EnvUse> {
        self.envs.iter().find(|e| e.env.id == id)
    }

    /// Files and folders in the store that no metadata describes (a person put them there),
    /// with their sizes; mlib's own folder and metadata are not listed. Top-most paths only:
    /// a foreign folder is one item.
    pub fn foreign(&self, store: &Store) -> Result<Vec<(PathBuf, u64)>, UpkeepError> {
        let mut known: HashSet<PathBuf> = HashSet::new();
        let mut ancestors: HashSet<PathBuf> = HashSet::new();
        let mut add = |path: PathBuf| {
            for ancestor in path.ancestors().skip(1) {
                if !ancestors.insert(ancestor.to_path_buf()) {
                    break;
                }
            }
            known.insert(path);
        };
        for model in &self.models {
            add(model.metadata_path.clone());
            for entry in &model.meta.entries {
                add(store.entry_path(&model.meta.key(), entry));
            }
        }
        // A person's file on its way into the store (or back out, after a kill) is theirs.
        for path in store.being_moved_in()? {
            add(path);
        }
        // Unreadable metadata is doctor's finding, not a person's file.
        for error in &self.unreadable {
            if let StoreError::Metadata { path, .. } = error {
                add(path.clone());
                if let Some(dir) = path.parent() {
                    add(dir.to_path_buf());
                }
            }
        }
        let mut foreign = Vec::new();
        let mut stack = vec![store.root().to_path_buf()];
        while let Some(dir) = stack.pop() {
            let items = match fs_err::read_dir(&dir) {
                Ok(items) => items,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&dir, e)),
            };
            for item in items {
                let item = item.map_err(|e| io(&dir, e))?;
                let path = item.path();
                if dir == store.root() && item.file_name() == ".mlib" {
                    continue;
                }
                if known.contains(&path) {
                    continue;
                }
                let is_dir = item.file_type().map_err(|e| io(&path, e))?.is_dir();
                if is_dir && ancestors.contains(&path) {
                    stack.push(path);
                } else if is_dir && holds_no_file(&path) {
                    // Folders without a file hold nobody's data: a flat store's type folder
                    // whose last model went (its `.mlib-meta/` left empty), which a
                    // whole-folder link may still point at.
                } else {
                    let size = tree_size(&path);
                    foreign.push((path, size));
                }
            }
        }
        foreign.sort();
        Ok(foreign)
    }
}

/// Whether `dir` has nothing but (empty) folders in it.
fn holds_no_file(dir: &Path) -> bool {
    let Ok(items) = std::fs::read_dir(dir) else {
        return false;
    };
    items.into_iter().all(|item| {
        item.is_ok_and(|item| {
            item.file_type().is_ok_and(|t| t.is_dir()) && holds_no_file(&item.path())
        })
    })
}

/// The models nothing uses (see [`StoredModel::unused`]) whose metadata was last updated at
/// least `min_age` before `now`, largest first.
pub fn collectable(
    inventory: &Inventory,
    min_age: std::time::Duration,
    now: jiff::Timestamp,
) -> Vec<&StoredModel> {
    let min_age = jiff::SignedDuration::try_from(min_age).unwrap_or(jiff::SignedDuration::MAX);
    let mut found: Vec<&StoredModel> = inventory
        .models
        .iter()
        .filter(|m| m.unused())
        // Metadata times are rounded to the second, so one written just now may lie up to
        // half a second ahead: without a minimum age, age does not matter at all.
        .filter(|m| min_age.is_zero() || now.duration_since(m.meta.updated) >= min_age)
        .collect();
    found.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
    found
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = path.symlink_metadata() else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|item| tree_size(&item.path()))
        .sum()
}

fn io(path: &Path, source: std::io::Error) -> UpkeepError {
    UpkeepError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(id: &str, size: u64, updated: &str) -> StoredModel {
        let updated: jiff::Timestamp = updated.parse().unwrap();
        StoredModel {
            id: id.into(),
            meta: Metadata {
                name: id.into(),
                model_type: "loras".into(),
                family: None,
                source: "./x".into(),
                entries: vec![],
                files: vec![],
                added: updated,
                updated,
            },
            metadata_path: PathBuf::new(),
            size,
            links: vec![],
            declared_by: vec![],
            declared_here: false,
        }
    }

    #[test]
    fn collectable_models_are_unused_and_old_enough_largest_first() {
        let mut declared = model("declared", 50, "2026-01-01T00:00:00Z");
        declared.declared_by.push(1);
        let mut here = model("here", 50, "2026-01-01T00:00:00Z");
        here.declared_here = true;
        let inventory = Inventory {
            models: vec![
                model("small", 1, "2026-01-01T00:00:00Z"),
                model("big", 100, "2026-01-01T00:00:00Z"),
                model("new", 100, "2026-01-09T12:00:00Z"),
                declared,
                here,
            ],
            unreadable: vec![],
            envs: vec![],
            current: None,
            elsewhere: vec![],
        };
        let now: jiff::Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let ids = |age: u64| -> Vec<String> {
            collectable(&inventory, std::time::Duration::from_secs(age), now)
                .iter()
                .map(|m| m.id.clone())
                .collect()
        };
        assert_eq!(ids(0), ["big", "new", "small"]);
        assert_eq!(ids(86_400), ["big", "small"]);
        assert_eq!(ids(365 * 86_400), Vec::<String>::new());
    }
}
