//! `mlib add SOURCE`: one entry at the end of `models:`, the rest of the file untouched.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use mlib_inspect::Kind;
use mlib_manifest::edit;
use serde_json::json;

use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{AddSettings, GlobalSettings};

pub fn run(global: &GlobalSettings, args: &AddSettings, printer: &Printer) -> Result<Status> {
    let path = &global.file;
    if !path.exists() {
        bail!(
            "no manifest at {}: describe the apps you have with `mlib init`, or write one (see models.yaml.example)",
            path.display()
        );
    }
    let manifest = crate::context::load_manifest(global, printer)?;
    let old =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let web = mlib_manifest::from_web_url(&args.source).map_err(anyhow::Error::msg)?;
    let local = !is_remote(&web.source);

    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut found_type = None;
    let mut found_family = None;
    let name_from;
    if local {
        let file = PathBuf::from(&web.source);
        let meta = std::fs::metadata(&file)
            .with_context(|| format!("cannot add {}: it cannot be read", file.display()))?;
        name_from = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        fields.push(("source", quote(&relative_to(&file, &manifest.dir))));
        if meta.is_file() {
            match mlib_inspect::inspect(&file) {
                Ok(report) => {
                    found_type = type_of(report.kind);
                    found_family = report.family;
                }
                Err(mlib_inspect::InspectError::NotAModel { what }) => {
                    bail!("{} is not a model: it looks like {what}", file.display());
                }
                // Not a format with a header (.ckpt, .pt...): --type says what it is.
                Err(_) => {}
            }
            let hashes = mlib_store::hash_file(&file)
                .with_context(|| format!("cannot hash {}", file.display()))?;
            fields.push(("sha256", hashes.sha256));
        }
    } else {
        name_from = web
            .source
            .rsplit(['/', ':', '@'])
            .next()
            .unwrap_or_default()
            .to_owned();
        fields.push(("source", quote(&web.source)));
        if let Some(revision) = &web.revision {
            fields.push(("revision", quote(revision)));
        }
    }
    let stem = Path::new(&name_from)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or(name_from.clone());
    let name = match &args.name {
        Some(name) => name.clone(),
        None if stem.bytes().all(|b| b.is_ascii_digit()) => format!("civitai-{stem}"),
        None => mlib_plan::onboard::model_name(&stem),
    };
    if manifest.models.contains_key(&name) {
        bail!(
            "{} already has a model `{name}`: choose another name with --name",
            path.display()
        );
    }
    let Some(model_type) = args.model_type.clone().or(found_type) else {
        bail!(
            "cannot tell what kind of model {} is: say which folder it goes to with --type (checkpoints, loras, vae, text_encoders, diffusion_models, controlnet, upscale_models, ...)",
            args.source
        );
    };
    fields.push(("type", model_type));
    if let Some(family) = args.family.clone().or(found_family) {
        fields.push(("family", family));
    }
    for app in &args.apps {
        if !manifest.apps.contains_key(app) {
            bail!("{} has no app `{app}`", path.display());
        }
    }
    if !args.apps.is_empty() {
        fields.push(("tags", format!("[{}]", args.apps.join(", "))));
    }

    let entry = edit::entry_text(&name, &fields);
    let Some(new) = edit::insert_model(&old, &entry) else {
        bail!(
            "{} has no `models:` block to add to (a `models:` written as a one-line mapping is not edited): add the entry by hand:\n{entry}",
            path.display()
        );
    };
    // The result must be a manifest mlib accepts, before anything is written or fetched.
    let env = |var: &str| std::env::var(var).ok();
    let edited = match mlib_manifest::parse(&new, path, &env) {
        Ok(edited) => edited,
        Err(err) => {
            let report = miette::Report::new(err);
            printer.error(format!("{report:?}"));
            bail!(
                "the entry for `{name}` would make the manifest invalid (above); nothing was written"
            );
        }
    };
    let model = &edited.models[&name];
    for app in edited.apps.values() {
        if args.apps.contains(&app.name) && !app.selects(model) {
            printer.warn(format!(
                "app `{}` does not select models tagged `{}`: add `{name}` to its `models:` list",
                app.name, app.name
            ));
        }
    }

    print_diff(printer, &old, &new);
    if printer.json {
        printer.event(json!({"type": "model_added", "name": name, "written": !args.dry_run}));
    }
    if args.dry_run {
        printer.info("Dry run: nothing was written.");
        return Ok(Status::Success);
    }
    if !local {
        // Pinned first: a manifest naming a model its lock does not cover would fail --locked.
        let fetcher = crate::remote::fetcher(&args.remote, 1);
        let resolved = crate::remote::resolve(&edited, &fetcher, &args.remote, None, None)?;
        resolved.lock.save(&edited.lock_path())?;
        if let Some(entry) = resolved.models.get(&name) {
            printer.info(format!(
                "  resolved {name}: {}",
                super::update::describe(entry)
            ));
        }
    }
    mlib_fs::write_atomic(path, new.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    printer.info(format!(
        "Added `{name}` to {}. `mlib apply` fetches and links it.",
        path.display()
    ));
    Ok(Status::Success)
}

fn is_remote(source: &str) -> bool {
    source.contains("://") || source.starts_with("civitai:") || source.contains("civitai:")
}

/// The folder a model of `kind` goes to, in the presets' names.
fn type_of(kind: Kind) -> Option<String> {
    let name = match kind {
        Kind::Checkpoint => "checkpoints",
        Kind::DiffusionModel => "diffusion_models",
        Kind::Lora | Kind::Lycoris => "loras",
        Kind::Vae => "vae",
        Kind::TextEncoder => "text_encoders",
        Kind::ControlNet => "controlnet",
        Kind::Upscaler => "upscale_models",
        Kind::Llm => "llm",
        Kind::Unknown => return None,
    };
    Some(name.to_owned())
}

/// `./x` inside `dir`, else absolute.
fn relative_to(path: &Path, dir: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match path.strip_prefix(dir) {
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// A YAML double-quoted string.
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The change, as `diff -u` shows it.
fn print_diff(printer: &Printer, old: &str, new: &str) {
    let diff = similar::TextDiff::from_lines(old, new);
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        printer.info(hunk.header().to_string());
        for change in hunk.iter_changes() {
            let line = format!("{}{}", change.tag(), change.value().trim_end_matches('\n'));
            printer.info(match change.tag() {
                similar::ChangeTag::Insert => printer.paint_add(&line),
                similar::ChangeTag::Delete => printer.paint_remove(&line),
                similar::ChangeTag::Equal => line,
            });
        }
    }
}
