//! Where mlib keeps a store's state (the registry and the apply lock).
//!
//! Next to the bytes it describes, `{store}/.mlib`, whenever the store can be written: every
//! environment sharing the store then shares one registry and one lock. A store mlib may not
//! write (a read-only mount of a team's file server, a workshop's shared models) still gets
//! plans, status and link-only applies: its state goes to a per-user folder named after the
//! store, so several users, each with their own state, share one read-only store. `state:` in
//! the manifest or `MLIB_STATE_DIR` put it anywhere.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::RegistryError;

/// Where the state of one store is, and why there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateDir {
    pub dir: PathBuf,
    pub origin: StateOrigin,
    /// Whether mlib may write into the store (fetch, quarantine, clean its staging).
    pub store_writable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateOrigin {
    /// `--state-dir` / `MLIB_STATE_DIR`.
    Override,
    /// The manifest's `state:`.
    Manifest,
    /// `{store}/.mlib`, the default.
    Store,
    /// The store is read-only: a per-user folder named after it.
    ReadOnlyStore,
    /// The store may be written, but its `.mlib` folder may not (another user made it): a
    /// per-user folder named after the store.
    ForeignStateFolder,
}

impl StateDir {
    pub fn registry_path(&self) -> PathBuf {
        self.dir.join("registry.db")
    }

    /// Whether the state folder is somewhere of its own, not inside the store it describes.
    pub fn is_outside_store(&self) -> bool {
        self.origin != StateOrigin::Store
    }
}

/// Decides where the state of `store` (physical path) lives. `env` reads environment
/// variables (`XDG_STATE_HOME`, `HOME`).
pub fn locate(
    store: &Path,
    manifest_state: Option<&Path>,
    override_dir: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<StateDir, RegistryError> {
    let in_store = store.join(".mlib");
    let root_writable = mlib_fs::is_writable(store);
    // Bytes enter the store through `.mlib/tmp`: writing the store needs both.
    let in_store_writable = if in_store.exists() {
        mlib_fs::is_writable(&in_store)
    } else {
        root_writable
    };
    let store_writable = root_writable && in_store_writable;
    let (dir, origin, why) = if let Some(dir) = override_dir {
        let why = "--state-dir / MLIB_STATE_DIR";
        (dir.to_path_buf(), StateOrigin::Override, why)
    } else if let Some(dir) = manifest_state {
        (
            dir.to_path_buf(),
            StateOrigin::Manifest,
            "the manifest's state:",
        )
    } else if in_store_writable {
        (
            in_store,
            StateOrigin::Store,
            "the store's own .mlib, writable",
        )
    } else if root_writable {
        let why = "the store is writable but its .mlib is not (another user's): a per-user folder";
        (
            user_state_dir(store, env)?,
            StateOrigin::ForeignStateFolder,
            why,
        )
    } else {
        let why = "the store is read-only: a per-user folder";
        (user_state_dir(store, env)?, StateOrigin::ReadOnlyStore, why)
    };
    tracing::debug!(
        store = %store.display(),
        state = %dir.display(),
        ?origin,
        why,
        store_writable,
        "state folder"
    );
    Ok(StateDir {
        dir,
        origin,
        store_writable,
    })
}

/// `$XDG_STATE_HOME/mlib/stores/{name}-{digest}` (else `~/.local/state/...`): one folder per
/// store, named so a person can tell which, and unique by the store's full path.
fn user_state_dir(
    store: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<PathBuf, RegistryError> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    let base = var("XDG_STATE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|home| home.join(".local/state")))
        .ok_or_else(|| RegistryError::NoStateDir {
            store: store.to_path_buf(),
        })?;
    let name: String = store
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = hex::encode(Sha256::digest(store.as_os_str().as_encoded_bytes()));
    Ok(base.join("mlib/stores").join(format!(
        "{}-{}",
        name.trim_start_matches('.'),
        &digest[..12]
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn a_writable_store_keeps_its_state_inside() {
        let tmp = tempfile::tempdir().unwrap();
        let state = locate(tmp.path(), None, None, &env_of(&[])).unwrap();
        assert_eq!(state.dir, tmp.path().join(".mlib"));
        assert_eq!(state.origin, StateOrigin::Store);
        assert!(state.store_writable);
        let manifest = tmp.path().join("m-state");
        let state = locate(tmp.path(), Some(&manifest), None, &env_of(&[])).unwrap();
        assert_eq!((state.dir, state.origin), (manifest, StateOrigin::Manifest));
        let over = tmp.path().join("o");
        let state = locate(
            tmp.path(),
            Some(&tmp.path().join("x")),
            Some(&over),
            &env_of(&[]),
        );
        assert_eq!(state.unwrap().dir, over);
    }

    #[test]
    fn a_read_only_store_gets_a_per_user_folder_named_after_it() {
        // /proc/self is never writable, even for root.
        let store = Path::new("/proc/self");
        let env = env_of(&[("HOME", "/home/ann")]);
        let state = locate(store, None, None, &env).unwrap();
        assert_eq!(state.origin, StateOrigin::ReadOnlyStore);
        assert!(!state.store_writable);
        let name = state.dir.file_name().unwrap().to_str().unwrap().to_owned();
        assert!(
            name.starts_with("self-") && name.len() == "self-".len() + 12,
            "{name}"
        );
        assert!(state.dir.starts_with("/home/ann/.local/state/mlib/stores"));
        let xdg = env_of(&[("HOME", "/home/ann"), ("XDG_STATE_HOME", "/xdg")]);
        assert!(
            locate(store, None, None, &xdg)
                .unwrap()
                .dir
                .starts_with("/xdg/mlib/stores")
        );
        let err = locate(store, None, None, &env_of(&[])).unwrap_err();
        assert!(err.to_string().contains("MLIB_STATE_DIR"), "{err}");
        // Another store, another folder.
        let other = locate(Path::new("/proc/1"), None, None, &env).unwrap();
        assert_ne!(other.dir, state.dir);
    }
}
