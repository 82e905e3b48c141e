//! Making links in app folders.
//!
//! A copy, and any link that replaces another, is first made under a temporary name in the
//! target's own folder (`mlib_fs::temp`: the name says which process made it, so a kill leaves
//! nothing the next apply cannot recognise and remove) and then renamed over the target: the
//! app never sees a half-made link, and a relink replaces the old link atomically instead of
//! leaving a window with nothing there.

use std::io;
use std::path::Path;

use crate::action::LinkHow;
use crate::paths;

/// What was actually made: `auto` may fall back when a filesystem refuses symlinks.
#[derive(Debug)]
pub struct Made {
    pub how: LinkHow,
}

/// Creates (or atomically replaces) `target` as a link to `source`.
///
/// `replace` must be true only when the caller verified that whatever is at `target` is
/// mlib's own link; otherwise an existing target makes this fail with `AlreadyExists`.
pub fn make(source: &Path, target: &Path, how: LinkHow, replace: bool) -> io::Result<Made> {
    let parent = target
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "link target has no parent"))?;
    fs_err::create_dir_all(parent)?;
    // A new symlink or hardlink is made in place: creating it fails if anything appeared at
    // the target meanwhile, which is exactly the "never replace what is not ours" check.
    let direct = !replace && how != LinkHow::Copy;
    let at = if direct {
        target.to_path_buf()
    } else {
        mlib_fs::temp::sibling_of(target)
    };
    if !direct {
        let _ = remove_any(&at);
    }
    let made = match how {
        LinkHow::RelativeSymlink => symlink(&paths::relative(parent, source), &at),
        LinkHow::AbsoluteSymlink => symlink(source, &at),
        LinkHow::Hardlink => fs_err::hard_link(source, &at),
        LinkHow::Copy => copy_tree(source, &at),
    };
    if let Err(err) = made {
        if !direct {
            let _ = remove_any(&at);
        }
        return Err(err);
    }
    if direct {
        return Ok(Made { how });
    }
    let placed = if replace {
        // A copied folder cannot be renamed over a non-empty folder: remove the old one first.
        if target.is_dir() && !target.is_symlink() {
            let _ = remove_any(target);
        }
        fs_err::rename(&at, target)
    } else if target.symlink_metadata().is_ok() {
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{} appeared while mlib was working; left alone",
                target.display()
            ),
        ))
    } else {
        fs_err::rename(&at, target)
    };
    if let Err(err) = placed {
        let _ = remove_any(&at);
        return Err(err);
    }
    Ok(Made { how })
}

/// Removes a link (or a copy) mlib made.
pub fn remove(target: &Path) -> io::Result<()> {
    remove_any(target)
}

fn remove_any(path: &Path) -> io::Result<()> {
    // Copies of store folders keep the store's read-only bits: remove_tree makes them
    // removable first.
    mlib_fs::temp::remove_tree(path)
}

fn symlink(content: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(content, at).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot create symlink {}: {err}", at.display()),
        )
    })
}

fn copy_tree(source: &Path, to: &Path) -> io::Result<()> {
    if source.is_dir() {
        fs_err::create_dir_all(to)?;
        for entry in fs_err::read_dir(source)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        fs_err::copy(source, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_symlink_resolves_and_replaces_atomically() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let store = root.join("store/a.bin");
        std::fs::create_dir_all(store.parent().unwrap()).unwrap();
        std::fs::write(&store, b"abc").unwrap();
        let target = root.join("app/models/a.bin");
        make(&store, &target, LinkHow::RelativeSymlink, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert!(std::fs::read_link(&target).unwrap().is_relative());
        // Without `replace`, an existing target is never touched.
        let err = make(&store, &target, LinkHow::AbsoluteSymlink, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        make(&store, &target, LinkHow::AbsoluteSymlink, true).unwrap();
        assert_eq!(std::fs::read_link(&target).unwrap(), store);
    }
}
