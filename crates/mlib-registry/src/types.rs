//! The rows: links, stats, index entries.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use mlib_fs::{FileStamp, Process, platform};

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
        FileStat {
            dev: platform::device(meta),
            ino: platform::inode(meta),
            mtime_ns: platform::mtime_ns(meta),
            size: meta.len(),
        }
    }

    /// What says a copied folder is untouched: the folder's device and inode, the latest
    /// modification time of anything in the tree (writing a file moves its mtime; adding,
    /// removing or renaming an entry moves its folder's), and the total size of its files.
    /// Symlinks inside are not followed.
    pub fn tree(p: &Path) -> io::Result<FileStat> {
        let top = fs_err::symlink_metadata(p)?;
        let mut stat = FileStat::from_metadata(&top);
        stat.size = 0;
        let mut stack = vec![p.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs_err::read_dir(&dir)? {
                let entry = entry?;
                let meta = entry.metadata()?;
                let this = FileStat::from_metadata(&meta);
                stat.mtime_ns = stat.mtime_ns.max(this.mtime_ns);
                if meta.is_dir() {
                    stack.push(entry.path());
                } else {
                    stat.size += this.size;
                }
            }
        }
        Ok(stat)
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
    /// The environment ([`Environment::id`]) that made the link: only it may remove the link.
    pub env: i64,
    pub model: String,
    pub app: String,
    /// The link itself, in the app's folder (unique: one record per path).
    pub target: PathBuf,
    /// What it points to in the store.
    pub source: PathBuf,
    pub kind: LinkKind,
    /// An absolute symlink across filesystems (breaks when a drive's mount point moves).
    pub external: bool,
    /// The target's `lstat` right after it was made (for a copied folder, [`FileStat::tree`]).
    pub stat: FileStat,
    /// For a copy: the inode of the store entry it was copied from.
    pub source_ino: Option<u64>,
    /// A symlink's content when it is not `source` (a container's view of the store).
    pub text: Option<PathBuf>,
}

/// A recorded link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    pub id: i64,
    pub env: i64,
    pub model: String,
    pub app: String,
    pub target: PathBuf,
    pub source: PathBuf,
    pub kind: LinkKind,
    pub external: bool,
    pub stat: FileStat,
    /// For a copy: the inode of the store entry it was copied from (`None` for copies
    /// recorded by schema 1).
    pub source_ino: Option<u64>,
    /// A symlink's content when it is not `source`: an app in a container sees the store at
    /// another path, so the link dangles on the host. Checked by its text, not followed.
    pub text: Option<PathBuf>,
}

/// One store file in the index: the hashes mlib verified, and the file's stamp when it did.
/// A file whose stamp still matches has those hashes; any other is hashed again before it is
/// trusted (see `mlib_fs::FileStamp`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexEntry {
    /// Relative to the store root, `/`-separated.
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub ino: u64,
    pub ctime_ns: i64,
    pub sha256: String,
    pub blake3: String,
}

impl IndexEntry {
    /// An entry for a file with this stamp and these (verified) hashes.
    pub fn new(path: String, stamp: &FileStamp, sha256: String, blake3: String) -> IndexEntry {
        IndexEntry {
            path,
            size: stamp.size,
            mtime_ns: stamp.mtime_ns,
            ino: stamp.ino,
            ctime_ns: stamp.ctime_ns,
            sha256,
            blake3,
        }
    }

    /// Whether a file with `stamp` is still the file that was verified.
    pub fn matches(&self, stamp: &FileStamp) -> bool {
        self.size == stamp.size
            && self.mtime_ns == stamp.mtime_ns
            && self.ino == stamp.ino
            && self.ctime_ns == stamp.ctime_ns
    }
}

/// An environment about to be recorded (or updated, by key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEnvironment {
    /// What identifies it: `name:{NAME}` for a named environment, `auto:{digest}` otherwise.
    pub key: String,
    /// The name given with `environment:` / `--env`, if any.
    pub name: Option<String>,
    /// How people know it: the name, or the manifest and the values of its variables.
    pub label: String,
    /// The manifest (canonical path) it was last applied from.
    pub manifest: String,
    /// App name → root (physical path), as last applied.
    pub apps: BTreeMap<String, String>,
    /// The models its manifest declares, as store model ids (`type/family/name`, see
    /// `mlib_store::ModelKey::id`).
    pub models: Vec<String>,
}

/// A recorded environment: what owns links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub id: i64,
    pub key: String,
    pub name: Option<String>,
    /// How people know it (see [`NewEnvironment::label`]); the manifest for legacy links.
    pub label: String,
    pub manifest: String,
    pub apps: BTreeMap<String, String>,
    /// RFC 3339.
    pub created_at: String,
    /// When `mlib apply` last ran for it (RFC 3339); `None` for links from schema 1.
    pub applied_at: Option<String>,
    /// The models it declared at its last apply (store model ids); `None` when not known
    /// (recorded before schema 3).
    pub models: Option<Vec<String>>,
}

/// The key schema 1's links of one manifest were migrated to.
pub fn legacy_key(manifest: &str) -> String {
    format!("{LEGACY_PREFIX}{manifest}")
}

const LEGACY_PREFIX: &str = "legacy:";

impl Environment {
    /// Links recorded by an mlib older than environments, not claimed by an apply since.
    pub fn is_legacy(&self) -> bool {
        self.key.starts_with(LEGACY_PREFIX)
    }
}

/// A link an apply is about to make (journaled first, so that after a kill the next apply
/// knows a file at `target` may be its own unrecorded work).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub target: PathBuf,
    pub env: i64,
    pub writer: Process,
}

/// An apply that started writing and has not finished (or was killed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub env: i64,
    pub writer: Process,
    /// RFC 3339.
    pub since: String,
}
