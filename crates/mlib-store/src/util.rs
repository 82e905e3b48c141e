//! Small filesystem helpers shared by the store modules.

use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

pub(crate) use mlib_fs::sync_dir;
pub(crate) use mlib_fs::temp::remove_tree as remove_any;

/// Store files are read-only so that an app (or a person) writing through a link cannot
/// silently change bytes other apps share.
pub(crate) fn make_read_only(path: &Path) -> io::Result<()> {
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o444))
}
