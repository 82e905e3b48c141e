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

    #[error("registry {path}: {}", sqlite_advice(source))]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "registry {path} is damaged ({report}). Move it aside and run `mlib scan` to rebuild \
         what can be rebuilt from the store"
    )]
    Damaged { path: PathBuf, report: String },

    #[error(
        "registry {path} has schema version {found}, newer than this mlib knows ({known}): \
         upgrade mlib"
    )]
    TooNew {
        path: PathBuf,
        found: u32,
        known: u32,
    },

    #[error(
        "the store {store} is read-only, so mlib keeps its state in a folder of your own, but \
         neither XDG_STATE_HOME nor HOME is set: set MLIB_STATE_DIR (or `state:` in the \
         manifest) to a folder mlib may write"
    )]
    NoStateDir { store: PathBuf },

    #[error(
        "the state folder of {path} describes the store {registered}, not {store}: give each \
         store a state folder of its own (`state:` in the manifest or MLIB_STATE_DIR)"
    )]
    OtherStore {
        path: PathBuf,
        registered: String,
        store: String,
    },

    #[error(
        "{} is recorded as a link of another environment (id {env}); mlib does not take a \
         link from the environment that made it",
        target.display()
    )]
    TargetOwned { target: PathBuf, env: i64 },

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

/// SQLite's message with what to do about it: a registry that cannot be written is a
/// permission or mount problem, not damage; only real corruption calls for moving it aside.
fn sqlite_advice(source: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode;
    let advice = match source.sqlite_error_code() {
        Some(ErrorCode::ReadOnly | ErrorCode::PermissionDenied | ErrorCode::CannotOpen) => {
            ". mlib cannot write there: give it write access, or keep mlib's state elsewhere \
             with `state:` in the manifest or MLIB_STATE_DIR"
        }
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            ". The file is damaged: move it aside and run `mlib scan` to rebuild what can be \
             rebuilt from the store"
        }
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
            ". Another mlib holds it: wait for it, then try again"
        }
        _ => "",
    };
    format!("{source}{advice}")
}
