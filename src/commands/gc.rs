//! `mlib gc`: delete stored models no environment needs.

use anyhow::Result;
use mlib_plan::upkeep::{self, Inventory};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::render;
use crate::settings::{ApprovalSettings, GcSettings, GlobalSettings};

pub fn run(global: &GlobalSettings, args: &GcSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    super::approval::check_may_delete(&ctx, printer, "gc")?;
    let dry_run = args.approval == ApprovalSettings::DryRun;
    let registry = if dry_run {
        ctx.open_registry_for_plan()?.0
    } else {
        ctx.open_registry()?
    };
    let store = super::upkeep::physical_store(&ctx);
    // Decided under the lock when deleting: an apply may record new links meanwhile.
    let _lock = if dry_run {
        None
    } else {
        Some(super::approval::lock(&ctx, printer)?)
    };
    let inventory = super::upkeep::inventory(&ctx, &registry)?;
    let garbage = upkeep::collectable(&inventory, args.min_age, jiff::Timestamp::now());
    let foreign = inventory.foreign(&store)?;
    // What deleting gives back: a file with another name (hard linked from the HuggingFace
    // cache, say) keeps its bytes there.
    let unshared: Vec<u64> = garbage.iter().map(|m| m.unshared_size(&store)).collect();
    let freeable: u64 = unshared.iter().sum();
    let foreign_bytes: u64 = foreign.iter().map(|(_, size)| size).sum();
    report_orphaned_environments(&inventory, printer);
    if printer.json {
        for (model, frees) in garbage.iter().zip(&unshared) {
            printer.event(
                json!({"type": "gc_model", "id": model.id, "size": model.size, "frees": frees}),
            );
        }
        for (path, size) in &foreign {
            printer.event(json!({"type": "gc_foreign", "path": path, "size": size, "deleted": args.include_foreign && !dry_run}));
        }
    } else {
        for (model, frees) in garbage.iter().zip(&unshared) {
            let shared = if *frees == model.size {
                String::new()
            } else if *frees == 0 {
                ", hard linked elsewhere too: frees nothing".to_owned()
            } else {
                format!(
                    ", {} of it hard linked elsewhere too: frees {}",
                    render::bytes(model.size - frees),
                    render::bytes(*frees)
                )
            };
            printer.info(format!(
                "  {} {} ({}{shared})",
                printer.paint_remove("-"),
                model.id,
                render::bytes(model.size)
            ));
        }
        for (path, size) in &foreign {
            let what = if args.include_foreign {
                "not put there by mlib"
            } else {
                "not put there by mlib: kept (--include-foreign deletes it)"
            };
            let sign = if args.include_foreign { "-" } else { "?" };
            printer.info(format!(
                "  {} {} ({}, {what})",
                printer.paint_remove(sign),
                path.display(),
                render::bytes(*size)
            ));
        }
    }
    let total = freeable
        + if args.include_foreign {
            foreign_bytes
        } else {
            0
        };
    let nothing = garbage.is_empty() && (foreign.is_empty() || !args.include_foreign);
    if nothing {
        printer.info(format!(
            "Nothing to collect: every stored model is used{}.",
            if args.min_age.is_zero() {
                String::new()
            } else {
                " or newer than --min-age".to_string()
            }
        ));
        return Ok(Status::Success);
    }
    printer.info(format!(
        "gc would delete {} model{}{} and free {}.",
        garbage.len(),
        if garbage.len() == 1 { "" } else { "s" },
        if args.include_foreign && !foreign.is_empty() {
            format!(" and {} file(s) mlib did not put there", foreign.len())
        } else {
            String::new()
        },
        render::bytes(total)
    ));
    if !super::approval::approved(printer, args.approval, "gc")? {
        return Ok(Status::Success);
    }
    let mut freed = 0;
    for model in &garbage {
        freed += upkeep::delete_model(&store, &registry, model)?;
    }
    if args.include_foreign {
        for (path, size) in &foreign {
            mlib_fs::temp::remove_tree(path)
                .map_err(|e| anyhow::anyhow!("cannot delete {}: {e}", path.display()))?;
            freed += size;
        }
    }
    if printer.json {
        printer.event(json!({"type": "gc_summary", "deleted": garbage.len(), "freed": freed}));
    }
    printer.info(printer.paint_bold(&format!("Freed {}.", render::bytes(freed))));
    Ok(Status::Success)
}

/// Environments whose manifest is gone keep their linked models: say how to release them.
pub fn report_orphaned_environments(inventory: &Inventory, printer: &Printer) {
    for env_use in inventory.envs.iter().filter(|e| !e.manifest_exists) {
        let linked: u64 = inventory
            .models
            .iter()
            .filter(|m| m.links.iter().any(|l| l.env == env_use.env.id))
            .map(|m| m.size)
            .sum();
        let env = &env_use.env;
        let who = if env.label == env.manifest {
            env.label.clone()
        } else {
            format!("{} ({})", env.label, env.manifest)
        };
        printer.note(format!(
            "the manifest of {who} is gone; its links keep {} in use: `mlib env forget {}` releases them",
            render::bytes(linked),
            env.name.as_deref().unwrap_or(&env.manifest)
        ));
    }
}
