//! The rows: links, stats, index entries.

use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What identifies a file's current state without reading it. mlib compares a link's stat with
/// the one recorded at creation to know the link is still its own, untouched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct FileStat {
    pub dev: u64,
    pub ino: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    pub size: u64,
}

impl FileStat {
    /// The stat of the path itself (a symlink is not followed).
    pub fn lstat(p: &Path) -> io::Result<FileStat> {
        Ok(FileStat::from_metadata(&fs_err::symlink_metadata(p)?))
    }

    /// The stat of what the path points to (symlinks followed).
    pub fn stat(p: &Path) -> io::Result<FileStat> {
        Ok(FileStat::from_metadata(&fs_err::metadata(p)?))
    }

    pub fn from_metadata(meta: &std::fs::Metadata) -> FileStat {
        FileStat::new(
            meta.dev(),
            meta.ino(),
            meta.mtime(),
            meta.mtime_nsec(),
            meta.size(),
        )
    }

    /// From the raw fields of a `stat` (for callers that make the system call themselves).
    pub fn new(dev: u64, ino: u64, mtime_sec: i64, mtime_nsec: i64, size: u64) -> FileStat {
        FileStat {
            dev,
            ino,
            mtime_ns: mtime_sec
                .saturating_mul(1_000_000_000)
                .saturating_add(mtime_nsec),
            size,
        }
    }
}

/// How a link was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Symlink,
    Hardlink,
    Copy,
}

impl LinkKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            LinkKind::Symlink => "symlink",
            LinkKind::Hardlink => "hardlink",
            LinkKind::Copy => "copy",
        }
    }

    pub fn parse(s: &str) -> Option<LinkKind> {
        match s {
            "symlink" => Some(LinkKind::Symlink),
            "hardlink" => Some(LinkKind::Hardlink),
            "copy" => Some(LinkKind::Copy),
            _ => None,
        }
    }
}

impl std::fmt::Display for LinkKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A link about to be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// The manifest (canonical path) that made the link: only it may remove the link.
    pub manifest: String,
    pub model: String,
    pub app: String,
    /// The link itself, in the app's folder (unique: one record per path).
    pub target: PathBuf,
    /// What it points to in the store.
    pub source: PathBuf,
    pub kind: LinkKind,
    /// An absolute symlink across filesystems (breaks when a drive's mount point moves).
    pub external: bool,
    /// The target's `lstat` right after it was made.
    pub stat: FileStat,
}

/// A recorded link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub id: i64,
    pub manifest: String,
    pub model: String,
    pub app: String,
    pub target: PathBuf,
    pub source: PathBuf,
    pub kind: LinkKind,
    pub external: bool,
    pub stat: FileStat,
    /// RFC 3339.
    pub created_at: String,
}

/// One store file in the index: an unchanged stat means the hashes still hold.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Relative to the store root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub sha256: String,
    pub blake3: String,
}
