//! Computing a plan: shared by `plan` and `apply`.

use std::collections::HashMap;

use anyhow::Result;
use mlib_plan::{Plan, PlanInput, PlanOptions};
use mlib_registry::Registry;

use crate::context::{self, Context};

pub fn compute(ctx: &Context, registry: &Registry, registry_existed: bool, adopt: bool) -> Result<Plan> {
    let remote = HashMap::new();
    let input = PlanInput {
        manifest: &ctx.manifest,
        manifest_id: &ctx.manifest_id,
        store: &ctx.store,
        registry,
        remote: &remote,
        lock_digest: context::lock_digest(&ctx.manifest),
        options: PlanOptions { adopt },
    };
    let mut plan = mlib_plan::plan(&input)?;
    if !registry_existed {
        // A throwaway in-memory registry has no identity worth saving in a plan.
        plan.registry_lineage.clear();
    }
    Ok(plan)
}
