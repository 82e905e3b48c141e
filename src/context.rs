//! What every command needs: the manifest, its store, its registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use mlib_manifest::{Manifest, StoreLayout};
use mlib_registry::Registry;
use mlib_store::{Layout, Store};

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
        let manifest = load_manifest(file, printer)?;
        let manifest_id = manifest
            .path
            .canonicalize()
            .unwrap_or_else(|_| manifest.path.clone())
            .to_string_lossy()
            .into_owned();
        let layout = match manifest.layout {
            StoreLayout::Nested => Layout::Nested,
            StoreLayout::Flat => Layout::Flat,
        };
        let store = Store::new(manifest.store.clone(), layout);
        Ok(Context {
            manifest,
            manifest_id,
            store,
        })
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
    if !file.exists() {
        anyhow::bail!(
            "no manifest at {}: create one (see models.yaml.example) or point to it with -f FILE",
            file.display()
        );
    }
    match mlib_manifest::load(file, &|name| std::env::var(name).ok()) {
        Ok(manifest) => Ok(manifest),
        Err(err) => {
            crate::render::manifest_error(printer, &err);
            Err(ManifestReported.into())
        }
    }
}

/// Reads the manifest's digest-relevant sibling: the lock file, when there is one.
pub fn lock_digest(manifest: &Manifest) -> Option<String> {
    use sha2::Digest;
    let bytes = std::fs::read(manifest.dir.join("models.lock")).ok()?;
    Some(hex::encode(sha2::Sha256::digest(&bytes)))
}
