//! What says a file is unchanged without reading it.

use serde::{Deserialize, Serialize};

use crate::platform;

/// Inode, size, modification and change time. A file whose stamp equals the one taken when
/// its bytes were hashed still has those bytes, unless someone set both times back on
/// purpose: ctime cannot be set from user space, and any write, truncation, chmod, rename or
/// new hard link moves it. A different stamp means "hash again before trusting".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FileStamp {
    pub ino: u64,
    pub size: u64,
    /// Nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
}

impl FileStamp {
    pub fn of(meta: &std::fs::Metadata) -> FileStamp {
        FileStamp {
            ino: platform::inode(meta),
            size: meta.len(),
            mtime_ns: platform::mtime_ns(meta),
            ctime_ns: platform::ctime_ns(meta),
        }
    }

    /// The stamp of what `path` names (symlinks followed).
    pub fn read(path: &std::path::Path) -> std::io::Result<FileStamp> {
        Ok(FileStamp::of(&fs_err::metadata(path)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_or_a_chmod_changes_the_stamp() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let first = FileStamp::read(&path).unwrap();
        assert_eq!(first, FileStamp::read(&path).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let second = FileStamp::read(&path).unwrap();
        assert_ne!(first.ctime_ns, second.ctime_ns, "chmod moves ctime");
        assert_eq!(first.mtime_ns, second.mtime_ns);
    }
}
