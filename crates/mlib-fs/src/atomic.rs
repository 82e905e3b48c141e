//! Replacing a file so that readers and crashes see the old file or the new one.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::platform::sync_dir;
use crate::temp;

/// A file being written under a temporary name next to its destination; [`AtomicFile::commit`]
/// puts it in place durably. Dropped without a commit, the temporary file is removed; a kill
/// leaves it for [`temp::remove_stale`].
#[derive(Debug)]
pub struct AtomicFile {
    file: Option<fs_err::File>,
    temp: PathBuf,
    dest: PathBuf,
}

impl AtomicFile {
    /// Starts writing what will become `dest` (its folder must exist).
    pub fn create(dest: &Path) -> io::Result<AtomicFile> {
        let temp = temp::sibling_of(dest);
        let file = fs_err::File::create_new(&temp)?;
        Ok(AtomicFile {
            file: Some(file),
            temp,
            dest: dest.to_path_buf(),
        })
    }

    /// The temporary file, to write into.
    pub fn file(&mut self) -> &mut fs_err::File {
        self.file.as_mut().expect("not committed yet")
    }

    /// Where the bytes are until the commit.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// fsync the file, rename it over the destination, fsync the folder: after this returns,
    /// the new content is what a reader and a reboot see.
    /// If the rename fails (the destination is a folder, or its name ends in `/`...), the
    /// temporary file is removed and the destination left as it was.
    pub fn commit(mut self) -> io::Result<()> {
        // On an error before the rename, dropping `self` removes the temporary file.
        self.file().sync_all()?;
        let file = self.file.take();
        drop(file);
        if let Err(err) = fs_err::rename(&self.temp, &self.dest) {
            let _ = std::fs::remove_file(&self.temp);
            return Err(err);
        }
        sync_dir(parent_dir(&self.dest))
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file().write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// Replaces `dest` with `bytes` atomically and durably ([`AtomicFile`]).
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(dest)?;
    file.write_all(bytes)?;
    file.commit()
}

/// The folder `path` is in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_and_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("models.lock");
        write_atomic(&dest, b"one").unwrap();
        write_atomic(&dest, b"two").unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("models.lock")]);
    }

    #[test]
    fn a_failed_rename_leaves_no_temporary() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("folder");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("kept"), b"x").unwrap();
        assert!(write_atomic(&dest, b"plan").is_err());
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("folder")]);
        assert!(dest.join("kept").exists());
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_folder() {
        assert_eq!(parent_dir(Path::new("plan.json")), Path::new("."));
        assert_eq!(parent_dir(Path::new("/a/plan.json")), Path::new("/a"));
    }

    #[test]
    fn an_abandoned_write_is_removed_and_the_old_file_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("plan.json");
        write_atomic(&dest, b"old").unwrap();
        let mut file = AtomicFile::create(&dest).unwrap();
        file.write_all(b"half").unwrap();
        let temp = file.temp_path().to_path_buf();
        assert!(temp.exists());
        drop(file);
        assert!(!temp.exists());
        assert_eq!(std::fs::read(&dest).unwrap(), b"old");
    }
}
