//! Rewriting every path the registry holds under one folder to another folder: the store or an
//! app tree moved (an external drive got a new mount point, an app folder was moved).
//!
//! Paths are matched by whole components (`/mnt/a` is not a prefix of `/mnt/ab`). The whole
//! rewrite is one transaction, computed from the rows it reads inside it, so a second run
//! finds nothing under the old folder and changes nothing: relocating twice is harmless, and
//! a run killed before its commit left the registry as it was.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use crate::db::{bump_serial, sqlite};
use crate::types::FileStat;
use crate::{Registry, RegistryError};

/// `path` moved from under `from` to under `to`, or `None` when it is not under `from`.
/// By components: `/mnt/ab/x` is not under `/mnt/a`.
pub fn rebase(path: &Path, from: &Path, to: &Path) -> Option<PathBuf> {
    let rest = path.strip_prefix(from).ok()?;
    Some(if rest.as_os_str().is_empty() {
        to.to_path_buf()
    } else {
        to.join(rest)
    })
}

/// [`rebase`] for a path stored as text.
fn rebase_text(path: &str, from: &Path, to: &Path) -> Option<String> {
    // An index path is relative to the store: never under an absolute `from`.
    rebase(Path::new(path), from, to).map(|p| p.to_string_lossy().into_owned())
}

/// A relocation of the registry's paths.
#[derive(Debug, Clone, Copy)]
pub struct Relocation<'a> {
    /// The folder things were under (it need not exist any more). Absolute, physical.
    pub from: &'a Path,
    /// Where they are now. Absolute, physical.
    pub to: &'a Path,
    /// Links (by id) whose file the caller rewrote, or found already pointing at the new
    /// place: their recorded stat becomes this one (a rewritten symlink is a new file).
    pub stats: &'a [(i64, FileStat)],
    /// Environment keys that name the same environment before and after the move (`old`,
    /// `new`): an environment's identity includes its store and manifest paths. An
    /// environment is re-keyed only when no environment has the new key yet.
    pub rekey: &'a [(String, String)],
}

/// How many registry rows a relocation changes, per table and column.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RelocatedRows {
    /// The store the registry describes.
    pub meta_store: usize,
    pub environments_manifest: usize,
    /// Environments with at least one app root moved.
    pub environments_apps: usize,
    /// Environments whose identity moved with their store or manifest.
    pub environments_key: usize,
    pub links_target: usize,
    pub links_source: usize,
    /// Links whose recorded stat was refreshed (their file was rewritten or moved).
    pub links_stat: usize,
    /// Links under the old folder dropped because a record at the new path already exists
    /// (an apply after the move recorded it again): the newer record is kept.
    pub links_superseded: usize,
    pub file_index_path: usize,
    pub pending_target: usize,
}

impl RelocatedRows {
    /// Rows changed in all (a row with two changed columns counts twice).
    pub fn total(&self) -> usize {
        self.meta_store
            + self.environments_manifest
            + self.environments_apps
            + self.environments_key
            + self.links_target
            + self.links_source
            + self.links_stat
            + self.links_superseded
            + self.file_index_path
            + self.pending_target
    }

    /// Each count with its `table.column` name, in schema order, for reports.
    pub fn by_column(&self) -> [(&'static str, usize); 10] {
        [
            ("meta.store", self.meta_store),
            ("environments.manifest", self.environments_manifest),
            ("environments.apps", self.environments_apps),
            ("environments.key", self.environments_key),
            ("links.target", self.links_target),
            ("links.source", self.links_source),
            ("links.stat", self.links_stat),
            ("links (superseded)", self.links_superseded),
            ("file_index.path", self.file_index_path),
            ("pending.target", self.pending_target),
        ]
    }
}

/// Every row a relocation changes, as read from the database.
#[derive(Debug, Default)]
struct Changes {
    meta_store: Option<String>,
    environments: Vec<EnvChange>,
    links: Vec<LinkChange>,
    file_index: Vec<(String, String)>,
    pending: Vec<(String, String)>,
}

/// An environment's new manifest, apps JSON and key, each `Some` when it changes.
#[derive(Debug)]
struct EnvChange {
    id: i64,
    manifest: Option<String>,
    apps: Option<String>,
    key: Option<String>,
}

#[derive(Debug)]
struct LinkChange {
    id: i64,
    target: Option<String>,
    source: Option<String>,
    stat: Option<FileStat>,
    superseded: bool,
}

impl Changes {
    fn read(conn: &Connection, r: &Relocation<'_>) -> rusqlite::Result<Changes> {
        let (from, to) = (r.from, r.to);
        let mut changes = Changes {
            meta_store: conn
                .query_row("SELECT store FROM meta WHERE id = 1", [], |row| {
                    row.get::<_, Option<String>>(0)
                })
                .optional()?
                .flatten()
                .and_then(|store| rebase_text(&store, from, to)),
            ..Changes::default()
        };

        let rekey: HashMap<&str, &str> = r
            .rekey
            .iter()
            .map(|(old, new)| (old.as_str(), new.as_str()))
            .collect();
        let mut stmt = conn.prepare("SELECT id, key, manifest, apps FROM environments")?;
        let envs = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let keys: HashSet<&str> = envs.iter().map(|(_, key, _, _)| key.as_str()).collect();
        for (id, key, manifest, apps) in &envs {
            let manifest = rebase_text(manifest, from, to);
            // A map that does not parse is left as it is: the registry's reader reports it.
            let apps = serde_json::from_str::<BTreeMap<String, String>>(apps)
                .ok()
                .and_then(|mut map| {
                    let mut moved = false;
                    for root in map.values_mut() {
                        if let Some(new) = rebase_text(root, from, to) {
                            *root = new;
                            moved = true;
                        }
                    }
                    moved.then(|| serde_json::to_string(&map).expect("a map of strings"))
                });
            let key = rekey
                .get(key.as_str())
                .filter(|new| !keys.contains(*new))
                .map(|new| (*new).to_owned());
            if manifest.is_some() || apps.is_some() || key.is_some() {
                changes.environments.push(EnvChange {
                    id: *id,
                    manifest,
                    apps,
                    key,
                });
            }
        }

        let stats: HashMap<i64, FileStat> = r.stats.iter().copied().collect();
        let mut stmt =
            conn.prepare("SELECT id, target, source, dev, ino, mtime_ns, size FROM links")?;
        let links = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    FileStat {
                        dev: row.get::<_, i64>(3)? as u64,
                        ino: row.get::<_, i64>(4)? as u64,
                        mtime_ns: row.get(5)?,
                        size: row.get::<_, i64>(6)? as u64,
                    },
                ))
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let targets: HashSet<&str> = links.iter().map(|(_, t, _, _)| t.as_str()).collect();
        for (id, target, source, stat) in &links {
            let new_target = rebase_text(target, from, to);
            let superseded = new_target
                .as_deref()
                .is_some_and(|new| targets.contains(new));
            let change = LinkChange {
                id: *id,
                source: rebase_text(source, from, to),
                stat: stats.get(id).copied().filter(|new| new != stat),
                target: new_target,
                superseded,
            };
            if change.target.is_some() || change.source.is_some() || change.stat.is_some() {
                changes.links.push(change);
            }
        }

        let moved = |sql: &str| -> rusqlite::Result<Vec<(String, String)>> {
            let mut stmt = conn.prepare(sql)?;
            let rows = stmt
                .query_map([], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .filter_map(|old| rebase_text(&old, from, to).map(|new| (old, new)))
                .collect())
        };
        changes.file_index = moved("SELECT path FROM file_index")?;
        changes.pending = moved("SELECT target FROM pending")?;
        Ok(changes)
    }

    fn counts(&self) -> RelocatedRows {
        let count = |f: &dyn Fn(&LinkChange) -> bool| self.links.iter().filter(|l| f(l)).count();
        let envs =
            |f: &dyn Fn(&EnvChange) -> bool| self.environments.iter().filter(|e| f(e)).count();
        let kept = |l: &LinkChange| !l.superseded;
        RelocatedRows {
            meta_store: usize::from(self.meta_store.is_some()),
            environments_manifest: envs(&|e| e.manifest.is_some()),
            environments_apps: envs(&|e| e.apps.is_some()),
            environments_key: envs(&|e| e.key.is_some()),
            links_target: count(&|l| kept(l) && l.target.is_some()),
            links_source: count(&|l| kept(l) && l.source.is_some()),
            links_stat: count(&|l| kept(l) && l.stat.is_some()),
            links_superseded: count(&|l| l.superseded),
            file_index_path: self.file_index.len(),
            pending_target: self.pending.len(),
        }
    }

    fn write(&self, tx: &Connection) -> rusqlite::Result<()> {
        if let Some(store) = &self.meta_store {
            tx.execute("UPDATE meta SET store = ?1 WHERE id = 1", [store])?;
        }
        for EnvChange {
            id,
            manifest,
            apps,
            key,
        } in &self.environments
        {
            tx.execute(
                "UPDATE environments SET manifest = COALESCE(?2, manifest),
                     apps = COALESCE(?3, apps), key = COALESCE(?4, key)
                 WHERE id = ?1",
                params![id, manifest, apps, key],
            )?;
        }
        for link in &self.links {
            if link.superseded {
                tx.execute("DELETE FROM links WHERE id = ?1", [link.id])?;
                continue;
            }
            tx.execute(
                "UPDATE links SET target = COALESCE(?2, target), source = COALESCE(?3, source)
                 WHERE id = ?1",
                params![link.id, link.target, link.source],
            )?;
            if let Some(stat) = link.stat {
                tx.execute(
                    "UPDATE links SET dev = ?2, ino = ?3, mtime_ns = ?4, size = ?5 WHERE id = ?1",
                    params![
                        link.id,
                        stat.dev as i64,
                        stat.ino as i64,
                        stat.mtime_ns,
                        stat.size as i64
                    ],
                )?;
            }
        }
        // Keyed by path: an entry already at the new path is as good as the moved one.
        for (old, new) in &self.file_index {
            tx.execute(
                "UPDATE OR REPLACE file_index SET path = ?2 WHERE path = ?1",
                [old, new],
            )?;
        }
        for (old, new) in &self.pending {
            tx.execute(
                "UPDATE OR REPLACE pending SET target = ?2 WHERE target = ?1",
                [old, new],
            )?;
        }
        Ok(())
    }
}

impl Registry {
    /// What [`Registry::relocate`] would change, changing nothing (a dry run; works on a
    /// registry opened for reading).
    pub fn relocation_preview(&self, r: &Relocation<'_>) -> Result<RelocatedRows, RegistryError> {
        let conn = self.conn();
        let changes = Changes::read(&conn, r).map_err(sqlite(self.path()))?;
        Ok(changes.counts())
    }

    /// Rewrites every path under `r.from` to the same path under `r.to`, in every table that
    /// holds one (the store, environments' manifests and app roots, links' targets and
    /// sources, the file index, the journal), refreshes the stats in `r.stats` and re-keys
    /// the environments in `r.rekey`: all in one transaction, which bumps the serial when it
    /// changes anything. Returns what it changed; nothing when nothing is left under
    /// `r.from`.
    pub fn relocate(&self, r: &Relocation<'_>) -> Result<RelocatedRows, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        // IMMEDIATE: the rows are read under the write lock, so nothing changes them between
        // the read and the write.
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)
            .map_err(&err)?;
        let changes = Changes::read(&tx, r).map_err(&err)?;
        let counts = changes.counts();
        if counts.total() > 0 {
            changes.write(&tx).map_err(&err)?;
            bump_serial(&tx).map_err(&err)?;
        }
        tx.commit().map_err(err)?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebase_matches_whole_components() {
        let (from, to) = (Path::new("/mnt/a"), Path::new("/media/b"));
        assert_eq!(
            rebase(Path::new("/mnt/a/x/y"), from, to),
            Some(PathBuf::from("/media/b/x/y"))
        );
        assert_eq!(
            rebase(Path::new("/mnt/a"), from, to),
            Some(PathBuf::from("/media/b"))
        );
        assert_eq!(rebase(Path::new("/mnt/ab/x"), from, to), None);
        assert_eq!(rebase(Path::new("/mnt"), from, to), None);
        assert_eq!(rebase(Path::new("loras/x.safetensors"), from, to), None);
        // A trailing slash is not a different folder.
        assert_eq!(
            rebase(Path::new("/mnt/a/x"), Path::new("/mnt/a/"), to),
            Some(PathBuf::from("/media/b/x"))
        );
    }
}
