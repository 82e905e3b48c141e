//! Typed registry errors; messages name the file and say what to do.

use std::path::PathBuf;
use std::time::Duration;

use crate::LockHolder;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// An I/O error; `fs_err` already put the path in the message.
    #[error(transparent)]
    Io(#[from] std::io::Error),

    #[error(
        "registry {path}: {source}. If the file is damaged, move it aside and run `mlib scan` \
         to rebuild it from the store"
    )]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "registry {path} has schema version {found}, newer than this mlib knows ({known}): \
         upgrade mlib"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },

    #[error("{path} is not valid UTF-8; mlib records only UTF-8 paths: rename it")]
    NonUtf8Path { path: PathBuf },

    #[error("registry {path} has no lineage row: it was not created by mlib; move it aside")]
    NoLineage { path: PathBuf },

    #[error(
        "timed out after {}s waiting for the apply lock {path}{}. If that process is gone, \
         run `mlib force-unlock {}`",
        waited.as_secs(),
        holder.as_ref().map(|h| format!(", held by {h}")).unwrap_or_default(),
        holder.as_ref().map_or("ID", |h| h.id.as_str()),
    )]
    LockTimeout {
        path: PathBuf,
        holder: Option<Box<LockHolder>>,
        waited: Duration,
    },

    #[error(
        "lock id {given} is not the current holder of {path} ({holder}): nothing was unlocked. \
         Use the id shown in the \"waiting for lock\" message"
    )]
    LockIdMismatch {
        path: PathBuf,
        given: String,
        holder: Box<LockHolder>,
    },

    #[error(
        "the apply holding {path} is still running ({holder}): wait for it to finish or stop \
         it; `mlib force-unlock --force ID` releases its lock anyway, and two applies may then \
         run at once"
    )]
    HolderAlive {
        path: PathBuf,
        holder: Box<LockHolder>,
    },

    #[error("no apply lock is held on {path}: nothing to unlock")]
    NotLocked { path: PathBuf },

    #[error("lock holder file {path} is damaged ({source}); delete it if no apply is running")]
    HolderFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}
