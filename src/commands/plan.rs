//! `mlib plan`: what apply would do, changing nothing.

use anyhow::{Context as _, Result};

use crate::cli::{GlobalArgs, PlanArgs};
use crate::context::Context;
use crate::exit::Status;
use crate::prefetch::Purpose;
use crate::printer::Printer;
use crate::render::{self, Targets};

pub fn run(global: &GlobalArgs, args: &PlanArgs, printer: &Printer) -> Result<Status> {
    let (ctx, prefetched) = Context::load_prefetching(global, printer, Some(Purpose::Plan))?;
    let (registry, existed, observed) = match prefetched {
        Some(p) => {
            ctx.bind(&p.registry)?;
            (p.registry, true, Some(p.observed))
        }
        None => {
            let (registry, existed) = ctx.open_registry_for_plan()?;
            (registry, existed, None)
        }
    };
    // Resolving remote models may retry: say so rather than look hung.
    let progress = crate::progress::Progress::new(printer);
    let request = super::planning::PlanRequest {
        adopt: args.adopt.adopt,
        remote: &args.remote,
        jobs: 1,
        saved: None,
        progress: Some(&progress),
        lock_only: false,
    };
    let plan = super::planning::compute(&ctx, &registry, existed, &request, observed)?.plan;
    if printer.json {
        render::plan_json(printer, &plan);
    } else {
        render::plan_human(
            printer,
            &Targets::new(ctx.app_roots(), &ctx.manifest.dir),
            &plan,
        );
    }
    if let Some(out) = &args.out {
        plan.save(out)
            .with_context(|| format!("cannot save the plan to {}", out.display()))?;
        printer.info(format!(
            "\nSaved the plan to {}. Apply exactly it with `mlib apply {}`.",
            out.display(),
            out.display()
        ));
    }
    // A conflict means the apps do not match the manifest either: CI should notice.
    let pending = plan.has_changes() || plan.summary.conflict > 0;
    Ok(if args.detailed_exitcode && pending {
        Status::Changes
    } else {
        Status::Success
    })
}
