//! Path arithmetic for links.
//!
//! Relative symlinks are computed between *physical* locations: `..` in a symlink is resolved
//! by the kernel against the real parent directory, so a link computed from a path that runs
//! through another symlink (say `/workspace -> /mnt/disk`) would point to the wrong place.
//! Everything here therefore works on paths whose existing prefix has been canonicalized.

use std::collections::HashMap;
use std::io;
use std::path::{Component, Path, PathBuf};

/// Removes `.` and folds `..` without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The path from directory `from` to `to`, both absolute and normalized.
pub fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_components: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_components)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for component in &to_components[common..] {
        out.push(component.as_os_str());
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

/// Canonicalizes the longest existing prefix of `path` and appends the rest, so a path that
/// does not exist yet (an app folder mlib will create) still gets its physical location.
pub fn physical(path: &Path) -> io::Result<PathBuf> {
    let path = normalize(path);
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut out = real;
                for part in rest.iter().rev() {
                    out.push(part);
                }
                return Ok(out);
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let Some(parent) = existing.parent() else {
                    return Err(err);
                };
                if let Some(name) = existing.file_name() {
                    rest.push(name.to_owned());
                }
                existing = parent;
            }
            Err(err) => return Err(err),
        }
    }
}

/// Memoizes [`physical`] per directory: a plan resolves the same few app folders thousands
/// of times.
#[derive(Default)]
pub struct PhysicalCache {
    dirs: HashMap<PathBuf, PathBuf>,
}

impl PhysicalCache {
    pub fn dir(&mut self, dir: &Path) -> io::Result<PathBuf> {
        if let Some(found) = self.dirs.get(dir) {
            return Ok(found.clone());
        }
        let real = physical(dir)?;
        self.dirs.insert(dir.to_path_buf(), real.clone());
        Ok(real)
    }

    /// The physical location of a file inside `dir` (the file itself is not resolved, so a
    /// symlink keeps its own location).
    pub fn file(&mut self, path: &Path) -> io::Result<PathBuf> {
        match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => Ok(self.dir(parent)?.join(name)),
            _ => physical(path),
        }
    }
}

/// Where a symlink at `link` with content `content` points, lexically.
pub fn resolve_link_target(link: &Path, content: &Path) -> PathBuf {
    if content.is_absolute() {
        normalize(content)
    } else {
        let parent = link.parent().unwrap_or(Path::new("/"));
        normalize(&parent.join(content))
    }
}

/// The nearest existing ancestor of `path` (the path itself if it exists).
pub fn nearest_existing(path: &Path) -> Option<&Path> {
    let mut current = Some(path);
    while let Some(candidate) = current {
        if candidate.symlink_metadata().is_ok() {
            return Some(candidate);
        }
        current = candidate.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_between_siblings() {
        assert_eq!(
            relative(
                Path::new("/a/app/models/loras"),
                Path::new("/a/store/loras/x")
            ),
            PathBuf::from("../../../store/loras/x")
        );
        assert_eq!(
            relative(Path::new("/a"), Path::new("/a/b")),
            PathBuf::from("b")
        );
        assert_eq!(
            relative(Path::new("/a/b"), Path::new("/a/b")),
            PathBuf::from(".")
        );
    }

    #[test]
    fn normalize_folds_parent_components() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }

    #[test]
    fn physical_resolves_symlinked_prefix_of_missing_path() {
        let tmp = tempfile::tempdir().unwrap();
        let real = tmp.path().join("real");
        std::fs::create_dir(&real).unwrap();
        std::os::unix::fs::symlink(&real, tmp.path().join("alias")).unwrap();
        let got = physical(&tmp.path().join("alias/not/yet")).unwrap();
        assert_eq!(got, real.canonicalize().unwrap().join("not/yet"));
    }

    #[test]
    fn resolve_relative_link_content() {
        assert_eq!(
            resolve_link_target(Path::new("/x/app/m/f"), Path::new("../../store/f")),
            PathBuf::from("/x/store/f")
        );
    }
}
