//! `mlib plan --workflow FILE.json`: can this environment's ComfyUI run that workflow?

use std::path::Path;

use anyhow::{Result, bail};
use mlib_manifest::Preset;
use mlib_plan::workflow::{self, Need};
use serde_json::json;

use crate::context::Context;
use crate::printer::Printer;

/// Prints, per ComfyUI app, where each model file the workflow needs comes from; returns
/// whether every app has them all.
pub fn check(ctx: &Context, path: &Path, printer: &Printer) -> Result<bool> {
    let needs = workflow::needs(path)?;
    let apps: Vec<_> = ctx
        .manifest
        .apps
        .values()
        .filter(|a| a.preset == Some(Preset::ComfyUI))
        .collect();
    if apps.is_empty() {
        bail!(
            "--workflow checks ComfyUI apps, and {} has none (an app with `preset: comfyui`)",
            ctx.manifest.path.display()
        );
    }
    let lock = crate::remote::load_lock(&ctx.manifest)?
        .map(|l| l.models)
        .unwrap_or_default();
    let mut runnable = true;
    for app in apps {
        let mut missing = 0;
        if !printer.json {
            printer.info(format!(
                "\n{} needs {} model file{}; in app `{}`:",
                path.display(),
                needs.len(),
                if needs.len() == 1 { "" } else { "s" },
                app.name
            ));
        }
        for need in &needs {
            let by = workflow::provided_by(&ctx.manifest, &lock, app, need);
            let here = by.is_none() && workflow::on_disk(app, need);
            missing += usize::from(by.is_none() && !here);
            if printer.json {
                printer.event(json!({
                    "type": "workflow_need",
                    "app": app.name,
                    "file": need.file,
                    "folder": need.kind.types()[0],
                    "node": need.node,
                    "model": by,
                    "on_disk": here,
                    "url": need.url,
                }));
                continue;
            }
            printer.info(line(need, by, here));
        }
        if !printer.json {
            printer.info(if missing == 0 {
                format!("`{}` can run it.", app.name)
            } else {
                format!(
                    "`{}` cannot run it: {missing} model file{} missing.",
                    app.name,
                    if missing == 1 { "" } else { "s" }
                )
            });
        }
        runnable &= missing == 0;
    }
    Ok(runnable)
}

fn line(need: &Need, by: Option<&str>, on_disk: bool) -> String {
    let what = format!(
        "{}/{} (node {})",
        need.kind.types()[0],
        need.file,
        need.node
    );
    match (by, on_disk, &need.url) {
        (Some(model), _, _) => format!("  ok       {what}: model `{model}`"),
        (None, true, _) => format!("  on disk  {what}: not managed by mlib"),
        (None, false, Some(url)) => format!(
            "  missing  {what}: `mlib add {url} --type {}`",
            need.kind.types()[0]
        ),
        (None, false, None) => format!("  missing  {what}"),
    }
}
