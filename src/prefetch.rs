//! The store-side reads of a plan, started while the manifest is still being parsed.
//!
//! A no-op plan of a large manifest is two kinds of work of about the same size: parsing the
//! YAML (CPU) and reading the registry plus stat'ing every recorded link and store file
//! (system calls). The second needs only the store's path, which
//! [`mlib_manifest::peek_store`] reads off the manifest's text, so it runs on its own thread
//! in parallel with the first. The guess is checked against the parsed manifest: when it was
//! wrong, or anything failed, the early work is dropped and the command reads the store the
//! ordinary way afterwards (which reports errors properly). It is an optimisation only.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::Duration;

use mlib_plan::Observed;
use mlib_registry::{ApplyLock, Registry};
use tracing::debug;

/// What the early reads produced.
pub struct Prefetched {
    /// For apply: the store's apply lock, taken before anything was read (only if it was free
    /// at once; otherwise apply waits for it the ordinary way, with its messages).
    pub lock: Option<ApplyLock>,
    pub registry: Registry,
    pub observed: Observed,
}

/// Which command the reads are for.
pub enum Purpose {
    Plan,
    /// Apply reads under the store's apply lock, so what it reads stays true until it acts.
    Apply {
        command: String,
    },
}

pub struct Prefetch {
    store: PathBuf,
    state: PathBuf,
    /// Taken by [`Prefetch::finish`]; otherwise joined on drop, so that a command that stops
    /// early (a manifest with errors) leaves nothing behind: the lock is released and the
    /// registry closed before the process exits.
    handle: Option<JoinHandle<Option<Prefetched>>>,
}

impl Prefetch {
    /// Starts the reads for the store at `store`, whose state is (probably) in `state`, and
    /// the manifest whose identity (canonical path) is `manifest_id`, if there is a registry
    /// (a store never applied has nothing to read early). Only a registry mlib may write is
    /// read early: opening one migrates it, and apply locks next to it.
    pub fn start(
        store: PathBuf,
        state: PathBuf,
        manifest_id: String,
        purpose: Purpose,
    ) -> Option<Prefetch> {
        let registry_path = state.join("registry.db");
        if !registry_path.is_file() || !mlib_fs::is_writable(&state) {
            debug!(
                state = %state.display(),
                "no early read: no registry there, or one mlib may not write"
            );
            return None;
        }
        let state_dir = state.clone();
        let root = store.clone();
        // No thread to be had (a container's pid limit, say): then simply no early reads.
        let spawned = std::thread::Builder::new()
            .name("prefetch".into())
            .spawn(move || {
                // Plan only reads (an older registry is read through an upgraded copy); apply,
                // under the lock, may upgrade it.
                let (lock, registry) = match purpose {
                    Purpose::Plan => (None, Registry::open_for_reading(&registry_path, true).ok()?),
                    Purpose::Apply { command } => (
                        Some(
                            ApplyLock::acquire(&state, &command, Duration::ZERO, &mut |_| {})
                                .ok()?,
                        ),
                        Registry::open(&registry_path).ok()?,
                    ),
                };
                let observed = Observed::read(&registry, &root, &manifest_id).ok()?;
                Some(Prefetched {
                    lock,
                    registry,
                    observed,
                })
            });
        Some(Prefetch {
            store,
            state: state_dir,
            handle: Some(spawned.ok()?),
        })
    }

    /// The reads, if they were for `store` and `state` (the parsed manifest's) and succeeded.
    pub fn finish(mut self, store: &Path, state: &Path) -> Option<Prefetched> {
        let Some(done) = self.handle.take()?.join().ok().flatten() else {
            debug!("the early read failed (or found the apply lock taken): reading again");
            return None;
        };
        if self.store != store || self.state != state {
            // Dropping `done` releases a lock taken for the wrong store.
            debug!(
                guessed_store = %self.store.display(),
                store = %store.display(),
                guessed_state = %self.state.display(),
                state = %state.display(),
                "the early read was of another store or state folder: thrown away"
            );
            return None;
        }
        debug!(store = %store.display(), "the early read is used");
        Some(done)
    }
}

impl Drop for Prefetch {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
