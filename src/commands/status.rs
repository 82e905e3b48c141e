//! `mlib status`: per app, what is linked, missing and drifted.

use std::collections::BTreeMap;

use anyhow::Result;
use mlib_plan::{Action, Ownership};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::render::Targets;
use crate::settings::GlobalSettings;

#[derive(Default)]
struct AppStatus {
    linked: Vec<String>,
    missing: Vec<String>,
    drifted: Vec<String>,
}

pub fn run(global: &GlobalSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let (registry, existed) = ctx.open_registry_for_plan()?;
    // Status never touches the network: remote models are judged by the lock alone.
    let plan = super::planning::compute(
        &ctx,
        &registry,
        existed,
        &super::planning::PlanRequest::lock_only(),
        None,
    )?
    .plan;
    let targets = Targets::new(ctx.app_roots(), &ctx.manifest.dir);

    let mut apps: BTreeMap<&str, AppStatus> = ctx
        .manifest
        .apps
        .keys()
        .map(|a| (a.as_str(), AppStatus::default()))
        .collect();
    // What drifted at a path the plan acts on is said once, on the action's line.
    let drifted_at: std::collections::HashMap<&std::path::Path, &str> = plan
        .drift
        .iter()
        .filter(|d| !d.is_store())
        .map(|d| (d.target.as_path(), d.what.as_str()))
        .collect();
    let mut pending = std::collections::HashSet::new();
    for action in &plan.actions {
        let (app, target, line) = match action {
            Action::Link(l) => (
                &l.app,
                &l.target,
                format!(
                    "{} ({})",
                    targets.show(&l.app, &l.target),
                    drifted_at.get(l.target.as_path()).unwrap_or(&"not linked")
                ),
            ),
            Action::Relink(l) if l.heal => (
                &l.app,
                &l.target,
                format!(
                    "{} was modified through this hard link (apply makes it again)",
                    targets.show(&l.app, &l.target)
                ),
            ),
            Action::Relink(l) => (
                &l.app,
                &l.target,
                format!(
                    "{} (points at an old location)",
                    targets.show(&l.app, &l.target)
                ),
            ),
            Action::Conflict(c) => (
                &c.app,
                &c.target,
                format!("{}: {}", targets.show(&c.app, &c.target), c.reason),
            ),
            Action::Adopt(a) => (
                &a.link.app,
                &a.link.target,
                format!(
                    "{} (identical file, not a link yet)",
                    targets.show(&a.link.app, &a.link.target)
                ),
            ),
            Action::Fetch(_) | Action::Rename(_) | Action::Unlink(_) => continue,
        };
        pending.insert(target.clone());
        if let Some(status) = apps.get_mut(app.as_str()) {
            match action {
                Action::Link(_) => status.missing.push(line),
                _ => status.drifted.push(line),
            }
        }
    }
    let mut store_drift = Vec::new();
    for drift in &plan.drift {
        if drift.is_store() {
            store_drift.push(drift.what.clone());
            continue;
        }
        if pending.contains(&drift.target) {
            continue;
        }
        if let Some(status) = apps.get_mut(drift.app.as_str()) {
            status.drifted.push(format!(
                "{} {}",
                targets.show(&drift.app, &drift.target),
                drift.what
            ));
        }
    }
    let owner = Ownership::resolve(&registry, &ctx.env)?;
    for record in registry.links()?.into_iter().filter(|r| owner.owns(r)) {
        if pending.contains(&record.target) {
            continue;
        }
        if let Some(status) = apps.get_mut(record.app.as_str()) {
            status
                .linked
                .push(targets.show(&record.app, &record.target));
        }
    }

    let to_add: Vec<&str> = plan
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Fetch(f) if f.reason != mlib_plan::FetchReason::Corrupt => {
                Some(f.model.as_str())
            }
            _ => None,
        })
        .collect();
    let mut healthy = to_add.is_empty() && store_drift.is_empty();
    for (name, status) in &apps {
        healthy &= status.missing.is_empty() && status.drifted.is_empty();
        if printer.json {
            printer.event(json!({"type": "app_status", "app": name, "linked": status.linked, "missing": status.missing, "drifted": status.drifted}));
            continue;
        }
        printer.info(format!(
            "{}: {} linked, {} missing, {} drifted",
            printer.paint_bold(name),
            status.linked.len(),
            status.missing.len(),
            status.drifted.len()
        ));
        for line in &status.linked {
            printer.detail(format!("  ok       {line}"));
        }
        for line in &status.missing {
            printer.info(format!("  missing  {line}"));
        }
        for line in &status.drifted {
            printer.info(format!("  drifted  {line}"));
        }
    }
    if printer.json {
        printer.event(json!({
            "type": "store_status",
            "models": ctx.manifest.models.len(),
            "to_add": to_add,
            "changed": store_drift,
        }));
    } else if to_add.is_empty() {
        printer.info(format!(
            "store: all {} models present",
            ctx.manifest.models.len()
        ));
    } else {
        printer.info(format!(
            "store: {} of {} models not stored yet: {}",
            to_add.len(),
            ctx.manifest.models.len(),
            to_add.join(", ")
        ));
    }
    if !printer.json {
        for what in &store_drift {
            printer.info(format!("  changed  {what}"));
        }
    }
    if !healthy && !printer.json {
        printer.info("Run `mlib plan` to see what apply would change.");
    }
    Ok(Status::Success)
}
