//! `mlib doctor [--fix]`: what is wrong with the store, its registry and its links.

use anyhow::Result;
use mlib_plan::upkeep::doctor::{self, Examine};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn run(global: &GlobalSettings, fix: bool, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    if !ctx.store.root().exists() {
        // Every link would look broken, and --fix would remove what relocate can save.
        anyhow::bail!(
            "the store {} does not exist (moved, or on a drive not mounted now?): mount it, or after moving it run `mlib relocate --from OLD --to NEW`; doctor looks at nothing without it",
            ctx.store.root().display()
        );
    }
    let registry = if fix {
        ctx.open_registry()?
    } else {
        ctx.open_registry_for_plan()?.0
    };
    let _lock = if fix {
        Some(super::approval::lock(&ctx, printer)?)
    } else {
        None
    };
    if let Err(err) = registry.integrity_check() {
        printer.error(format!(
            "the registry {} is damaged: {err}. Move it aside and run `mlib scan` to rebuild it from the store.",
            ctx.state.registry_path().display()
        ));
        return Ok(Status::Failure);
    }
    let store = super::upkeep::physical_store(&ctx);
    let inventory = super::upkeep::inventory(&ctx, &registry)?;
    let (findings, verified) = doctor::examine(&Examine {
        store: &store,
        registry: &registry,
        inventory: &inventory,
        app_roots: ctx.app_roots().into_values().collect(),
    })?;
    if fix && !verified.is_empty() {
        // Hashed just now and found intact: later plans need not hash them again.
        registry.index_put_many(&verified)?;
    }
    let mut left = 0;
    for finding in &findings {
        let fixed = fix && doctor::fix(&store, &registry, finding)?;
        left += usize::from(!fixed);
        if printer.json {
            printer.event(json!({
                "type": "finding",
                "kind": finding.kind(),
                "what": finding.describe(),
                "meaning": finding.meaning(),
                "fixable": finding.fixable(),
                "fixed": fixed,
            }));
            continue;
        }
        let mark = if fixed {
            printer.paint_add("fixed")
        } else {
            printer.paint_warn("found")
        };
        printer.info(format!("  {mark}  {}", finding.describe()));
        if !fixed {
            printer.info(format!("         {}", finding.meaning()));
        }
    }
    if printer.json {
        printer.event(json!({"type": "doctor_summary", "findings": findings.len(), "left": left}));
    } else if findings.is_empty() {
        printer.info(format!(
            "No problems found: {} models, {} links.",
            inventory.models.len(),
            inventory
                .models
                .iter()
                .map(|m| m.links.len())
                .sum::<usize>()
                + inventory.elsewhere.len()
        ));
    } else if fix {
        printer.info(printer.paint_bold(&format!(
            "Fixed {} of {} finding(s); {left} left for you (above).",
            findings.len() - left,
            findings.len()
        )));
    } else {
        let fixable = findings.iter().filter(|f| f.fixable()).count();
        printer.info(printer.paint_bold(&format!(
            "{} finding(s); `mlib doctor --fix` repairs {fixable} of them.",
            findings.len()
        )));
    }
    Ok(if left == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}
