//! The SQLite database: opening, journal mode, migrations, lineage and serial.
//!
//! WAL lets `plan` read while an `apply` writes; `busy_timeout` makes a second writer wait
//! instead of failing at once. On a network filesystem (NFS, SMB/CIFS...) WAL is unsafe (its
//! index lives in shared memory the server does not share between machines), so there the
//! registry uses a rollback journal and relies on the apply lock to keep writers apart.
//! Schema changes are append-only migrations numbered by `PRAGMA user_version`, so any older
//! registry upgrades in place and a newer one is refused rather than misread.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use crate::RegistryError;
use crate::migrations::MIGRATIONS;
use crate::random::random_hex;

/// The registry of one store. It can be shared between threads (parallel fetches record
/// their results); calls are serialized on one connection.
#[derive(Debug)]
pub struct Registry {
    conn: Mutex<Connection>,
    path: PathBuf,
    journal: Journal,
}

/// How SQLite keeps a transaction safe until it is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: readers never wait for the writer. Local filesystems.
    Wal,
    /// Rollback journal: for network filesystems, where WAL is unsafe.
    Rollback {
        /// The filesystem's name (`NFS`, `CIFS`...).
        filesystem: &'static str,
    },
    /// Opened read-only (a state folder mlib may not write): nothing is journaled.
    ReadOnly,
}

impl Registry {
    /// Opens (creating parent folders, file and schema if needed) and migrates the registry.
    pub fn open(path: &Path) -> Result<Registry, RegistryError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent)?;
        }
        let dir = mlib_fs::parent_dir(path);
        let journal = match mlib_fs::is_network_fs(dir)? {
            Some(filesystem) => Journal::Rollback { filesystem },
            None => Journal::Wal,
        };
        let conn = Connection::open(path).map_err(sqlite(path))?;
        Registry::setup(conn, path.to_owned(), journal)
    }

    /// Opens an existing registry to read it, writing nothing (`plan`, `status`, `env list`).
    /// A registry of an older schema is read through a copy in memory, upgraded there: the
    /// file is upgraded only by an apply, under the apply lock, so an older mlib sharing the
    /// store keeps working until then. `dir_writable`: whether this process may write the
    /// registry's folder (else the file is opened so that SQLite writes nothing beside it).
    pub fn open_for_reading(path: &Path, dir_writable: bool) -> Result<Registry, RegistryError> {
        let file = path.to_str().ok_or_else(|| RegistryError::NonUtf8Path {
            path: path.to_owned(),
        })?;
        // Where the folder may be written, an ordinary connection that only reads: it shares
        // the WAL with writers and, closing last, removes the -wal and -shm it used. Where it
        // may not, SQLite cannot make the -shm a WAL reader needs: `immutable` reads the
        // database file alone (a -wal a killed writer left is then not seen; the next apply
        // with write access folds it in).
        let conn = if dir_writable {
            Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
        } else {
            Connection::open_with_flags(
                format!("file:{file}?immutable=1"),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            )
        }
        .map_err(sqlite(path))?;
        conn.busy_timeout(Duration::from_secs(30))
            .map_err(sqlite(path))?;
        let registry = Registry {
            conn: Mutex::new(conn),
            path: path.to_owned(),
            journal: Journal::ReadOnly,
        };
        let found = registry.schema_version()?;
        let known = MIGRATIONS.len() as u32;
        if found > known {
            return Err(RegistryError::TooNew {
                path: path.to_owned(),
                found,
                known,
            });
        }
        if found == known {
            return Ok(registry);
        }
        let mut copy = Connection::open_in_memory().map_err(sqlite(path))?;
        {
            let source = registry.conn();
            let backup = rusqlite::backup::Backup::new(&source, &mut copy).map_err(sqlite(path))?;
            backup
                .run_to_completion(1024, Duration::ZERO, None)
                .map_err(sqlite(path))?;
        }
        let upgraded = Registry {
            conn: Mutex::new(copy),
            path: path.to_owned(),
            journal: Journal::ReadOnly,
        };
        upgraded.migrate()?;
        Ok(upgraded)
    }

    /// An empty registry that lives in memory only (planning a store never applied).
    pub fn open_in_memory() -> Result<Registry, RegistryError> {
        let conn = Connection::open_in_memory().map_err(sqlite(Path::new(":memory:")))?;
        Registry::setup(conn, PathBuf::from(":memory:"), Journal::Wal)
    }

    fn setup(conn: Connection, path: PathBuf, journal: Journal) -> Result<Registry, RegistryError> {
        let registry = Registry {
            conn: Mutex::new(conn),
            path,
            journal,
        };
        registry.configure()?;
        registry.migrate()?;
        Ok(registry)
    }

    fn configure(&self) -> Result<(), RegistryError> {
        let err = sqlite(&self.path);
        let conn = self.conn();
        conn.busy_timeout(Duration::from_secs(30)).map_err(&err)?;
        // WAL + NORMAL: never corrupt, durable at each checkpoint, and fast enough to record
        // thousands of links per apply. A rollback journal needs FULL to be as safe.
        let mode = match self.journal {
            Journal::Wal => "PRAGMA journal_mode = WAL",
            Journal::Rollback { .. } | Journal::ReadOnly => "PRAGMA journal_mode = DELETE",
        };
        conn.query_row(mode, [], |_| Ok(())).map_err(&err)?;
        let sync = match self.journal {
            Journal::Wal => "NORMAL",
            Journal::Rollback { .. } | Journal::ReadOnly => "FULL",
        };
        conn.execute_batch(&format!(
            "PRAGMA synchronous = {sync}; PRAGMA foreign_keys = ON;"
        ))
        .map_err(err)
    }

    /// How many rows `table` holds (one of this crate's own table names).
    pub(crate) fn count_rows(&self, table: &str) -> Result<usize, RegistryError> {
        let count: i64 = self
            .conn()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| {
                row.get(0)
            })
            .map_err(sqlite(&self.path))?;
        Ok(count as usize)
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
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

    /// How transactions are journaled (WAL, or a rollback journal on a network filesystem).
    pub fn journal(&self) -> Journal {
        self.journal
    }

    /// The schema version this registry is at.
    pub fn schema_version(&self) -> Result<u32, RegistryError> {
        self.conn()
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(sqlite(&self.path))
    }

    /// Runs SQLite's own consistency check; `Ok(())` when it answers `ok`.
    pub fn integrity_check(&self) -> Result<(), RegistryError> {
        let answer: String = self
            .conn()
            .query_row("PRAGMA integrity_check", [], |row| row.get(0))
            .map_err(sqlite(&self.path))?;
        if answer == "ok" {
            Ok(())
        } else {
            Err(RegistryError::Damaged {
                path: self.path.clone(),
                report: answer,
            })
        }
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
        self.meta_column("lineage")
    }

    /// Bumped by every transaction that changes the links.
    pub fn serial(&self) -> Result<u64, RegistryError> {
        self.meta_column::<i64>("serial").map(|s| s as u64)
    }

    /// The store this registry describes (its physical path), once recorded.
    pub fn store(&self) -> Result<Option<String>, RegistryError> {
        self.meta_column("store")
    }

    /// Records the store this registry describes.
    pub fn set_store(&self, store: &str) -> Result<(), RegistryError> {
        self.conn()
            .execute("UPDATE meta SET store = ?1 WHERE id = 1", [store])
            .map(drop)
            .map_err(sqlite(&self.path))
    }

    /// Ties the registry to the store it describes (`store`: physical path). A registry
    /// outside its store (`outside`) must never be used for another store, whose file index
    /// would then be read against the wrong files; one inside the store follows it when the
    /// store moves.
    pub fn bind_store(&self, store: &str, outside: bool) -> Result<(), RegistryError> {
        if self.check_store(store, outside)? {
            self.set_store(store)?;
        }
        Ok(())
    }

    /// [`Registry::bind_store`]'s check alone, for readers (which write nothing): whether the
    /// store still has to be recorded.
    pub fn check_store(&self, store: &str, outside: bool) -> Result<bool, RegistryError> {
        match self.store()? {
            Some(registered) if registered == store => Ok(false),
            Some(registered) if outside => Err(RegistryError::OtherStore {
                path: self.path.clone(),
                registered,
                store: store.to_owned(),
            }),
            _ => Ok(true),
        }
    }

    fn meta_column<T: rusqlite::types::FromSql>(&self, column: &str) -> Result<T, RegistryError> {
        self.conn()
            .query_row(
                &format!("SELECT {column} FROM meta WHERE id = 1"),
                [],
                |row| row.get(0),
            )
            .optional()
            .map_err(sqlite(&self.path))?
            .ok_or_else(|| RegistryError::NoLineage {
                path: self.path.clone(),
            })
    }
}

pub(crate) fn bump_serial(tx: &rusqlite::Transaction) -> rusqlite::Result<()> {
    tx.execute("UPDATE meta SET serial = serial + 1 WHERE id = 1", [])
        .map(drop)
}

pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> RegistryError + '_ {
    move |source| RegistryError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn utf8(path: &Path) -> Result<&str, RegistryError> {
    path.to_str().ok_or_else(|| RegistryError::NonUtf8Path {
        path: path.to_owned(),
    })
}

pub(crate) fn now() -> String {
    let now = jiff::Timestamp::now();
    now.round(jiff::Unit::Second).unwrap_or(now).to_string()
}
