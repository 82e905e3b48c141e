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

/// Creates (or atomically replaces) `target` as a link to `source`. `text`: what an absolute
/// symlink says instead of `source`'s path (the store as a container sees it).
///
/// `replace` must be true only when the caller verified that whatever is at `target` is
/// mlib's own link; otherwise an existing target makes this fail with `AlreadyExists`.
pub fn make(
    source: &Path,
    text: Option<&Path>,
    target: &Path,
    how: LinkHow,
    replace: bool,
) -> io::Result<Made> {
    let parent = target
        .parent()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "link target has no parent"))?;
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
    let attempt = || match how {
        LinkHow::RelativeSymlink => symlink(&paths::relative(parent, source), &at),
        LinkHow::AbsoluteSymlink => symlink(text.unwrap_or(source), &at),
        LinkHow::Hardlink => fs_err::hard_link(source, &at),
        LinkHow::Copy => copy_tree(source, &at),
    };
    // The app's folder usually exists (all but the first link into it): making the link
    // first and the folder only when it is missing saves a mkdir and a stat per link, half
    // the system calls of linking 10,000 models (docs/PERFORMANCE.md). Not found: the
    // folder is made (or found made meanwhile, by a link made beside this one on another
    // thread) and the link tried once more.
    let made = match attempt() {
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            fs_err::create_dir_all(parent)?;
            attempt()
        }
        made => made,
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
        replace_with(&at, target)
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

/// Puts `new` where mlib's own old link `target` is. rename(2) replaces a file or a symlink
/// atomically, but cannot put a folder over anything but an empty folder, nor anything over
/// a folder: then the old entry is first renamed aside under a temporary name, and removed
/// once the new one is in place. A kill leaves the old entry, or the new one, or nothing at
/// `target` and a temporary name the next apply removes; never a half-removed folder.
fn replace_with(new: &Path, target: &Path) -> io::Result<()> {
    let is_dir = |p: &Path| p.symlink_metadata().is_ok_and(|m| m.is_dir());
    if !is_dir(target) && !is_dir(new) {
        return fs_err::rename(new, target);
    }
    let aside = mlib_fs::temp::sibling_of(target);
    match fs_err::rename(target, &aside) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    if let Err(err) = fs_err::rename(new, target) {
        let _ = fs_err::rename(&aside, target);
        return Err(err);
    }
    // What is left if this fails has a temporary name: the next apply removes it.
    let _ = remove_any(&aside);
    Ok(())
}

/// Removes a link (or a copy) mlib made. A copied folder is first renamed aside under a
/// temporary name, so that a kill never leaves half of it where the app looks (and where the
/// next plan would take it for a folder someone changed): the next apply removes the
/// temporary name, since apply journals the links it removes.
pub fn remove(target: &Path) -> io::Result<()> {
    match target.symlink_metadata() {
        Ok(meta) if meta.is_dir() => {
            let aside = mlib_fs::temp::sibling_of(target);
            fs_err::rename(target, &aside)?;
            remove_any(&aside)
        }
        _ => remove_any(target),
    }
}

fn remove_any(path: &Path) -> io::Result<()> {
    // Copies of store folders keep the store's read-only bits: remove_tree makes them
    // removable first.
    mlib_fs::temp::remove_tree(path)
}

fn symlink(content: &Path, at: &Path) -> io::Result<()> {
    mlib_fs::platform::symlink(content, at).map_err(|err| {
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

    /// A temporary folder, its real path, and a store file `store/a.bin` holding `abc`.
    fn store_file() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let store = root.join("store/a.bin");
        std::fs::create_dir_all(store.parent().unwrap()).unwrap();
        std::fs::write(&store, b"abc").unwrap();
        (tmp, root, store)
    }

    #[test]
    fn relative_symlink_resolves_and_replaces_atomically() {
        let (_tmp, root, store) = store_file();
        let target = root.join("app/models/a.bin");
        make(&store, None, &target, LinkHow::RelativeSymlink, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"abc");
        assert!(std::fs::read_link(&target).unwrap().is_relative());
        // Without `replace`, an existing target is never touched.
        let err = make(&store, None, &target, LinkHow::AbsoluteSymlink, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        make(&store, None, &target, LinkHow::AbsoluteSymlink, true).unwrap();
        assert_eq!(std::fs::read_link(&target).unwrap(), store);
    }

    /// Links into a missing folder made at the same moment on two threads: each finds the
    /// folder made, by itself or by the other. Making the folder only when it was not there
    /// after a failed first try failed this test in 3 runs of 4 (the other thread made the
    /// folder in between, and the first try was never repeated).
    #[test]
    fn two_links_into_one_new_folder_at_once_are_both_made() {
        let (_tmp, root, store) = store_file();
        for round in 0..1000 {
            let folder = root.join(format!("app{round}/models/loras"));
            let start = std::sync::Barrier::new(2);
            std::thread::scope(|scope| {
                for side in ["left", "right"] {
                    let (start, store, target) = (&start, &store, folder.join(side));
                    scope.spawn(move || {
                        start.wait();
                        make(store, None, &target, LinkHow::RelativeSymlink, false)
                            .unwrap_or_else(|e| panic!("round {round}, {side}: {e}"));
                    });
                }
            });
        }
    }

    #[test]
    fn links_and_copies_are_made_under_the_one_temporary_name() {
        let target = Path::new("/app/models/diffusers/pipe");
        let temp = mlib_fs::temp::sibling_of(target);
        assert_eq!(temp.parent(), target.parent());
        let parsed = mlib_fs::temp::TempName::parse(temp.file_name().unwrap())
            .expect("a name recovery recognises");
        assert_eq!(parsed.name, "pipe");
        assert_eq!(parsed.writer, mlib_fs::Process::current());
    }

    #[test]
    fn a_copied_folder_is_removed_whole_with_nothing_left_aside() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let store = root.join("store/pipe");
        std::fs::create_dir_all(store.join("unet")).unwrap();
        std::fs::write(store.join("unet/model.safetensors"), b"weights").unwrap();
        let read_only = std::fs::Permissions::from_mode(0o444);
        std::fs::set_permissions(store.join("unet/model.safetensors"), read_only).unwrap();
        let target = root.join("app/models/diffusers/pipe");
        make(&store, None, &target, LinkHow::Copy, false).unwrap();
        std::fs::write(root.join("app/models/diffusers/notes.txt"), b"mine").unwrap();
        remove(&target).unwrap();
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("notes.txt")]);
    }

    #[test]
    fn a_folder_replaces_a_symlink_and_a_symlink_a_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let store = root.join("store/pipe");
        std::fs::create_dir_all(store.join("unet")).unwrap();
        std::fs::write(store.join("unet/model.safetensors"), b"weights").unwrap();
        let target = root.join("app/models/diffusers/pipe");
        make(&store, None, &target, LinkHow::RelativeSymlink, false).unwrap();
        // An app switched from symlinks to copies: the copied folder replaces the symlink.
        make(&store, None, &target, LinkHow::Copy, true).unwrap();
        assert!(!target.symlink_metadata().unwrap().file_type().is_symlink());
        assert_eq!(
            std::fs::read(target.join("unet/model.safetensors")).unwrap(),
            b"weights"
        );
        // And back: a symlink replaces the copied folder.
        make(&store, None, &target, LinkHow::RelativeSymlink, true).unwrap();
        assert!(target.symlink_metadata().unwrap().file_type().is_symlink());
        let names: Vec<_> = std::fs::read_dir(target.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("pipe")],
            "nothing left aside"
        );
    }
}
