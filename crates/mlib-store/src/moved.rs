//! A person's file moved into the store by `rename(2)`: no byte copied, none read again.
//!
//! The file is hashed where it is first (the caller does, once), and moved only if its stamp
//! is still the one it had then. Between the rename and the model's folder reaching its
//! place, the file sits in a work folder of the staging area; a note next to it (written and
//! synced before the rename) says where it came from. Work folders of a moved file are never
//! removed on drop: a failure puts the file back where it was, and after a kill the next
//! [`Store::clean_staging`] does ([`Store::restore_moved`]), or, when something else took
//! that place since, keeps it in the quarantine. At no moment is the file in neither place.

use std::io;
use std::path::{Path, PathBuf};

use mlib_fs::FileStamp;
use serde::{Deserialize, Serialize};

use crate::StoreError;
use crate::hash::Hashes;
use crate::ingest::{WorkDir, record};
use crate::layout::{ModelKey, Store, validate_key};
use crate::metadata::Metadata;
use crate::util::{make_read_only, sync_dir};

/// Where a moved file came from, next to its work folder until the model is in place.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct MoveNote {
    pub work: PathBuf,
    /// The person's file.
    pub from: PathBuf,
    /// Its name in the work folder.
    pub entry: String,
    /// Where it goes in the store: the flat layout renames the file itself there before the
    /// model's metadata is written, so a kill in between leaves it there, unclaimed.
    #[serde(default)]
    pub to: Option<PathBuf>,
    /// The model's metadata, which claims the file once it is in place.
    #[serde(default)]
    pub metadata: Option<PathBuf>,
    /// The file's inode and sha256: what tells it apart at `to` from anything else.
    #[serde(default)]
    pub ino: Option<u64>,
    #[serde(default)]
    pub sha256: Option<String>,
    /// Its permission bits before mlib made it read-only, given back with the file.
    #[serde(default)]
    pub mode: Option<u32>,
}

impl Store {
    /// Whether `src` can be moved into the store by [`Store::ingest_moved`]: a regular file
    /// (not a symlink: a HuggingFace cache entry is the cache's) with no other name (a hard
    /// link elsewhere could change the stored bytes), on the store's filesystem and mount.
    pub fn can_move_in(&self, src: &Path) -> bool {
        use mlib_fs::platform::{device, link_count, mount_id};
        // A store not made yet will be made in its nearest existing folder.
        let Some(root) = self.root().ancestors().find(|p| p.exists()) else {
            return false;
        };
        let (Ok(meta), Ok(store)) = (fs_err::symlink_metadata(src), fs_err::metadata(root)) else {
            return false;
        };
        meta.is_file()
            && link_count(&meta) == 1
            && device(&meta) == device(&store)
            && mount_id(src) == mount_id(root)
    }

    /// Moves the file `src` in as the model's only entry (named `entry`, else as `src`).
    /// `hashes` are its bytes' when its stamp was `stamp`: a file changed since is refused
    /// ([`StoreError::ChangedSinceHashed`]) and stays where it is, as it does on any error.
    pub fn ingest_moved(
        &self,
        key: &ModelKey,
        src: &Path,
        entry: Option<&str>,
        hashes: &Hashes,
        stamp: FileStamp,
        source: &str,
    ) -> Result<Metadata, StoreError> {
        validate_key(key)?;
        let entry = match entry {
            Some(entry) => entry.to_owned(),
            None => crate::ingest::utf8_name(src)?,
        };
        self.validate_entry(&entry)?;
        let staging = self.staging_dir()?;
        let work = WorkDir::create_kept(&staging, "move")?;
        let dest = work.path.join(&entry);
        let note = mlib_fs::temp::path_for(&staging, "moved");
        let mode = fs_err::symlink_metadata(src).map(|m| mlib_fs::platform::permission_bits(&m))?;
        let written = MoveNote {
            work: work.path.clone(),
            // Absolute: the run that puts it back may start in another folder.
            from: std::path::absolute(src)?,
            entry: entry.clone(),
            to: Some(self.entry_path(key, &entry)),
            metadata: Some(self.metadata_path(key)),
            ino: Some(stamp.ino),
            sha256: Some(hashes.sha256.clone()),
            mode: Some(mode),
        };
        let moved = write_note(&note, &written)
            .and_then(|()| unchanged(src, stamp))
            .and_then(|()| Ok(fs_err::rename(src, &dest)?));
        if let Err(e) = moved {
            let _ = fs_err::remove_file(&note);
            let _ = fs_err::remove_dir(&work.path);
            return Err(e);
        }
        match self.place_moved(key, work, &entry, hashes, stamp, source) {
            Ok(meta) => {
                let _ = fs_err::remove_file(&note);
                // The flat layout leaves the emptied work folder behind.
                let _ = fs_err::remove_dir(&written.work);
                Ok(meta)
            }
            Err(e) => {
                // Put back (from the work folder, or from the store where the flat layout had
                // put it); if even that fails, the note tells the next run where it goes.
                if let Ok(Some(_)) = self.put_back(&written) {
                    let _ = fs_err::remove_file(&note);
                    let _ = mlib_fs::temp::remove_tree(&written.work);
                }
                Err(e)
            }
        }
    }

    fn place_moved(
        &self,
        key: &ModelKey,
        work: WorkDir,
        entry: &str,
        hashes: &Hashes,
        stamp: FileStamp,
        source: &str,
    ) -> Result<Metadata, StoreError> {
        let dest = &work.path.join(entry);
        // A rename moves the ctime only: the same inode, size and mtime are the same bytes.
        let now = FileStamp::read(dest)?;
        if (now.ino, now.size, now.mtime_ns) != (stamp.ino, stamp.size, stamp.mtime_ns)
            || now.size != hashes.size
        {
            return Err(StoreError::ChangedSinceHashed {
                path: dest.to_owned(),
            });
        }
        make_read_only(dest)?;
        // The person may never have synced it: the store records only durable bytes.
        fs_err::File::open(dest)?.sync_all()?;
        sync_dir(&work.path)?;
        self.install(
            key,
            work,
            vec![record(entry.to_owned(), hashes.clone())],
            source,
        )
    }

    /// After a kill: puts a moved file whose model never reached its place back where it
    /// came from, or into the quarantine when that place is taken. Returns where it went.
    pub(crate) fn restore_moved(&self, note: &Path) -> Result<Option<Restored>, StoreError> {
        let text = fs_err::read(note)?;
        let Ok(moved) = serde_json::from_slice::<MoveNote>(&text) else {
            // Cut short before it was complete: written before the rename, so nothing moved.
            return Ok(None);
        };
        self.put_back(&moved)
    }

    /// Puts the moved file back (with its own mode again), found in its work folder or, not
    /// yet claimed by the model's metadata, where it goes in the store; into the quarantine
    /// when its place is taken. `None`: it is in neither (the model is in place, or the
    /// rename never happened).
    fn put_back(&self, moved: &MoveNote) -> Result<Option<Restored>, StoreError> {
        let in_work = moved.work.join(&moved.entry);
        let at = if fs_err::symlink_metadata(&in_work).is_ok() {
            in_work
        } else if let Some(placed) = placed_unclaimed(moved) {
            placed
        } else {
            return Ok(None);
        };
        if let Some(mode) = moved.mode {
            // Best effort: a file that keeps mode 0444 is still the person's file.
            let _ = mlib_fs::platform::set_permission_bits(&at, mode);
        }
        match mlib_fs::platform::rename_noreplace(&at, &moved.from) {
            Ok(()) => {
                if let Some(parent) = moved.from.parent() {
                    let _ = sync_dir(parent);
                }
                Ok(Some(Restored::PutBack(moved.from.clone())))
            }
            Err(_) => {
                let dir = self.quarantine_dir().join(format!(
                    "{}-moved-kept",
                    jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
                ));
                fs_err::create_dir_all(&dir)?;
                let to = dir.join(&moved.entry);
                fs_err::rename(&at, &to)?;
                sync_dir(&dir)?;
                Ok(Some(Restored::Kept(to)))
            }
        }
    }
}

impl Store {
    /// Where files being moved in (by a live mlib, or by one that was killed and whose note
    /// the next apply reads) go in the store: never someone else's file there, whatever
    /// metadata says, until the note is gone.
    pub fn being_moved_in(&self) -> Result<Vec<PathBuf>, StoreError> {
        Ok(self
            .move_notes()?
            .into_iter()
            .filter_map(|(_, note)| note.to)
            .collect())
    }

    /// Where files a killed mlib was moving in came from: they wait in staging (or, in the
    /// flat layout, unclaimed in the store) until the next apply puts them back.
    pub fn moved_files_waiting(&self) -> Result<Vec<PathBuf>, StoreError> {
        Ok(self
            .move_notes()?
            .into_iter()
            .filter(|(stale, _)| *stale)
            .map(|(_, note)| note.from)
            .collect())
    }

    /// Every move note in staging, and whether its writer is gone.
    fn move_notes(&self) -> Result<Vec<(bool, MoveNote)>, StoreError> {
        let staging = self.mlib_dir().join("tmp");
        let entries = match fs_err::read_dir(&staging) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut notes = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = mlib_fs::temp::TempName::parse(&entry.file_name()) else {
                continue;
            };
            if name.name != "moved" {
                continue;
            }
            let note = fs_err::read(entry.path())
                .ok()
                .and_then(|text| serde_json::from_slice::<MoveNote>(&text).ok());
            if let Some(note) = note {
                notes.push((name.is_stale(), note));
            }
        }
        Ok(notes)
    }
}

/// Where a moved file went back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restored {
    /// Its own place.
    PutBack(PathBuf),
    /// The quarantine (its place was taken).
    Kept(PathBuf),
}

/// The moved file where it goes in the store, when the model's metadata does not claim it
/// (with its bytes) yet: renamed there by the flat layout, and the kill came before the
/// metadata was written.
fn placed_unclaimed(moved: &MoveNote) -> Option<PathBuf> {
    let (Some(to), Some(ino)) = (&moved.to, moved.ino) else {
        return None;
    };
    let meta = fs_err::symlink_metadata(to).ok()?;
    if !meta.is_file() || mlib_fs::platform::inode(&meta) != ino {
        return None;
    }
    let claimed = (moved.metadata.as_deref())
        .and_then(|path| Metadata::read(path).ok())
        .is_some_and(|m| {
            m.files
                .iter()
                .any(|f| f.path == moved.entry && moved.sha256.as_ref() == Some(&f.sha256))
        });
    (!claimed).then(|| to.clone())
}

/// The note, durable before the file moves.
fn write_note(path: &Path, note: &MoveNote) -> Result<(), StoreError> {
    let text = serde_json::to_vec(note).map_err(|e| io::Error::other(e.to_string()))?;
    let file = fs_err::File::create_new(path)?;
    io::Write::write_all(&mut &file, &text)?;
    file.sync_all()?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(())
}

fn unchanged(src: &Path, stamp: FileStamp) -> Result<(), StoreError> {
    let meta = fs_err::symlink_metadata(src)?;
    if !meta.is_file() || FileStamp::of(&meta) != stamp {
        return Err(StoreError::ChangedSinceHashed {
            path: src.to_owned(),
        });
    }
    Ok(())
}
