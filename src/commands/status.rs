//! `mlib status`: per app, what is linked, missing, broken, drifted or in conflict; then the
//! store: models not stored yet, changed files, models nothing uses, the quarantine and what
//! killed runs left. Exits 1 when anything needs attention (see `exit.rs`).

use std::collections::BTreeMap;

use anyhow::Result;
use mlib_plan::upkeep::{self, LinkState};
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
    broken: Vec<String>,
    drifted: Vec<String>,
    conflicts: Vec<String>,
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
                Action::Conflict(_) => status.conflicts.push(line),
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
            let shown = targets.show(&record.app, &record.target);
            match upkeep::link_state(&record) {
                LinkState::Intact => status.linked.push(shown),
                LinkState::Broken => status.broken.push(format!("{shown} (points at nothing)")),
                state => status
                    .drifted
                    .push(format!("{shown} ({})", state.describe())),
            }
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
        healthy &= status.missing.is_empty()
            && status.broken.is_empty()
            && status.drifted.is_empty()
            && status.conflicts.is_empty();
        if printer.json {
            printer.event(json!({"type": "app_status", "app": name, "linked": status.linked, "missing": status.missing, "broken": status.broken, "drifted": status.drifted, "conflicts": status.conflicts}));
            continue;
        }
        let mut counts = vec![
            format!("{} linked", status.linked.len()),
            format!("{} missing", status.missing.len()),
        ];
        if !status.broken.is_empty() {
            counts.push(format!("{} broken", status.broken.len()));
        }
        counts.push(format!("{} drifted", status.drifted.len()));
        if !status.conflicts.is_empty() {
            counts.push(format!("{} in conflict", status.conflicts.len()));
        }
        printer.info(format!(
            "{}: {}",
            printer.paint_bold(name),
            counts.join(", ")
        ));
        for line in &status.linked {
            printer.detail(format!("  ok        {line}"));
        }
        for line in &status.missing {
            printer.info(format!("  missing   {line}"));
        }
        for line in &status.broken {
            printer.info(format!("  broken    {line}"));
        }
        for line in &status.drifted {
            printer.info(format!("  drifted   {line}"));
        }
        for line in &status.conflicts {
            printer.info(format!("  conflict  {line}"));
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
    healthy &= store_upkeep(&ctx, &registry, printer)?;
    if !healthy && !printer.json {
        printer.info("Run `mlib plan` to see what apply would change, `mlib doctor` for the rest.");
    }
    Ok(if healthy {
        Status::Success
    } else {
        Status::Failure
    })
}

/// The store beyond this manifest: models nothing uses (information: `mlib gc` frees them),
/// the quarantine, leftovers of killed runs, environments whose manifest is gone. Returns
/// whether nothing there needs attention.
fn store_upkeep(
    ctx: &Context,
    registry: &mlib_registry::Registry,
    printer: &Printer,
) -> Result<bool> {
    let inventory = super::upkeep::inventory(ctx, registry)?;
    let unused: Vec<_> = inventory.models.iter().filter(|m| m.unused()).collect();
    let unused_bytes: u64 = unused.iter().map(|m| m.size).sum();
    let quarantine = ctx.store.quarantine_dir();
    let (quarantined, quarantined_bytes) = upkeep::doctor::count_files(&quarantine);
    let leftovers = staging_leftovers(&ctx.store);
    let gone: Vec<_> = inventory
        .envs
        .iter()
        .filter(|e| !e.manifest_exists)
        .collect();
    if printer.json {
        printer.event(json!({
            "type": "store_upkeep",
            "unused": unused.iter().map(|m| json!({"id": m.id, "size": m.size})).collect::<Vec<_>>(),
            "unused_bytes": unused_bytes,
            "quarantined_files": quarantined,
            "quarantined_bytes": quarantined_bytes,
            "staging_leftovers": leftovers,
            "environments_without_manifest": gone.iter().map(|e| &e.env.label).collect::<Vec<_>>(),
        }));
    } else {
        if !unused.is_empty() {
            printer.info(format!(
                "  unused   {} model{} ({}) no environment uses: `mlib gc` frees them",
                unused.len(),
                if unused.len() == 1 { "" } else { "s" },
                crate::render::bytes(unused_bytes)
            ));
        }
        if quarantined > 0 {
            printer.info(format!(
                "  quarantine  {quarantined} file(s) ({}) in {}: check them and delete by hand",
                crate::render::bytes(quarantined_bytes),
                quarantine.display()
            ));
        }
        if leftovers > 0 {
            printer.info(format!(
                "  leftovers   {leftovers} unfinished download(s) or files of killed runs in {}: `mlib doctor`",
                ctx.store.mlib_dir().join("tmp").display()
            ));
        }
        super::gc::report_orphaned_environments(&inventory, printer);
    }
    Ok(quarantined == 0 && leftovers == 0 && gone.is_empty())
}

/// Entries of the staging folder: partial downloads and work of killed runs (a running
/// apply's own work is there too, but status is not run while applying).
fn staging_leftovers(store: &mlib_store::Store) -> usize {
    std::fs::read_dir(store.mlib_dir().join("tmp"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|item| {
            let name = item.file_name();
            match mlib_fs::temp::TempName::parse(&name) {
                Some(temp) => temp.is_stale(),
                None => name.to_string_lossy().ends_with(".part"),
            }
        })
        .count()
}
