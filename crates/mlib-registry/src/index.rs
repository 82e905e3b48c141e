//! The file index: store files → verified hashes, with the stamp they had when verified.
//! A cache of trust, never the truth (that is each model's metadata.json).

use std::collections::HashMap;

use mlib_fs::FileStamp;
use rusqlite::params;

use crate::db::sqlite;
use crate::types::IndexEntry;
use crate::{Registry, RegistryError};

impl Registry {
    /// The whole file index, keyed by path relative to the store root.
    pub fn index_all(&self) -> Result<HashMap<String, IndexEntry>, RegistryError> {
        Ok(self
            .index_entries()?
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect())
    }

    /// Every entry of the file index, in no particular order.
    pub fn index_entries(&self) -> Result<Vec<IndexEntry>, RegistryError> {
        let mut entries = Vec::new();
        self.for_each_index_entry(|entry| entries.push(entry))?;
        Ok(entries)
    }

    /// Hands every entry of the file index to `visit`, in no particular order, without
    /// collecting them (see [`Registry::for_each_link`]).
    pub fn for_each_index_entry(
        &self,
        mut visit: impl FnMut(IndexEntry),
    ) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT path, size, mtime_ns, ino, ctime_ns, sha256, blake3 FROM file_index",
            )
            .map_err(&err)?;
        let mut rows = stmt.query([]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            let entry = IndexEntry {
                path: row.get(0).map_err(&err)?,
                size: row.get::<_, i64>(1).map_err(&err)? as u64,
                mtime_ns: row.get(2).map_err(&err)?,
                ino: row.get::<_, i64>(3).map_err(&err)? as u64,
                ctime_ns: row.get(4).map_err(&err)?,
                sha256: row.get(5).map_err(&err)?,
                blake3: row.get(6).map_err(&err)?,
            };
            visit(entry);
        }
        Ok(())
    }

    /// How many entries the file index holds (to size what
    /// [`Registry::for_each_index_entry`] fills).
    pub fn index_count(&self) -> Result<usize, RegistryError> {
        self.count_rows("file_index")
    }

    /// Adds or replaces one index entry. Only for hashes verified against the file with that
    /// stamp: the index is what lets a plan skip hashing.
    pub fn index_put(&self, e: &IndexEntry) -> Result<(), RegistryError> {
        self.index_put_many(std::slice::from_ref(e))
    }

    /// Adds or replaces many index entries in one transaction.
    pub fn index_put_many(&self, entries: &[IndexEntry]) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO file_index
                         (path, size, mtime_ns, ino, ctime_ns, sha256, blake3)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(&err)?;
            for e in entries {
                put.execute(params![
                    e.path,
                    e.size as i64,
                    e.mtime_ns,
                    e.ino as i64,
                    e.ctime_ns,
                    e.sha256,
                    e.blake3
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// After mlib itself added or removed a hard link to a store file (which moves the file's
    /// ctime and nothing else), records the new ctime, but only if the entry still matches
    /// the file otherwise (`before`: the file's stamp before mlib touched it). Returns whether
    /// the entry was updated.
    pub fn index_touch(
        &self,
        path: &str,
        before: &FileStamp,
        now: &FileStamp,
    ) -> Result<bool, RegistryError> {
        let same_file =
            before.ino == now.ino && before.size == now.size && before.mtime_ns == now.mtime_ns;
        if !same_file {
            return Ok(false);
        }
        let changed = self
            .conn()
            .execute(
                "UPDATE file_index SET ctime_ns = ?1
                 WHERE path = ?2 AND size = ?3 AND mtime_ns = ?4 AND ino = ?5 AND ctime_ns = ?6",
                params![
                    now.ctime_ns,
                    path,
                    before.size as i64,
                    before.mtime_ns,
                    before.ino as i64,
                    before.ctime_ns
                ],
            )
            .map_err(sqlite(self.path()))?;
        Ok(changed > 0)
    }

    /// Drops one index entry (a file removed from the store, or found changed).
    pub fn index_remove(&self, path: &str) -> Result<(), RegistryError> {
        self.conn()
            .execute("DELETE FROM file_index WHERE path = ?1", [path])
            .map(drop)
            .map_err(sqlite(self.path()))
    }
}
