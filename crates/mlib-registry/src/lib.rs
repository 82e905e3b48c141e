//! The link registry: what mlib made, so it can safely unmake it.
//!
//! A SQLite database in the store's state folder (`{store}/.mlib/registry.db` by default; a
//! per-user folder for a read-only store, or `state:` / `MLIB_STATE_DIR`). It records:
//!
//! - **environments**: what owns links. An environment is a manifest applied with one set of
//!   variable values, or a name given with `environment:`; applying one never touches the
//!   links of another.
//! - **links**: each link mlib created, with the target's stat at creation, so a link someone
//!   replaced since is never touched.
//! - **the file index**: store files → the hashes mlib verified and the file's stamp when it
//!   did (inode, size, mtime, ctime). It spares re-hashing an unchanged file; a changed stamp
//!   means hash again. A cache of trust that `mlib scan` rebuilds, never the truth (that is
//!   each model's metadata.json).
//! - **the journal**: links being made and applies in progress, so that the apply after a
//!   kill can tell mlib's own unfinished work from a user's files.
//!
//! The registry also carries a lineage (a random id fixed at creation) and a serial bumped by
//! every change to the links: a saved plan remembers both and is refused when either moved.
//!
//! [`ApplyLock`] keeps applies to one state folder one at a time. [`Registry::relocate`]
//! rewrites every recorded path under a folder that moved.

mod db;
mod environments;
mod error;
mod index;
mod journal;
mod links;
mod lock;
mod migrations;
mod random;
mod relocate;
mod state;
mod types;

pub use db::{Journal, Registry};
pub use error::RegistryError;
pub use lock::{ApplyLock, LockHolder};
pub use relocate::{RelocatedRows, Relocation, rebase};
pub use state::{StateDir, StateOrigin, locate as locate_state};
pub use types::{
    Environment, FileStat, IndexEntry, LinkKind, LinkRecord, NewEnvironment, NewLink, Pending, Run,
    legacy_key,
};

/// The schema version this mlib writes.
pub fn schema_version() -> u32 {
    migrations::MIGRATIONS.len() as u32
}
