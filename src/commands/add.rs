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
    if let Some(workflow) = &args.from_workflow {
        return from_workflow(global, workflow, args, printer);
    }
    let source = args.source.as_deref().unwrap_or_default();
    let manifest = crate::context::load_manifest(global, printer)?;
    let old =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let web = mlib_manifest::from_web_url(source).map_err(anyhow::Error::msg)?;
    let local = !is_remote(&web.source);

    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut found_type = None;
    let mut found_family = None;
    let name_from;
    // A model's name on its site, better than a file or version number.
    let mut site_name = None;
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
        // Civitai says what a version is: its name, type and base model.
        let unknown = args.name.is_none() || args.model_type.is_none() || args.family.is_none();
        if let (true, Some(version)) = (unknown, civitai_version(&web.source)) {
            let fetcher = crate::remote::fetcher(&args.remote, 1);
            let info = fetcher.civitai_info(version, &mlib_fetch::NoReporter)?;
            found_type = info.folder().map(str::to_owned);
            found_family = info.family();
            site_name = info.name;
        }
    }
    let stem = site_name.unwrap_or_else(|| {
        Path::new(&name_from)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or(name_from.clone())
    });
    let name = match &args.name {
        Some(name) => {
            mlib_manifest::check_model_name(name)
                .map_err(|why| anyhow::anyhow!("--name {name:?}: {why}"))?;
            name.clone()
        }
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
            "cannot tell what kind of model {source} is: say which folder it goes to with --type (checkpoints, loras, vae, text_encoders, diffusion_models, controlnet, upscale_models, ...)"
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

    let entry = Entry {
        name,
        fields: fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        remote: !local,
    };
    write_entries(global, &old, vec![entry], args, printer)
}

/// One entry to add: its name, its fields in order, whether it is resolved over the network.
pub(super) struct Entry {
    pub name: String,
    pub fields: Vec<(String, String)>,
    pub remote: bool,
}

/// `old` with `entries` appended to its `models:`, and the manifest it makes; an error (the
/// diagnostics printed) when it would not be valid.
pub(super) fn edited(
    global: &GlobalSettings,
    old: &str,
    entries: &[Entry],
    printer: &Printer,
) -> Result<(String, mlib_manifest::Manifest)> {
    let path = &global.file;
    let mut new = old.to_owned();
    for entry in entries {
        let fields: Vec<(&str, String)> = entry
            .fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        let text = edit::entry_text(&entry.name, &fields);
        new = edit::insert_model(&new, &text).ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no `models:` block to add to (a `models:` written as a one-line mapping is not edited): add the entry by hand:\n{text}",
                path.display()
            )
        })?;
    }
    // The result must be a manifest mlib accepts, before anything is written or fetched.
    let env = |var: &str| std::env::var(var).ok();
    match mlib_manifest::parse(&new, path, &env) {
        Ok(edited) => Ok((new, edited)),
        Err(err) => {
            let report = miette::Report::new(err);
            printer.error(format!("{report:?}"));
            let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
            bail!(
                "adding {} would make the manifest invalid (above); nothing was written",
                names.join(", ")
            );
        }
    }
}

/// Appends `entries` to the manifest's `models:` (text `old`), checks the result parses, shows
/// the diff, then (unless a dry run) pins the remote ones in the lock and writes the manifest.
pub(super) fn write_entries(
    global: &GlobalSettings,
    old: &str,
    entries: Vec<Entry>,
    args: &AddSettings,
    printer: &Printer,
) -> Result<Status> {
    write_entries_onto(global, old, old, entries, args, printer)
}

/// [`write_entries`] onto `base`, `old` edited already (the diff shows both changes).
fn write_entries_onto(
    global: &GlobalSettings,
    old: &str,
    base: &str,
    entries: Vec<Entry>,
    args: &AddSettings,
    printer: &Printer,
) -> Result<Status> {
    let path = &global.file;
    let (mut new, mut edited) = edited(global, base, &entries, printer)?;
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    // An app named with --app that picks its models by a list gets the new ones in its list.
    let mut listed = false;
    for name in &names {
        let Some(model) = edited.models.get(*name) else {
            bail!(
                "the entry for `{name}` did not read back as a model named so: nothing was written"
            );
        };
        for app in edited.apps.values() {
            if !args.apps.contains(&app.name) || app.selects(model) {
                continue;
            }
            match edit::add_to_app_models(&new, &app.name, name) {
                Some(text) => {
                    new = text;
                    listed = true;
                }
                None => printer.warn(format!(
                    "app `{}` does not select `{name}`: add it to the app's `models:` list",
                    app.name
                )),
            }
        }
    }
    if listed {
        let env = |var: &str| std::env::var(var).ok();
        edited = mlib_manifest::parse(&new, path, &env).map_err(|err| {
            printer.error(format!("{:?}", miette::Report::new(err)));
            anyhow::anyhow!(
                "adding to the apps' lists would make the manifest invalid (above); nothing was written"
            )
        })?;
    }

    print_diff(printer, old, &new);
    if printer.json {
        for name in &names {
            printer.event(json!({"type": "model_added", "name": name, "written": !args.dry_run}));
        }
    }
    if args.dry_run {
        printer.info("Dry run: nothing was written.");
        return Ok(Status::Success);
    }
    if entries.iter().any(|e| e.remote) {
        // Pinned first: a manifest naming a model its lock does not cover would fail --locked.
        let fetcher = crate::remote::fetcher(&args.remote, 1);
        let resolved = crate::remote::resolve(&edited, &fetcher, &args.remote, None, None)?;
        resolved.lock.save(&edited.lock_path())?;
        for name in &names {
            if let Some(entry) = resolved.models.get(*name) {
                printer.info(format!(
                    "  resolved {name}: {}",
                    super::update::describe(entry)
                ));
            }
        }
    }
    mlib_fs::write_atomic(path, new.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    printer.info(format!(
        "Added {} to {}. `mlib apply` fetches and links {}.",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", "),
        path.display(),
        if names.len() == 1 { "it" } else { "them" }
    ));
    Ok(Status::Success)
}

/// `mlib add --from-workflow FILE.json`: every model file the workflow needs that no ComfyUI
/// app gets and the workflow gives an address for.
pub fn from_workflow(
    global: &GlobalSettings,
    workflow: &Path,
    args: &AddSettings,
    printer: &Printer,
) -> Result<Status> {
    let path = &global.file;
    let manifest = crate::context::load_manifest(global, printer)?;
    let old =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let needs = mlib_plan::workflow::needs(workflow)?;
    let apps: Vec<_> = manifest
        .apps
        .values()
        .filter(|a| a.preset == Some(mlib_manifest::Preset::ComfyUI))
        .collect();
    let lock = crate::remote::load_lock(&manifest)?
        .map(|l| l.models)
        .unwrap_or_default();
    let mut entries: Vec<Entry> = Vec::new();
    let mut unresolved = Vec::new();
    let mut base = old.clone();
    for need in &needs {
        let have = apps.iter().any(|app| {
            mlib_plan::workflow::provided_by(&manifest, &lock, app, need).is_some()
                || mlib_plan::workflow::on_disk(app, need)
        });
        if have {
            continue;
        }
        let what = format!(
            "{}/{} (node {})",
            need.kind.types()[0],
            need.file,
            need.node
        );
        let Some(url) = &need.url else {
            unresolved.push(format!("{what}: the workflow gives no address for it"));
            continue;
        };
        // A file the workflow expects in a subfolder (`sdxl/x.safetensors`) gets a type of its
        // own, mapped to that subfolder in every ComfyUI app (as `mlib init` does).
        let base_type = need.kind.types()[0];
        let (model_type, file) = match need.file.rsplit_once('/') {
            Some((sub, file)) => {
                let model_type = format!("{base_type}-{}", sub.replace('/', "-"));
                let base_folder = mlib_manifest::Preset::ComfyUI
                    .folder(base_type)
                    .unwrap_or(base_type);
                for app in &apps {
                    base = edit::set_app_folder(
                        &base,
                        &app.name,
                        &model_type,
                        &quote(&format!("{base_folder}/{sub}")),
                    )
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "{what}: app `{}` has no `folders:` block mlib can add `{model_type}` to: map it by hand",
                            app.name
                        )
                    })?;
                }
                (model_type, file.to_owned())
            }
            None => (base_type.to_owned(), need.file.clone()),
        };
        let web = mlib_manifest::from_web_url(url).map_err(anyhow::Error::msg)?;
        let stem = Path::new(&need.file)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut name = mlib_plan::onboard::model_name(&stem);
        while manifest.models.contains_key(&name) || entries.iter().any(|e| e.name == name) {
            name.push_str("-wf");
        }
        let mut fields = vec![("source".to_owned(), quote(&web.source))];
        if let Some(revision) = &web.revision {
            fields.push(("revision".to_owned(), quote(revision)));
        }
        if let Some(sha256) = &need.sha256 {
            fields.push(("sha256".to_owned(), sha256.to_ascii_lowercase()));
        }
        fields.push(("type".to_owned(), model_type));
        // The name ComfyUI must list: a server may name the file otherwise.
        if !(web.source.starts_with("hf://") && web.source.ends_with(&file)) {
            fields.push(("file".to_owned(), quote(&file)));
        }
        if !args.apps.is_empty() {
            fields.push(("tags".to_owned(), format!("[{}]", args.apps.join(", "))));
        }
        entries.push(Entry {
            name,
            fields,
            remote: true,
        });
    }
    for line in &unresolved {
        printer.warn(format!("not added: {line}"));
    }
    if entries.is_empty() {
        printer.info(format!(
            "Nothing to add: {} needs {} model file{}, {}.",
            workflow.display(),
            needs.len(),
            if needs.len() == 1 { "" } else { "s" },
            if unresolved.is_empty() {
                "every one is there already"
            } else {
                "and the missing ones have no address in it (above)"
            }
        ));
        return Ok(if unresolved.is_empty() {
            Status::Success
        } else {
            Status::Failure
        });
    }
    write_entries_onto(global, &old, &base, entries, args, printer)
}

/// The version id of a `civitai:` source or a Civitai AIR.
fn civitai_version(source: &str) -> Option<u64> {
    let (_, rest) = source.split_once("civitai:")?;
    rest.rsplit('@').next()?.parse().ok()
}

fn is_remote(source: &str) -> bool {
    source.contains("://") || source.starts_with("civitai:") || source.contains("civitai:")
}

/// The folder a model of `kind` goes to, in the presets' names.
pub(super) fn type_of(kind: Kind) -> Option<String> {
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
pub(super) fn relative_to(path: &Path, dir: &Path) -> String {
    let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    match path.strip_prefix(dir) {
        Ok(rel) => format!("./{}", rel.display()),
        Err(_) => path.display().to_string(),
    }
}

/// A YAML double-quoted string.
pub(super) fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("\"{text}\""))
}

/// The change, as `diff -u` shows it.
pub(super) fn print_diff(printer: &Printer, old: &str, new: &str) {
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
