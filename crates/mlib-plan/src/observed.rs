//! The observed side of a plan that does not depend on the manifest: every link record, the
//! store's file index, and a stat of every recorded link and every indexed store file.
//!
//! On a no-op plan these stats are nearly all the work there is, and they need only the
//! store's path. So [`Observed::read`] is a step of its own: the CLI runs it on another
//! thread while the manifest is still being parsed (see `src/prefetch.rs`), and the planner
//! then looks stats up here instead of making the system calls itself. A path the snapshot
//! does not cover (a link not recorded yet, a store file not indexed) is stat'ed on demand, so
//! a plan from a snapshot is the same plan as one without.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};

use mlib_registry::{FileStat, IndexEntry, LinkRecord, Registry};

use crate::error::PlanError;
use crate::par::parallel_map;
use crate::paths;

pub struct Observed {
    /// The store root, physical (symlinks resolved): what the registry's paths are under.
    pub(crate) store_root: PathBuf,
    pub(crate) records: Vec<LinkRecord>,
    pub(crate) index: HashMap<String, IndexEntry>,
    /// `lstat` of each recorded link target, keyed by the target's bytes (`Path`'s own `Hash`
    /// walks components, which is slow at 20,000 links).
    link_meta: HashMap<OsString, io::Result<std::fs::Metadata>>,
    /// `stat` (following symlinks) of each indexed store file, keyed like the index.
    store_stat: HashMap<String, Option<FileStat>>,
}

impl Observed {
    /// Reads the registry's link records and file index, and stats what they name, spread
    /// over the cores.
    pub fn read(registry: &Registry, store_root: &Path) -> Result<Observed, PlanError> {
        let store_root = paths::physical(store_root).map_err(|source| PlanError::Io {
            path: store_root.to_path_buf(),
            source,
        })?;
        let records = registry.links()?;
        let index = registry.index_all()?;

        enum Probe<'a> {
            Link(&'a Path),
            Store(&'a str),
        }
        enum Seen {
            Link(io::Result<std::fs::Metadata>),
            Store(Option<FileStat>),
        }
        let probes: Vec<Probe> = records
            .iter()
            .map(|r| Probe::Link(&r.target))
            .chain(index.keys().map(|k| Probe::Store(k)))
            .collect();
        let seen = parallel_map(&probes, |probe| match probe {
            Probe::Link(target) => Seen::Link(target.symlink_metadata()),
            Probe::Store(rel) => Seen::Store(FileStat::stat(&store_root.join(rel)).ok()),
        });
        let mut link_meta = HashMap::with_capacity(records.len());
        let mut store_stat = HashMap::with_capacity(index.len());
        for (probe, seen) in probes.iter().zip(seen) {
            match (probe, seen) {
                (Probe::Link(target), Seen::Link(meta)) => {
                    link_meta.insert(target.as_os_str().to_owned(), meta);
                }
                (Probe::Store(rel), Seen::Store(stat)) => {
                    store_stat.insert((*rel).to_owned(), stat);
                }
                _ => unreachable!("parallel_map keeps the order"),
            }
        }
        drop(probes);
        Ok(Observed {
            store_root,
            records,
            index,
            link_meta,
            store_stat,
        })
    }

    /// The physical store root this snapshot was read under.
    pub fn store_root(&self) -> &Path {
        &self.store_root
    }

    /// The `lstat` of a link target: from the snapshot the first time it is asked for (each
    /// target is looked at once per plan), else made now.
    pub(crate) fn take_link_meta(&mut self, target: &Path) -> io::Result<std::fs::Metadata> {
        match self.link_meta.remove(target.as_os_str()) {
            Some(meta) => meta,
            None => target.symlink_metadata(),
        }
    }

    /// Whether the snapshot holds an `lstat` of `target`.
    pub(crate) fn has_link_meta(&self, target: &Path) -> bool {
        self.link_meta.contains_key(target.as_os_str())
    }

    /// The `stat` of a store file (`rel` to the store root, `path` its full path).
    pub(crate) fn store_file(&self, rel: &str, path: &Path) -> Option<FileStat> {
        match self.store_stat.get(rel) {
            Some(stat) => *stat,
            None => FileStat::stat(path).ok(),
        }
    }
}
