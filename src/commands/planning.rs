//! Computing a plan: shared by `plan`, `apply`, `status` and `scan`.

use std::collections::BTreeMap;

use anyhow::Result;
use mlib_fetch::Resolved;
use mlib_manifest::lock::LockedModel;
use mlib_plan::{Plan, PlanInput, PlanOptions};
use mlib_registry::Registry;

use crate::context::{self, Context};
use crate::progress::Progress;
use crate::remote;
use crate::settings::RemoteSettings;

pub struct Planned {
    pub plan: Plan,
    pub resolved: Resolved,
    pub fetcher: mlib_fetch::Fetcher,
}

pub struct PlanRequest<'a> {
    pub adopt: bool,
    /// How remote models are resolved (`RemoteSettings::lock_only` for status and scan).
    pub remote: RemoteSettings,
    pub jobs: usize,
    /// Resolutions a saved plan carries.
    pub saved: Option<&'a BTreeMap<String, LockedModel>>,
    pub progress: Option<&'a Progress>,
}

impl PlanRequest<'_> {
    /// For commands that judge remote models by the lock and the store alone.
    pub fn lock_only() -> PlanRequest<'static> {
        PlanRequest {
            adopt: false,
            remote: RemoteSettings::lock_only(),
            jobs: 1,
            saved: None,
            progress: None,
        }
    }
}

pub fn compute(
    ctx: &Context,
    registry: &Registry,
    registry_existed: bool,
    request: &PlanRequest,
    observed: Option<mlib_plan::Observed>,
) -> Result<Planned> {
    let fetcher = remote::fetcher_for(&ctx.manifest, &request.remote, request.jobs);
    let resolved = remote::resolve(
        &ctx.manifest,
        &fetcher,
        &request.remote,
        request.saved,
        request.progress,
    )?;
    let input = PlanInput {
        manifest: &ctx.manifest,
        env: &ctx.env,
        store: &ctx.store,
        registry,
        remote: &resolved.models,
        lock_digest: context::lock_digest(&ctx.manifest),
        options: PlanOptions {
            adopt: request.adopt,
        },
        store_writable: ctx.state.store_writable,
        hashing: match request.progress {
            Some(progress) => progress,
            None => &mlib_plan::NoHashProgress,
        },
    };
    let mut plan = match observed {
        Some(observed) => mlib_plan::plan_observed(&input, observed)?,
        None => mlib_plan::plan(&input)?,
    };
    if !registry_existed {
        // A throwaway in-memory registry has no identity worth saving in a plan.
        plan.registry_lineage.clear();
    }
    plan.resolved = resolved
        .newly_resolved
        .iter()
        .filter_map(|name| resolved.models.get(name).map(|m| (name.clone(), m.clone())))
        .collect();
    Ok(Planned {
        plan,
        resolved,
        fetcher,
    })
}

/// Where each download of `plan` will come from, as far as the mirrors tell: without
/// `check`, only which mirror is tried first (no request: plan stays offline-capable and
/// fast); with it (`plan --check-mirrors`), HEAD requests say which mirror has every file.
/// Models to fetch whose every file is in the HuggingFace cache, with how apply will most
/// likely take them into the store at `store` (reflinked, hardlinked or copied).
pub fn cache_reuse(
    planned: &Planned,
    store: &std::path::Path,
) -> std::collections::HashMap<String, mlib_store::Transfer> {
    let mut reuse = std::collections::HashMap::new();
    for action in &planned.plan.actions {
        let mlib_plan::Action::Fetch(fetch) = action else {
            continue;
        };
        let Some(locked) = planned.resolved.models.get(&fetch.model) else {
            continue;
        };
        if let Some(how) = planned.fetcher.cache_reuse(locked, store) {
            reuse.insert(fetch.model.clone(), how);
        }
    }
    reuse
}

pub fn fetch_notes(
    planned: &Planned,
    check: bool,
    progress: &Progress,
) -> std::collections::HashMap<String, String> {
    let mirrors = planned.fetcher.mirror_urls();
    let mut notes = std::collections::HashMap::new();
    let Some(first) = mirrors.first() else {
        return notes;
    };
    for action in &planned.plan.actions {
        let mlib_plan::Action::Fetch(fetch) = action else {
            continue;
        };
        let Some(locked) = planned.resolved.models.get(&fetch.model) else {
            continue;
        };
        let note = if !check {
            let more = match mirrors.len() {
                1 => String::new(),
                n => format!(" (then {} more)", n - 1),
            };
            format!("tries mirror {first}{more} first")
        } else {
            match planned.fetcher.mirror_serving(locked, progress) {
                Some(mirror) => format!("from mirror {mirror}"),
                None => "not on the mirrors: from the origin".to_owned(),
            }
        };
        notes.insert(fetch.model.clone(), note);
    }
    notes
}
