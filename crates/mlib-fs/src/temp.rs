//! The one temporary name: `.{name}.mlib-tmp-{pid}-{start}-{n}`.
//!
//! Hidden (apps list no dot files), in the folder of the file it will become (so the final
//! rename is atomic and never crosses filesystems), and naming its writer, so that whoever
//! comes next can tell a temporary file of a live process (leave it) from one a kill left
//! behind (remove it): see [`remove_stale`].

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Process;

/// What every temporary name carries between the original name and the writer.
pub const TAG: &str = ".mlib-tmp-";

/// A fresh temporary path in `dir` for `name`, unique within this process.
pub fn path_for(dir: &Path, name: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let me = Process::current();
    dir.join(format!(".{name}{TAG}{}-{}-{n}", me.pid, me.start))
}

/// A temporary path next to `path`, for the file that will replace it.
pub fn sibling_of(path: &Path) -> PathBuf {
    let dir = crate::atomic::parent_dir(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path_for(dir, &name)
}

/// A parsed temporary name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempName {
    /// The name the file was going to have (`models.lock` for `.models.lock.mlib-tmp-...`).
    pub name: String,
    pub writer: Process,
}

impl TempName {
    /// `Some` when `file_name` is a temporary name mlib made.
    pub fn parse(file_name: &OsStr) -> Option<TempName> {
        let text = file_name.to_str()?;
        let rest = text.strip_prefix('.')?;
        let at = rest.rfind(TAG)?;
        let (name, tail) = (&rest[..at], &rest[at + TAG.len()..]);
        let mut parts = tail.split('-');
        let pid = parts.next()?.parse().ok()?;
        let start = parts.next()?.parse().ok()?;
        parts.next()?.parse::<u64>().ok()?;
        if parts.next().is_some() || name.is_empty() {
            return None;
        }
        Some(TempName {
            name: name.to_owned(),
            writer: Process { pid, start },
        })
    }

    /// Whether the process that wrote it is gone, so nobody will ever finish or remove it.
    pub fn is_stale(&self) -> bool {
        !self.writer.is_alive()
    }
}

/// Removes every temporary file or folder in `dir` whose writer is gone; returns what it
/// removed. A missing `dir` has nothing to remove.
pub fn remove_stale(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let entries = match fs_err::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        let stale = TempName::parse(&entry.file_name()).is_some_and(|t| t.is_stale());
        if stale {
            let path = entry.path();
            remove_tree(&path)?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Removes a file, a symlink or a whole folder. Folders mlib staged may hold read-only
/// subfolders (copies of store folders), so those are made writable first.
pub fn remove_tree(path: &Path) -> io::Result<()> {
    let meta = match fs_err::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return fs_err::remove_file(path);
    }
    make_dirs_writable(path);
    fs_err::remove_dir_all(path)
}

fn make_dirs_writable(dir: &Path) {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        // Best effort: what stays read-only makes the removal fail, with its own error.
        let _ = crate::platform::make_owner_rwx(&dir);
        if let Ok(read) = std::fs::read_dir(&dir) {
            for entry in read.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    stack.push(entry.path());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let path = path_for(Path::new("/x"), "model.safetensors");
        let parsed = TempName::parse(path.file_name().unwrap()).unwrap();
        assert_eq!(parsed.name, "model.safetensors");
        assert_eq!(parsed.writer, Process::current());
        assert!(!parsed.is_stale());
    }

    #[test]
    fn other_names_are_not_temporary() {
        for name in [
            "model.safetensors",
            ".hidden",
            ".x.mlib-tmp-",
            ".x.mlib-tmp-12",
            ".x.mlib-tmp-12-34",
            ".x.mlib-tmp-a-34-0",
            ".x.mlib-tmp-1-2-3-4",
            ".mlib-tmp-1-2-3",
            "x.mlib-tmp-1-2-3",
        ] {
            assert_eq!(TempName::parse(OsStr::new(name)), None, "{name}");
        }
        assert!(TempName::parse(OsStr::new(".a.mlib-tmp-b.mlib-tmp-1-2-3")).is_some());
    }

    #[test]
    fn only_stale_temporaries_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let mine = path_for(dir, "mine");
        std::fs::write(&mine, b"live").unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale_file = dir.join(format!(".lock{TAG}{dead}-1-0"));
        std::fs::write(&stale_file, b"x").unwrap();
        let stale_dir = dir.join(format!(".ingest{TAG}{dead}-1-1"));
        std::fs::create_dir_all(stale_dir.join("sub")).unwrap();
        std::fs::write(stale_dir.join("sub/f"), b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            stale_dir.join("sub"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        std::fs::write(dir.join("user-file"), b"keep").unwrap();

        let mut removed = remove_stale(dir).unwrap();
        removed.sort();
        let mut expected = vec![stale_dir, stale_file];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(mine.exists());
        assert!(dir.join("user-file").exists());
        assert!(remove_stale(&dir.join("missing")).unwrap().is_empty());
    }
}
