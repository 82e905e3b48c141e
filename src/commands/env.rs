//! `mlib env list`: the environments that own links in the store's registry.

use anyhow::{Result, bail};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{ForgetSettings, GlobalSettings};

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

/// `mlib env forget ENV`.
pub fn forget(global: &GlobalSettings, args: &ForgetSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let registry = ctx.open_registry()?;
    let _lock = super::approval::lock(&ctx, printer)?;
    let envs = registry.environments()?;
    let as_path = std::fs::canonicalize(&args.env)
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    let matches: Vec<&mlib_registry::Environment> = envs
        .iter()
        .filter(|e| {
            e.name.as_deref() == Some(args.env.as_str())
                || e.key == args.env
                || e.manifest == args.env
                || as_path.as_deref() == Some(e.manifest.as_str())
        })
        .collect();
    let env = match matches.as_slice() {
        [] => bail!(
            "no environment `{}` in the registry of the store {} (`mlib env list` shows them)",
            args.env,
            ctx.store.root().display()
        ),
        [one] => *one,
        many => bail!(
            "`{}` names {} environments: {}; give one by its key (`mlib env list --json`)",
            args.env,
            many.len(),
            many.iter()
                .map(|e| e.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if std::path::Path::new(&env.manifest).exists() && !args.force {
        bail!(
            "the manifest of {} still exists ({}): forget it only with --force (its next apply records it again)",
            env.label,
            env.manifest
        );
    }
    let links = registry.links_for_env(env.id)?;
    for link in &links {
        let what = if args.keep_links { "forget" } else { "unlink" };
        printer.info(format!(
            "  {} {what} {} ({})",
            printer.paint_remove("-"),
            link.target.display(),
            link.app
        ));
    }
    printer.info(format!(
        "env forget would forget {} and {} {} link(s).",
        env.label,
        if args.keep_links { "leave" } else { "remove" },
        links.len()
    ));
    if !super::approval::approved(printer, args.approval, "env forget")? {
        return Ok(Status::Success);
    }
    let mut removed = 0;
    let mut kept = 0;
    if !args.keep_links {
        for link in &links {
            match mlib_plan::upkeep::remove_link(&registry, link)? {
                mlib_plan::upkeep::Removed::Removed => removed += 1,
                mlib_plan::upkeep::Removed::WasGone => {}
                mlib_plan::upkeep::Removed::KeptChanged => {
                    kept += 1;
                    printer.warn(format!(
                        "{} changed since mlib linked it: left in place",
                        link.target.display()
                    ));
                }
            }
        }
    }
    registry.forget_environment(env.id)?;
    if printer.json {
        printer.event(json!({"type": "environment_forgotten", "key": env.key, "links_removed": removed, "links_kept": kept + if args.keep_links { links.len() } else { 0 }}));
    }
    printer.info(format!(
        "Forgot {}: {}. `mlib gc` can now free the models only it used.",
        env.label,
        if args.keep_links {
            format!(
                "{} link(s) left in place, no longer registered",
                links.len()
            )
        } else {
            format!("removed {removed} link(s)")
        }
    ));
    Ok(Status::Success)
}
