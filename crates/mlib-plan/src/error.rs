use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Registry(#[from] mlib_registry::RegistryError),
    #[error("model `{model}`: {source}")]
    Store {
        model: String,
        #[source]
        source: mlib_store::StoreError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    IoPlain(io::Error),
    #[error(
        "app `{app}`'s folder {} and the store {} are the same place or one holds the other \
         (after following symlinks): links there could replace the store's own files. Give \
         the store a folder of its own, outside every app's model folders",
        folder.display(),
        store.display()
    )]
    NestedStore {
        app: String,
        folder: PathBuf,
        store: PathBuf,
    },
    #[error("{} is not a usable plan file: {reason}", path.display())]
    BadPlanFile { path: PathBuf, reason: String },
    #[error("cannot save the plan to {}: {}", path.display(), refusal.describe(path))]
    Destination {
        path: PathBuf,
        refusal: crate::destination::Refusal,
    },
    #[error(
        "{} was modified after `mlib plan` saved it (checksum mismatch): make a new plan with `mlib plan -o FILE`",
        path.display()
    )]
    ModifiedPlan { path: PathBuf },
    /// A path in the plan that JSON cannot hold (not UTF-8).
    #[error("cannot write the plan as JSON: {0}")]
    Serialize(serde_json::Error),
    #[error("Saved plan is stale: {why}. Run `mlib plan -o FILE` again and review it.")]
    StalePlan { why: String },
}

impl PlanError {
    pub(crate) fn io_plain(err: io::Error) -> PlanError {
        PlanError::IoPlain(err)
    }
}
