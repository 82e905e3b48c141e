//! `mlib init --app PRESET:ROOT...`: a manifest describing the apps' model folders as they are.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use mlib_manifest::Preset;
use mlib_plan::onboard::{AppTree, Census, Found};
use serde_json::json;

use crate::exit::Status;
use crate::printer::Printer;
use crate::progress::Progress;
use crate::render;
use crate::settings::{GlobalSettings, InitSettings};

pub fn run(global: &GlobalSettings, args: &InitSettings, printer: &Printer) -> Result<Status> {
    let manifest = &global.file;
    if manifest.exists() && !args.dry_run {
        bail!(
            "{} already exists: init never overwrites a manifest (add models with `mlib add`, or write the new one elsewhere with -f FILE)",
            manifest.display()
        );
    }
    if args.into_store && args.dry_run {
        bail!(
            "--into-store puts models into the store, and --dry-run changes nothing: use one of them"
        );
    }
    let dir = std::path::absolute(manifest)?
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let apps = parse_apps(&args.apps)?;
    let progress = Progress::new(printer);
    progress.start(0, "hashing", None);
    let census = mlib_plan::onboard::census(&apps, &mut |n| progress.advance(0, n))
        .context("cannot read the app folders")?;
    progress.finish(0);
    progress.clear();
    for skipped in &census.skipped {
        printer.detail(format!(
            "skipped {}: {}",
            skipped.path.display(),
            skipped.why
        ));
    }
    let not_models: Vec<_> = census
        .skipped
        .iter()
        .filter(|s| s.why.starts_with("not a model:"))
        .collect();
    for skipped in &not_models {
        printer.warn(format!("{}: {}", skipped.path.display(), skipped.why));
    }
    let text = manifest_text(&census, &apps, &args.store, &dir);
    // What init writes must be a manifest mlib accepts: checked before it is written.
    let env = |name: &str| std::env::var(name).ok();
    mlib_manifest::parse(&text, manifest, &env)
        .map_err(|e| anyhow::anyhow!("init wrote a manifest mlib rejects (a bug): {e:?}"))?;

    let bytes: u64 = census.models.iter().map(|m| m.size).sum();
    let shared = census.models.iter().filter(|m| m.places.len() > 1).count();
    if printer.json {
        printer.event(json!({
            "type": "init",
            "manifest": manifest,
            "models": census.models.len(),
            "bytes": bytes,
            "shared": shared,
            "skipped": census.skipped.len(),
            "written": !args.dry_run,
        }));
    }
    if args.into_store {
        into_store(&census, &args.store, &dir, printer)?;
    }
    if args.dry_run {
        printer.data(&text)?;
    } else {
        mlib_fs::write_atomic(manifest, text.as_bytes())
            .with_context(|| format!("cannot write {}", manifest.display()))?;
        if args.into_store {
            // The store holds them for a manifest not applied yet: say so in its registry, so
            // that another environment's gc keeps them.
            let ctx = crate::context::Context::load(global, printer)?;
            ctx.open_registry()?
                .declare_environment(&ctx.env.to_record(&ctx.manifest))?;
        }
    }
    printer.info(format!(
        "{} {}: {} model{} ({}) from {} app{}{}.",
        if args.dry_run { "Would write" } else { "Wrote" },
        manifest.display(),
        census.models.len(),
        if census.models.len() == 1 { "" } else { "s" },
        render::bytes(bytes),
        apps.len(),
        if apps.len() == 1 { "" } else { "s" },
        if shared > 0 {
            format!(", {shared} of them found in more than one app")
        } else {
            String::new()
        }
    ));
    if !args.dry_run {
        printer.info(
            "Next: `mlib plan --adopt` shows each file moving into the store, `mlib apply --adopt` does it and leaves a link where each file was.",
        );
    }
    Ok(Status::Success)
}

/// Puts every model found into the store: a file on the store's filesystem as a hard link of
/// itself (its hashes are known from the census), anything else as a hashed copy.
fn into_store(census: &Census, store: &Path, dir: &Path, printer: &Printer) -> Result<()> {
    let store = crate::context::store_at(absolute(store), mlib_store::Layout::Nested);
    if let Some(existing) = mlib_plan::paths::nearest_existing(store.root())
        && !mlib_fs::is_writable(existing)
    {
        bail!(
            "the store {} cannot be written by you: --into-store cannot put models into it; run init without it (nothing was written)",
            store.root().display()
        );
    }
    let staging = store.staging_dir()?;
    let staging_device = std::fs::metadata(&staging).map(|m| mlib_fs::platform::device(&m))?;
    let (mut linked, mut copied) = (0u64, 0u64);
    for model in &census.models {
        let key = mlib_store::ModelKey {
            name: &model.name,
            model_type: &model.model_type,
            family: model.family.as_deref(),
        };
        if store.read_metadata(&key)?.is_some() {
            continue;
        }
        let source = show(&model.places[0].path, dir);
        let same_device = std::fs::metadata(&model.source)
            .is_ok_and(|m| mlib_fs::platform::device(&m) == staging_device);
        // A hard link can be refused (a bind mount, `protected_hardlinks`): then a copy.
        let staged = match (&model.hashes, same_device) {
            (Some(_), true) => {
                let staged = mlib_fs::temp::path_for(&staging, "init");
                std::fs::hard_link(&model.source, &staged)
                    .is_ok()
                    .then_some(staged)
            }
            _ => None,
        };
        match (staged, &model.hashes) {
            (Some(staged), Some((sha256, blake3))) => {
                let file = mlib_store::StagedFile {
                    staged,
                    rel_path: model.file_name.clone(),
                    hashes: mlib_store::Hashes {
                        size: model.size,
                        sha256: sha256.clone(),
                        blake3: blake3.clone(),
                    },
                };
                store.commit(&key, vec![file], &source)?;
                linked += model.size;
            }
            _ => {
                let expected = mlib_store::Expected {
                    sha256: model.hashes.as_ref().map(|h| h.0.clone()),
                    blake3: None,
                };
                store.ingest_local_as(
                    &key,
                    &model.source,
                    Some(&model.file_name),
                    &expected,
                    &source,
                    &mut |_| {},
                )?;
                copied += model.size;
            }
        }
    }
    printer.info(format!(
        "Stored {} without copying (hard links on the store's filesystem) and copied {}.",
        render::bytes(linked),
        render::bytes(copied)
    ));
    Ok(())
}

fn parse_apps(specs: &[String]) -> Result<Vec<AppTree>> {
    let mut apps: Vec<AppTree> = Vec::new();
    for spec in specs {
        let Some((preset, root)) = spec.split_once(':') else {
            bail!("--app {spec}: write PRESET:ROOT, e.g. comfyui:./ComfyUI");
        };
        let Some(preset) = Preset::ALL.iter().find(|p| p.as_str() == preset) else {
            bail!(
                "--app {spec}: unknown preset `{preset}`; presets: {}",
                Preset::ALL.map(|p| p.as_str()).join(", ")
            );
        };
        let root = expand_home(root);
        if !root.is_dir() {
            bail!("--app {spec}: {} is not a folder", root.display());
        }
        let base = preset.as_str();
        let count = apps.iter().filter(|a| a.preset == *preset).count();
        let name = if count == 0 {
            base.to_owned()
        } else {
            format!("{base}-{}", count + 1)
        };
        apps.push(AppTree {
            name,
            preset: *preset,
            root,
        });
    }
    Ok(apps)
}

fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// The manifest, commented, with paths relative to its folder where they are inside it.
fn manifest_text(census: &Census, apps: &[AppTree], store: &Path, dir: &Path) -> String {
    let mut out = String::new();
    let from: Vec<String> = apps
        .iter()
        .map(|a| format!("{} ({})", a.name, show(&a.root, dir)))
        .collect();
    let _ = writeln!(out, "# Written by `mlib init` from {}.", from.join(", "));
    out.push_str(
        "# Each model is described where it was found; `mlib apply --adopt` moves it into the\n\
         # store and leaves a link in its place. Each app gets the models tagged with its name.\n",
    );
    out.push_str("version: 1\n");
    let _ = writeln!(out, "store: {}", quote(&show(&absolute(store), dir)));
    out.push_str("models:\n");
    if census.models.is_empty() {
        out.truncate(out.len() - "models:\n".len());
        out.push_str("models: {}\n");
    }
    for model in &census.models {
        write_model(&mut out, model, dir);
    }
    out.push_str("apps:\n");
    for app in apps {
        let _ = writeln!(out, "  {}:", app.name);
        let _ = writeln!(out, "    preset: {}", app.preset.as_str());
        let _ = writeln!(out, "    root: {}", quote(&show(&app.root, dir)));
        // An app with no models gets none (a tag no model has is an error).
        let has_models = census
            .models
            .iter()
            .any(|m| m.places.iter().any(|p| p.app == app.name));
        // An app with none gets an empty list (a tag no model has is an error), which `mlib
        // add --app` fills; when no app has any model (a fresh start), every app gets
        // everything, the default.
        if has_models {
            let _ = writeln!(out, "    models: [{}]", app.name);
        } else if !census.models.is_empty() {
            out.push_str("    models: []\n");
        }
        let mut folders: Vec<(&str, &str)> = census
            .models
            .iter()
            .filter(|m| m.places.iter().any(|p| p.app == app.name))
            .filter_map(|m| Some((m.model_type.as_str(), m.custom_folder.as_deref()?)))
            .collect();
        folders.sort();
        folders.dedup();
        if !folders.is_empty() {
            out.push_str("    folders:\n");
            for (model_type, folder) in folders {
                let _ = writeln!(
                    out,
                    "      {}: {}",
                    plain_or_quoted(model_type),
                    quote(folder)
                );
            }
        }
    }
    out
}

fn write_model(out: &mut String, model: &Found, dir: &Path) {
    // Quoted: a name like `null`, `true` or `1.5` is a string here.
    let _ = writeln!(out, "  {}:", plain_or_quoted(&model.name));
    // The place in the first app (after `apply --adopt`, a link to the store copy), or for a
    // symlink, the file it points at.
    let first = &model.places[0].path;
    let is_link = first
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_symlink());
    let source = if is_link { &model.source } else { first };
    let _ = writeln!(out, "    source: {}", quote(&show(source, dir)));
    // A link named otherwise than what it points at: the apps keep listing the link's name.
    if is_link && source.file_name().and_then(|n| n.to_str()) != Some(model.file_name.as_str()) {
        let _ = writeln!(out, "    file: {}", quote(&model.file_name));
    }
    if let Some((sha256, _)) = &model.hashes {
        let _ = writeln!(out, "    sha256: {sha256}");
    }
    let _ = writeln!(out, "    type: {}", plain_or_quoted(&model.model_type));
    if let Some(family) = &model.family {
        let _ = writeln!(out, "    family: {family}");
    }
    let mut tags: Vec<&str> = model.places.iter().map(|p| p.app.as_str()).collect();
    tags.dedup();
    let _ = writeln!(out, "    tags: [{}]", tags.join(", "));
    let _ = writeln!(out, "    # {}", render::bytes(model.size));
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `./x` for a path inside `dir`, else the absolute path.
fn show(path: &Path, dir: &Path) -> String {
    let path = absolute(path);
    match path.strip_prefix(dir) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".into(),
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// A name as YAML reads it back as the same string: plain when it is one (`sdxl-base`),
/// quoted when YAML would read it as something else (`null`, `true`, `1.5`).
fn plain_or_quoted(name: &str) -> String {
    let plain_chars = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    let lower = name.to_ascii_lowercase();
    let other_type = name.parse::<f64>().is_ok()
        || ["null", "true", "false", "yes", "no", "on", "off", "y", "n"].contains(&lower.as_str())
        || lower.starts_with("0x")
        || lower.starts_with("0o");
    if plain_chars && !other_type {
        name.to_owned()
    } else {
        quote(name)
    }
}

/// A YAML double-quoted string.
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
