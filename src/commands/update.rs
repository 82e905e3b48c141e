//! `mlib update [MODEL...]`: re-resolve remote models (branches move) and show what changed.

use std::path::Path;

use anyhow::{Result, bail};
use mlib_manifest::lock::{Lock, LockedModel};
use serde_json::json;

use crate::context::load_manifest;
use crate::exit::Status;
use crate::printer::Printer;
use crate::remote;
use crate::render::bytes;
use crate::settings::{GlobalSettings, UpdateSettings};

pub fn run(global: &GlobalSettings, args: &UpdateSettings, printer: &Printer) -> Result<Status> {
    let manifest = load_manifest(global, printer)?;
    if args.remote.offline || args.remote.locked {
        bail!(
            "update re-resolves models over the network: it cannot run with --offline or --locked"
        );
    }
    for name in &args.models {
        match manifest.models.get(name) {
            None => bail!("no model named `{name}` in {}", manifest.path.display()),
            Some(m) if !mlib_fetch::is_remote(&m.source) => {
                bail!("model `{name}` has a local source: there is nothing to update")
            }
            Some(_) => {}
        }
    }
    let fetcher = remote::fetcher(&args.remote, 1);
    let path = manifest.lock_path();
    let mut lock = remote::load_lock(&manifest)?.unwrap_or_default();
    let mut changes = 0;
    for model in manifest
        .models
        .values()
        .filter(|m| mlib_fetch::is_remote(&m.source))
    {
        if !args.models.is_empty() && !args.models.contains(&model.name) {
            continue;
        }
        let new = fetcher.resolve(model)?;
        let old = lock.models.get(&model.name);
        let change = match old {
            Some(old) if same_pins(old, &new) => None,
            Some(old) => Some(format!("{} -> {}", describe(old), describe(&new))),
            None => Some(format!("new: {}", describe(&new))),
        };
        if let Some(change) = &change {
            changes += 1;
            if printer.json {
                printer.event(
                    json!({"type": "model_updated", "model": model.name, "from": old, "to": new}),
                );
            } else {
                printer.info(format!("  ~ {}: {change}", model.name));
            }
        }
        // Keep hashes learned on download for files that provably did not change: the same
        // commit, or the same published sha256.
        let mut new = new;
        if let Some(old) = old {
            let same_commit = old.commit.is_some() && old.commit == new.commit;
            for file in &mut new.files {
                if let Some(prev) = old.files.iter().find(|f| {
                    f.path == file.path
                        && f.size == file.size
                        && same_origin(f, file)
                        && (same_commit || f.sha256.is_some() && f.sha256 == file.sha256)
                }) {
                    file.sha256 = file.sha256.clone().or_else(|| prev.sha256.clone());
                    file.blake3 = file.blake3.clone().or_else(|| prev.blake3.clone());
                }
            }
        }
        lock.models.insert(model.name.clone(), new);
    }
    lock.retain(|name| {
        manifest
            .models
            .get(name)
            .is_some_and(|m| mlib_fetch::is_remote(&m.source))
    });
    let on_disk = remote::load_lock(&manifest)?;
    if on_disk.as_ref() != Some(&lock) {
        save(&lock, &path)?;
    }
    if !printer.json {
        if changes == 0 {
            printer.info("Everything is up to date.");
        } else {
            printer.info(format!(
                "Updated {changes} model{} in {}. Run `mlib apply` to fetch the new files.",
                if changes == 1 { "" } else { "s" },
                path.display()
            ));
        }
    }
    Ok(Status::Success)
}

fn save(lock: &Lock, path: &Path) -> Result<()> {
    Ok(lock.save(path)?)
}

fn same_origin(a: &mlib_manifest::lock::LockedFile, b: &mlib_manifest::lock::LockedFile) -> bool {
    a.url == b.url && a.repo_path == b.repo_path && a.file_id == b.file_id
}

fn same_pins(a: &LockedModel, b: &LockedModel) -> bool {
    a.commit == b.commit
        && a.version_id == b.version_id
        && a.files.len() == b.files.len()
        && a.files.iter().all(|f| {
            b.files.iter().any(|g| {
                g.path == f.path
                    && g.size == f.size
                    && (g.sha256.is_none() || f.sha256.is_none() || g.sha256 == f.sha256)
            })
        })
}

/// One line about what a lock entry pins.
pub fn describe(entry: &LockedModel) -> String {
    let mut parts = Vec::new();
    if let Some(commit) = &entry.commit {
        parts.push(format!("commit {}", &commit[..commit.len().min(12)]));
    }
    if let Some(version) = entry.version_id {
        parts.push(format!("version {version}"));
    }
    let files = entry.files.len();
    parts.push(format!(
        "{files} file{}, {}",
        if files == 1 { "" } else { "s" },
        bytes(entry.total_size())
    ));
    parts.join(", ")
}
