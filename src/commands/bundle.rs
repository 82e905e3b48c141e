//! `mlib bundle create` and `mlib bundle ls`: offline bundles (one tar with the manifest, its
//! lock and the models' bytes, for an air-gapped machine). Applying one is `apply
//! --from-bundle` (`bundle_apply.rs`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use mlib_bundle::{Bundle, BundledFile, BundledModel, Content, Header};
use mlib_manifest::lock::Lock;
use mlib_manifest::{Model, Source};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::progress::Progress;
use crate::render::bytes;
use crate::settings::{BundleCreateSettings, GlobalSettings};

pub fn create(
    global: &GlobalSettings,
    args: &BundleCreateSettings,
    printer: &Printer,
) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let manifest_bytes = fs_err::read(&ctx.manifest.path)?;
    let lock_path = ctx.manifest.lock_path();
    let lock_bytes = match fs_err::read(&lock_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let lock = crate::remote::load_lock(&ctx.manifest)?;
    if [&ctx.manifest.path, &lock_path].contains(&&args.out) {
        bail!(
            "-o {} would replace the manifest or its lock: choose another name",
            args.out.display()
        );
    }
    let models = selected(&ctx, &args.models)?;
    let mut bundled = Vec::new();
    let mut dirs = Vec::new();
    let mut problems = Vec::new();
    for model in models {
        match from_store(&ctx, model, lock.as_ref()) {
            Ok((entry, dir)) => {
                bundled.push(entry);
                dirs.push(dir);
            }
            Err(why) => problems.push(format!("  {}: {why}", model.name)),
        }
    }
    if !problems.is_empty() {
        bail!(
            "cannot bundle {} model(s): a bundle carries the store's verified bytes of what the manifest and lock pin.\n{}\nRun `mlib apply` (and `mlib lock` for remote models) first, or leave them out with --models.",
            problems.len(),
            problems.join("\n")
        );
    }
    let header = Header {
        format: mlib_bundle::FORMAT,
        // Whole seconds: the tar's entries carry the same time, and people read it.
        created: jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .expect("now is a valid time"),
        mlib_version: env!("CARGO_PKG_VERSION").into(),
        manifest_name: file_name(&ctx.manifest.path),
        has_lock: lock_bytes.is_some(),
        models: bundled,
    };
    let progress = Progress::new(printer);
    let total = header.size();
    progress.set_total(total);
    progress.start(0, &file_name(&args.out), Some(total));
    let content = Content {
        manifest: &manifest_bytes,
        lock: lock_bytes.as_deref(),
        model_dirs: &dirs,
    };
    let written = mlib_bundle::create(&args.out, &header, &content, &mut |n| {
        progress.advance(0, n)
    });
    match &written {
        Ok(_) => progress.finish(0),
        Err(_) => progress.failed(0),
    }
    progress.clear();
    let written = written.with_context(|| format!("cannot write {}", args.out.display()))?;
    if printer.json {
        for model in &header.models {
            printer.event(model_event(model, "bundled"));
        }
        printer.event(json!({
            "type": "bundle_summary",
            "file": args.out,
            "models": header.models.len(),
            "bytes": written,
        }));
    } else {
        for model in &header.models {
            printer.detail(format!("  + {} ({})", model.name, bytes(model.size())));
        }
        printer.info(format!(
            "Wrote {}: {} model{} ({}), {} and {}.",
            args.out.display(),
            header.models.len(),
            if header.models.len() == 1 { "" } else { "s" },
            bytes(written),
            header.manifest_name,
            if header.has_lock {
                "its lock"
            } else {
                "no lock (no remote models)"
            }
        ));
        printer.info(format!(
            "On the offline machine: mlib apply --from-bundle {}",
            file_name(&args.out)
        ));
    }
    Ok(Status::Success)
}

pub fn ls(file: &Path, printer: &Printer) -> Result<Status> {
    let bundle = Bundle::open(file)?;
    let header = &bundle.header;
    if printer.json {
        printer.event(json!({
            "type": "bundle",
            "file": file,
            "format": header.format,
            "created": header.created.to_string(),
            "mlib_version": header.mlib_version,
            "manifest": header.manifest_name,
            "lock": header.has_lock,
            "models": header.models.len(),
            "bytes": header.size(),
        }));
        for model in &header.models {
            printer.event(model_event(model, "bundled"));
        }
        return Ok(Status::Success);
    }
    let mut out = format!(
        "{}: {} and {}, made by mlib {} at {}\n",
        file.display(),
        header.manifest_name,
        if header.has_lock {
            "its lock"
        } else {
            "no lock"
        },
        header.mlib_version,
        header.created
    );
    for model in &header.models {
        out.push_str(&format!(
            "{:>10}  {}  {}/{}  {}\n",
            bytes(model.size()),
            model.name,
            model.model_type,
            model.family.as_deref().unwrap_or("-"),
            model.source
        ));
        for file in model.files.iter().filter(|_| model.files.len() > 1) {
            out.push_str(&format!("{:>10}    {}\n", bytes(file.size), file.path));
        }
    }
    out.push_str(&format!(
        "{} model{}, {}\n",
        header.models.len(),
        if header.models.len() == 1 { "" } else { "s" },
        bytes(header.size())
    ));
    printer.data(&out)?;
    Ok(Status::Success)
}

pub fn model_event(model: &BundledModel, status: &str) -> serde_json::Value {
    json!({
        "type": "bundle_model",
        "name": model.name,
        "status": status,
        "files": model.files.len(),
        "bytes": model.size(),
    })
}

/// The manifest's models `names` asks for (all when empty), in the manifest's order.
fn selected<'m>(ctx: &'m Context, names: &[String]) -> Result<Vec<&'m Model>> {
    let models = &ctx.manifest.models;
    if names.is_empty() {
        return Ok(models.values().collect());
    }
    let unknown: Vec<&str> = names
        .iter()
        .filter(|n| !models.contains_key(n.as_str()))
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        bail!(
            "--models names {} that {} does not declare (its models: {})",
            unknown.join(", "),
            ctx.manifest.path.display(),
            models.keys().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    Ok(models
        .values()
        .filter(|m| names.contains(&m.name))
        .collect())
}

/// What the store holds of `model`, when it is what the manifest and lock pin; else why not.
fn from_store(
    ctx: &Context,
    model: &Model,
    lock: Option<&Lock>,
) -> Result<(BundledModel, PathBuf), String> {
    let key = mlib_plan::desired::key(model);
    let meta = match ctx.store.read_metadata(&key) {
        Ok(Some(meta)) => meta,
        Ok(None) => return Err("not in the store".into()),
        Err(e) => return Err(format!("{e}")),
    };
    let files: Vec<BundledFile> = meta
        .files
        .iter()
        .map(|f| BundledFile {
            path: f.path.clone(),
            size: f.size,
            sha256: f.sha256.clone(),
            blake3: f.blake3.clone(),
        })
        .collect();
    if let Some(why) = disagreement(model, lock, &files) {
        return Err(format!("the store's copy is not the pinned one: {why}"));
    }
    let entry = BundledModel {
        name: model.name.clone(),
        model_type: model.model_type.clone(),
        family: model.family.clone(),
        source: model.source.to_string(),
        files,
    };
    Ok((entry, ctx.store.model_dir(&key)))
}

/// Why `files` are not what the manifest (local sources) or the lock (remote ones) pins
/// for `model`; `None` when they are. Used on both sides: what is bundled, and what a bundle
/// brings.
pub fn disagreement(model: &Model, lock: Option<&Lock>, files: &[BundledFile]) -> Option<String> {
    if let Source::Local(_) = model.source {
        let pins = [("sha256", &model.sha256), ("blake3", &model.blake3)];
        for (algo, pin) in pins {
            let Some(pin) = pin else { continue };
            let actual = match files {
                [one] if algo == "sha256" => &one.sha256,
                [one] => &one.blake3,
                _ => {
                    return Some(format!(
                        "{algo} is pinned but there are {} files",
                        files.len()
                    ));
                }
            };
            if !pin.eq_ignore_ascii_case(actual) {
                return Some(format!("{algo} {actual}, models.yaml pins {pin}"));
            }
        }
        return None;
    }
    let Some(locked) = lock.and_then(|l| l.fresh(model)) else {
        return Some("the lock has no current entry for it (run `mlib lock`)".into());
    };
    let mut want: Vec<&str> = locked.files.iter().map(|f| f.path.as_str()).collect();
    let mut have: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    want.sort_unstable();
    have.sort_unstable();
    if want != have {
        return Some(format!(
            "files {} where the lock lists {}",
            have.join(", "),
            want.join(", ")
        ));
    }
    for pinned in &locked.files {
        let file = files.iter().find(|f| f.path == pinned.path)?;
        if file.size != pinned.size {
            return Some(format!(
                "{} is {} bytes, the lock says {}",
                file.path, file.size, pinned.size
            ));
        }
        let pins = [
            ("sha256", &pinned.sha256, &file.sha256),
            ("blake3", &pinned.blake3, &file.blake3),
        ];
        for (algo, pin, actual) in pins {
            if let Some(pin) = pin
                && !pin.eq_ignore_ascii_case(actual)
            {
                return Some(format!(
                    "{} has {algo} {actual}, the lock pins {pin}",
                    file.path
                ));
            }
        }
    }
    None
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
