//! What every command needs: the manifest, its store, its environment, its state folder and
//! registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mlib_manifest::{Manifest, StoreLayout};
use mlib_plan::EnvIdentity;
use mlib_registry::{Registry, StateDir, StateOrigin};
use mlib_store::{Layout, Store};

use crate::prefetch::{Prefetch, Prefetched, Purpose};
use crate::settings::GlobalSettings;

/// Raised when a manifest had errors that were already shown with their locations.
#[derive(Debug, thiserror::Error)]
#[error("the manifest has errors")]
pub struct ManifestReported;

pub struct Context {
    pub manifest: Manifest,
    pub store: Store,
    /// The store's physical path (what the registry records).
    pub store_root: PathBuf,
    /// The environment this manifest (with these variables, or this `--env`) is.
    pub env: EnvIdentity,
    /// Where the registry and the apply lock are.
    pub state: StateDir,
}

impl Context {
    pub fn load(global: &GlobalSettings, printer: &crate::printer::Printer) -> Result<Context> {
        Ok(Context::load_prefetching(global, printer, None)?.0)
    }

    /// [`Context::load`], reading the store's side of a plan (registry, stats) on another
    /// thread while the manifest parses (see `prefetch.rs`). The reads come back only when
    /// they were for this manifest's store.
    pub fn load_prefetching(
        global: &GlobalSettings,
        printer: &crate::printer::Printer,
        purpose: Option<Purpose>,
    ) -> Result<(Context, Option<Prefetched>)> {
        let (manifest, prefetch) = load_manifest_prefetching(global, printer, purpose)?;
        // While the store side is still being read: the sources' stats, the one per-model
        // read that needs the parsed manifest.
        let sources = prefetch
            .as_ref()
            .map(|_| mlib_plan::SourceStats::read(&manifest));
        let ctx = Context::from_manifest(manifest, global, printer)?;
        let mut prefetched = prefetch.and_then(|p| p.finish(&ctx.manifest.store, &ctx.state.dir));
        if let (Some(prefetched), Some(sources)) = (&mut prefetched, sources) {
            prefetched.observed.add_sources(sources);
        }
        if prefetched.is_some() {
            printer.detail("Read the store and its registry while the manifest was parsed.");
        }
        Ok((ctx, prefetched))
    }

    /// The context of an already loaded `manifest` (`relocate` moves its paths first).
    pub fn from_manifest(
        manifest: Manifest,
        global: &GlobalSettings,
        printer: &crate::printer::Printer,
    ) -> Result<Context> {
        let manifest_id = manifest_id(&manifest.path);
        let layout = match manifest.layout {
            StoreLayout::Nested => Layout::Nested,
            StoreLayout::Flat => Layout::Flat,
        };
        let store = store_at(manifest.store.clone(), layout);
        let store_root =
            mlib_plan::paths::physical(store.root()).unwrap_or_else(|_| store.root().into());
        let state = locate_state(&store_root, &manifest, global.state_dir.as_deref())?;
        match state.origin {
            StateOrigin::ReadOnlyStore => printer.note(format!(
                "the store {} is read-only: mlib keeps its state for it in {}",
                store.root().display(),
                state.dir.display()
            )),
            StateOrigin::ForeignStateFolder => printer.note(format!(
                "{} is not writable for you (another user's?): mlib keeps your state for this store in {}, and cannot add models to the store",
                store.root().join(".mlib").display(),
                state.dir.display()
            )),
            _ => {}
        }
        // An empty --env / MLIB_ENV is no name at all (settings.rs).
        let name = global.env_name.as_deref();
        if let Some(name) = name {
            mlib_manifest::check_environment_name(name)
                .map_err(|why| anyhow::anyhow!("--env / MLIB_ENV: {why}"))?;
        }
        let env = EnvIdentity::of(&manifest, &manifest_id, name);
        Ok(Context {
            manifest,
            store,
            store_root,
            env,
            state,
        })
    }

    pub fn state_dir(&self) -> &Path {
        &self.state.dir
    }

    /// Opens the registry, creating it (and the state folder) if needed, and ties it to this
    /// store.
    pub fn open_registry(&self) -> Result<Registry> {
        let path = self.state.registry_path();
        let registry = Registry::open(&path)
            .with_context(|| format!("cannot open the link registry {}", path.display()))?;
        self.bind(&registry)?;
        Ok(registry)
    }

    /// Checks that `registry` (opened early, see `prefetch.rs`) describes this store, and
    /// records the store in it if it does not say yet.
    pub fn bind(&self, registry: &Registry) -> Result<()> {
        Ok(registry.bind_store(
            &self.store_root.to_string_lossy(),
            self.state.is_outside_store(),
        )?)
    }

    /// [`Context::bind`] for readers: checks, writes nothing.
    pub fn check_bound(&self, registry: &Registry) -> Result<()> {
        registry.check_store(
            &self.store_root.to_string_lossy(),
            self.state.is_outside_store(),
        )?;
        Ok(())
    }

    /// Opens the registry to read it, writing nothing: a store never applied is read as an
    /// empty, in-memory registry, and an older registry through an upgraded copy in memory.
    /// The flag says whether a registry file exists.
    pub fn open_registry_for_plan(&self) -> Result<(Registry, bool)> {
        let path = self.state.registry_path();
        if !path.exists() {
            let registry =
                Registry::open_in_memory().context("cannot create an in-memory registry")?;
            return Ok((registry, false));
        }
        let registry = Registry::open_for_reading(&path, mlib_fs::is_writable(&self.state.dir))
            .with_context(|| format!("cannot read the link registry {}", path.display()))?;
        self.check_bound(&registry)?;
        Ok((registry, true))
    }

    /// Each app's root, physical, for showing targets relative to it.
    /// How plan lines show app targets and store entries.
    pub fn targets(&self) -> crate::render::Targets {
        crate::render::Targets::new(self.app_roots(), &self.manifest.dir)
            .with_store(self.store_root.clone())
    }

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

/// Where the state of the store at `store_root` lives for this manifest and these flags.
fn locate_state(
    store_root: &Path,
    manifest: &Manifest,
    state_override: Option<&Path>,
) -> Result<StateDir> {
    let env = |name: &str| std::env::var(name).ok();
    Ok(mlib_registry::locate_state(
        store_root,
        manifest.state.as_deref(),
        state_override,
        &env,
    )?)
}

pub fn load_manifest(
    global: &GlobalSettings,
    printer: &crate::printer::Printer,
) -> Result<Manifest> {
    Ok(load_manifest_prefetching(global, printer, None)?.0)
}

fn load_manifest_prefetching(
    global: &GlobalSettings,
    printer: &crate::printer::Printer,
    purpose: Option<Purpose>,
) -> Result<(Manifest, Option<Prefetch>)> {
    let file = global.file.as_path();
    let state_override = global.state_dir.as_deref();
    if !file.exists() {
        anyhow::bail!(
            "no manifest at {}: create one (see models.yaml.example) or point to it with -f FILE",
            file.display()
        );
    }
    let env = |name: &str| std::env::var(name).ok();
    // Bounded (`MAX_MANIFEST_BYTES`); unreadable, too large or not UTF-8 is a diagnostic.
    let (parsed, prefetch) = match mlib_manifest::read(file) {
        Ok(text) => {
            let prefetch = purpose.and_then(|purpose| {
                let store = mlib_manifest::peek_store(&text, file, &env)?;
                let root = mlib_plan::paths::physical(&store).ok()?;
                // A guess: a manifest's own `state:` is not known before it is parsed (then
                // the early reads are of the wrong registry and are dropped).
                let state = mlib_registry::locate_state(&root, None, state_override, &env).ok()?;
                Prefetch::start(store, state.dir, manifest_id(file), purpose)
            });
            (mlib_manifest::parse(&text, file, &env), prefetch)
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

/// Reads the manifest's digest-relevant sibling: its lock file, when there is one.
pub fn lock_digest(manifest: &Manifest) -> Option<String> {
    use sha2::Digest;
    let bytes = std::fs::read(manifest.lock_path()).ok()?;
    Some(hex::encode(sha2::Sha256::digest(&bytes)))
}

/// The store at `root`: large files are copied into it with direct I/O unless
/// `MLIB_DIRECT_IO` turns that off (read as for downloads, by mlib-fetch's rule).
pub fn store_at(root: PathBuf, layout: Layout) -> Store {
    let direct_io = mlib_fetch::FetchConfig::direct_io_from_env(&|k| std::env::var(k).ok());
    Store::new(root, layout).with_direct_io(direct_io)
}
