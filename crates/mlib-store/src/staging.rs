//! Cleaning up after a killed writer: what a kill leaves in the staging folder.
//!
//! Everything mlib stages is under a temporary name naming its writer (`mlib_fs::temp`), so
//! what belongs to a process that is gone is known by its name alone:
//!
//! - work folders (`.ingest…`, `.commit…`, `.remove…`): half-built models, removed;
//! - a person's file being moved in (`.move…`, with its note `.moved…`): put back where it
//!   came from, or kept in the quarantine when that place is taken; never removed;
//! - the previous version of a model being replaced (`.old…`): removed too, except files a
//!   person had put into the model's folder (mlib carries them over to the new version, and
//!   a kill may come first): those are kept in the quarantine, never deleted;
//! - a HuggingFace cache blob being taken in (`.hf-cache…`): a reflink, a copy, or the
//!   cache's own file under a second name (a hard link); unlinked, which leaves the cache's
//!   name and bytes alone;
//! - download files (`{key}.part`, `.part.json`, `.done`): not temporary names at all, kept,
//!   since the next apply resumes them. A download never writes into a `.part` that has
//!   another name too: it unlinks it and starts a file of its own.

use std::path::{Path, PathBuf};

use mlib_fs::temp::{self, TempName};

use crate::layout::{FLAT_META_DIR, METADATA_FILE, Store};
use crate::metadata::Metadata;
use crate::moved::Restored;
use crate::{StoreError, util};

/// What [`Store::clean_staging`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    /// Removed: staged work of processes that are gone.
    pub removed: Vec<PathBuf>,
    /// Kept in the quarantine: files a person had added to a model folder being replaced.
    pub kept: Vec<PathBuf>,
    /// Put back where they were: files a person was moving into the store.
    pub restored: Vec<PathBuf>,
    /// Kept in the quarantine: files a person was moving into the store whose place was
    /// taken since (or whose note was lost).
    pub moved_kept: Vec<PathBuf>,
}

impl Store {
    /// Removes what killed writers left in the staging folder (see the module docs).
    pub fn clean_staging(&self) -> Result<Cleaned, StoreError> {
        let staging = self.mlib_dir().join("tmp");
        let mut cleaned = Cleaned::default();
        let entries = match fs_err::read_dir(&staging) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cleaned),
            Err(e) => return Err(e.into()),
        };
        let mut stale = Vec::new();
        for entry in entries {
            let entry = entry?;
            let Some(name) = TempName::parse(&entry.file_name()) else {
                continue;
            };
            if name.is_stale() {
                stale.push((name.name, entry.path()));
            }
        }
        // A person's file moved in goes back first, before its work folder is looked at.
        stale.sort_by_key(|(name, _)| name != "moved");
        for (name, path) in stale {
            if name == "moved" {
                match self.restore_moved(&path)? {
                    Some(Restored::PutBack(to)) => cleaned.restored.push(to),
                    Some(Restored::Kept(to)) => cleaned.moved_kept.push(to),
                    None => {}
                }
            } else if name == "move" {
                self.keep_moved_files(&path, &mut cleaned)?;
            } else if name == "old" {
                self.keep_added_files(&path, &mut cleaned)?;
            }
            temp::remove_tree(&path)?;
            cleaned.removed.push(path);
        }
        Ok(cleaned)
    }

    /// Temporary files a killed writer left in the flat layout's metadata folders.
    pub fn clean_flat_metadata(&self) -> Result<Vec<PathBuf>, StoreError> {
        let mut removed = Vec::new();
        let types = match fs_err::read_dir(self.root()) {
            Ok(types) => types,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
            Err(e) => return Err(e.into()),
        };
        for entry in types {
            let dir = entry?.path().join(FLAT_META_DIR);
            removed.extend(temp::remove_stale(&dir)?);
        }
        Ok(removed)
    }

    /// What is still in a moved file's work folder when its note could not put it back:
    /// kept in the quarantine, never removed (only the metadata there is mlib's).
    fn keep_moved_files(&self, work: &Path, cleaned: &mut Cleaned) -> Result<(), StoreError> {
        let mut left = Vec::new();
        for item in fs_err::read_dir(work)? {
            let name = item?.file_name();
            // mlib's own: the metadata, and a temporary file of it a kill left.
            let ours = name == METADATA_FILE
                || TempName::parse(&name).is_some_and(|t| t.name == METADATA_FILE);
            if !ours {
                left.push(name);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        let dir = self.quarantine_dir().join(format!(
            "{}-moved-kept",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        ));
        fs_err::create_dir_all(&dir)?;
        for name in left {
            let to = dir.join(&name);
            fs_err::rename(work.join(&name), &to)?;
            cleaned.moved_kept.push(to);
        }
        util::sync_dir(&dir)?;
        Ok(())
    }

    /// Moves what a person added to a model folder that was being replaced into the
    /// quarantine; mlib's own files (its entries and metadata) are left to be removed.
    fn keep_added_files(&self, old: &Path, cleaned: &mut Cleaned) -> Result<(), StoreError> {
        let meta = Metadata::read(&old.join(METADATA_FILE)).ok();
        let ours = |name: &str| {
            name == METADATA_FILE
                || meta
                    .as_ref()
                    .is_some_and(|m| m.entries.iter().any(|e| e == name))
        };
        let mut added = Vec::new();
        for item in fs_err::read_dir(old)? {
            let name = item?.file_name();
            // Without a readable metadata.json nothing can be told apart: keep it all.
            if meta.is_none() || !name.to_str().is_some_and(ours) {
                added.push(name);
            }
        }
        if added.is_empty() {
            return Ok(());
        }
        let model = meta.map_or_else(|| "unknown".to_owned(), |m| m.name);
        let dir = self.quarantine_dir().join(format!(
            "{}-{model}-kept",
            jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ")
        ));
        fs_err::create_dir_all(&dir)?;
        for name in added {
            let to = dir.join(&name);
            fs_err::rename(old.join(&name), &to)?;
            cleaned.kept.push(to);
        }
        util::sync_dir(&dir)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Layout;
    use std::ffi::OsStr;

    fn dead_writer_tag() -> String {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        format!("{}{pid}-1-0", temp::TAG)
    }

    #[test]
    fn removes_dead_work_keeps_downloads_live_work_and_added_files() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::new(tmp.path().to_path_buf(), Layout::Nested);
        let staging = store.mlib_dir().join("tmp");
        let tag = dead_writer_tag();
        let dead_ingest = staging.join(format!(".ingest{tag}"));
        std::fs::create_dir_all(dead_ingest.join("x")).unwrap();
        std::fs::write(dead_ingest.join("x/f.part"), b"half").unwrap();
        let live = temp::path_for(&staging, "ingest");
        std::fs::create_dir_all(&live).unwrap();
        std::fs::write(staging.join("abc.part"), b"resumable").unwrap();
        std::fs::write(staging.join("abc.part.json"), b"{}").unwrap();
        // The previous version of a model, with a preview someone added.
        let old = staging.join(format!(".old{tag}"));
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("m.safetensors"), b"weights").unwrap();
        std::fs::write(old.join("preview.png"), b"png").unwrap();
        std::fs::write(
            old.join("metadata.json"),
            r#"{"name":"m","type":"loras","source":"x","entries":["m.safetensors"],"files":[],"added":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}"#,
        )
        .unwrap();

        let cleaned = store.clean_staging().unwrap();
        let mut removed = cleaned.removed.clone();
        removed.sort();
        let mut expected = vec![dead_ingest, old];
        expected.sort();
        assert_eq!(removed, expected);
        assert_eq!(cleaned.kept.len(), 1);
        assert_eq!(std::fs::read(&cleaned.kept[0]).unwrap(), b"png");
        assert!(cleaned.kept[0].starts_with(store.quarantine_dir()));
        assert!(live.exists());
        assert!(staging.join("abc.part").exists());
        assert!(staging.join("abc.part.json").exists());
        assert_eq!(store.clean_staging().unwrap(), Cleaned::default());
    }

    /// A kill at any point while the old folder of a replaced model is removed: nothing of
    /// mlib's goes to the quarantine. (A person's file is carried over to the new version
    /// before the removal starts; one a kill left behind is kept.)
    #[test]
    fn an_old_version_half_removed_by_a_kill_is_removed_not_quarantined() {
        let entries = vec!["m.safetensors".to_owned(), "pipe".to_owned()];
        let metadata = r#"{"name":"m","type":"loras","source":"x","entries":["m.safetensors","pipe"],"files":[],"added":"2026-01-01T00:00:00Z","updated":"2026-01-01T00:00:00Z"}"#;
        let steps = crate::ingest::old_version_removal(Path::new("old"), &entries).len();
        // (removed so far, a person's file still there)
        let cases = (0..=steps).map(|n| (n, false)).chain([(0, true)]);
        for (removed, user_file) in cases {
            let tmp = tempfile::tempdir().unwrap();
            let store = Store::new(tmp.path().to_path_buf(), Layout::Nested);
            let staging = store.mlib_dir().join("tmp");
            let old = staging.join(format!(".old{}", dead_writer_tag()));
            std::fs::create_dir_all(old.join("pipe/unet")).unwrap();
            std::fs::write(old.join("pipe/unet/w.safetensors"), b"w").unwrap();
            std::fs::write(old.join("m.safetensors"), b"m").unwrap();
            std::fs::write(old.join("metadata.json"), metadata).unwrap();
            if user_file {
                std::fs::write(old.join("notes.txt"), b"mine").unwrap();
            }
            for path in &crate::ingest::old_version_removal(&old, &entries)[..removed] {
                temp::remove_tree(path).unwrap();
            }
            let cleaned = store.clean_staging().unwrap();
            let kept: Vec<_> = cleaned
                .kept
                .iter()
                .map(|p| p.file_name().unwrap())
                .collect();
            let want: Vec<&OsStr> = if user_file {
                vec![OsStr::new("notes.txt")]
            } else {
                Vec::new()
            };
            assert_eq!(kept, want, "after {removed} removals");
            assert!(!old.exists());
        }
    }
}
