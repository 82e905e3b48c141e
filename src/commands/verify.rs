//! `mlib verify [MODEL...]`: hash store files again and compare them with metadata.json.
//!
//! Unlike a plan, which hashes only files whose stamp changed, verify reads every byte: it
//! is how to find a disk's silent corruption, and how a new state folder (a new user of a
//! shared store) comes to trust the store without waiting for plans to hash it.

use std::collections::BTreeSet;

use anyhow::{Result, bail};
use mlib_plan::integrity::{self, FileCheck};
use mlib_registry::IndexEntry;
use mlib_store::{Metadata, ModelKey};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::progress::Progress;
use crate::settings::{GlobalSettings, VerifySettings};

pub fn run(global: &GlobalSettings, args: &VerifySettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let models = models_to_verify(&ctx, args)?;
    let progress = Progress::new(printer);
    progress.set_total(models.iter().map(Metadata::size).sum());
    let mut verified = Vec::new();
    let mut bad = 0;
    let mut files = 0;
    for (id, metadata) in models.iter().enumerate() {
        let key = ModelKey {
            name: &metadata.name,
            model_type: &metadata.model_type,
            family: metadata.family.as_deref(),
        };
        let dir = mlib_plan::paths::physical(&ctx.store.model_dir(&key))?;
        progress.start(id as u64, &metadata.name, Some(metadata.size()));
        let mut problems = Vec::new();
        for file in &metadata.files {
            files += 1;
            let path = dir.join(&file.path);
            let rel = mlib_plan::desired::rel_to(&ctx.store_root, &path);
            let mut advance = |n: u64| progress.advance(id as u64, n);
            match integrity::rehash(file, &rel, &path, &mut advance) {
                FileCheck::Verified(v) => verified.push(v),
                FileCheck::Trusted => {}
                FileCheck::Missing => problems.push(format!("{rel}: missing")),
                FileCheck::Changed(what) => problems.push(format!("{rel}: {what}")),
            }
        }
        progress.finish(id as u64);
        bad += problems.len();
        if printer.json {
            printer.event(json!({
                "type": "verified",
                "model": metadata.name,
                "ok": problems.is_empty(),
                "problems": problems,
            }));
        } else if problems.is_empty() {
            printer.detail(format!("  ok       {}", metadata.name));
        } else {
            for problem in &problems {
                progress.println(&format!(
                    "  {} {}: {problem}",
                    printer.paint_error("changed "),
                    metadata.name
                ));
            }
        }
    }
    progress.clear();
    record(&ctx, &verified, printer);
    if printer.json {
        printer.event(json!({"type": "verify_summary", "models": models.len(), "files": files, "problems": bad}));
    } else if bad == 0 {
        printer.info(format!(
            "Verified {files} file{} of {} model{}: every one matches its metadata.json.",
            if files == 1 { "" } else { "s" },
            models.len(),
            if models.len() == 1 { "" } else { "s" },
        ));
    } else {
        printer.info(format!(
            "{bad} of {files} files do not match their metadata.json. Run `mlib apply` to move them to {} and restore the models.",
            ctx.store.quarantine_dir().display()
        ));
    }
    Ok(if bad == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

/// The models named (by name, in the manifest or the store), the manifest's, or with --all
/// every model in the store; only those stored can be verified.
fn models_to_verify(ctx: &Context, args: &VerifySettings) -> Result<Vec<Metadata>> {
    let stored = ctx.store.scan()?;
    if args.all {
        return Ok(stored.into_iter().map(|(_, m)| m).collect());
    }
    let wanted: BTreeSet<&str> = if args.models.is_empty() {
        ctx.manifest.models.keys().map(String::as_str).collect()
    } else {
        args.models.iter().map(String::as_str).collect()
    };
    // A model of the manifest is the one stored under its own type; a name the manifest does
    // not have may be any stored model of that name.
    let found: Vec<Metadata> = stored
        .into_iter()
        .map(|(_, m)| m)
        .filter(|m| wanted.contains(m.name.as_str()))
        .filter(|m| {
            ctx.manifest
                .models
                .get(&m.name)
                .is_none_or(|model| model.model_type == m.model_type)
        })
        .collect();
    let unknown: Vec<&str> = args
        .models
        .iter()
        .map(String::as_str)
        .filter(|name| !found.iter().any(|m| m.name == *name))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "not in the store {}: {} (`mlib status` shows what is stored)",
            ctx.store.root().display(),
            unknown.join(", ")
        );
    }
    Ok(found)
}

/// Files found intact are trusted from now on without hashing (when the registry can be
/// written; verifying needs no write access).
fn record(ctx: &Context, verified: &[mlib_plan::Verified], printer: &Printer) {
    if verified.is_empty() || !mlib_fs::is_writable(ctx.state_dir()) {
        return;
    }
    let entries: Vec<IndexEntry> = verified
        .iter()
        .map(|v| IndexEntry::new(v.path.clone(), &v.stamp, v.sha256.clone(), v.blake3.clone()))
        .collect();
    let result = ctx
        .open_registry()
        .and_then(|registry| Ok(registry.index_put_many(&entries)?));
    if let Err(err) = result {
        printer.warn(format!("could not record the verified files: {err:#}"));
    }
}
