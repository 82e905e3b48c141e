//! Small filesystem helpers shared by the store modules.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// A name no other process or thread is using right now in `dir`: pid + counter + clock.
/// Callers still create it with `create_new`/`create_dir`, which fail rather than clobber.
pub(crate) fn unique_path(dir: &Path, prefix: &str, suffix: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    dir.join(format!(
        "{prefix}-{}-{n}-{nanos:08x}{suffix}",
        std::process::id()
    ))
}

/// Makes a rename or create in `dir` durable (the directory entry itself is data too).
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

/// Store files are read-only so that an app (or a person) writing through a link cannot
/// silently change bytes other apps share.
pub(crate) fn make_read_only(path: &Path) -> io::Result<()> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o444))
}

/// Removes a file or a folder tree. Store files are read-only, but removing them needs only
/// write permission on their (owner-writable) folders.
pub(crate) fn remove_any(path: &Path) -> io::Result<()> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        fs_err::remove_dir_all(path)
    } else {
        fs_err::remove_file(path)
    }
}
