//! `mlib env list`: the environments that own links in the store's registry.

use anyhow::Result;
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn list(global: &GlobalSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let (registry, _) = ctx.open_registry_for_plan()?;
    let counts = registry.link_counts()?;
    let envs = registry.environments()?;
    if printer.json {
        for env in &envs {
            printer.event(json!({
                "type": "environment",
                "key": env.key,
                "name": env.name,
                "label": env.label,
                "manifest": env.manifest,
                "apps": env.apps,
                "applied_at": env.applied_at,
                "links": counts.get(&env.id).copied().unwrap_or(0),
                "legacy": env.is_legacy(),
                "current": env.key == ctx.env.key,
            }));
        }
        return Ok(Status::Success);
    }
    if envs.is_empty() {
        printer.info(format!(
            "No environment has been applied to the store {} yet.",
            ctx.store.root().display()
        ));
        return Ok(Status::Success);
    }
    printer.info(format!(
        "Environments of the store {} (registry {}):",
        ctx.store.root().display(),
        ctx.state.registry_path().display()
    ));
    for env in &envs {
        let marker = if env.key == ctx.env.key { "*" } else { " " };
        let title = match &env.name {
            Some(_) => format!("{} ({})", env.label, env.manifest),
            None => env.label.clone(),
        };
        let links = counts.get(&env.id).copied().unwrap_or(0);
        let applied = match (&env.applied_at, env.is_legacy()) {
            (_, true) => "recorded by an older mlib; its next apply claims these links".into(),
            (Some(at), false) => format!("last applied {at}"),
            (None, false) => "never applied".into(),
        };
        printer.info(format!(
            "{marker} {}  {links} link{}, {applied}",
            printer.paint_bold(&title),
            if links == 1 { "" } else { "s" },
        ));
        for (app, root) in &env.apps {
            printer.info(format!("    {app}: {root}"));
        }
    }
    printer.info("\n* this manifest's environment (with the current variables and --env)");
    Ok(Status::Success)
}
