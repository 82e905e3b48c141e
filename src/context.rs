//! What every command needs: the manifest, its store, its registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mlib_manifest::{Manifest, StoreLayout};
use mlib_registry::Registry;
use mlib_store::{Layout, Store};

use crate::prefetch::{Prefetch, Prefetched, Purpose};

/// Raised when a manifest had errors that were already shown with their locations.
#[derive(Debug, thiserror::Error)]
#[error("the manifest has errors")]
pub struct ManifestReported;

pub struct Context {
    pub manifest: Manifest,
    /// The manifest's identity in the registry: its canonical path.
    pub manifest_id: String,
    pub store: Store,
}

impl Context {
    pub fn load(file: &Path, printer: &crate::printer::Printer) -> Result<Context> {
        Ok(Context::load_prefetching(file, printer, None)?.0)
    }

    /// [`Context::load`], reading the store's side of a plan (registry, stats) on another
    /// thread while the manifest parses (see `prefetch.rs`). The reads come back only when
    /// they were for this manifest's store.
    pub fn load_prefetching(
        file: &Path,
        printer: &crate::printer::Printer,
        purpose: Option<Purpose>,
    ) -> Result<(Context, Option<Prefetched>)> {
        let (manifest, prefetch) = load_manifest_prefetching(file, printer, purpose)?;
        // While the store side is still being read: the sources' stats, the one per-model
        // read that needs the parsed manifest.
        let sources = prefetch
            .as_ref()
            .map(|_| mlib_plan::SourceStats::read(&manifest));
        let mut prefetched = prefetch.and_then(|p| p.finish(&manifest.store));
        if let (Some(prefetched), Some(sources)) = (&mut prefetched, sources) {
            prefetched.observed.add_sources(sources);
        }
        if prefetched.is_some() {
            printer.detail("Read the store and its registry while the manifest was parsed.");
        }
        let ctx = Context::from_manifest(manifest);
        Ok((ctx, prefetched))
    }

    fn from_manifest(manifest: Manifest) -> Context {
        let manifest_id = manifest_id(&manifest.path);
        let layout = match manifest.layout {
            StoreLayout::Nested => Layout::Nested,
            StoreLayout::Flat => Layout::Flat,
        };
        let store = Store::new(manifest.store.clone(), layout);
        Context {
            manifest,
            manifest_id,
            store,
        }
    }

    /// `{store}/.mlib`: the registry and the apply lock live next to the bytes they describe.
    pub fn state_dir(&self) -> PathBuf {
        self.store.root().join(".mlib")
    }

    pub fn registry_path(&self) -> PathBuf {
        self.state_dir().join("registry.db")
    }

    /// Opens the registry, creating it (and the store's state folder) if needed.
    pub fn open_registry(&self) -> Result<Registry> {
        let path = self.registry_path();
        Registry::open(&path)
            .with_context(|| format!("cannot open the link registry {}", path.display()))
    }

    /// Opens the registry for reading only when it exists; planning must not create files, so
    /// a store that was never applied is planned against an empty, in-memory registry.
    pub fn open_registry_for_plan(&self) -> Result<(Registry, bool)> {
        let path = self.registry_path();
        if path.exists() {
            Ok((self.open_registry()?, true))
        } else {
            Ok((
                Registry::open_in_memory().context("cannot create an in-memory registry")?,
                false,
            ))
        }
    }

    /// Each app's root, physical, for showing targets relative to it.
    pub fn app_roots(&self) -> HashMap<String, PathBuf> {
        self.manifest
            .apps
            .values()
            .map(|app| {
                let root =
                    mlib_plan::paths::physical(&app.root).unwrap_or_else(|_| app.root.clone());
                (app.name.clone(), root)
            })
            .collect()
    }
}

pub fn load_manifest(file: &Path, printer: &crate::printer::Printer) -> Result<Manifest> {
    Ok(load_manifest_prefetching(file, printer, None)?.0)
}

fn load_manifest_prefetching(
    file: &Path,
    printer: &crate::printer::Printer,
    purpose: Option<Purpose>,
) -> Result<(Manifest, Option<Prefetch>)> {
    if !file.exists() {
        anyhow::bail!(
            "no manifest at {}: create one (see models.yaml.example) or point to it with -f FILE",
            file.display()
        );
    }
    let env = |name: &str| std::env::var(name).ok();
    // Only apply, which writes anyway, writes cache entries: plan writes nothing, ever.
    let update_cache = matches!(purpose, Some(Purpose::Apply { .. }));
    // Bounded (`MAX_MANIFEST_BYTES`); unreadable, too large or not UTF-8 is a diagnostic.
    let (parsed, prefetch) = match mlib_manifest::read(file) {
        Ok(text) => {
            let prefetch = purpose.and_then(|purpose| {
                let store = mlib_manifest::peek_store(&text, file, &env)?;
                Prefetch::start(store, manifest_id(file), purpose)
            });
            let parsed = match manifest_cache_dir() {
                Some(dir) => {
                    let build = build_identity();
                    let cache = mlib_manifest::Cache {
                        dir: &dir,
                        update: update_cache,
                        build: &build,
                    };
                    mlib_manifest::parse_cached(&text, file, &env, cache)
                }
                None => mlib_manifest::parse(&text, file, &env),
            };
            (parsed, prefetch)
        }
        Err(err) => (Err(err), None),
    };
    match parsed {
        Ok(manifest) => Ok((manifest, prefetch)),
        Err(err) => {
            crate::render::manifest_error(printer, err);
            Err(ManifestReported.into())
        }
    }
}

/// A manifest's identity in the registry: its canonical path (the same manifest reached
/// through a symlink or a relative path is the same manifest).
fn manifest_id(path: &Path) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    absolute
        .canonicalize()
        .unwrap_or(absolute)
        .to_string_lossy()
        .into_owned()
}

/// This program's version and build (its executable's size and modification time), so that
/// a rebuilt mlib, even of the same version, never uses another build's cached manifests.
fn build_identity() -> String {
    use std::os::unix::fs::MetadataExt;
    let exe = std::env::current_exe().and_then(std::fs::metadata);
    let stamp = exe.map_or_else(
        |_| "unknown".to_string(),
        |m| format!("{} {}.{}", m.len(), m.mtime(), m.mtime_nsec()),
    );
    format!("{} {stamp}", env!("CARGO_PKG_VERSION"))
}

/// Where parsed manifests are cached (see `mlib_manifest::parse_cached`):
/// `$MLIB_CACHE_DIR/manifests`, else `$XDG_CACHE_HOME/mlib/manifests`, else
/// `~/.cache/mlib/manifests`. `MLIB_CACHE_DIR=` (empty) turns the cache off.
fn manifest_cache_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = match std::env::var_os("MLIB_CACHE_DIR") {
        Some(dir) if dir.is_empty() => return None,
        Some(dir) => PathBuf::from(dir),
        None => var("XDG_CACHE_HOME")
            .or_else(|| var("HOME").map(|home| home.join(".cache")))?
            .join("mlib"),
    };
    Some(base.join("manifests"))
}

/// Reads the manifest's digest-relevant sibling: its lock file, when there is one.
pub fn lock_digest(manifest: &Manifest) -> Option<String> {
    use sha2::Digest;
    let bytes = std::fs::read(manifest.lock_path()).ok()?;
    Some(hex::encode(sha2::Sha256::digest(&bytes)))
}
