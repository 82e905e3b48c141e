//! The plan itself, and saved plans (`mlib plan -o plan.json`, `mlib apply plan.json`).
//!
//! A saved plan is an approval: it is applied only if nothing it was computed from changed
//! since. Like Terraform's state lineage + serial, the registry carries a random lineage and
//! a serial bumped by every link change; together with the digests of the manifest and the
//! lock they identify the exact inputs of the plan.
//!
//! A saved plan also carries a checksum of its own content, so a plan edited by hand (one
//! action's target changed, say) is refused as modified rather than applied or reported as
//! stale. It guards against edits, not against an attacker: anyone can recompute it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use mlib_manifest::lock::LockedModel;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::action::{Action, Bookkeeping, Drift, Skip, Summary};
use crate::destination::PlanDestination;
use crate::error::PlanError;

/// The saved plan's format. 2: a `checksum` of the content ([`checksum`]).
pub const FORMAT: u32 = 2;

/// The field of a saved plan that holds [`checksum`] of the rest.
const CHECKSUM: &str = "checksum";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub format: u32,
    pub manifest: PathBuf,
    /// The environment the plan is for (its registry key).
    pub environment: String,
    pub manifest_digest: String,
    pub lock_digest: Option<String>,
    pub registry_lineage: String,
    pub registry_serial: u64,
    pub adopt: bool,
    pub drift: Vec<Drift>,
    pub actions: Vec<Action>,
    pub bookkeeping: Vec<Bookkeeping>,
    pub warnings: Vec<String>,
    /// Models not linked into an app because its version is not one their `requires:`
    /// allows, by app then model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skip>,
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
                Action::Fetch(_) | Action::Rename(_) => 0,
                Action::Link(_) => 1,
                Action::Relink(_) => 2,
                Action::Unlink(_) => 3,
                Action::Adopt(_) => 4,
                Action::Conflict(_) => 5,
            }
        }
        fn target(action: &Action) -> Option<&Path> {
            match action {
                Action::Fetch(_) | Action::Rename(_) => None,
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
        self.skipped
            .sort_by(|a, b| (&a.app, &a.model).cmp(&(&b.app, &b.model)));
    }

    /// The plan as `mlib plan -o FILE` saves it: pretty JSON with a `checksum` of the rest of
    /// its content, right after `format`, and a final newline.
    pub fn to_saved_json(&self) -> Result<String, PlanError> {
        let fields = match serde_json::to_value(self).map_err(PlanError::Serialize)? {
            Value::Object(fields) => fields,
            _ => {
                let err = serde::ser::Error::custom("a plan serializes to a JSON object");
                return Err(PlanError::Serialize(err));
            }
        };
        let sum = checksum(&fields).map_err(PlanError::Serialize)?;
        let mut saved = Map::with_capacity(fields.len() + 1);
        for (key, value) in fields {
            let after_format = key == "format";
            saved.insert(key, value);
            if after_format {
                saved.insert(CHECKSUM.into(), Value::String(sum.clone()));
            }
        }
        let json = serde_json::to_string_pretty(&saved).map_err(PlanError::Serialize)?;
        Ok(json + "\n")
    }

    /// Writes [`Plan::to_saved_json`] to `path` as a new regular file, atomically (a reader
    /// sees the old file or the new one), if `destination` allows replacing what is there
    /// ([`PlanDestination::check`], checked again here, just before writing).
    pub fn save(&self, path: &Path, destination: &PlanDestination<'_>) -> Result<(), PlanError> {
        let json = self.to_saved_json()?;
        destination.check(path)?;
        mlib_fs::write_atomic(path, json.as_bytes()).map_err(PlanError::io_plain)
    }

    /// Reads a plan saved by [`Plan::save`], refusing one of another format or one whose
    /// content no longer matches its checksum (edited by hand).
    pub fn load(path: &Path) -> Result<Plan, PlanError> {
        let text = fs_err::read_to_string(path).map_err(PlanError::io_plain)?;
        Plan::from_saved_json(&text, path)
    }

    /// [`Plan::load`] of `text`, the contents of `path`.
    pub fn from_saved_json(text: &str, path: &Path) -> Result<Plan, PlanError> {
        let bad = |reason: String| PlanError::BadPlanFile {
            path: path.to_path_buf(),
            reason,
        };
        let value: Value = serde_json::from_str(text).map_err(|err| bad(err.to_string()))?;
        let Value::Object(mut fields) = value else {
            return Err(bad("it is not a JSON object".into()));
        };
        // The format first: an older plan has no checksum, and its format says why.
        if let Some(format) = fields.get("format").and_then(Value::as_u64)
            && format != u64::from(FORMAT)
        {
            return Err(bad(format!(
                "format {format} is not supported (this mlib writes {FORMAT}): make a new plan \
                 with `mlib plan -o FILE`"
            )));
        }
        let recorded = fields.remove(CHECKSUM);
        if fields.contains_key("format") {
            let actual = checksum(&fields).map_err(|err| bad(err.to_string()))?;
            let matches = recorded
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|recorded| recorded == actual);
            if !matches {
                return Err(PlanError::ModifiedPlan {
                    path: path.to_path_buf(),
                });
            }
        }
        serde_json::from_value(Value::Object(fields)).map_err(|err| bad(err.to_string()))
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
        if self.environment != fresh.environment {
            return stale(
                "it was made for another environment of this manifest (other values of the \
                 variables in `store:` or the apps' `root:`, or another `--env`)"
                    .into(),
            );
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

/// sha256 (lowercase hex) of a saved plan's fields (without the checksum), as canonical JSON:
/// compact, object keys sorted by their bytes, strings escaped as `serde_json` escapes them.
/// So re-indenting a plan or reordering its keys is not a modification; changing, adding or
/// removing a value is.
fn checksum(fields: &Map<String, Value>) -> Result<String, serde_json::Error> {
    let mut bytes = Vec::new();
    write_object(fields, &mut bytes)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

fn write_object(fields: &Map<String, Value>, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    let mut entries: Vec<(&String, &Value)> = fields.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (key, value)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        serde_json::to_writer(&mut *out, key)?;
        out.push(b':');
        write_value(value, out)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_value(value: &Value, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    match value {
        Value::Object(fields) => write_object(fields, out),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out)?;
            }
            out.push(b']');
            Ok(())
        }
        scalar => serde_json::to_writer(&mut *out, scalar),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::action::{Fetch, FetchReason, Link, LinkHow};

    fn plan() -> Plan {
        let actions = vec![
            Action::Fetch(Fetch {
                model: "sdxl-base".into(),
                source: "./files/sdxl.safetensors".into(),
                reason: FetchReason::Missing,
                bytes: Some(560),
                quarantine: Vec::new(),
            }),
            Action::Link(Link {
                model: "sdxl-base".into(),
                app: "comfyui".into(),
                target: "/apps/ComfyUI/models/checkpoints/sdxl.safetensors".into(),
                source: "/store/checkpoints/sdxl/sdxl-base/sdxl.safetensors".into(),
                how: LinkHow::RelativeSymlink,
                replaces: None,
                moved_from: None,
                heal: false,
                previous: None,
                farm: false,
                clear: None,
                text: None,
            }),
        ];
        Plan {
            format: FORMAT,
            manifest: "/work/models.yaml".into(),
            environment: "auto:0123".into(),
            manifest_digest: "ab".repeat(32),
            lock_digest: None,
            registry_lineage: "lineage".into(),
            registry_serial: 7,
            adopt: false,
            drift: Vec::new(),
            summary: Summary::of(&actions),
            actions,
            bookkeeping: Vec::new(),
            warnings: vec!["a warning with \"quotes\" and é".into()],
            skipped: Vec::new(),
            resolved: BTreeMap::new(),
        }
    }

    fn load(text: &str) -> Result<Plan, PlanError> {
        Plan::from_saved_json(text, Path::new("plan.json"))
    }

    fn fields(text: &str) -> Map<String, Value> {
        match serde_json::from_str(text).unwrap() {
            Value::Object(fields) => fields,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn a_saved_plan_loads_as_the_same_plan() {
        let json = plan().to_saved_json().unwrap();
        assert_eq!(load(&json).unwrap(), plan());
        let keys: Vec<String> = fields(&json).keys().take(2).cloned().collect();
        assert_eq!(keys, ["format", "checksum"], "the checksum is near the top");
    }

    #[test]
    fn the_checksum_is_the_sha256_of_the_canonical_content() {
        let mut fields = fields(&plan().to_saved_json().unwrap());
        let recorded = fields.remove(CHECKSUM).unwrap();
        // Canonical JSON computed another way: serde_json's own key sort, compact.
        let mut content = Value::Object(fields);
        content.sort_all_objects();
        let canonical = serde_json::to_string(&content).unwrap();
        assert!(
            canonical.starts_with(r#"{"actions":[{"action":"fetch","bytes":560,"model":"#),
            "{canonical}"
        );
        let expected = hex::encode(Sha256::digest(canonical.as_bytes()));
        assert_eq!(recorded, Value::String(expected));
    }

    #[test]
    fn layout_and_key_order_are_not_modifications() {
        let fields = fields(&plan().to_saved_json().unwrap());
        let compact = serde_json::to_string(&fields).unwrap();
        assert_eq!(load(&compact).unwrap(), plan());
        let reversed: Map<String, Value> = fields.into_iter().rev().collect();
        let reversed = serde_json::to_string_pretty(&reversed).unwrap();
        assert!(reversed.starts_with("{\n  \"summary\""), "{reversed}");
        assert_eq!(load(&reversed).unwrap(), plan());
    }

    #[test]
    fn an_edited_value_is_a_modification() {
        let json = plan().to_saved_json().unwrap();
        let edited = json.replace(
            "models/checkpoints/sdxl.safetensors",
            "models/loras/x.safetensors",
        );
        assert_ne!(edited, json);
        let err = load(&edited).unwrap_err();
        assert!(matches!(err, PlanError::ModifiedPlan { .. }), "{err}");
        assert_eq!(
            err.to_string(),
            "plan.json was modified after `mlib plan` saved it (checksum mismatch): make a new \
             plan with `mlib plan -o FILE`"
        );
    }

    #[test]
    fn an_added_removed_or_edited_checksum_field_is_a_modification() {
        let json = plan().to_saved_json().unwrap();
        let mut added = fields(&json);
        added.insert("note".into(), Value::String("mine".into()));
        let mut removed = fields(&json);
        removed.remove("warnings");
        let mut no_checksum = fields(&json);
        no_checksum.remove(CHECKSUM);
        let mut bad_checksum = fields(&json);
        bad_checksum.insert(CHECKSUM.into(), Value::String("0".repeat(64)));
        for fields in [added, removed, no_checksum, bad_checksum] {
            let text = serde_json::to_string(&fields).unwrap();
            let err = load(&text).unwrap_err();
            assert!(
                matches!(err, PlanError::ModifiedPlan { .. }),
                "{err}: {text}"
            );
        }
    }

    #[test]
    fn an_older_format_is_refused_as_such() {
        // What mlib 0.1 wrote: format 1, no checksum.
        let mut fields = fields(&plan().to_saved_json().unwrap());
        fields.remove(CHECKSUM);
        fields.insert("format".into(), Value::from(1));
        let err = load(&serde_json::to_string(&fields).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "plan.json is not a usable plan file: format 1 is not supported (this mlib writes \
             2): make a new plan with `mlib plan -o FILE`"
        );
    }

    fn stale(saved: &Plan, fresh: &Plan) -> String {
        match saved.check_still_valid(fresh) {
            Err(PlanError::StalePlan { why }) => why,
            other => panic!("not refused as stale: {other:?}"),
        }
    }

    #[test]
    fn a_saved_plan_is_refused_for_each_input_that_changed() {
        let saved = plan();
        saved
            .check_still_valid(&plan())
            .expect("the same inputs: applies");
        let changed = |edit: fn(&mut Plan)| {
            let mut fresh = plan();
            edit(&mut fresh);
            fresh
        };
        for (fresh, why) in [
            (
                changed(|p| p.manifest = "/work/other.yaml".into()),
                "it was made for /work/models.yaml, not /work/other.yaml".to_string(),
            ),
            (
                changed(|p| p.environment = "name:bob".into()),
                "it was made for another environment of this manifest (other values of the \
                 variables in `store:` or the apps' `root:`, or another `--env`)"
                    .into(),
            ),
            (
                changed(|p| p.manifest_digest = "cd".repeat(32)),
                "the manifest changed since the plan was made".into(),
            ),
            (
                changed(|p| p.lock_digest = Some("ef".repeat(32))),
                "the lock file changed since the plan was made".into(),
            ),
            (
                changed(|p| p.registry_lineage = "another".into()),
                "the link registry was recreated since the plan was made".into(),
            ),
            (
                changed(|p| p.registry_serial = 8),
                "the link registry changed since the plan was made (serial 7 → 8)".into(),
            ),
            (
                changed(|p| {
                    let Action::Link(link) = &mut p.actions[1] else {
                        unreachable!()
                    };
                    link.how = LinkHow::Hardlink;
                }),
                "the files on disk changed since the plan was made".into(),
            ),
        ] {
            assert_eq!(stale(&saved, &fresh), why);
            let err = saved.check_still_valid(&fresh).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("Saved plan is stale: {why}. Run `mlib plan -o FILE` again and review it.")
            );
        }
        // The first reason found is the one given: the manifest before everything else.
        let mut fresh = changed(|p| p.registry_serial = 9);
        fresh.manifest_digest = "00".repeat(32);
        assert_eq!(
            stale(&saved, &fresh),
            "the manifest changed since the plan was made"
        );
        // What is not an input of the plan does not make it stale.
        let fresh = changed(|p| {
            p.warnings.clear();
            p.drift.clear();
            p.bookkeeping.push(Bookkeeping::Claim { record: 1 });
        });
        saved.check_still_valid(&fresh).expect("same actions");
    }

    #[test]
    fn a_plan_made_before_the_registry_existed_applies_to_the_one_apply_creates() {
        let mut saved = plan();
        saved.registry_lineage = String::new();
        saved.registry_serial = 0;
        let mut fresh = plan();
        fresh.registry_lineage = "new-lineage".into();
        fresh.registry_serial = 0;
        saved
            .check_still_valid(&fresh)
            .expect("a fresh registry, nothing recorded yet");
        // Once something was recorded in it, the plan no longer describes it.
        fresh.registry_serial = 1;
        assert_eq!(
            stale(&saved, &fresh),
            "the link registry was recreated since the plan was made"
        );
        // And a plan that knew a registry is not applied to a fresh one.
        let saved = plan();
        fresh.registry_serial = 0;
        assert_eq!(
            stale(&saved, &fresh),
            "the link registry was recreated since the plan was made"
        );
    }

    #[test]
    fn what_is_not_a_plan_is_a_bad_plan_file() {
        for (text, reason) in [
            ("", "EOF while parsing a value at line 1 column 0"),
            ("not json", "expected ident at line 1 column 2"),
            ("[1]", "it is not a JSON object"),
            ("{}", "missing field `format`"),
        ] {
            let err = load(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("plan.json is not a usable plan file: {reason}"),
                "{text:?}"
            );
        }
    }
}
