//! The observed side of a plan that does not depend on the manifest's content: every link
//! record, the store's file index, the journal of links being made, and a stat of every link
//! recorded for this manifest's environments and of their indexed store files.
//!
//! On a no-op plan these stats are nearly all the work there is, and they need only the
//! store's path and the manifest's identity (its canonical path), both known before the
//! manifest is parsed. So [`Observed::read`] is a step of its own: the CLI runs it on another
//! thread while the manifest is parsed (see `src/prefetch.rs`), and the planner then finds
//! each stat next to the record it belongs to instead of making the system call itself. A
//! path the snapshot does not cover (a link not recorded yet, a store file not indexed) is
//! stat'ed on demand, so a plan from a snapshot is the same plan as one without.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

// foldhash (hashbrown's default hasher): the maps here hold 10,000 to 20,000 paths.
use hashbrown::{HashMap, HashSet};
use mlib_fs::FileStamp;
use mlib_manifest::{Manifest, Source};
use mlib_registry::{IndexEntry, LinkRecord, Registry};

use crate::by_key::{ByKey, Keyed};
use crate::environment::Ownership;
use crate::error::PlanError;
use crate::paths;
use crate::stat::{Dirs, Follow, Seen, rel_path};
use mlib_fs::par::parallel_map;

pub struct Observed {
    /// The store root, physical (symlinks resolved): what the registry's paths are under.
    store_root: PathBuf,
    /// Link records of this manifest's environments (usually one; a template manifest
    /// applied with several sets of variables has several), each with the target's `lstat`.
    /// By target already: [`Observed::split`] keeps this table as the environment's own.
    candidates: ByKey<Recorded>,
    /// Every other link record (a link of theirs in the way is a conflict). Not stat'ed:
    /// only a target this environment also wants is ever looked at.
    others: Vec<LinkRecord>,
    /// Targets the journal says an apply was making (per environment).
    pending: Vec<(i64, PathBuf)>,
    /// The file index, keyed by path relative to the store root, each with the file's `stat`.
    index: ByKey<Indexed>,
    /// `stat` of local sources taken ahead ([`SourceStats`]), keyed by path bytes.
    sources: HashMap<OsString, Option<Seen>>,
}

/// The `stat` of the local sources of a manifest that are not pinned by sha256: the one
/// per-model read that needs the parsed manifest. The CLI takes it while [`Observed::read`]
/// is still running on the other thread, and hands it over with [`Observed::add_sources`].
/// A pinned source is looked at only when the store lacks its bytes (`desired.rs`).
pub struct SourceStats(HashMap<OsString, Option<Seen>>);

impl SourceStats {
    pub fn read(manifest: &Manifest) -> SourceStats {
        let paths: Vec<&Path> = manifest
            .models
            .values()
            .filter_map(|model| match &model.source {
                Source::Local(path) if model.sha256.is_none() => Some(path.as_path()),
                _ => None,
            })
            .collect();
        let dirs = Dirs::parents_of(paths.iter().copied());
        let metas = parallel_map(&paths, |path| dirs.stat(path, Follow::Yes).ok());
        SourceStats(
            paths
                .into_iter()
                .map(|p| p.as_os_str().to_owned())
                .zip(metas)
                .collect(),
        )
    }
}

/// The folder of a link's store `source`, relative to the store `root` (`root_str` the same
/// as text, when it is UTF-8). Sliced as text where it can be: 20,000 records taken apart by
/// `Path::parent` and `strip_prefix` component by component were 4 ms of a no-op plan.
fn model_dir_of<'a>(source: &'a Path, root: &Path, root_str: Option<&str>) -> Option<&'a str> {
    let (folder, _) = crate::stat::split_last(source)?;
    let fast = || {
        let rel = folder.to_str()?;
        let rel = rel.strip_prefix(root_str?.trim_end_matches('/'))?;
        let rel = rel.strip_prefix('/')?;
        // Anything odd (`//`, `.` components) is left to the component-wise way.
        rel.split('/')
            .all(|name| !name.is_empty() && name != ".")
            .then_some(rel)
    };
    fast().or_else(|| folder.strip_prefix(root).ok()?.to_str())
}

/// Marks the store files of this environment's links to be stat'ed with the snapshot: in a
/// store shared by many environments, the others' files are none of this plan's business
/// (stat'ed on demand if they ever are). A link's source is found in the index by its path;
/// where it is not (a folder linked whole, a file not indexed), every indexed file of its
/// model's folder is marked. (Index keys are `/`-separated, as Unix writes these paths.)
fn mark_ours(indexed: &mut ByKey<Indexed>, links: &ByKey<Recorded>, store_root: &Path) {
    let root = store_root.to_str();
    let prefix = root.map(|root| root.trim_end_matches('/'));
    let mut model_dirs: HashSet<&str> = HashSet::new();
    for recorded in links.values() {
        let source = &recorded.record.source;
        let rel =
            prefix.and_then(|prefix| source.to_str()?.strip_prefix(prefix)?.strip_prefix('/'));
        match rel.and_then(|rel| indexed.get_mut(rel)) {
            Some(file) => file.stamp = Some(None),
            None => model_dirs.extend(model_dir_of(source, store_root, root)),
        }
    }
    if model_dirs.is_empty() {
        return;
    }
    let in_model_dir = |rel: &str| {
        let mut dir = rel;
        while let Some(slash) = dir.rfind('/') {
            dir = &dir[..slash];
            if model_dirs.contains(dir) {
                return true;
            }
        }
        false
    };
    for file in indexed.values_mut() {
        if file.stamp.is_none() && in_model_dir(&file.entry.path) {
            file.stamp = Some(None);
        }
    }
}

/// A link record and the `lstat` of its target, taken once (by whoever looks first).
pub(crate) struct Recorded {
    pub record: LinkRecord,
    pub meta: Option<io::Result<Seen>>,
}

struct Indexed {
    entry: IndexEntry,
    /// `None`: not stat'ed with the snapshot (another environment's file); `Some(None)`:
    /// could not be stat'ed (missing, unreadable).
    stamp: Option<Option<FileStamp>>,
}

impl Keyed for Indexed {
    fn key(&self) -> &[u8] {
        self.entry.path.as_bytes()
    }
}

/// This environment's link records and everyone else's, by target, split by
/// [`Observed::split`].
pub(crate) struct Split {
    pub mine: ByKey<Recorded>,
    pub others: ByKey<LinkRecord>,
    /// Targets this environment's last apply journaled and did not record (it was killed).
    pub pending: std::collections::HashSet<OsString>,
}

impl Observed {
    /// Reads the registry's link records, journal and file index, and stats what they name
    /// (spread over the cores). `manifest_id` is the canonical path of the manifest being
    /// planned: the links of its environments are stat'ed, others' are not.
    pub fn read(
        registry: &Registry,
        store_root: &Path,
        manifest_id: &str,
    ) -> Result<Observed, PlanError> {
        let store_root = paths::physical(store_root).map_err(|source| PlanError::Io {
            path: store_root.to_path_buf(),
            source,
        })?;
        // A template applied for many users has many environments: which one this is is known
        // only once the manifest is parsed, and stat'ing every user's links would multiply
        // the work. Their links are then stat'ed by [`Observed::split`].
        let mut ours = registry
            .environments_without_models()?
            .into_iter()
            .filter(|e| e.manifest == manifest_id)
            .map(|e| e.id);
        let ours = match (ours.next(), ours.next()) {
            (Some(id), None) => Some(id),
            _ => None,
        };
        // Each record goes straight where it belongs: 20,000 of them collected first, then
        // split, then moved into the table were three copies of ~5 MB, each freshly touched.
        let total = registry.link_count()?;
        let (mut candidates, mut others) = match ours {
            Some(_) => (ByKey::with_capacity(total), Vec::new()),
            None => (ByKey::default(), Vec::with_capacity(total)),
        };
        registry.for_each_link(|record| {
            if Some(record.env) == ours {
                candidates.insert(Recorded { record, meta: None });
            } else {
                others.push(record);
            }
        })?;
        let pending = registry
            .pending()?
            .into_iter()
            .map(|p| (p.env, p.target))
            .collect();

        // Links relative to their app folders, store files relative to the store root.
        let mut dirs = Dirs::default();
        dirs.open(&store_root);
        dirs.open_parents_of(candidates.values().map(|r| r.record.target.as_path()));
        // `stamp: Some(None)` marks a file to stat (and stays so if it cannot be).
        let mut indexed = ByKey::with_capacity(registry.index_count()?);
        registry.for_each_index_entry(|entry| indexed.insert(Indexed { entry, stamp: None }))?;
        mark_ours(&mut indexed, &candidates, &store_root);

        // Each stat is kept in its record. One table after the other: each is spread over the
        // cores on its own, and splitting tens of thousands of stats twice costs nothing.
        candidates.update_all(|recorded| {
            recorded.meta = Some(dirs.stat(&recorded.record.target, Follow::No));
        });
        indexed.update_all(|file| {
            if file.stamp.is_some() {
                let stat = dirs.stat_under(&store_root, rel_path(&file.entry.path), Follow::Yes);
                file.stamp = Some(stat.ok().map(|seen| seen.stamp()));
            }
        });
        Ok(Observed {
            store_root,
            candidates,
            others,
            pending,
            index: indexed,
            sources: HashMap::new(),
        })
    }

    /// The physical store root this snapshot was read under.
    pub fn store_root(&self) -> &Path {
        &self.store_root
    }

    /// Takes the link records out, split into the environment's own and everyone else's.
    pub(crate) fn split(&mut self, owner: &Ownership) -> Split {
        let others = std::mem::take(&mut self.others);
        let mut split = Split {
            // The candidates are nearly always all this environment's own: the table is kept,
            // and the few that are not are moved out (a second table of 20,000 records was
            // the plan's peak of memory).
            mine: std::mem::take(&mut self.candidates),
            others: ByKey::with_capacity(others.len()),
            pending: Default::default(),
        };
        let theirs: Vec<u32> = split
            .mine
            .entries()
            .filter(|(_, recorded)| !owner.owns(&recorded.record))
            .map(|(at, _)| at)
            .collect();
        for at in theirs {
            if let Some(recorded) = split.mine.take(at) {
                split.others.insert(recorded.record);
            }
        }
        for record in others {
            if owner.owns(&record) {
                split.mine.insert(Recorded { record, meta: None });
            } else {
                split.others.insert(record);
            }
        }
        // Links of this environment the snapshot did not stat (see `read`), over the cores.
        let unseen = || split.mine.values().filter(|r| r.meta.is_none());
        if unseen().next().is_some() {
            let dirs = Dirs::parents_of(unseen().map(|r| r.record.target.as_path()));
            split.mine.update_all(|recorded| {
                if recorded.meta.is_none() {
                    recorded.meta = Some(dirs.stat(&recorded.record.target, Follow::No));
                }
            });
        }
        for (env, target) in std::mem::take(&mut self.pending) {
            if Some(env) == owner.env() {
                split.pending.insert(target.into_os_string());
            }
        }
        split
    }

    /// Adds the sources' stats taken ahead.
    pub fn add_sources(&mut self, sources: SourceStats) {
        self.sources = sources.0;
    }

    /// The `stat` (following symlinks) of a local source: taken ahead, or now.
    pub(crate) fn source_meta(&self, path: &Path) -> Option<Seen> {
        match self.sources.get(path.as_os_str()) {
            Some(meta) => *meta,
            None => Dirs::default().stat(path, Follow::Yes).ok(),
        }
    }

    /// The index entry of a store file (`rel` to the store root).
    pub(crate) fn indexed(&self, rel: &str) -> Option<&IndexEntry> {
        self.index.get(rel).map(|i| &i.entry)
    }

    /// The index entry of an indexed store file (`rel` to the store root) and the file's
    /// stamp (`None`: it cannot be stat'ed): the snapshot's, else taken now at `path()`. One
    /// lookup for what [`Observed::indexed`] and [`Observed::store_file`] find.
    pub(crate) fn indexed_file(
        &self,
        rel: &str,
        path: impl FnOnce() -> PathBuf,
    ) -> Option<(&IndexEntry, Option<FileStamp>)> {
        let file = self.index.get(rel)?;
        let stamp = match file.stamp {
            Some(stamp) => stamp,
            None => FileStamp::read(&path()).ok(),
        };
        Some((&file.entry, stamp))
    }

    /// The stamp of a store file (`rel` to the store root, `path` its full path): from the
    /// snapshot when it is indexed, else taken now.
    pub(crate) fn store_file(&self, rel: &str, path: &Path) -> Option<FileStamp> {
        match self.index.get(rel) {
            Some(Indexed {
                stamp: Some(stamp), ..
            }) => *stamp,
            _ => FileStamp::read(path).ok(),
        }
    }
}

impl Recorded {
    /// Whether the snapshot saw the link exactly as recorded.
    pub(crate) fn untouched(&self) -> bool {
        match &self.meta {
            Some(Ok(meta)) => {
                crate::planner::current_stat(&self.record, &self.record.target, meta)
                    == self.record.stat
            }
            _ => false,
        }
    }

    /// The target's `lstat`: the snapshot's the first time, a fresh one after.
    pub(crate) fn take_meta(&mut self) -> io::Result<Seen> {
        match self.meta.take() {
            Some(meta) => meta,
            None => Dirs::default().stat(&self.record.target, Follow::No),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sliced as text, or taken apart by components: the same folder, or none.
    #[test]
    fn a_sources_model_folder_is_the_same_however_it_is_found() {
        let plain = [
            ("/s/loras/sdxl/m/m.safetensors", "/s", Some("loras/sdxl/m")),
            ("/s/loras/sdxl/m/m.safetensors", "/s/", Some("loras/sdxl/m")),
            ("/s/loras/m.safetensors", "/s", Some("loras")),
            ("/s/m.safetensors", "/s", Some("")),
            ("/store2/loras/m/m.safetensors", "/store", None),
            ("/other/loras/m/m.safetensors", "/s", None),
            ("/m.safetensors", "/", Some("")),
            ("/loras/m/m.safetensors", "/", Some("loras/m")),
        ];
        let odd = [
            "/s//loras/m/m.safetensors",
            "/s/./loras/m/m.safetensors",
            "/s/loras/./m/m.safetensors",
            "/s/loras/m/./m.safetensors",
            "/s/loras/m//m.safetensors",
        ];
        let by_components = |source: &Path, root: &Path| -> Option<String> {
            let rel = source.parent()?.strip_prefix(root).ok()?;
            rel.to_str().map(str::to_owned)
        };
        let sliced = |source: &Path, root: &Path| -> Option<String> {
            model_dir_of(source, root, root.to_str()).map(str::to_owned)
        };
        for (source, root, want) in plain {
            let (source, root) = (Path::new(source), Path::new(root));
            let want = want.map(str::to_owned);
            assert_eq!(by_components(source, root), want, "{source:?} in {root:?}");
            assert_eq!(sliced(source, root), want, "{source:?} in {root:?}");
        }
        for source in odd {
            let (source, root) = (Path::new(source), Path::new("/s"));
            assert_eq!(
                sliced(source, root),
                by_components(source, root),
                "{source:?}"
            );
        }
    }
}
