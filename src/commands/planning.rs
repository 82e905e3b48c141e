//! Computing a plan: shared by `plan`, `apply`, `status` and `scan`.

use std::collections::BTreeMap;

use anyhow::Result;
use mlib_manifest::lock::LockedModel;
use mlib_plan::{Plan, PlanInput, PlanOptions};
use mlib_registry::Registry;

use crate::cli::RemoteArgs;
use crate::context::{self, Context};
use crate::progress::Progress;
use crate::remote::{self, Resolved};

pub struct Planned {
    pub plan: Plan,
    pub resolved: Resolved,
    pub fetcher: mlib_fetch::Fetcher,
}

pub struct PlanRequest<'a> {
    pub adopt: bool,
    pub remote: &'a RemoteArgs,
    pub jobs: usize,
    /// Resolutions a saved plan carries.
    pub saved: Option<&'a BTreeMap<String, LockedModel>>,
    pub progress: Option<&'a Progress>,
    /// Use only what the lock says about remote models; never resolve over the network.
    pub lock_only: bool,
}

impl PlanRequest<'_> {
    pub fn lock_only(remote: &RemoteArgs) -> PlanRequest<'_> {
        PlanRequest {
            adopt: false,
            remote,
            jobs: 1,
            saved: None,
            progress: None,
            lock_only: true,
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
    let fetcher = remote::fetcher(request.remote, request.jobs);
    let resolved = remote::resolve(
        &ctx.manifest,
        &fetcher,
        request.remote,
        request.saved,
        request.progress,
        request.lock_only,
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
