//! `mlib lock`: resolve every remote model and write the manifest's lock file.

use anyhow::Result;
use serde_json::json;

use crate::context::load_manifest;
use crate::exit::Status;
use crate::printer::Printer;
use crate::remote;
use crate::settings::{GlobalSettings, RemoteSettings};

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
