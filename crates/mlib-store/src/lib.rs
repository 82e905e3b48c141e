//! The model store: where every model's bytes live exactly once.
//!
//! The store is a plain folder people browse and back up, so its layout is human readable:
//! `{type}/{family}/{name}/` holding the model's entries (a file, or a folder for multi-file
//! models) and a `metadata.json` that is the single source of truth about that model
//! ([`Layout::Nested`], the default), or ComfyUI's own `{type}/{file}` with the metadata kept
//! aside in `{type}/.mlib-meta/{name}.json` ([`Layout::Flat`]).
//!
//! Bytes enter the store only through a staging folder on the store's own filesystem
//! (`{root}/.mlib/tmp`): they are hashed (sha256 and blake3, one read) while copied, fsynced,
//! verified, made read-only, and only then renamed into place, so a crash or a hash mismatch
//! never leaves a half-written or wrong file where apps would find it.

mod copy;
mod error;
mod hash;
mod ingest;
mod layout;
mod metadata;
mod moved;
mod quarantine;
mod receive;
mod rename;
mod scan;
mod staging;
mod transfer;
mod util;

pub use copy::copy_into_file;
pub use error::StoreError;
pub use hash::{Hashes, MultiHasher, copy_hashing, hash_file};
pub use ingest::{Expected, StagedFile, StagedModel};
pub use layout::{FLAT_META_DIR, Layout, ModelKey, Store};
pub use metadata::{FileRecord, Metadata};
pub use receive::Receiving;
pub use staging::Cleaned;
pub use transfer::Transfer;
