//! `mlib validate`: the manifest alone, no network, nothing written.

use anyhow::Result;
use serde_json::json;

use crate::context::load_manifest;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn run(global: &GlobalSettings, printer: &Printer) -> Result<Status> {
    let file = &global.file;
    let manifest = load_manifest(global, printer)?;
    let models = manifest.models.len();
    let apps = manifest.apps.len();
    // A lock that cannot be read is `lock`'s and `plan`'s error to report, not validate's.
    let lock = crate::remote::load_lock(&manifest)
        .ok()
        .flatten()
        .map(|l| l.models)
        .unwrap_or_default();
    for warning in mlib_plan::families::check(&manifest, &lock) {
        if printer.json {
            printer.event(json!({"type": "family_warning", "model": warning.model, "message": warning.message}));
        } else {
            printer.warn(warning.message);
        }
    }
    for warning in mlib_plan::listing::check(&manifest, &lock) {
        if printer.json {
            printer.event(json!({"type": "listing_warning", "model": warning.model, "app": warning.app, "file": warning.file, "message": warning.message}));
        } else {
            printer.warn(warning.message);
        }
    }
    if printer.json {
        printer.event(json!({"type": "validated", "valid": true, "models": models, "apps": apps}));
    } else {
        printer.info(format!(
            "{} is valid: {models} model{}, {apps} app{}.",
            file.display(),
            if models == 1 { "" } else { "s" },
            if apps == 1 { "" } else { "s" },
        ));
    }
    Ok(Status::Success)
}
