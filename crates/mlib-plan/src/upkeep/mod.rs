//! Upkeep of a long-lived, shared store: what is in it and who uses what ([`Inventory`]),
//! which models nothing needs any more ([`collectable`]), and taking links and models away
//! without touching anything a person changed ([`remove_link`]).
//!
//! "Who uses a model" has two answers, and both protect it: a registered link into it (an
//! app lists it now), and an environment whose manifest still exists and declared it at its
//! last apply (it will be linked again). An environment whose manifest is gone keeps its
//! links' models until it is forgotten (`mlib env forget`), so nothing ever dangles.

pub mod doctor;
mod inventory;
mod remove;

pub use inventory::{Current, EnvUse, Inventory, StoredModel, collectable};
pub use remove::{LinkState, Removed, delete_model, link_state, remove_link};

use std::path::PathBuf;

/// Why an upkeep step failed.
#[derive(Debug, thiserror::Error)]
pub enum UpkeepError {
    #[error(transparent)]
    Registry(#[from] mlib_registry::RegistryError),
    #[error(transparent)]
    Store(#[from] mlib_store::StoreError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
