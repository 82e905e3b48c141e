//! Bundle errors: each names the bundle (or store file) and says what to do.

use std::path::PathBuf;

/// A file whose bytes are not what the bundle lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadFile {
    pub model: String,
    pub path: String,
    /// `size`, `sha256` or `blake3`.
    pub what: &'static str,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for BadFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {} expected {}, got {}",
            self.model, self.path, self.what, self.expected, self.actual
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "{path} is not an mlib bundle: {reason}.\nMake one with `mlib bundle create -o FILE.tar` on a machine whose store has the models."
    )]
    NotABundle { path: PathBuf, reason: String },

    #[error(
        "{path} is a bundle of format {format}, made by mlib {made_by}; this mlib reads format {}.\nUse the same or a newer mlib on this machine.",
        crate::FORMAT
    )]
    NewerFormat {
        path: PathBuf,
        format: u32,
        made_by: String,
    },

    #[error(
        "{path} ends early ({detail}): it is truncated or damaged.\n{stored} model(s) read before that point were verified and stored; nothing else was. Copy the bundle again (compare its size, or its sha256sum, with the original's) and run the same command: what is stored already is skipped."
    )]
    Truncated {
        path: PathBuf,
        detail: String,
        stored: usize,
    },

    #[error(
        "{} model(s) in {path} do not have the bytes the bundle lists, and were not stored:\n{}\nThe bundle was damaged after it was made: copy it again and run the same command (models already stored are skipped).",
        .files.len(),
        .files.iter().map(|f| format!("  {f}")).collect::<Vec<_>>().join("\n")
    )]
    BadBytes { path: PathBuf, files: Vec<BadFile> },

    #[error(
        "the store's copy of {file} does not match its metadata.json ({detail}), so it was not bundled.\nRun `mlib apply` to restore the model (the changed file goes to quarantine), then bundle again."
    )]
    StoreFileChanged { file: PathBuf, detail: String },

    #[error("{path} already exists: choose another name with -o, or remove it first")]
    OutputExists { path: PathBuf },

    #[error(transparent)]
    Store(#[from] mlib_store::StoreError),

    #[error(transparent)]
    Io(#[from] std::io::Error),
}
