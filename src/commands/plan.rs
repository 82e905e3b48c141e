//! `mlib plan`: what apply would do, changing nothing.

use std::path::Path;

use anyhow::{Context as _, Result, bail};
use mlib_plan::{Plan, PlanDestination, PlanError};

use crate::context::Context;
use crate::exit::Status;
use crate::prefetch::Purpose;
use crate::printer::Printer;
use crate::render;
use crate::settings::{GlobalSettings, PlanOutput, PlanSettings};

pub fn run(global: &GlobalSettings, args: &PlanSettings, printer: &Printer) -> Result<Status> {
    let output = args.out.as_ref();
    if printer.json && matches!(output, Some(PlanOutput::Stdout)) {
        bail!(
            "--json and -o - would both write to stdout: save the plan to a file with -o FILE, \
             or drop --json to get only the plan's JSON on stdout"
        );
    }
    let (ctx, prefetched) = Context::load_prefetching(global, printer, Some(Purpose::Plan))?;
    // The lock file, existing or not, is never a place for a plan.
    let lock_files = [ctx.manifest.lock_path()];
    let destination = PlanDestination {
        manifest: &ctx.manifest.path,
        lock_files: &lock_files,
        force: args.force,
    };
    // Before planning (which may take a while, and the network): a refusal costs nothing.
    if let Some(PlanOutput::File(path)) = output {
        destination.check(path)?;
    }
    let (registry, existed, observed) = match prefetched {
        Some(p) => {
            ctx.check_bound(&p.registry)?;
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
        adopt: args.adopt,
        remote: args.remote.clone(),
        jobs: 1,
        saved: None,
        progress: Some(&progress),
    };
    let planned = super::planning::compute(&ctx, &registry, existed, &request, observed)?;
    let mut targets = ctx.targets();
    targets.fetch_from = super::planning::fetch_notes(&planned, args.check_mirrors, &progress);
    targets.reuse = super::planning::cache_reuse(&planned, ctx.store.root());
    let plan = planned.plan;
    if printer.json {
        render::plan_json(printer, &targets, &plan);
    } else {
        render::plan_human(printer, &targets, &plan);
    }
    match output {
        Some(PlanOutput::File(path)) => {
            save(&plan, path, &destination)?;
            printer.info(format!(
                "\nSaved the plan to {}. Apply exactly it with `mlib apply {}`.",
                path.display(),
                path.display()
            ));
        }
        Some(PlanOutput::Stdout) => {
            printer
                .data(&plan.to_saved_json()?)
                .context("cannot write the plan to stdout")?;
            printer.info(
                "\nWrote the plan to stdout. Save it to a file to apply it with `mlib apply FILE`.",
            );
        }
        None => {}
    }
    if let Some(workflow) = &args.workflow
        && !super::workflow::check(&ctx, workflow, printer)?
    {
        return Ok(Status::Failure);
    }
    // A conflict means the apps do not match the manifest either: CI should notice.
    let pending = plan.has_changes() || plan.summary.conflict > 0;
    Ok(if args.detailed_exitcode && pending {
        Status::Changes
    } else {
        Status::Success
    })
}

/// Saves `plan` to `path`; a refusal already names the path, any other error is given it.
fn save(plan: &Plan, path: &Path, destination: &PlanDestination<'_>) -> Result<()> {
    match plan.save(path, destination) {
        Ok(()) => Ok(()),
        Err(err @ PlanError::Destination { .. }) => Err(err.into()),
        Err(err) => Err(err).with_context(|| format!("cannot save the plan to {}", path.display())),
    }
}
