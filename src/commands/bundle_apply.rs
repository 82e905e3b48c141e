//! `mlib apply --from-bundle FILE.tar`: the air-gapped side of an offline bundle.
//!
//! What is applied is the bundle's own manifest and lock, so the machine gets exactly what
//! was bundled: they are written where `-f` says (`models.yaml` and `models.lock` by default)
//! when nothing is there, used when the files there are the same, and a different file there
//! is an error that says what to do (it is never replaced). Then, under the apply lock, every
//! model the store lacks is read from the tar into the store, each file verified by its size,
//! sha256 and blake3 while it is written, before the ordinary plan and apply run offline:
//! nothing is left to download, so the fetch path is not involved at all.

use std::path::Path;

use anyhow::{Result, bail};
use mlib_bundle::{Bundle, BundledFile, BundledModel, Event};
use mlib_manifest::Source;
use serde_json::json;

use crate::context::Context;
use crate::printer::Printer;
use crate::progress::Progress;
use crate::render::bytes;

/// Puts the bundle's manifest and lock at `manifest` (and its lock path) unless the same
/// files are there; refuses different ones before writing anything.
pub fn place_manifest(bundle: &Bundle, manifest: &Path, printer: &Printer) -> Result<()> {
    let lock = manifest.with_extension("lock");
    let mut writes: Vec<(&Path, &[u8])> = Vec::new();
    let pairs = [
        (manifest, Some(bundle.manifest.as_slice()), "manifest"),
        (lock.as_path(), bundle.lock.as_deref(), "lock"),
    ];
    for (path, wanted, what) in pairs {
        let Some(wanted) = wanted else { continue };
        match fs_err::read(path) {
            Ok(have) if have == wanted => {}
            Ok(_) => bail!(
                "{} differs from the {what} in {} (bundled from {} at {}).\n\
                 `apply --from-bundle` applies the bundle's own manifest and lock, so that this machine gets exactly what was bundled, and never replaces a file of yours. \
                 Apply it in another folder (`-f site/models.yaml`: both files are written there), or move your {} aside, then run the same command again.\n\
                 To give this machine its own store or app folders, write them as variables in the manifest before bundling (`store: ${{MODELS_DIR:-~/models}}`) and set the variables here.",
                path.display(),
                bundle.path.display(),
                bundle.header.manifest_name,
                bundle.header.created,
                path.display()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => writes.push((path, wanted)),
            Err(e) => return Err(e.into()),
        }
    }
    for (path, bytes) in writes {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs_err::create_dir_all(parent)?;
        }
        mlib_fs::write_atomic(path, bytes)?;
        printer.info(format!(
            "Wrote {} from {}.",
            path.display(),
            bundle.path.display()
        ));
    }
    Ok(())
}

/// Reads every model of the bundle the store lacks into the store (under the apply lock,
/// before planning). Refuses, before reading any model, a bundle whose header disagrees with
/// its manifest and lock, and a manifest that needs models neither the bundle nor the store
/// has. Returns whether anything was stored.
pub fn ingest(ctx: &Context, bundle: &Bundle, printer: &Printer) -> Result<bool> {
    let lock = crate::remote::load_lock(&ctx.manifest)?;
    let manifest = &ctx.manifest;
    for model in &bundle.header.models {
        let why = match manifest.models.get(&model.name) {
            None => Some("its manifest does not declare it".to_string()),
            Some(m) if m.model_type != model.model_type || m.family != model.family => {
                Some("its type or family is not the manifest's".into())
            }
            Some(m) => super::bundle::disagreement(m, lock.as_ref(), &model.files),
        };
        if let Some(why) = why {
            bail!(
                "{} is inconsistent: model {}: {why}. The bundle was damaged or edited after it was made; make it again with `mlib bundle create`.",
                bundle.path.display(),
                model.name
            );
        }
    }
    let missing: Vec<&str> = manifest
        .models
        .values()
        .filter(|m| !bundle.header.models.iter().any(|b| b.name == m.name))
        .filter(|m| !matches!(&m.source, Source::Local(path) if path.exists()))
        .filter(|m| {
            let key = mlib_plan::desired::key(m);
            !matches!(ctx.store.read_metadata(&key), Ok(Some(_)))
        })
        .map(|m| m.name.as_str())
        .collect();
    if !missing.is_empty() {
        bail!(
            "{} needs {} that neither {} nor the store {} has.\nMake a bundle that holds them (`mlib bundle create` without --models takes every model), or remove them from the manifest before bundling.",
            manifest.path.display(),
            missing.join(", "),
            bundle.path.display(),
            ctx.store.root().display()
        );
    }
    let present = |model: &BundledModel| stored_already(ctx, model);
    let lacking: u64 = bundle
        .header
        .models
        .iter()
        .filter(|m| !present(m))
        .map(BundledModel::size)
        .sum();
    if lacking > 0 && !ctx.state.store_writable {
        bail!(
            "the store {} is read-only, and {} has models it lacks: apply the bundle as a user who may write the store",
            ctx.store.root().display(),
            bundle.path.display()
        );
    }

    let progress = Progress::new(printer);
    progress.set_total(lacking);
    let mut current = 0u64;
    let mut on_event = |event: Event<'_>| match event {
        Event::Receiving(model) => {
            current += 1;
            progress.start(current, &model.name, Some(model.size()));
        }
        Event::Progress(n) => progress.advance(current, n),
        Event::Stored(model) => {
            progress.finish(current);
            report(printer, model, "stored");
        }
        Event::Present(model) => report(printer, model, "present"),
    };
    let result = bundle.ingest(&ctx.store, &present, &mut on_event);
    if result.is_err() {
        progress.failed(current);
    }
    progress.clear();
    let done = result?;
    let stored_bytes: u64 = bundle
        .header
        .models
        .iter()
        .filter(|m| done.stored.contains(&m.name))
        .map(BundledModel::size)
        .sum();
    if printer.json {
        printer.event(json!({
            "type": "bundle_summary",
            "file": bundle.path,
            "stored": done.stored.len(),
            "present": done.present.len(),
            "bytes": stored_bytes,
        }));
    } else if done.stored.is_empty() {
        printer.info(format!(
            "From {}: all {} models are in the store already.",
            bundle.path.display(),
            done.present.len()
        ));
    } else {
        printer.info(format!(
            "From {}: {} model{} stored ({}), {} already in the store.",
            bundle.path.display(),
            done.stored.len(),
            if done.stored.len() == 1 { "" } else { "s" },
            bytes(stored_bytes),
            done.present.len()
        ));
    }
    Ok(!done.stored.is_empty())
}

fn report(printer: &Printer, model: &BundledModel, status: &str) {
    if printer.json {
        printer.event(super::bundle::model_event(model, status));
    } else if status == "present" {
        printer.detail(format!("  = {} is in the store already", model.name));
    }
}

/// Whether the store holds `model` with exactly these files (paths, sizes, sha256): its
/// bytes are then skipped. The plan that follows checks the stored files themselves as it
/// always does (by their stamps, or by hashing them).
fn stored_already(ctx: &Context, model: &BundledModel) -> bool {
    let key = mlib_store::ModelKey {
        name: &model.name,
        model_type: &model.model_type,
        family: model.family.as_deref(),
    };
    let Ok(Some(meta)) = ctx.store.read_metadata(&key) else {
        return false;
    };
    let mut have: Vec<(&str, u64, &str)> = meta
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.size, f.sha256.as_str()))
        .collect();
    let mut want: Vec<(&str, u64, &str)> = model
        .files
        .iter()
        .map(|f: &BundledFile| (f.path.as_str(), f.size, f.sha256.as_str()))
        .collect();
    have.sort_unstable();
    want.sort_unstable();
    have == want
}
