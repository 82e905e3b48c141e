//! Typed store errors. Each message names the path involved and says what to do, because the
//! CLI shows them to people as they are.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// An I/O error; `fs_err` already put the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(
        "{algorithm} mismatch for {path}: expected {expected}, got {actual}. \
         Nothing was stored. Check the {algorithm} pinned in models.yaml, or the file itself"
    )]
    HashMismatch {
        path: PathBuf,
        algorithm: &'static str,
        expected: String,
        actual: String,
    },

    #[error(
        "{path} is a folder, but a sha256/blake3 pin applies to a single file: \
         remove the pin from models.yaml or point the source at one file"
    )]
    PinOnFolder { path: PathBuf },

    #[error(
        "{path} changed after it was hashed: it was left where it is; run again to hash it again"
    )]
    ChangedSinceHashed { path: PathBuf },

    #[error("{path} does not exist: check the model's source path in models.yaml")]
    SourceMissing { path: PathBuf },

    #[error("{path} is neither a regular file nor a folder: mlib stores only files and folders")]
    UnsupportedFileType { path: PathBuf },

    #[error(
        "{path} nests folders (or folder symlinks) deeper than {max} levels, \
         probably a symlink loop: remove the loop or copy the real files"
    )]
    TooDeep { path: PathBuf, max: usize },

    #[error(
        "{path} is in the way of the model folder: it is not a folder. \
         Move it out of the store, then run again"
    )]
    InTheWay { path: PathBuf },

    #[error(
        "{path} is {actual} bytes but {expected} bytes were hashed: \
         it changed while staged; run again"
    )]
    SizeMismatch {
        path: PathBuf,
        expected: u64,
        actual: u64,
    },

    #[error(
        "{path}: models of the flat layout are not moved inside the store; apply fetches the \
         model again instead"
    )]
    RenameFlat { path: PathBuf },

    #[error("invalid {what} {value:?}: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: &'static str,
    },

    #[error(
        "nothing to store for model {name:?}: it has no files (or none its include/exclude globs take)"
    )]
    Empty { name: String },

    #[error(
        "{path} already belongs to model {owner:?} (flat layout: one folder per type): \
         give one of the two models another file name with `file:` in models.yaml"
    )]
    EntryConflict { path: PathBuf, owner: String },

    #[error(
        "{path} is not valid model metadata: {source}. \
         Fix the file by hand or delete it and import the model again"
    )]
    Metadata {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
