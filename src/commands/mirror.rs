//! `mlib mirror push` and `mlib mirror ls`: filling a team mirror from the store, and seeing
//! what it holds. The object layout is `mlib_fetch::mirror::layout`'s.

use std::collections::{BTreeMap, HashMap};

use anyhow::{Result, bail};
use mlib_fetch::mirror::layout::{self, IndexedFile, ModelIndex};
use mlib_fetch::{MirrorClient, is_remote};
use mlib_manifest::MirrorUrl;
use mlib_manifest::lock::{Lock, LockedModel};
use mlib_store::Metadata;
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::progress::Progress;
use crate::remote;
use crate::render::bytes;
use crate::settings::{GlobalSettings, MirrorLsSettings, MirrorPushSettings};

pub fn push(
    global: &GlobalSettings,
    args: &MirrorPushSettings,
    printer: &Printer,
) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let target = match &args.to {
        Some(to) => to.clone(),
        None => pick_writable(&args.remote.mirrors_for(&ctx.manifest))?,
    };
    let config = remote::fetch_config(&args.remote, 1);
    let client = MirrorClient::open(&target, &config)?;
    if !client.writable() {
        return Err(mlib_fetch::MirrorError::ReadOnly {
            mirror: target.to_string(),
        }
        .into());
    }
    let lock = remote::load_lock(&ctx.manifest)?;
    let models = models_to_push(&ctx, &args.models, printer)?;
    // One listing instead of a HEAD per file: what the mirror already has is skipped.
    let present: HashMap<String, u64> = client
        .list(layout::BLOBS)?
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(key, size)| layout::blob_sha256(&key).map(|sha| (sha.to_owned(), size)))
        .collect();
    let progress = Progress::new(printer);
    let mut uploaded = Totals::default();
    let mut skipped = Totals::default();
    let mut indexes = 0;
    let mut id = 0u64;
    for metadata in &models {
        let dir = ctx.store.model_dir(&metadata.key());
        for file in &metadata.files {
            let key = layout::blob_key(&file.sha256);
            let already = present.get(&file.sha256) == Some(&file.size);
            if already {
                skipped.add(file.size);
            } else {
                id += 1;
                let label = format!("{}/{}", metadata.name, file.path);
                progress.start(id, &label, Some(file.size));
                let mut advance = |n: u64| progress.advance(id, n);
                let sent = client.put_file(&key, &dir.join(&file.path), &file.sha256, &mut advance);
                match sent {
                    Ok(()) => progress.finish(id),
                    Err(e) => {
                        progress.failed(id);
                        progress.clear();
                        return Err(e.into());
                    }
                }
                uploaded.add(file.size);
            }
            if printer.json {
                printer.event(json!({
                    "type": "mirror_file",
                    "model": metadata.name,
                    "path": file.path,
                    "sha256": file.sha256,
                    "size": file.size,
                    "uploaded": !already,
                }));
            } else {
                let what = if already { "present " } else { "uploaded" };
                printer.detail(format!(
                    "  {what} {}/{} ({})",
                    metadata.name,
                    file.path,
                    bytes(file.size)
                ));
            }
        }
        let locked = lock.as_ref().and_then(|l| l.models.get(&metadata.name));
        if let Some(index) = locked.and_then(|locked| index_of(locked, metadata)) {
            client.put_small(&layout::index_key(locked.expect("locked")), index.to_json())?;
            indexes += 1;
        }
    }
    progress.clear();
    if printer.json {
        printer.event(json!({
            "type": "mirror_push",
            "mirror": target.to_string(),
            "models": models.len(),
            "uploaded_files": uploaded.files,
            "uploaded_bytes": uploaded.bytes,
            "present_files": skipped.files,
            "present_bytes": skipped.bytes,
            "indexes": indexes,
        }));
    } else {
        printer.info(format!(
            "Pushed {} model{} to {target}: {} uploaded ({}), {} already there ({}).",
            models.len(),
            plural(models.len()),
            files(uploaded.files),
            bytes(uploaded.bytes),
            files(skipped.files),
            bytes(skipped.bytes),
        ));
    }
    Ok(Status::Success)
}

pub fn ls(global: &GlobalSettings, args: &MirrorLsSettings, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let mirrors = match &args.from {
        Some(from) => vec![from.clone()],
        None => args.remote.mirrors_for(&ctx.manifest),
    };
    if mirrors.is_empty() {
        bail!(no_mirror_message());
    }
    let config = remote::fetch_config(&args.remote, 1);
    let lock = remote::load_lock(&ctx.manifest)?;
    for mirror in &mirrors {
        list_one(&ctx, mirror, &config, lock.as_ref(), printer)?;
    }
    Ok(Status::Success)
}

fn list_one(
    ctx: &Context,
    mirror: &MirrorUrl,
    config: &mlib_fetch::FetchConfig,
    lock: Option<&Lock>,
    printer: &Printer,
) -> Result<()> {
    let client = MirrorClient::open(mirror, config)?;
    // S3 lists its objects; a plain HTTP server can only be asked object by object.
    let listed: Option<BTreeMap<String, u64>> = client.list(layout::BLOBS)?.map(|objects| {
        objects
            .into_iter()
            .filter_map(|(k, size)| layout::blob_sha256(&k).map(|s| (s.to_owned(), size)))
            .collect()
    });
    let index_count = client.list(layout::INDEXES)?.map(|i| i.len());
    let has = |sha256: &str| -> Result<Option<u64>> {
        Ok(match &listed {
            Some(listed) => listed.get(sha256).copied(),
            None => client.head(&layout::blob_key(sha256))?,
        })
    };
    if printer.json {
        printer.event(json!({
            "type": "mirror",
            "mirror": mirror.to_string(),
            "objects": listed.as_ref().map(BTreeMap::len),
            "bytes": listed.as_ref().map(|l| l.values().sum::<u64>()),
            "indexes": index_count,
        }));
    } else {
        match &listed {
            Some(listed) => printer.info(format!(
                "Mirror {mirror}: {} ({}), {} model index{}.",
                files(listed.len()),
                bytes(listed.values().sum()),
                index_count.unwrap_or(0),
                if index_count == Some(1) { "" } else { "es" }
            )),
            None => printer.info(format!(
                "Mirror {mirror} (HTTP: asked for this manifest's files one by one):"
            )),
        }
    }
    let mut covered = 0;
    let mut remote_models = 0;
    for model in ctx.manifest.models.values() {
        if !is_remote(&model.source) {
            continue;
        }
        remote_models += 1;
        let Some(locked) = lock.and_then(|l| l.models.get(&model.name)) else {
            report_model(
                printer,
                &model.name,
                "unlocked",
                0,
                0,
                0,
                "not in the lock: run `mlib lock`",
            );
            continue;
        };
        let index = client
            .get_small(&layout::index_key(locked))?
            .and_then(|b| ModelIndex::parse(&b));
        let mut present = 0;
        let mut size = 0;
        for file in &locked.files {
            size += file.size;
            let sha256 = file
                .sha256
                .clone()
                .or_else(|| index.as_ref()?.file(&file.path).map(|f| f.sha256.clone()));
            if let Some(sha256) = sha256
                && has(&sha256)? == Some(file.size)
            {
                present += 1;
            }
        }
        let total = locked.files.len();
        let state = if present == total {
            covered += 1;
            "covered"
        } else if present == 0 {
            "missing"
        } else {
            "partial"
        };
        report_model(printer, &model.name, state, present, total, size, "");
    }
    if !printer.json {
        printer.info(format!(
            "{covered} of {remote_models} remote model{} of {} covered.",
            plural(remote_models),
            ctx.manifest.path.display()
        ));
    }
    Ok(())
}

fn report_model(
    printer: &Printer,
    name: &str,
    state: &str,
    present: usize,
    total: usize,
    size: u64,
    why: &str,
) {
    if printer.json {
        printer.event(json!({
            "type": "mirror_model",
            "model": name,
            "state": state,
            "files_present": present,
            "files": total,
            "bytes": size,
        }));
        return;
    }
    let detail = match state {
        "covered" => format!("{}, {}", files(total), bytes(size)),
        "unlocked" => why.to_owned(),
        _ => format!("{present} of {} on the mirror", files(total)),
    };
    printer.info(format!("  {state:<8} {name}: {detail}"));
}

/// The manifest's remote models that are in the store (all, or those named).
fn models_to_push(ctx: &Context, named: &[String], printer: &Printer) -> Result<Vec<Metadata>> {
    for name in named {
        match ctx.manifest.models.get(name) {
            None => bail!("model {name} is not in {}", ctx.manifest.path.display()),
            Some(model) if !is_remote(&model.source) => bail!(
                "model {name} has a local source: mirrors serve models fetched from a remote \
                 source, by the hashes in the lock"
            ),
            Some(_) => {}
        }
    }
    let stored: HashMap<(String, String), Metadata> = ctx
        .store
        .scan()?
        .into_iter()
        .map(|(_, m)| ((m.name.clone(), m.model_type.clone()), m))
        .collect();
    let mut out = Vec::new();
    for model in ctx.manifest.models.values() {
        if !is_remote(&model.source) || !(named.is_empty() || named.contains(&model.name)) {
            continue;
        }
        match stored.get(&(model.name.clone(), model.model_type.clone())) {
            Some(metadata) => out.push(metadata.clone()),
            None if named.is_empty() => printer.detail(format!(
                "  not stored {}: `mlib apply` fetches it first",
                model.name
            )),
            None => bail!(
                "model {} is not in the store {} yet: run `mlib apply` first",
                model.name,
                ctx.store.root().display()
            ),
        }
    }
    Ok(out)
}

/// The index of a locked model, from the store's hashes of its files (`None` when the store
/// copy does not hold every file of the lock entry).
fn index_of(locked: &LockedModel, metadata: &Metadata) -> Option<ModelIndex> {
    let files = locked
        .files
        .iter()
        .map(|f| {
            let stored = metadata.files.iter().find(|s| s.path == f.path)?;
            Some(IndexedFile {
                path: f.path.clone(),
                size: stored.size,
                sha256: stored.sha256.clone(),
                blake3: stored.blake3.clone(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(ModelIndex {
        format: layout::INDEX_FORMAT,
        source: locked.source.clone(),
        commit: locked.commit.clone(),
        pushed_as: metadata.name.clone(),
        files,
    })
}

fn pick_writable(mirrors: &[MirrorUrl]) -> Result<MirrorUrl> {
    if let Some(s3) = mirrors.iter().find(|m| m.is_s3()) {
        return Ok(s3.clone());
    }
    if let Some(first) = mirrors.first() {
        bail!(
            "the mirrors configured ({first}...) are read over HTTP and cannot be written: give \
             the bucket behind them with `--to s3://BUCKET/PREFIX`"
        );
    }
    bail!(no_mirror_message())
}

fn no_mirror_message() -> String {
    "no mirror configured: add `mirrors: [s3://BUCKET/PREFIX]` to the manifest, set \
     MLIB_MIRRORS, or give --to / --from"
        .to_owned()
}

#[derive(Default)]
struct Totals {
    files: usize,
    bytes: u64,
}

impl Totals {
    fn add(&mut self, size: u64) {
        self.files += 1;
        self.bytes += size;
    }
}

fn files(n: usize) -> String {
    format!("{n} file{}", plural(n))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
