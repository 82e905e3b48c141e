//! The SQLite database: schema migrations, links, file index.
//!
//! WAL lets `plan` read while an `apply` writes; `busy_timeout` makes a second writer wait
//! instead of failing at once. Schema changes are append-only migrations numbered by
//! `PRAGMA user_version`, so any older registry upgrades in place and a newer one is refused
//! rather than misread.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::RegistryError;
use crate::random::random_hex;
use crate::types::{FileStat, IndexEntry, LinkKind, LinkRecord, NewLink};

/// Schema migrations; entry `i` upgrades `user_version` `i` to `i + 1`.
/// Never edit one that has shipped: append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    "CREATE TABLE meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        lineage TEXT NOT NULL,
        serial INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE links (
        id INTEGER PRIMARY KEY,
        manifest TEXT NOT NULL,
        model TEXT NOT NULL,
        app TEXT NOT NULL,
        target TEXT NOT NULL UNIQUE,
        source TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('symlink', 'hardlink', 'copy')),
        external INTEGER NOT NULL DEFAULT 0 CHECK (external IN (0, 1)),
        dev INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        size INTEGER NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX links_manifest ON links (manifest);
    CREATE INDEX links_model ON links (model);
    CREATE TABLE file_index (
        path TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        ino INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        blake3 TEXT NOT NULL
    ) WITHOUT ROWID;",
];

const LINK_COLUMNS: &str = "id, manifest, model, app, target, source, kind, external, dev, ino, mtime_ns, size, created_at";

/// The registry of one store. It can be shared between threads (parallel fetches record
/// their results); calls are serialized on one connection.
#[derive(Debug)]
pub struct Registry {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl Registry {
    /// Opens (creating parent folders, file and schema if needed) and migrates the registry.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent)?;
        }
        let conn = Connection::open(path).map_err(sqlite(path))?;
        Registry::setup(conn, path.to_owned())
    }

    /// An empty registry that lives in memory only (planning a store never applied).
    pub fn open_in_memory() -> Result<Registry, RegistryError> {
        let conn = Connection::open_in_memory().map_err(sqlite(Path::new(":memory:")))?;
        Registry::setup(conn, PathBuf::from(":memory:"))
    }

    fn setup(conn: Connection, path: PathBuf) -> Result<Registry, RegistryError> {
        let registry = Registry {
            conn: Mutex::new(conn),
            path,
        };
        registry.configure()?;
        registry.migrate()?;
        Ok(registry)
    }

    fn configure(&self) -> Result<(), RegistryError> {
        let err = sqlite(&self.path);
        self.conn()
            .busy_timeout(Duration::from_secs(30))
            .map_err(&err)?;
        // WAL + NORMAL: never corrupt, durable at each checkpoint, and fast enough to record
        // thousands of links per apply.
        self.conn()
            .query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .map_err(&err)?;
        self.conn()
            .execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
            .map_err(&err)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic in another thread cannot leave SQLite half-written: its transaction rolled
        // back when dropped, so the connection is still good.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where the database is (`:memory:` for an in-memory one).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version this registry is at.
    pub fn schema_version(&self) -> Result<u32, RegistryError> {
        self.conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sqlite(&self.path))
    }

    fn migrate(&self) -> Result<(), RegistryError> {
        let err = sqlite(&self.path);
        let known = MIGRATIONS.len() as u32;
        // IMMEDIATE: two mlib processes opening a new registry at once must not both migrate.
        let conn = self.conn();
        let tx = rusqlite::Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)
            .map_err(&err)?;
        let found: u32 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(&err)?;
        if found > known {
            return Err(RegistryError::TooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().enumerate().skip(found as usize) {
            tx.execute_batch(sql).map_err(&err)?;
            tx.pragma_update(None, "user_version", version as u32 + 1)
                .map_err(&err)?;
        }
        let has_meta: bool = tx
            .query_row("SELECT EXISTS (SELECT 1 FROM meta)", [], |row| row.get(0))
            .map_err(&err)?;
        if !has_meta {
            tx.execute(
                "INSERT INTO meta (id, lineage, serial) VALUES (1, ?1, 0)",
                [random_hex(16)?],
            )
            .map_err(&err)?;
        }
        tx.commit().map_err(&err)
    }

    /// A random id fixed when the registry was created: a saved plan made against another
    /// registry (recreated, or another store's) is refused even when the serials agree.
    pub fn lineage(&self) -> Result<String, RegistryError> {
        self.conn()
            .query_row("SELECT lineage FROM meta WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()
            .map_err(sqlite(&self.path))?
            .ok_or_else(|| RegistryError::NoLineage {
                path: self.path.clone(),
            })
    }

    /// Bumped by every transaction that changes the links.
    pub fn serial(&self) -> Result<u64, RegistryError> {
        self.conn()
            .query_row("SELECT serial FROM meta WHERE id = 1", [], |row| {
                row.get::<_, i64>(0)
            })
            .optional()
            .map_err(sqlite(&self.path))?
            .map(|s| s as u64)
            .ok_or_else(|| RegistryError::NoLineage {
                path: self.path.clone(),
            })
    }

    /// Every recorded link, oldest first.
    pub fn links(&self) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("1 = 1", "")
    }

    /// The links one manifest (canonical path) made.
    pub fn links_for_manifest(&self, manifest: &str) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("manifest = ?1", manifest)
    }

    /// The links to one model, whatever manifest made them.
    pub fn links_for_model(&self, model: &str) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("model = ?1", model)
    }

    /// The link recorded at `target`, if any.
    pub fn link_at(&self, target: &Path) -> Result<Option<LinkRecord>, RegistryError> {
        let target = utf8(target)?;
        Ok(self.query_links("target = ?1", target)?.pop())
    }

    fn query_links(&self, filter: &str, arg: &str) -> Result<Vec<LinkRecord>, RegistryError> {
        let err = sqlite(&self.path);
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE {filter} ORDER BY id");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
        let rows = if filter.contains("?1") {
            stmt.query_map([arg], link_from_row)
        } else {
            stmt.query_map([], link_from_row)
        }
        .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Records a link, replacing any record with the same target; returns its id.
    pub fn insert_link(&self, link: &NewLink) -> Result<i64, RegistryError> {
        Ok(self.insert_links(std::slice::from_ref(link))?[0])
    }

    /// Records many links in one transaction (one serial bump); returns their ids in order.
    pub fn insert_links(&self, links: &[NewLink]) -> Result<Vec<i64>, RegistryError> {
        let err = sqlite(&self.path);
        let created_at = now();
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        let mut ids = Vec::with_capacity(links.len());
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM links WHERE target = ?1")
                .map_err(&err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO links (manifest, model, app, target, source, kind, external,
                         dev, ino, mtime_ns, size, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                )
                .map_err(&err)?;
            for link in links {
                let target = utf8(&link.target)?;
                delete.execute([target]).map_err(&err)?;
                insert
                    .execute(params![
                        link.manifest,
                        link.model,
                        link.app,
                        target,
                        utf8(&link.source)?,
                        link.kind.as_str(),
                        link.external,
                        link.stat.dev as i64,
                        link.stat.ino as i64,
                        link.stat.mtime_ns,
                        link.stat.size as i64,
                        created_at,
                    ])
                    .map_err(&err)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        if !links.is_empty() {
            bump_serial(&tx).map_err(&err)?;
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// Forgets a link record (a missing id is not an error).
    pub fn delete_link(&self, id: i64) -> Result<(), RegistryError> {
        self.delete_links(&[id])
    }

    /// Forgets many link records in one transaction (one serial bump if any existed).
    pub fn delete_links(&self, ids: &[i64]) -> Result<(), RegistryError> {
        let err = sqlite(&self.path);
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        let mut deleted = 0;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM links WHERE id = ?1")
                .map_err(&err)?;
            for id in ids {
                deleted += delete.execute([id]).map_err(&err)?;
            }
        }
        if deleted > 0 {
            bump_serial(&tx).map_err(&err)?;
        }
        tx.commit().map_err(err)
    }

    /// The whole file index, keyed by path relative to the store.
    pub fn index_all(&self) -> Result<HashMap<String, IndexEntry>, RegistryError> {
        Ok(self
            .index_entries()?
            .into_iter()
            .map(|e| (e.path.clone(), e))
            .collect())
    }

    /// Every entry of the file index, in no particular order.
    pub fn index_entries(&self) -> Result<Vec<IndexEntry>, RegistryError> {
        let err = sqlite(&self.path);
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT path, size, mtime_ns, ino, sha256, blake3 FROM file_index")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(IndexEntry {
                    path: row.get(0)?,
                    size: row.get::<_, i64>(1)? as u64,
                    mtime_ns: row.get(2)?,
                    ino: row.get::<_, i64>(3)? as u64,
                    sha256: row.get(4)?,
                    blake3: row.get(5)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Adds or replaces one index entry.
    pub fn index_put(&self, e: &IndexEntry) -> Result<(), RegistryError> {
        self.index_put_many(std::slice::from_ref(e))
    }

    /// Adds or replaces many index entries in one transaction (`mlib scan`).
    pub fn index_put_many(&self, entries: &[IndexEntry]) -> Result<(), RegistryError> {
        let err = sqlite(&self.path);
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO file_index (path, size, mtime_ns, ino, sha256, blake3)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(&err)?;
            for e in entries {
                put.execute(params![
                    e.path,
                    e.size as i64,
                    e.mtime_ns,
                    e.ino as i64,
                    e.sha256,
                    e.blake3
                ])
                .map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Drops one index entry (a file removed from the store).
    pub fn index_remove(&self, path: &str) -> Result<(), RegistryError> {
        self.conn()
            .execute("DELETE FROM file_index WHERE path = ?1", [path])
            .map(drop)
            .map_err(sqlite(&self.path))
    }

    /// Empties the index (before `mlib scan` rebuilds it).
    pub fn index_clear(&self) -> Result<(), RegistryError> {
        self.conn()
            .execute("DELETE FROM file_index", [])
            .map(drop)
            .map_err(sqlite(&self.path))
    }
}

fn bump_serial(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.execute("UPDATE meta SET serial = serial + 1 WHERE id = 1", [])
        .map(drop)
}

fn link_from_row(row: &Row) -> rusqlite::Result<LinkRecord> {
    let kind: String = row.get(6)?;
    let kind = LinkKind::parse(&kind).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            6,
            rusqlite::types::Type::Text,
            format!("unknown link kind {kind:?}").into(),
        )
    })?;
    Ok(LinkRecord {
        id: row.get(0)?,
        manifest: row.get(1)?,
        model: row.get(2)?,
        app: row.get(3)?,
        target: PathBuf::from(row.get::<_, String>(4)?),
        source: PathBuf::from(row.get::<_, String>(5)?),
        kind,
        external: row.get(7)?,
        stat: FileStat {
            dev: row.get::<_, i64>(8)? as u64,
            ino: row.get::<_, i64>(9)? as u64,
            mtime_ns: row.get(10)?,
            size: row.get::<_, i64>(11)? as u64,
        },
        created_at: row.get(12)?,
    })
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> RegistryError + '_ {
    move |source| RegistryError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn utf8(path: &Path) -> Result<&str, RegistryError> {
    path.to_str().ok_or_else(|| RegistryError::NonUtf8Path {
        path: path.to_owned(),
    })
}

fn now() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now).to_string()
}
