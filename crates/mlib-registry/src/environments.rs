//! Environments: what owns links. One per manifest applied with one set of variable values
//! (or one per `environment:` name); applying one never touches another's links.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{OptionalExtension, Row, params};

use crate::db::{bump_serial, now, sqlite};
use crate::types::{Environment, NewEnvironment};
use crate::{Registry, RegistryError};

const ENV_COLUMNS: &str = "id, key, name, label, manifest, apps, created_at, applied_at, models";
/// [`ENV_COLUMNS`] up to `models`, which is last.
const ENV_COLUMNS_BUT_MODELS: &str = "id, key, name, label, manifest, apps, created_at, applied_at";

impl Registry {
    /// Every environment, oldest first.
    pub fn environments(&self) -> Result<Vec<Environment>, RegistryError> {
        self.query_environments(&format!(
            "SELECT {ENV_COLUMNS} FROM environments ORDER BY id"
        ))
    }

    /// Every environment, oldest first, without the models each declared (`models` is
    /// `None`): those are a JSON list per environment, 10,000 names for a large one, which a
    /// plan that only asks whose links are whose parsed twice for nothing.
    pub fn environments_without_models(&self) -> Result<Vec<Environment>, RegistryError> {
        self.query_environments(&format!(
            "SELECT {ENV_COLUMNS_BUT_MODELS}, NULL FROM environments ORDER BY id"
        ))
    }

    fn query_environments(&self, sql: &str) -> Result<Vec<Environment>, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(sql).map_err(&err)?;
        let rows = stmt.query_map([], env_from_row).map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The environment with this key, if it was ever applied.
    pub fn environment(&self, key: &str) -> Result<Option<Environment>, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {ENV_COLUMNS} FROM environments WHERE key = ?1"
            ))
            .map_err(&err)?;
        stmt.query_row([key], env_from_row).optional().map_err(err)
    }

    /// Records that `env` is being applied now: creates it, or updates its manifest, name and
    /// app roots (they may have moved) and its last-apply time.
    pub fn record_environment(&self, env: &NewEnvironment) -> Result<Environment, RegistryError> {
        let apps = serde_json::to_string(&env.apps).expect("a map of strings serializes");
        let models = serde_json::to_string(&env.models).expect("a list of strings serializes");
        let now = now();
        self.conn()
            .execute(
                "INSERT INTO environments
                     (key, name, label, manifest, apps, created_at, applied_at, models)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
                 ON CONFLICT (key) DO UPDATE SET
                     name = excluded.name, label = excluded.label,
                     manifest = excluded.manifest, apps = excluded.apps,
                     applied_at = excluded.applied_at, models = excluded.models",
                params![
                    env.key,
                    env.name,
                    env.label,
                    env.manifest,
                    apps,
                    now,
                    models
                ],
            )
            .map_err(sqlite(self.path()))?;
        self.environment(&env.key)?
            .ok_or_else(|| RegistryError::NoLineage {
                path: self.path().to_owned(),
            })
    }

    /// Records what `env` declares without marking it applied (`mlib import`, `init
    /// --into-store` put models into the store for a manifest not applied yet: `gc` must
    /// know they are needed).
    pub fn declare_environment(&self, env: &NewEnvironment) -> Result<(), RegistryError> {
        let apps = serde_json::to_string(&env.apps).expect("a map of strings serializes");
        let models = serde_json::to_string(&env.models).expect("a list of strings serializes");
        self.conn()
            .execute(
                "INSERT INTO environments (key, name, label, manifest, apps, created_at, models)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (key) DO UPDATE SET
                     name = excluded.name, label = excluded.label,
                     manifest = excluded.manifest, apps = excluded.apps,
                     models = excluded.models",
                params![
                    env.key,
                    env.name,
                    env.label,
                    env.manifest,
                    apps,
                    now(),
                    models
                ],
            )
            .map_err(sqlite(self.path()))?;
        Ok(())
    }

    /// How many links each environment owns.
    pub fn link_counts(&self) -> Result<HashMap<i64, usize>, RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT env, COUNT(*) FROM links GROUP BY env")
            .map_err(&err)?;
        let rows = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as usize)))
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Moves links (by id) to environment `env`, then forgets legacy environments left with
    /// no links. For an upgraded registry: the first apply of a manifest claims the links
    /// schema 1 recorded for it that lie in its own app folders.
    pub fn claim_links(&self, ids: &[i64], env: i64) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        {
            let mut claim = tx
                .prepare_cached("UPDATE links SET env = ?1 WHERE id = ?2")
                .map_err(&err)?;
            for id in ids {
                claim.execute(params![env, id]).map_err(&err)?;
            }
        }
        tx.execute(
            "DELETE FROM environments WHERE key LIKE 'legacy:%'
                 AND NOT EXISTS (SELECT 1 FROM links WHERE links.env = environments.id)",
            [],
        )
        .map_err(&err)?;
        if !ids.is_empty() {
            bump_serial(&tx).map_err(&err)?;
        }
        tx.commit().map_err(err)
    }

    /// Forgets environment `env`: its row, its remaining link records, its journal and its
    /// run marker, in one transaction. The caller removes (or keeps) the links' files first.
    pub fn forget_environment(&self, env: i64) -> Result<(), RegistryError> {
        let err = sqlite(self.path());
        let conn = self.conn();
        let tx = conn.unchecked_transaction().map_err(&err)?;
        for table in ["links", "pending", "runs"] {
            tx.execute(&format!("DELETE FROM {table} WHERE env = ?1"), [env])
                .map_err(&err)?;
        }
        tx.execute("DELETE FROM environments WHERE id = ?1", [env])
            .map_err(&err)?;
        bump_serial(&tx).map_err(&err)?;
        tx.commit().map_err(err)
    }
}

fn env_from_row(row: &Row) -> rusqlite::Result<Environment> {
    let apps: String = row.get(5)?;
    let apps: BTreeMap<String, String> = serde_json::from_str(&apps).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(5, rusqlite::types::Type::Text, e.into())
    })?;
    let models: Option<String> = row.get(8)?;
    let models: Option<Vec<String>> = models
        .map(|text| serde_json::from_str(&text))
        .transpose()
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
        })?;
    let manifest: String = row.get(4)?;
    let label: String = row.get(3)?;
    Ok(Environment {
        id: row.get(0)?,
        key: row.get(1)?,
        name: row.get(2)?,
        label: if label.is_empty() {
            manifest.clone()
        } else {
            label
        },
        manifest,
        apps,
        created_at: row.get(6)?,
        applied_at: row.get(7)?,
        models,
    })
}
