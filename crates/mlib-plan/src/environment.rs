//! Which environment a plan is for, and which recorded links are its own.
//!
//! A link belongs to an environment, never to a manifest file: one template manifest
//! (`root: /srv/${WS_USER}/ComfyUI`) applied for twenty users is twenty environments, and
//! applying one never unlinks another's links. An environment is identified by
//!
//! - its name, when the manifest says `environment: NAME` (or `--env NAME`): the user says
//!   which environment this is, wherever the manifest lives; or else
//! - the manifest's canonical path, the store, and the values of the variables the store and
//!   the app roots expand (`${WS_USER}`, `~` = `HOME`). Editing a root in the manifest keeps
//!   the environment (its links move with the edit); the same manifest expanded with other
//!   values is another environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlib_manifest::Manifest;
use mlib_registry::{LinkRecord, NewEnvironment, Registry, legacy_key};
use sha2::{Digest, Sha256};

use crate::decide::OtherManifest;
use crate::error::PlanError;
use crate::paths;

/// The environment a plan or apply is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvIdentity {
    /// `name:{NAME}` or `auto:{digest}`: what the registry knows it by.
    pub key: String,
    pub name: Option<String>,
    /// The manifest's canonical path.
    pub manifest: String,
    /// App name → root, physical.
    pub apps: BTreeMap<String, PathBuf>,
    /// The variables its store and app roots expand, with their values.
    pub vars: Vec<(String, Option<String>)>,
}

impl EnvIdentity {
    /// The environment of `manifest` (read from `manifest_id`, its canonical path); `name`
    /// overrides the manifest's `environment:`.
    pub fn of(manifest: &Manifest, manifest_id: &str, name: Option<&str>) -> EnvIdentity {
        let name = name
            .map(str::to_owned)
            .or_else(|| manifest.environment.clone());
        let key = match &name {
            Some(name) => format!("name:{name}"),
            None => {
                let mut digest = Sha256::new();
                digest.update(manifest_id.as_bytes());
                digest.update([0]);
                digest.update(manifest.store.as_os_str().as_encoded_bytes());
                for (var, value) in &manifest.identity_vars {
                    digest.update([0]);
                    digest.update(var.as_bytes());
                    digest.update([b'=']);
                    if let Some(value) = value {
                        digest.update([1]);
                        digest.update(value.as_bytes());
                    }
                }
                format!("auto:{}", &hex::encode(digest.finalize())[..32])
            }
        };
        let apps = manifest
            .apps
            .values()
            .map(|app| {
                let root = paths::physical(&app.root).unwrap_or_else(|_| app.root.clone());
                (app.name.clone(), root)
            })
            .collect();
        EnvIdentity {
            key,
            name,
            manifest: manifest_id.to_owned(),
            apps,
            vars: manifest.identity_vars.clone(),
        }
    }

    /// What the registry records when it is applied from `manifest`.
    pub fn to_record(&self, manifest: &mlib_manifest::Manifest) -> NewEnvironment {
        NewEnvironment {
            models: manifest
                .models
                .values()
                .map(|model| crate::desired::key(model).id())
                .collect(),
            key: self.key.clone(),
            name: self.name.clone(),
            label: self.label(),
            manifest: self.manifest.clone(),
            apps: self
                .apps
                .iter()
                .map(|(app, root)| (app.clone(), root.to_string_lossy().into_owned()))
                .collect(),
        }
    }

    /// How people know it: `environment `NAME``, or the manifest with the values of the
    /// variables that tell its instances apart (`/srv/models.yaml (WS_USER=ann)`).
    pub fn label(&self) -> String {
        if let Some(name) = &self.name {
            return format!("environment `{name}`");
        }
        let vars: Vec<String> = self
            .vars
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("")))
            .collect();
        if vars.is_empty() {
            self.manifest.clone()
        } else {
            format!("{} ({})", self.manifest, vars.join(", "))
        }
    }

    /// Whether `target` lies in one of this environment's app trees.
    fn holds(&self, target: &Path) -> bool {
        self.apps.values().any(|root| target.starts_with(root))
    }
}

/// Which recorded links an environment owns: its own, and the links an mlib older than
/// environments recorded for the same manifest (see [`Ownership::claims`]), which its apply
/// claims for it.
#[derive(Debug, Clone, Default)]
pub struct Ownership {
    env: Option<i64>,
    legacy: Option<i64>,
    identity: Option<EnvIdentity>,
    /// Every environment of the registry, for naming the owner of a link in the way.
    labels: BTreeMap<i64, String>,
    /// And its manifest.
    manifests: BTreeMap<i64, String>,
}

impl Ownership {
    pub fn resolve(registry: &Registry, identity: &EnvIdentity) -> Result<Ownership, PlanError> {
        let envs = registry.environments_without_models()?;
        let legacy = legacy_key(&identity.manifest);
        Ok(Ownership {
            env: envs.iter().find(|e| e.key == identity.key).map(|e| e.id),
            legacy: envs.iter().find(|e| e.key == legacy).map(|e| e.id),
            identity: Some(identity.clone()),
            labels: envs.iter().map(|e| (e.id, e.label.clone())).collect(),
            manifests: envs.iter().map(|e| (e.id, e.manifest.clone())).collect(),
        })
    }

    /// The environment's id, once it was ever applied.
    pub fn env(&self) -> Option<i64> {
        self.env
    }

    pub fn owns(&self, record: &LinkRecord) -> bool {
        Some(record.env) == self.env || self.claims(record)
    }

    /// A link an mlib older than environments recorded for this manifest, which this
    /// environment takes over on its next apply: all of them when the manifest expands no
    /// variables in its roots (it can only ever be this environment), else those inside its
    /// own app trees (a template's other instances keep theirs).
    pub fn claims(&self, record: &LinkRecord) -> bool {
        Some(record.env) == self.legacy
            && self
                .identity
                .as_ref()
                .is_some_and(|id| id.vars.is_empty() || id.holds(&record.target))
    }

    /// Whether a link of another environment, at a target this one wants, may be taken
    /// over: that environment is this one under another identity, because it has the same
    /// manifest, or because its manifest no longer exists (it was moved or renamed). The rule
    /// is `decide::OtherManifest::may_take_over`; this finds its facts.
    pub fn may_take_over(&self, record: &LinkRecord) -> bool {
        self.manifest_of(record).may_take_over()
    }

    /// The manifest of the environment that owns another environment's `record`, compared
    /// with this environment's.
    pub(crate) fn manifest_of(&self, record: &LinkRecord) -> OtherManifest {
        let Some(other) = self.manifests.get(&record.env) else {
            return OtherManifest::Unknown;
        };
        if self
            .identity
            .as_ref()
            .is_some_and(|id| &id.manifest == other)
        {
            OtherManifest::Same
        } else {
            OtherManifest::Other {
                exists: Path::new(other).exists(),
            }
        }
    }

    /// How to name the environment that owns `record`, for people.
    pub fn owner_label(&self, record: &LinkRecord) -> String {
        self.labels
            .get(&record.env)
            .cloned()
            .unwrap_or_else(|| format!("environment {}", record.env))
    }
}
