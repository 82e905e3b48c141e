//! `mlib lock`: resolve every remote model and write the manifest's lock file.

use anyhow::Result;
use serde_json::json;

use crate::context::load_manifest;
use crate::exit::Status;
use crate::printer::Printer;
use crate::remote;
use crate::settings::{GlobalSettings, RemoteSettings};

/// `mlib lock --check`: whether the lock covers the manifest, from the two files alone.
pub fn check(global: &GlobalSettings, printer: &Printer) -> Result<Status> {
    let manifest = load_manifest(global, printer)?;
    let path = manifest.lock_path();
    let lock = mlib_manifest::lock::Lock::load(&path)?.unwrap_or_default();
    let mut problems = Vec::new();
    for model in manifest.models.values() {
        if !mlib_fetch::is_remote(&model.source) {
            continue;
        }
        match lock.models.get(&model.name) {
            None => problems.push((model.name.clone(), "not in the lock".to_owned())),
            Some(locked) => {
                if let Some(reason) = locked.stale_reason(model) {
                    problems.push((model.name.clone(), format!("stale: {reason}")));
                } else if locked.files.is_empty() {
                    problems.push((model.name.clone(), "locked without files".to_owned()));
                }
            }
        }
    }
    // An entry for a model the manifest no longer has remotely: `mlib lock` drops it.
    for name in lock.models.keys() {
        let remote = manifest
            .models
            .get(name)
            .is_some_and(|m| mlib_fetch::is_remote(&m.source));
        if !remote {
            problems.push((
                name.clone(),
                "in the lock, but not a remote model of the manifest".to_owned(),
            ));
        }
    }
    if printer.json {
        let missing: Vec<_> = problems
            .iter()
            .map(|(name, why)| json!({"model": name, "why": why}))
            .collect();
        printer.event(json!({
            "type": "lock_check",
            "path": path.display().to_string(),
            "covered": problems.is_empty(),
            "problems": missing,
        }));
    }
    if problems.is_empty() {
        printer.info(format!(
            "{} covers {}.",
            path.display(),
            global.file.display()
        ));
        return Ok(Status::Success);
    }
    for (name, why) in &problems {
        printer.info(format!("  {name}: {why}"));
    }
    printer.error(format!(
        "{} does not cover {}: {} model{} to lock. Run `mlib lock` and commit the lock file.",
        path.display(),
        global.file.display(),
        problems.len(),
        if problems.len() == 1 { "" } else { "s" }
    ));
    Ok(Status::Failure)
}

pub fn run(global: &GlobalSettings, remote: &RemoteSettings, printer: &Printer) -> Result<Status> {
    let manifest = load_manifest(global, printer)?;
    let fetcher = remote::fetcher(remote, 1);
    let resolved = remote::resolve(&manifest, &fetcher, remote, None, None)?;
    let path = manifest.lock_path();
    if resolved.lock_changed {
        resolved.lock.save(&path)?;
    }
    let total = resolved.lock.models.len();
    if printer.json {
        printer.event(json!({
            "type": "lock_written",
            "path": path.display().to_string(),
            "changed": resolved.lock_changed,
            "models": total,
            "resolved": resolved.newly_resolved,
        }));
    } else {
        for name in &resolved.newly_resolved {
            let entry = &resolved.models[name];
            printer.info(format!(
                "  resolved {name}: {}",
                super::update::describe(entry)
            ));
        }
        if resolved.lock_changed {
            printer.info(format!(
                "Wrote {} ({total} remote model{}).",
                path.display(),
                if total == 1 { "" } else { "s" }
            ));
        } else {
            printer.info(format!(
                "{} is up to date ({total} remote model{}).",
                path.display(),
                if total == 1 { "" } else { "s" }
            ));
        }
    }
    Ok(Status::Success)
}
