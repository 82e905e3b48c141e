//! `mlib du`: what each stored model costs, and who uses it.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use mlib_plan::upkeep::{Inventory, StoredModel};
use serde_json::json;

use crate::cli::DuSort;
use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::render;
use crate::settings::GlobalSettings;

pub fn run(global: &GlobalSettings, sort: DuSort, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let (registry, _) = ctx.open_registry_for_plan()?;
    let inventory = super::upkeep::inventory(&ctx, &registry)?;
    let mut models: Vec<&StoredModel> = inventory.models.iter().collect();
    match sort {
        DuSort::Size => models.sort_by(|a, b| b.size.cmp(&a.size).then(a.id.cmp(&b.id))),
        DuSort::Name => models.sort_by(|a, b| a.id.cmp(&b.id)),
        DuSort::Added => models.sort_by_key(|m| m.meta.added),
    }
    let total: u64 = models.iter().map(|m| m.size).sum();
    let unused: u64 = models.iter().filter(|m| m.unused()).map(|m| m.size).sum();
    if printer.json {
        for model in &models {
            let users = users(&inventory, model);
            printer.event(json!({
                "type": "model",
                "id": model.id,
                "name": model.meta.name,
                "model_type": model.meta.model_type,
                "family": model.meta.family,
                "size": model.size,
                "used_by": users.iter().map(|(env, apps)| json!({"environment": env, "apps": apps})).collect::<Vec<_>>(),
                "declared_by": declared_by(&inventory, model),
                "added": model.meta.added.to_string(),
                "last_applied": last_applied(&inventory, model),
            }));
        }
        printer.event(
            json!({"type": "du_total", "models": models.len(), "size": total, "unused": unused}),
        );
        return Ok(Status::Success);
    }
    if models.is_empty() {
        printer.info(format!(
            "The store {} holds no models yet.",
            ctx.store.root().display()
        ));
        return Ok(Status::Success);
    }
    let width = models.iter().map(|m| m.id.len()).max().unwrap_or(0).min(60);
    printer.info(format!(
        "{:>10}  {:<width$}  {:<10}  USED BY",
        "SIZE", "MODEL", "ADDED"
    ));
    for model in &models {
        let users = users(&inventory, model);
        let used_by = if users.is_empty() {
            let declared = declared_by(&inventory, model);
            if declared.is_empty() {
                "nothing (mlib gc frees it)".to_string()
            } else {
                format!("declared by {}, not linked", declared.join(", "))
            }
        } else {
            users
                .iter()
                .map(|(env, apps)| {
                    format!(
                        "{env} ({})",
                        apps.iter().cloned().collect::<Vec<_>>().join(", ")
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        };
        printer.info(format!(
            "{:>10}  {:<width$}  {:<10}  {used_by}",
            render::bytes(model.size),
            model.id,
            model.meta.added.strftime("%Y-%m-%d").to_string(),
        ));
    }
    printer.info(format!(
        "{} model{}, {} in the store {}; {} used by nothing.",
        models.len(),
        if models.len() == 1 { "" } else { "s" },
        render::bytes(total),
        ctx.store.root().display(),
        render::bytes(unused),
    ));
    Ok(Status::Success)
}

/// Environment label → the apps it links the model into.
fn users(inventory: &Inventory, model: &StoredModel) -> BTreeMap<String, BTreeSet<String>> {
    let mut users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for link in &model.links {
        let env = inventory.env(link.env).map_or_else(
            || format!("environment #{}", link.env),
            |e| e.env.label.clone(),
        );
        users.entry(env).or_default().insert(link.app.clone());
    }
    users
}

fn declared_by(inventory: &Inventory, model: &StoredModel) -> Vec<String> {
    super::upkeep::declarers(inventory, model)
}

/// The last apply of an environment that links or declares the model.
fn last_applied(inventory: &Inventory, model: &StoredModel) -> Option<String> {
    model
        .links
        .iter()
        .map(|l| l.env)
        .chain(model.declared_by.iter().copied())
        .chain(inventory.current.filter(|_| model.declared_here))
        .filter_map(|id| inventory.env(id))
        .filter_map(|e| e.env.applied_at.clone())
        .max()
}
