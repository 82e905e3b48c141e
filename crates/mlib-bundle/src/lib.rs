//! Offline bundles: one tar holding a manifest, its lock and the bytes of its models, so a
//! machine with no network (an air-gapped site) can be provisioned with exactly what another
//! machine's store holds.
//!
//! A bundle is a plain tar (any tar tool lists it), written in this order:
//!
//! 1. `mlib-bundle.json`: the [`Header`]: format, who made it, and every model with each
//!    file's size, sha256 and blake3;
//! 2. `manifest.yaml` and, when there is one, `manifest.lock`: the files as they were;
//! 3. `models/{name}/{path}`: each model's files, in the header's order.
//!
//! Both ends stream: [`create`] reads each file from the store straight into the tar
//! (hashing it on the way, so a store file that changed is never bundled), and
//! [`Bundle::ingest`] writes each file from the tar straight into the store's staging area
//! (hashing it on the way, so a model whose bytes are wrong is never stored). Nothing is
//! copied twice, and the metadata comes first so a reader knows every hash before the bytes.
//!
//! Libraries never print: progress and outcomes go through callbacks, errors are
//! [`BundleError`]s that say what to do.

mod create;
mod error;
mod header;
mod ingest;
mod read;

pub use create::{Content, create};
pub use error::{BadFile, BundleError};
pub use header::{BundledFile, BundledModel, FORMAT, Header};
pub use ingest::{Event, Report};
pub use read::Bundle;
