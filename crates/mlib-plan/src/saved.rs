//! The plan itself, and saved plans (`mlib plan -o plan.json`, `mlib apply plan.json`).
//!
//! A saved plan is an approval: it is applied only if nothing it was computed from changed
//! since. Like Terraform's state lineage + serial, the registry carries a random lineage and
//! a serial bumped by every link change; together with the digests of the manifest and the
//! lock they identify the exact inputs of the plan.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlib_manifest::lock::LockedModel;

use serde::{Deserialize, Serialize};

use crate::action::{Action, Bookkeeping, Drift, Summary};
use crate::error::PlanError;

pub const FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub manifest: PathBuf,
    pub manifest_digest: String,
    pub lock_digest: Option<String>,
    pub registry_lineage: String,
    pub registry_serial: u64,
    pub adopt: bool,
    pub drift: Vec<Drift>,
    pub actions: Vec<Action>,
    pub bookkeeping: Vec<Bookkeeping>,
    pub warnings: Vec<String>,
    pub summary: Summary,
    /// Remote models resolved over the network while planning (not yet in the lock file):
    /// applying this plan fetches exactly these, never a newer commit.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved: BTreeMap<String, LockedModel>,
}

impl Plan {
    pub fn has_changes(&self) -> bool {
        self.summary.changes() > 0
    }

    /// Actions in the order a person reads them and apply runs them: fetches, links, relinks,
    /// unlinks, adoptions, then conflicts; each group by target.
    pub(crate) fn sort(&mut self) {
        fn rank(action: &Action) -> u8 {
            match action {
                Action::Fetch(_) => 0,
                Action::Link(_) => 1,
                Action::Relink(_) => 2,
                Action::Unlink(_) => 3,
                Action::Adopt(_) => 4,
                Action::Conflict(_) => 5,
            }
        }
        fn target(action: &Action) -> Option<&Path> {
            match action {
                Action::Fetch(_) => None,
                Action::Link(l) | Action::Relink(l) => Some(&l.target),
                Action::Adopt(a) => Some(&a.link.target),
                Action::Unlink(u) => Some(&u.target),
                Action::Conflict(c) => Some(&c.target),
            }
        }
        self.actions.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| target(a).cmp(&target(b)))
                .then_with(|| a.model().cmp(b.model()))
        });
        self.drift.sort_by(|a, b| a.target.cmp(&b.target));
    }

    pub fn save(&self, path: &Path) -> Result<(), PlanError> {
        let json = serde_json::to_string_pretty(self).expect("plans serialize");
        let tmp = path.with_extension("json.tmp");
        fs_err::write(&tmp, json + "\n").map_err(PlanError::io_plain)?;
        fs_err::rename(&tmp, path).map_err(PlanError::io_plain)?;
        Ok(())
    }

    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = fs_err::read_to_string(path).map_err(PlanError::io_plain)?;
        let plan: Plan = serde_json::from_str(&text).map_err(|err| PlanError::BadPlanFile {
            path: path.to_path_buf(),
            reason: err.to_string(),
        })?;
        if plan.format != FORMAT {
            return Err(PlanError::BadPlanFile {
                path: path.to_path_buf(),
                reason: format!(
                    "format {} is not supported (this mlib writes {FORMAT})",
                    plan.format
                ),
            });
        }
        Ok(plan)
    }

    /// Refuses a saved plan whose inputs changed: `fresh` is the plan computed now.
    pub fn check_still_valid(&self, fresh: &Plan) -> Result<(), PlanError> {
        let stale = |why: String| Err(PlanError::StalePlan { why });
        if self.manifest != fresh.manifest {
            return stale(format!(
                "it was made for {}, not {}",
                self.manifest.display(),
                fresh.manifest.display()
            ));
        }
        if self.manifest_digest != fresh.manifest_digest {
            return stale("the manifest changed since the plan was made".into());
        }
        if self.lock_digest != fresh.lock_digest {
            return stale("the lock file changed since the plan was made".into());
        }
        // A plan made before any registry existed carries no lineage: it still applies to the
        // registry apply just created, as long as nothing was recorded in it yet.
        let fresh_registry = self.registry_lineage.is_empty() && fresh.registry_serial == 0;
        if !fresh_registry && self.registry_lineage != fresh.registry_lineage {
            return stale("the link registry was recreated since the plan was made".into());
        }
        if !fresh_registry && self.registry_serial != fresh.registry_serial {
            return stale(format!(
                "the link registry changed since the plan was made (serial {} → {})",
                self.registry_serial, fresh.registry_serial
            ));
        }
        if self.actions != fresh.actions {
            return stale("the files on disk changed since the plan was made".into());
        }
        Ok(())
    }
}
