//! The link registry: what mlib made, so it can safely unmake it.
//!
//! A SQLite database at `{store}/.mlib/registry.db`, next to the bytes it describes, so every
//! manifest sharing a store shares one registry. It records each link mlib created (with the
//! target's stat at creation, so a link someone replaced since is never touched) and an index
//! of the store's files (stat → hashes) that spares re-hashing. The index is a disposable
//! cache (`mlib scan` rebuilds it from the store's metadata.json files); the links are not.
//!
//! The registry also carries a lineage (a random id fixed at creation) and a serial bumped by
//! every change to the links: a saved plan remembers both and is refused when either moved.
//!
//! [`ApplyLock`] keeps applies to one store one at a time.

mod db;
mod error;
mod lock;
mod random;
mod types;

pub use db::Registry;
pub use error::RegistryError;
pub use lock::{ApplyLock, LockHolder};
pub use types::{FileStat, IndexEntry, LinkKind, LinkRecord, NewLink};
