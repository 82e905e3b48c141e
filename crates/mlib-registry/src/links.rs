//! The links mlib made, each owned by one environment.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Row, params};

use crate::db::{bump_serial, now, sqlite, utf8};
use crate::types::{FileStat, LinkKind, LinkRecord, NewLink};
use crate::{Registry, RegistryError};

/// The columns a [`LinkRecord`] is read from. `created_at` is not among them: nothing
/// decides by it, and at 20,000 links its strings were a tenth of a plan's allocations.
const LINK_COLUMNS: &str = "id, env, model, app, target, source, kind, external, dev, ino, \
     mtime_ns, size, source_ino, text";

impl Registry {
    /// Every recorded link, oldest first.
    pub fn links(&self) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("1 = 1", rusqlite::params![])
    }

    /// The links one environment made.
    pub fn links_for_env(&self, env: i64) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("env = ?1", params![env])
    }

    /// The links to one model, whatever environment made them.
    pub fn links_for_model(&self, model: &str) -> Result<Vec<LinkRecord>, RegistryError> {
        self.query_links("model = ?1", params![model])
    }

    /// The link recorded at `target`, if any.
    pub fn link_at(&self, target: &Path) -> Result<Option<LinkRecord>, RegistryError> {
        let target = utf8(target)?;
        Ok(self.query_links("target = ?1", params![target])?.pop())
    }

    fn query_links(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<LinkRecord>, RegistryError> {
        let mut links = Vec::new();
        self.visit_links(filter, args, |link| links.push(link))?;
        Ok(links)
    }

    /// Hands every recorded link to `visit`, oldest first, without collecting them: a plan
    /// files 20,000 records straight into its own tables (a `Vec` of them first, grown by
    /// doubling, then moved, was a tenth of a no-op plan's page faults).
    pub fn for_each_link(&self, visit: impl FnMut(LinkRecord)) -> Result<(), RegistryError> {
        self.visit_links("1 = 1", rusqlite::params![], visit)
    }

    /// How many links are recorded (to size what [`Registry::for_each_link`] fills).
    pub fn link_count(&self) -> Result<usize, RegistryError> {
        self.count_rows("links")
    }

    fn visit_links(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
        mut visit: impl FnMut(LinkRecord),
    ) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let sql = format!("SELECT {LINK_COLUMNS} FROM links WHERE {filter} ORDER BY id");
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(&err)?;
        let mut rows = stmt.query(args).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            visit(link_from_row(row).map_err(&err)?);
        }
        Ok(())
    }

    /// Records a link, replacing any record with the same target; returns its id.
    pub fn insert_link(&self, link: &NewLink) -> Result<i64, RegistryError> {
        Ok(self.insert_links(std::slice::from_ref(link))?[0])
    }

    /// Records many links in one transaction (one serial bump); returns their ids in order.
    /// A record of the same environment at the same target is replaced; one of another
    /// environment is never (its owner may still want it): that is an error, and nothing is
    /// recorded. Each target's journal entry ([`Registry::journal_links`]) goes in the same
    /// transaction: the link is then recorded, not pending.
    pub fn insert_links(&self, links: &[NewLink]) -> Result<Vec<i64>, RegistryError> {
        let err = sqlite(self.path());
        let created_at = now();
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        let mut ids = Vec::with_capacity(links.len());
        {
            // One look at the target (usually nothing is there): a record of this
            // environment is replaced, one of another is refused.
            let mut existing = tx
                .prepare_cached("SELECT id, env FROM links WHERE target = ?1")
                .map_err(&err)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM links WHERE id = ?1")
                .map_err(&err)?;
            let mut unjournal = tx
                .prepare_cached("DELETE FROM pending WHERE target = ?1")
                .map_err(&err)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO links (env, model, app, target, source, kind, external,
                         dev, ino, mtime_ns, size, source_ino, created_at, text)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                )
                .map_err(&err)?;
            for link in links {
                let target = utf8(&link.target)?;
                let found = existing
                    .query_row([target], |row| Ok((row.get::<_, i64>(0)?, row.get(1)?)))
                    .optional()
                    .map_err(&err)?;
                match found {
                    Some((id, env)) if env == link.env => {
                        delete.execute([id]).map_err(&err)?;
                    }
                    Some((_, env)) => {
                        return Err(RegistryError::TargetOwned {
                            target: link.target.clone(),
                            env,
                        });
                    }
                    None => {}
                }
                unjournal.execute([target]).map_err(&err)?;
                insert
                    .execute(params![
                        link.env,
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
                        link.source_ino.map(|i| i as i64),
                        created_at,
                        link.text.as_deref().map(utf8).transpose()?,
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
        let err = sqlite(self.path());
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
}

fn link_from_row(row: &Row) -> rusqlite::Result<LinkRecord> {
    // Borrowed from the row: one allocation fewer per record.
    let bad = |what: Box<dyn std::error::Error + Send + Sync>| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, what)
    };
    let kind = row.get_ref(6)?.as_str().map_err(|e| bad(e.into()))?;
    let kind =
        LinkKind::parse(kind).ok_or_else(|| bad(format!("unknown link kind {kind:?}").into()))?;
    Ok(LinkRecord {
        id: row.get(0)?,
        env: row.get(1)?,
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
        source_ino: row.get::<_, Option<i64>>(12)?.map(|i| i as u64),
        text: row.get::<_, Option<String>>(13)?.map(PathBuf::from),
    })
}
