//! `mlib enrich`: local models Civitai knows (by their sha256) become Civitai sources.

use anyhow::{Context as _, Result, bail};
use mlib_manifest::{Source, edit};
use serde_json::json;

use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{GlobalSettings, RemoteSettings};

pub fn run(
    global: &GlobalSettings,
    only: &[String],
    dry_run: bool,
    remote: &RemoteSettings,
    printer: &Printer,
) -> Result<Status> {
    let path = &global.file;
    let manifest = crate::context::load_manifest(global, printer)?;
    for name in only {
        if !manifest.models.contains_key(name) {
            bail!("{} has no model `{name}`", path.display());
        }
    }
    let old =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let fetcher = crate::remote::fetcher(remote, 1);
    let mut new = old.clone();
    let mut changed = Vec::new();
    let mut unknown = Vec::new();
    let local: Vec<_> = manifest
        .models
        .values()
        .filter(|m| only.is_empty() || only.contains(&m.name))
        .filter_map(|m| match (&m.source, &m.sha256) {
            (Source::Local(local), Some(sha256)) => Some((m, local, sha256)),
            _ => None,
        })
        .collect();
    // One request per 100 files (Civitai's batch lookup), however many are imported.
    let hashes: Vec<String> = local.iter().map(|(_, _, h)| (*h).clone()).collect();
    let known = if hashes.is_empty() {
        Default::default()
    } else {
        fetcher.civitai_by_hashes(&hashes, &mlib_fetch::NoReporter)?
    };
    for (model, local, sha256) in local {
        let Some(found) = known.get(sha256) else {
            unknown.push(model.name.clone());
            continue;
        };
        let model_id = found
            .info
            .model_id
            .map(|m| m.to_string())
            .unwrap_or_default();
        let source = format!("\"civitai:{model_id}@{}\"", found.version_id);
        let mut edited = edit::set_model_field(&new, &model.name, "source", &source);
        // The name the apps list stays the local file's.
        let local_name = local.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Some(local_name), None) = (&local_name, &model.file)
            && *local_name != found.file_name
        {
            edited = edited.and_then(|t| {
                edit::set_model_field(&t, &model.name, "file", &super::add::quote(local_name))
            });
        }
        if let (None, Some(family)) = (&model.family, found.info.family()) {
            edited = edited.and_then(|t| edit::set_model_field(&t, &model.name, "family", &family));
        }
        let Some(edited) = edited else {
            printer.warn(format!(
                "`{}` is {} on Civitai, but its entry is not a block under `models:` mlib can edit: change its source by hand",
                model.name, source
            ));
            continue;
        };
        new = edited;
        printer.info(format!(
            "  {}: {} ({}, {})",
            model.name,
            found.info.name.as_deref().unwrap_or("?"),
            found.info.model_type.as_deref().unwrap_or("?"),
            found.info.base_model.as_deref().unwrap_or("?")
        ));
        changed.push(model.name.clone());
    }
    for name in &unknown {
        printer.detail(format!("  {name}: not on Civitai"));
    }
    if printer.json {
        printer.event(
            json!({"type": "enriched", "models": changed, "unknown": unknown, "written": !dry_run}),
        );
    }
    if changed.is_empty() {
        printer.info(format!(
            "Civitai knows none of the {} local model{} looked up.",
            unknown.len(),
            if unknown.len() == 1 { "" } else { "s" }
        ));
        return Ok(Status::Success);
    }
    let env = |var: &str| std::env::var(var).ok();
    let edited = mlib_manifest::parse(&new, path, &env).map_err(|err| {
        printer.error(format!("{:?}", miette::Report::new(err)));
        anyhow::anyhow!(
            "the new sources would make the manifest invalid (above); nothing was written"
        )
    })?;
    super::add::print_diff(printer, &old, &new);
    if dry_run {
        printer.info("Dry run: nothing was written.");
        return Ok(Status::Success);
    }
    let resolved = crate::remote::resolve(&edited, &fetcher, remote, None, None)?;
    resolved.lock.save(&edited.lock_path())?;
    mlib_fs::write_atomic(path, new.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    printer.info(format!(
        "{} model{} can now be downloaded again from Civitai; {} pins them.",
        changed.len(),
        if changed.len() == 1 { "" } else { "s" },
        edited.lock_path().display()
    ));
    Ok(Status::Success)
}
