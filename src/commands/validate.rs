//! `mlib validate`: the manifest alone, no network, nothing written.

use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::context::load_manifest;
use crate::exit::Status;
use crate::printer::Printer;

pub fn run(file: &Path, printer: &Printer) -> Result<Status> {
    let manifest = load_manifest(file, printer)?;
    let models = manifest.models.len();
    let apps = manifest.apps.len();
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
