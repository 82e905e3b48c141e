//! What an apply is in the middle of, so the next one can finish or undo it after a kill.
//!
//! - `pending`: a link about to be made (or removed), journaled before the apply's first
//!   change and removed in the transaction that records the link (or when the apply ends).
//!   After a kill, a file at a pending target may be mlib's own finished but unrecorded link
//!   or copy: the planner checks it against the model and records it instead of calling it
//!   a user's file; and the folders of pending targets are where temporary names are looked
//!   for.
//! - `runs`: an apply that started changing things. One left behind by a dead process means
//!   the last apply was interrupted: the next one also looks for the temporary files it may
//!   have left.

use std::path::PathBuf;

use mlib_fs::Process;
use rusqlite::{OptionalExtension, params};

use crate::db::{now, sqlite, utf8};
use crate::types::{Pending, Run};
use crate::{Registry, RegistryError};

impl Registry {
    /// Journals links about to be made or removed by `env` (this process), in one transaction.
    pub fn journal_links(&self, env: i64, targets: &[PathBuf]) -> Result<(), RegistryError> {
        if targets.is_empty() {
            return Ok(());
        }
        let err = sqlite(self.path());
        let me = Process::current();
        let since = now();
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        {
            let mut put = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO pending (target, env, pid, start, since)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(&err)?;
            for target in targets {
                put.execute(params![utf8(target)?, env, me.pid, me.start as i64, since])
                    .map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Every journaled link, of every environment.
    pub fn pending(&self) -> Result<Vec<Pending>, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT target, env, pid, start FROM pending")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(Pending {
                    target: PathBuf::from(row.get::<_, String>(0)?),
                    env: row.get(1)?,
                    writer: Process {
                        pid: row.get(2)?,
                        start: row.get::<_, i64>(3)? as u64,
                    },
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Forgets journaled links (made, failed, or found and dealt with after a kill).
    pub fn unjournal(&self, targets: &[PathBuf]) -> Result<(), RegistryError> {
        if targets.is_empty() {
            return Ok(());
        }
        let err = sqlite(self.path());
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        {
            let mut delete = tx
                .prepare_cached("DELETE FROM pending WHERE target = ?1")
                .map_err(&err)?;
            for target in targets {
                delete.execute([utf8(target)?]).map_err(&err)?;
            }
        }
        tx.commit().map_err(err)
    }

    /// Marks `env` as being applied by this process. Returns the run this replaces when its
    /// process is gone: that apply was interrupted.
    pub fn begin_run(&self, env: i64) -> Result<Option<Run>, RegistryError> {
        let err = sqlite(self.path());
        let me = Process::current();
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        let previous = tx
            .query_row(
                "SELECT pid, start, since FROM runs WHERE env = ?1",
                [env],
                |row| {
                    Ok(Run {
                        env,
                        writer: Process {
                            pid: row.get(0)?,
                            start: row.get::<_, i64>(1)? as u64,
                        },
                        since: row.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(&err)?;
        tx.execute(
            "INSERT OR REPLACE INTO runs (env, pid, start, since) VALUES (?1, ?2, ?3, ?4)",
            params![env, me.pid, me.start as i64, now()],
        )
        .map_err(&err)?;
        tx.commit().map_err(&err)?;
        Ok(previous.filter(|run| !run.writer.is_alive()))
    }

    /// The apply of `env` by this process finished (successfully or not, but not killed).
    /// Its run is removed, and so is one a killed process left, which this apply recovered
    /// from even if it had nothing to change (the plan after a kill may only record what the
    /// killed apply finished). Another live process's run is left alone.
    pub fn end_run(&self, env: i64) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let writer = conn
            .query_row("SELECT pid, start FROM runs WHERE env = ?1", [env], |row| {
                Ok(Process {
                    pid: row.get(0)?,
                    start: row.get::<_, i64>(1)? as u64,
                })
            })
            .optional()
            .map_err(&err)?;
        match writer {
            Some(writer) if writer == Process::current() || !writer.is_alive() => conn
                .execute(
                    "DELETE FROM runs WHERE env = ?1 AND pid = ?2 AND start = ?3",
                    params![env, writer.pid, writer.start as i64],
                )
                .map(drop)
                .map_err(err),
            _ => Ok(()),
        }
    }

    /// Runs whose process is gone: applies that were interrupted and not yet recovered from.
    pub fn interrupted_runs(&self) -> Result<Vec<Run>, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT env, pid, start, since FROM runs")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |row| {
                Ok(Run {
                    env: row.get(0)?,
                    writer: Process {
                        pid: row.get(1)?,
                        start: row.get::<_, i64>(2)? as u64,
                    },
                    since: row.get(3)?,
                })
            })
            .map_err(&err)?;
        let runs: Vec<Run> = rows.collect::<Result<_, _>>().map_err(err)?;
        Ok(runs.into_iter().filter(|r| !r.writer.is_alive()).collect())
    }
}
