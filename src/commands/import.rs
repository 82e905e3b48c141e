//! `mlib import PATH...`: files and folders into the store, and into the manifest as `add`
//! writes entries.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use mlib_plan::onboard::{MODEL_EXTENSIONS, is_model_folder, model_name};
use mlib_store::{Expected, ModelKey};

use super::add::{Entry, edited, quote, relative_to, type_of, write_entries};
use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{AddSettings, GlobalSettings, ImportSettings, RemoteSettings};

/// One thing to import.
struct Item {
    path: PathBuf,
    name: String,
    model_type: String,
    family: Option<String>,
    /// The entry's name in the store and the apps, when the original's cannot be kept (or
    /// the folder a set of files is kept in).
    file: Option<String>,
    /// For a sharded set or a model with companion files: their names in the folder `path`,
    /// kept together as one model (empty: `path` whole).
    files: Vec<String>,
    /// Where a file of the HuggingFace cache came from: its entry gets the `hf://` source
    /// (and the lock its commit), so another machine can download it again.
    origin: Option<mlib_fetch::CacheOrigin>,
}

pub fn run(global: &GlobalSettings, args: &ImportSettings, printer: &Printer) -> Result<Status> {
    let path = &global.file;
    if !path.exists() {
        bail!(
            "no manifest at {}: describe the apps you have with `mlib init`, or write one (see models.yaml.example)",
            path.display()
        );
    }
    let ctx = Context::load(global, printer)?;
    let old =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let items = items(&ctx, args)?;
    if args.move_files
        && let Some(item) = items.iter().find(|item| item.origin.is_some())
    {
        bail!(
            "{} is a file of the HuggingFace cache: --move would leave the cache naming a file that is gone. Import it without --move (the store gets its own copy: a reflink or a copy, the cache keeps its file); remove it from the cache with `hf cache delete` afterwards if you want. Nothing was imported.",
            item.path.display()
        );
    }
    let add = AddSettings {
        source: None,
        from_workflow: None,
        name: None,
        model_type: None,
        family: None,
        apps: args.apps.clone(),
        dry_run: true,
        remote: RemoteSettings::default(),
    };
    // The manifest must accept the entries before anything is copied (the sha256 is known
    // only once a file is read: a placeholder stands in for it here).
    let placeholder = "0".repeat(64);
    let check: Vec<Entry> = items
        .iter()
        .map(|item| entry(&ctx, item, args, Some(&placeholder)))
        .collect();
    if args.dry_run {
        let shown = items
            .iter()
            .map(|item| entry(&ctx, item, args, None))
            .collect();
        write_entries(global, &old, shown, &add, printer)?;
        printer.info("The sha256 of each file is computed as it is copied into the store.");
        return Ok(Status::Success);
    }
    edited(global, &old, &check, printer)?;
    if !ctx.state.store_writable {
        bail!(
            "the store {} cannot be written by you: import cannot copy into it. Ask whoever manages the store, or add the files with `mlib add` (apply then links them if the store has them). Nothing was copied.",
            ctx.store.root().display()
        );
    }
    // Under the store's lock: an apply or a gc must not see the store half filled.
    let _lock = super::approval::lock(&ctx, printer)?;
    let reuse = already_stored(&ctx, &items)?;
    let store_root = mlib_plan::paths::physical(ctx.store.root())?;
    // A file seen through a folder link to a flat store is the stored copy itself (an app
    // wrote it there): taken in, and never removed or moved as an "original".
    let in_store = |item: &Item| {
        mlib_plan::paths::physical(&item.path).is_ok_and(|p| p.starts_with(&store_root))
    };

    let mut entries = Vec::new();
    let mut stored = Vec::new();
    let mut to_move = Vec::new();
    for (i, (item, reused)) in items.iter().zip(reuse).enumerate() {
        let key = ModelKey {
            name: &item.name,
            model_type: &item.model_type,
            family: item.family.as_deref(),
        };
        let source = relative_to(&item.path, &ctx.manifest.dir);
        // On the store's filesystem a file moves in by rename: hashed here, once, and moved
        // only once the manifest names it (a kill in between leaves the original).
        let movable = args.move_files
            && reused.is_none()
            && item.files.is_empty()
            && item.origin.is_none()
            && !in_store(item)
            && ctx.store.can_move_in(&item.path);
        if movable {
            let stamp = mlib_fs::FileStamp::read(&item.path)
                .with_context(|| format!("cannot read {}", item.path.display()))?;
            let hashes = mlib_store::hash_file(&item.path)
                .with_context(|| format!("cannot read {}", item.path.display()))?;
            entries.push(entry(&ctx, item, args, Some(&hashes.sha256)));
            stored.push(None);
            to_move.push((i, hashes, stamp));
            continue;
        }
        let (meta, how) = match reused {
            Some(meta) => (meta, None),
            None => {
                let (meta, how) = ctx
                    .store
                    .ingest_local_how(
                        &key,
                        &item.path,
                        item.file.as_deref(),
                        // A cached blob is checked against its LFS oid as it is copied.
                        &Expected {
                            sha256: item.origin.as_ref().and_then(|o| o.sha256.clone()),
                            blake3: None,
                        },
                        &item.origin.as_ref().map_or(source, hf_source),
                        &|rel| item.files.is_empty() || item.files.iter().any(|f| f == rel),
                        &mut |_| {},
                    )
                    .with_context(|| {
                        format!("cannot copy {} into the store", item.path.display())
                    })?;
                (meta, Some(how))
            }
        };
        let sha256 = (!item.path.is_dir()).then(|| meta.files[0].sha256.clone());
        let together = match item.files.len() {
            0 => String::new(),
            n => format!(
                ", {n} files kept together in {}/",
                item.file.as_deref().unwrap_or_default()
            ),
        };
        let verb = how.map_or("already stored", mlib_store::Transfer::label);
        printer.info(format!(
            "  {verb} {} ({}{together})",
            item.name,
            crate::render::bytes(meta.size())
        ));
        entries.push(entry(&ctx, item, args, sha256.as_deref()));
        stored.push(Some(meta));
    }
    let status = write_entries(
        global,
        &old,
        entries,
        &AddSettings {
            dry_run: false,
            ..add
        },
        printer,
    )?;
    // The manifest names them and the registry knows this environment needs them (a gc
    // before the next apply keeps them): only now may the originals go.
    let manifest = crate::context::load_manifest(global, printer)?;
    lock_cached(&manifest, &items, &stored)?;
    ctx.open_registry()?
        .declare_environment(&ctx.env.to_record(&manifest))?;
    let mut refused = Vec::new();
    for (i, hashes, stamp) in to_move {
        let item = &items[i];
        let key = ModelKey {
            name: &item.name,
            model_type: &item.model_type,
            family: item.family.as_deref(),
        };
        let source = relative_to(&item.path, &ctx.manifest.dir);
        match ctx.store.ingest_moved(
            &key,
            &item.path,
            item.file.as_deref(),
            &hashes,
            stamp,
            &source,
        ) {
            Ok(meta) => printer.info(format!(
                "  moved {} ({})",
                item.name,
                crate::render::bytes(meta.size())
            )),
            Err(err) => refused.push((item, err)),
        }
    }
    if !refused.is_empty() {
        return Err(take_back(global, printer, &refused));
    }
    if args.move_files {
        for item in items
            .iter()
            .zip(&stored)
            .filter_map(|(i, s)| s.as_ref().map(|_| i))
        {
            if in_store(item) {
                printer.info(format!(
                    "  kept {}: it is in the store itself",
                    item.path.display()
                ));
                continue;
            }
            if item.files.is_empty() {
                mlib_fs::temp::remove_tree(&item.path)
                    .with_context(|| format!("cannot remove {}", item.path.display()))?;
            }
            // A set's folder holds other things too: only the set's files go.
            for file in &item.files {
                let path = item.path.join(file);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot remove {}", path.display()));
                    }
                }
            }
        }
    }
    Ok(status)
}

/// After moves that failed (each file is where it was, or in the quarantine when its place
/// was taken meanwhile): their entries come out of the manifest again, since they pin bytes
/// the store does not have (a file changed while it was hashed has other bytes now). The
/// error says what happened to each and what to do.
fn take_back(
    global: &GlobalSettings,
    printer: &Printer,
    refused: &[(&Item, mlib_store::StoreError)],
) -> anyhow::Error {
    let path = &global.file;
    let mut text = std::fs::read_to_string(path).unwrap_or_default();
    let mut removed = Vec::new();
    for (item, _) in refused {
        if let Some(edited) = mlib_manifest::edit::remove_model(&text, &item.name) {
            text = edited;
            removed.push(item.name.as_str());
        }
    }
    let env = |var: &str| std::env::var(var).ok();
    let written = !removed.is_empty()
        && mlib_manifest::parse(&text, path, &env).is_ok()
        && mlib_fs::write_atomic(path, text.as_bytes()).is_ok();
    let mut lines = Vec::new();
    for (item, err) in refused {
        let (cause, now) = match err {
            mlib_store::StoreError::ChangedSinceHashed { .. } => (
                "it changed while it was hashed".to_owned(),
                "It was not moved",
            ),
            err if item.path.exists() => (format!("{err:#}"), "It is where it was"),
            err => (
                format!("{err:#}"),
                "Its place was taken meanwhile: it is kept in the store's quarantine (`mlib status` shows it)",
            ),
        };
        let next = if written && removed.contains(&item.name.as_str()) {
            "models.yaml no longer names it: run the import again".to_owned()
        } else {
            format!(
                "models.yaml still names it as `{}`: remove that entry, then run the import again",
                item.name
            )
        };
        lines.push(format!(
            "cannot move {} into the store: {cause}. {now}, and {next}.",
            item.path.display()
        ));
    }
    if written {
        printer.detail(format!("removed {} from models.yaml", removed.join(", ")));
    }
    anyhow::anyhow!(lines.join("\n"))
}

/// For each item, the store's model when the store holds it already with the same bytes;
/// an error, before anything is copied, when it holds another model under that name.
fn already_stored(ctx: &Context, items: &[Item]) -> Result<Vec<Option<mlib_store::Metadata>>> {
    let mut found = Vec::new();
    for item in items {
        let key = ModelKey {
            name: &item.name,
            model_type: &item.model_type,
            family: item.family.as_deref(),
        };
        let Some(meta) = ctx.store.read_metadata(&key)? else {
            found.push(None);
            continue;
        };
        let same = item.path.is_file()
            && meta.files.len() == 1
            && mlib_store::hash_file(&item.path).is_ok_and(|h| h.sha256 == meta.files[0].sha256);
        if !same {
            bail!(
                "the store already holds another model as {} (another environment's?): rename {} before importing it, or import it with another --type. Nothing was copied.",
                key.id(),
                item.path.display()
            );
        }
        found.push(Some(meta));
    }
    Ok(found)
}

/// The PATHs as models: files by their header, model folders whole, other folders file by
/// file.
fn items(ctx: &Context, args: &ImportSettings) -> Result<Vec<Item>> {
    let mut paths = Vec::new();
    for path in &args.paths {
        let meta = std::fs::metadata(path)
            .with_context(|| format!("cannot import {}: it cannot be read", path.display()))?;
        if meta.is_file() || is_model_folder(path) {
            paths.push(path.clone());
        } else {
            collect_files(path, &mut paths);
        }
    }
    // The same file named twice (a folder and a file in it, a path through a symlinked
    // folder, another hard link) is one file: imported once, under its first name.
    let mut seen = std::collections::HashSet::new();
    paths.retain(|path| {
        std::fs::metadata(path).map_or(true, |m| seen.insert(mlib_fs::platform::file_id(&m)))
    });
    if paths.is_empty() {
        bail!("no model files in {}", args.paths[0].display());
    }
    let mut items: Vec<Item> = Vec::new();
    let mut untyped = Vec::new();
    for group in mlib_plan::sets::group(paths)? {
        let head = group.head().to_owned();
        let (mut model_type, mut family) = (args.model_type.clone(), None);
        if head.is_file() {
            match mlib_inspect::inspect(&head) {
                Ok(report) => {
                    model_type = model_type.or_else(|| type_of(report.kind));
                    family = report.family;
                }
                Err(mlib_inspect::InspectError::NotAModel { what }) => {
                    bail!("{} is not a model: it looks like {what}", head.display());
                }
                Err(_) => {}
            }
        }
        let Some(model_type) = model_type else {
            untyped.push(head.display().to_string());
            continue;
        };
        let (path, files, file_name) = match group {
            mlib_plan::sets::Group::Single(path) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                (path, Vec::new(), name)
            }
            // Kept in a folder named after the set, as a HuggingFace repo's files are.
            mlib_plan::sets::Group::Set(set) => (set.dir, set.files, set.stem),
        };
        let stem = if path.is_dir() {
            file_name.clone()
        } else {
            Path::new(&file_name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut name = model_name(&stem);
        while ctx.manifest.models.contains_key(&name) || items.iter().any(|i| i.name == name) {
            name.push_str("-2");
        }
        let mut safe = windows_safe(&file_name);
        // Two imports of one type must not want the same name in the apps' folder (two
        // shard sets both named after their folder, say).
        let entry_of = |i: &Item| {
            i.file.clone().unwrap_or_else(|| {
                i.path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
        };
        while items
            .iter()
            .any(|i| i.model_type == model_type && entry_of(i) == safe)
        {
            safe = match safe.rsplit_once('.') {
                Some((stem, ext)) if files.is_empty() && !stem.is_empty() => {
                    format!("{stem}-2.{ext}")
                }
                _ => format!("{safe}-2"),
            };
        }
        let origin = if files.is_empty() && path.is_file() {
            mlib_fetch::hf_cache_origin(&path)
        } else {
            None
        };
        items.push(Item {
            origin,
            file: (safe != file_name || !files.is_empty()).then_some(safe),
            files,
            path,
            name,
            model_type,
            family,
        });
    }
    if !untyped.is_empty() {
        bail!(
            "cannot tell what kind of model these are: {}; say which folder they go to with --type (or import them separately)",
            untyped.join(", ")
        );
    }
    Ok(items)
}

fn collect_files(dir: &Path, into: &mut Vec<PathBuf>) {
    let Ok(read) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = read.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if is_model_folder(&path) {
                into.push(path);
            } else {
                collect_files(&path, into);
            }
        } else if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            // Hidden files are not models (and mlib keeps names with a leading dot).
            continue;
        } else if path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| MODEL_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
        {
            into.push(path);
        }
    }
}

fn entry(ctx: &Context, item: &Item, args: &ImportSettings, sha256: Option<&str>) -> Entry {
    let mut fields = match &item.origin {
        Some(origin) => vec![
            ("source".to_owned(), quote(&hf_source(origin))),
            ("revision".to_owned(), quote(&origin.commit)),
        ],
        None => vec![(
            "source".to_owned(),
            quote(&relative_to(&item.path, &ctx.manifest.dir)),
        )],
    };
    if let (Some(sha256), false) = (sha256, item.path.is_dir()) {
        fields.push(("sha256".to_owned(), sha256.to_owned()));
    }
    fields.push(("type".to_owned(), item.model_type.clone()));
    if let Some(family) = &item.family {
        fields.push(("family".to_owned(), family.clone()));
    }
    if !item.files.is_empty() {
        let globs: Vec<String> = item
            .files
            .iter()
            .map(|f| quote(&mlib_manifest::literal_glob(f)))
            .collect();
        fields.push(("include".to_owned(), format!("[{}]", globs.join(", "))));
    }
    if let Some(file) = &item.file {
        fields.push(("file".to_owned(), quote(file)));
    }
    if !args.apps.is_empty() {
        fields.push(("tags".to_owned(), format!("[{}]", args.apps.join(", "))));
    }
    Entry {
        name: item.name.clone(),
        fields,
        remote: false,
    }
}

fn hf_source(origin: &mlib_fetch::CacheOrigin) -> String {
    format!("hf://{}/{}", origin.repo, origin.repo_path)
}

/// Pins the models imported out of the HuggingFace cache in the lock, from what the cache
/// says (repo, commit, path) and the bytes just stored: `--locked` and other machines need
/// no network to know them.
fn lock_cached(
    manifest: &mlib_manifest::Manifest,
    items: &[Item],
    stored: &[Option<mlib_store::Metadata>],
) -> Result<()> {
    let cached: Vec<_> = items
        .iter()
        .zip(stored)
        .filter_map(|(item, meta)| {
            Some((item, item.origin.as_ref()?, meta.as_ref()?.files.first()?))
        })
        .collect();
    if cached.is_empty() {
        return Ok(());
    }
    let lock_path = manifest.lock_path();
    let mut lock = mlib_manifest::lock::Lock::load(&lock_path)?.unwrap_or_default();
    for (item, origin, file) in cached {
        let Some(model) = manifest.models.get(&item.name) else {
            continue;
        };
        let mut locked = mlib_manifest::lock::LockedModel::for_model(model);
        locked.repo = Some(origin.repo.clone());
        locked.commit = Some(origin.commit.clone());
        locked.files = vec![mlib_manifest::lock::LockedFile {
            path: file.path.clone(),
            url: None,
            repo_path: Some(origin.repo_path.clone()),
            file_id: None,
            size: file.size,
            sha256: Some(file.sha256.clone()),
            blake3: Some(file.blake3.clone()),
        }];
        lock.models.insert(item.name.clone(), locked);
    }
    lock.save(&lock_path)?;
    Ok(())
}

/// `name` as NTFS can hold it: no `<>:"|?*`, no control characters, no trailing dot or space,
/// not a device name (`CON`, `NUL`, `COM1`...).
fn windows_safe(name: &str) -> String {
    let mut safe: String = name
        .chars()
        .map(|c| {
            if "<>:\"|?*\\".contains(c) || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    while safe.ends_with(['.', ' ']) {
        safe.pop();
    }
    // A leading dot hides a file, and mlib keeps such names for itself.
    safe = safe.trim_start_matches('.').to_owned();
    let stem = safe
        .split('.')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let device = ["CON", "PRN", "AUX", "NUL"].contains(&stem.as_str())
        || (stem.len() == 4
            && (stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.as_bytes()[3].is_ascii_digit());
    if device {
        safe.insert(0, '_');
    }
    if safe.is_empty() {
        safe.push_str("model");
    }
    safe
}

#[cfg(test)]
mod tests {
    use super::windows_safe;

    #[test]
    fn names_windows_can_hold() {
        for (name, safe) in [
            ("detail.safetensors", "detail.safetensors"),
            (
                "what?: v2 \"final\".safetensors",
                "what__ v2 _final_.safetensors",
            ),
            ("trailing. ", "trailing"),
            ("con.safetensors", "_con.safetensors"),
            ("COM3.pt", "_COM3.pt"),
            ("COMPUTER.pt", "COMPUTER.pt"),
            ("a\\b.pt", "a_b.pt"),
        ] {
            assert_eq!(windows_safe(name), safe, "{name}");
        }
    }
}
