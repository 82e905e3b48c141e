//! `mlib rm`: a model out of the store, with every registered link to it.

use anyhow::{Result, bail};
use mlib_plan::upkeep::{self, Inventory, Removed, StoredModel};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::render;
use crate::settings::{ApprovalSettings, GlobalSettings, RmSettings};

pub fn run(global: &GlobalSettings, args: &RmSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    if !args.keep_file {
        super::approval::check_may_delete(&ctx, printer, "rm")?;
    }
    let dry_run = args.approval == ApprovalSettings::DryRun;
    let registry = if dry_run {
        ctx.open_registry_for_plan()?.0
    } else {
        ctx.open_registry()?
    };
    let _lock = if dry_run {
        None
    } else {
        Some(super::approval::lock(&ctx, printer)?)
    };
    let inventory = super::upkeep::inventory(&ctx, &registry)?;
    let models = chosen(&inventory, &args.models)?;
    if !args.force {
        refuse_declared(&inventory, &models)?;
    }

    for model in &models {
        for link in &model.links {
            let env = inventory
                .env(link.env)
                .map_or_else(|| format!("#{}", link.env), |e| e.env.label.clone());
            printer.info(format!(
                "  {} unlink {} ({}, {env})",
                printer.paint_remove("-"),
                link.target.display(),
                link.app
            ));
        }
        if !args.keep_file {
            printer.info(format!(
                "  {} delete {} ({})",
                printer.paint_remove("-"),
                model.id,
                render::bytes(model.size)
            ));
        }
    }
    let links: usize = models.iter().map(|m| m.links.len()).sum();
    let bytes: u64 = models.iter().map(|m| m.size).sum();
    printer.info(if args.keep_file {
        format!("rm would remove {links} link(s) and keep the files in the store.")
    } else {
        format!(
            "rm would remove {links} link(s) and delete {} model(s), freeing {}.",
            models.len(),
            render::bytes(bytes)
        )
    });
    if !super::approval::approved(printer, args.approval, "rm")? {
        return Ok(Status::Success);
    }

    let store = super::upkeep::physical_store(&ctx);
    let mut removed_links = 0;
    let mut freed = 0;
    for model in &models {
        let mut kept = 0;
        for link in &model.links {
            match upkeep::remove_link(&registry, link)? {
                Removed::Removed => removed_links += 1,
                Removed::WasGone => {}
                Removed::KeptChanged => {
                    kept += 1;
                    printer.warn(format!(
                        "{} changed since mlib linked it: left in place (it is yours now), no longer registered",
                        link.target.display()
                    ));
                }
            }
        }
        if !args.keep_file {
            freed += upkeep::delete_model(&store, &registry, model)?;
        }
        if printer.json {
            printer.event(json!({
                "type": "removed",
                "id": model.id,
                "links": model.links.len(),
                "kept_changed": kept,
                "deleted": !args.keep_file,
            }));
        }
    }
    printer.info(printer.paint_bold(&if args.keep_file {
        format!("Removed {removed_links} link(s).")
    } else {
        format!(
            "Removed {removed_links} link(s) and {} model(s), freed {}.",
            models.len(),
            render::bytes(freed)
        )
    }));
    Ok(Status::Success)
}

/// The stored models the arguments name; every unknown or ambiguous name is an error.
fn chosen<'i>(inventory: &'i Inventory, names: &[String]) -> Result<Vec<&'i StoredModel>> {
    let mut models: Vec<&StoredModel> = Vec::new();
    let mut problems = Vec::new();
    for name in names {
        match inventory.find(name).as_slice() {
            [] => problems.push(format!(
                "no model `{name}` in the store (`mlib du` lists them)"
            )),
            [one] => {
                if !models.iter().any(|m| m.id == one.id) {
                    models.push(one);
                }
            }
            many => problems.push(format!(
                "`{name}` names {} stored models: {}; give one as type/family/name",
                many.len(),
                many.iter()
                    .map(|m| m.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
    if !problems.is_empty() {
        bail!("{}. Nothing was changed.", problems.join("; "));
    }
    Ok(models)
}

/// Refuses models a manifest still declares: the next apply would fetch them again.
fn refuse_declared(inventory: &Inventory, models: &[&StoredModel]) -> Result<()> {
    let declared: Vec<String> = models
        .iter()
        .filter_map(|model| {
            let by = super::upkeep::declarers(inventory, model);
            (!by.is_empty()).then(|| format!("{} is declared by {}", model.id, by.join(", ")))
        })
        .collect();
    if declared.is_empty() {
        return Ok(());
    }
    bail!(
        "{}. Remove it from those manifests first (their next apply would fetch it again), \
         or pass --force. Nothing was changed.",
        declared.join("; ")
    )
}
