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
    #[error(
        "app `{app}`'s folder {} lies inside another mlib store, {} (after following symlinks: \
         another manifest's folder link, say): links there would replace that store's files. \
         Give the app a folder of its own, or use that store (`store:`) in this manifest",
        folder.display(),
        store.display()
    )]
    InsideAnotherStore {
        app: String,
        folder: PathBuf,
        store: PathBuf,
    },
    /// Local sources of models the store does not have (or must copy again) that are not
    /// there: apply could only fail on them, so the plan says so first.
    #[error(
        "{}\nPut the file or folder there, or fix `source:` in the manifest.",
        missing_sources(.missing, .waiting)
    )]
    MissingSources {
        /// Each model, its source, and why the store's copy does not do.
        missing: Vec<(String, PathBuf, crate::FetchReason)>,
        /// Files a killed mlib was moving into the store, waiting in staging to go back.
        waiting: Vec<PathBuf>,
    },
    /// `link: hardlink` asked for where a hard link cannot be made.
    #[error(
        "app `{app}` asks for hard links (`link: hardlink`), but its folder {} is not on the \
         store's filesystem and mount ({}), so they cannot be made. Use `link: symlink` or \
         `link: auto` for this app, or put the store on the app's filesystem",
        folder.display(),
        store.display()
    )]
    HardlinkAcrossFilesystems {
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

fn missing_sources(
    missing: &[(String, PathBuf, crate::FetchReason)],
    waiting: &[PathBuf],
) -> String {
    use crate::FetchReason;
    let lines: Vec<String> = missing
        .iter()
        .map(|(model, path, reason)| {
            let held = waiting
                .iter()
                .any(|w| w == path || std::path::absolute(path).is_ok_and(|p| &p == w));
            let note = if held {
                " (a killed mlib was moving it into the store: it waits in the store's staging folder, and `mlib apply` or `mlib doctor --fix` puts it back)"
            } else {
                ""
            };
            // What is wrong with the store's copy, when there is one.
            let store = match reason {
                FetchReason::Corrupt => {
                    "the store's copy is damaged (its bytes are not the ones stored)"
                }
                FetchReason::Damaged => "the store's copy is incomplete (a file is missing)",
                FetchReason::HashChanged => {
                    "the store's copy has another hash than the manifest pins"
                }
                FetchReason::Missing | FetchReason::SourceChanged => {
                    "the store does not have the model"
                }
            };
            format!(
                "model `{model}`: its source {} does not exist, and {store}{note}",
                path.display()
            )
        })
        .collect();
    lines.join("\n")
}

impl PlanError {
    pub(crate) fn io_plain(err: io::Error) -> PlanError {
        PlanError::IoPlain(err)
    }
}

/// Why one action of an apply failed; the other actions still ran, and
/// [`ApplyReport::failed`](crate::ApplyReport) pairs each failed action with its error.
///
/// A message says what went wrong and what to do, not which link or model it is about: it
/// is shown after the action's own line (`+ link  sdxl comfyui: models/checkpoints/...`).
/// The fields say where, for callers that want more than the message.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The registry no longer records the link as this environment's (another apply
    /// changed it since the plan was made): what is there is not touched.
    #[error(
        "the registry no longer has this link; left alone. Run `mlib plan` to see what is \
         there now"
    )]
    NotOurs { target: PathBuf },

    /// What is at the target is not what the plan saw: left alone.
    #[error("changed since the plan was made; left alone. Run `mlib plan` to see what changed")]
    ChangedSincePlan { target: PathBuf },

    /// Something was put at the target while the link was being made: left alone.
    #[error(
        "something appeared there while mlib was working; left alone. Run `mlib plan` to see \
         what it is"
    )]
    Appeared { target: PathBuf },

    /// Making the link (or looking at it afterwards) failed.
    #[error("{source} (run `mlib apply` again once that is fixed)")]
    Link {
        target: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Removing mlib's own link failed.
    #[error("cannot remove it: {source} (run `mlib apply` again once that is fixed)")]
    Unlink {
        target: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A file to adopt could not be read to check its hash again: left alone.
    #[error("cannot be read to check its sha256: {source}; left alone")]
    Unreadable {
        target: PathBuf,
        #[source]
        source: io::Error,
    },

    /// Copying a local model (or a file to adopt) into the store failed.
    #[error("{source}")]
    Store {
        model: String,
        #[source]
        source: mlib_store::StoreError,
    },

    /// A model's changed store files could not be moved to quarantine, so it was not fetched
    /// again (nothing is deleted to make room).
    #[error(
        "cannot move the changed store files aside: {source}; the model was not fetched again \
         (run `mlib apply` again once that is fixed)"
    )]
    Quarantine {
        model: String,
        #[source]
        source: mlib_store::StoreError,
    },

    /// A model's `include`/`exclude` glob is invalid (validation reports it first; only a
    /// manifest built by hand gets here).
    #[error("{source}")]
    BadGlob {
        model: String,
        #[source]
        source: mlib_manifest::BadGlob,
    },

    /// A remote model could not be fetched.
    #[error("{source}")]
    Fetch {
        model: String,
        #[source]
        source: RemoteError,
    },

    /// A link of a model whose fetch failed: not made (its store entry is missing or old).
    #[error(
        "skipped: model `{model}` could not be fetched (see its error above); run `mlib apply` \
         again once that is fixed"
    )]
    SkippedFetchFailed { model: String },

    /// The plan names a model the manifest does not have (a plan made from another manifest).
    #[error("model `{model}` is not in the manifest: make a new plan with `mlib plan`")]
    UnknownModel { model: String },

    /// The registry could not be read or written.
    #[error(transparent)]
    Registry(#[from] mlib_registry::RegistryError),
}

/// Why [`RemoteFetcher::fetch`](crate::RemoteFetcher) could not fetch a remote model. The
/// CLI's fetcher maps its downloader's errors and the store's into this.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// Downloading failed (the network, the server, a token, a hash): the downloader's own
    /// error, whose message says what to do.
    #[error(transparent)]
    Download(Box<dyn std::error::Error + Send + Sync>),

    /// The downloaded files could not be moved into the store.
    #[error(transparent)]
    Store(#[from] mlib_store::StoreError),

    /// The model was not resolved to exact files before apply.
    #[error("model `{model}` was not resolved: run `mlib lock`, then `mlib apply` again")]
    NotResolved { model: String },

    /// This caller cannot fetch remote sources at all.
    #[error("remote source {url} cannot be fetched here: run `mlib apply` to fetch it")]
    Unsupported { url: String },
}
