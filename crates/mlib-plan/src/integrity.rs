//! Whether a store file still holds what its metadata.json says.
//!
//! The truth is metadata.json (size, sha256, blake3 of every file). Hashing is what checks it,
//! and is slow, so two things may vouch for a file instead, each only for the exact stamp
//! (inode, size, mtime, ctime) the file had when its hashes were verified: the registry's
//! index, and the stamp metadata.json recorded when mlib wrote the file. Anything else is
//! hashed (both hashes, one read) before it is trusted; nothing ever pairs a new stamp with an
//! old hash unseen.

use std::path::Path;

use mlib_fs::FileStamp;
use mlib_registry::IndexEntry;
use mlib_store::FileRecord;

use crate::action::Verified;

/// What one store file turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileCheck {
    /// The index vouches for it: its stamp is the one it had when verified.
    Trusted,
    /// Verified now (by the stamp metadata.json recorded, or by hashing): index it.
    Verified(Verified),
    Missing,
    /// Its bytes are not metadata.json's (or it changed while being hashed): what differs.
    Changed(String),
}

/// Checks `file` (its record in metadata.json) at `path` (`rel` to the store root), whose
/// stamp is `stamp` (`None`: it could not be stat'ed), against what the index says
/// (`indexed`). `progress` gets the bytes hashed, if it comes to that.
pub fn check(
    file: &FileRecord,
    rel: &str,
    path: &Path,
    stamp: Option<FileStamp>,
    indexed: Option<&IndexEntry>,
    progress: &mut dyn FnMut(u64),
) -> FileCheck {
    let Some(stamp) = stamp else {
        return FileCheck::Missing;
    };
    if stamp.size != file.size {
        return FileCheck::Changed(format!("size expected {}, found {}", file.size, stamp.size));
    }
    let vouched = indexed.is_some_and(|ix| {
        ix.matches(&stamp) && ix.sha256 == file.sha256 && ix.blake3 == file.blake3
    });
    if vouched {
        return FileCheck::Trusted;
    }
    if file.stamp == Some(stamp) {
        return verified(file, rel, stamp);
    }
    hash_and_compare(file, rel, path, stamp, progress)
}

/// Hashes the file whatever vouches for it (`mlib verify`).
pub fn rehash(
    file: &FileRecord,
    rel: &str,
    path: &Path,
    progress: &mut dyn FnMut(u64),
) -> FileCheck {
    match FileStamp::read(path) {
        Err(_) => FileCheck::Missing,
        Ok(stamp) if stamp.size != file.size => {
            FileCheck::Changed(format!("size expected {}, found {}", file.size, stamp.size))
        }
        Ok(stamp) => hash_and_compare(file, rel, path, stamp, progress),
    }
}

fn hash_and_compare(
    file: &FileRecord,
    rel: &str,
    path: &Path,
    stamp: FileStamp,
    progress: &mut dyn FnMut(u64),
) -> FileCheck {
    let hashes = match fs_err::File::open(path)
        .and_then(|mut f| mlib_store::copy_hashing(&mut f, &mut std::io::sink(), progress))
    {
        Ok(hashes) => hashes,
        Err(err) => return FileCheck::Changed(format!("cannot be read: {err}")),
    };
    if FileStamp::read(path).ok() != Some(stamp) {
        return FileCheck::Changed("it changed while mlib was hashing it".into());
    }
    if hashes.sha256 != file.sha256 {
        return FileCheck::Changed(format!(
            "sha256 expected {}, found {}",
            file.sha256, hashes.sha256
        ));
    }
    if hashes.blake3 != file.blake3 {
        return FileCheck::Changed(format!(
            "blake3 expected {}, found {}",
            file.blake3, hashes.blake3
        ));
    }
    verified(file, rel, stamp)
}

fn verified(file: &FileRecord, rel: &str, stamp: FileStamp) -> FileCheck {
    FileCheck::Verified(Verified {
        path: rel.to_owned(),
        stamp,
        sha256: file.sha256.clone(),
        blake3: file.blake3.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf, FileRecord) {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("m.safetensors");
        std::fs::write(&path, bytes).unwrap();
        let hashes = mlib_store::hash_file(&path).unwrap();
        let record = FileRecord {
            path: "m.safetensors".into(),
            size: hashes.size,
            sha256: hashes.sha256,
            blake3: hashes.blake3,
            stamp: None,
        };
        (tmp, path, record)
    }

    #[test]
    fn what_vouches_for_a_file_and_what_does_not() {
        let (_tmp, path, mut record) = setup(b"model bytes");
        let stamp = FileStamp::read(&path).unwrap();
        let hashed = check(&record, "m", &path, Some(stamp), None, &mut |_| {});
        let FileCheck::Verified(v) = &hashed else {
            panic!("{hashed:?}")
        };
        assert_eq!(v.stamp, stamp);
        let entry = IndexEntry::new("m".into(), &stamp, v.sha256.clone(), v.blake3.clone());
        assert_eq!(
            check(&record, "m", &path, Some(stamp), Some(&entry), &mut |_| {}),
            FileCheck::Trusted
        );
        record.stamp = Some(stamp);
        assert!(matches!(
            check(&record, "m", &path, Some(stamp), None, &mut |_| {}),
            FileCheck::Verified(_)
        ));
        assert_eq!(
            check(&record, "m", &path, None, None, &mut |_| {}),
            FileCheck::Missing
        );
    }

    #[test]
    fn changed_bytes_are_found_whatever_the_index_says_of_an_old_stamp() {
        use std::os::unix::fs::PermissionsExt;
        let (_tmp, path, record) = setup(b"model bytes");
        let before = FileStamp::read(&path).unwrap();
        let entry = IndexEntry::new(
            "m".into(),
            &before,
            record.sha256.clone(),
            record.blake3.clone(),
        );
        // File times move in clock ticks: step past the one the stamp was taken in.
        std::thread::sleep(std::time::Duration::from_millis(30));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(&path, b"model bytez").unwrap();
        let after = FileStamp::read(&path).unwrap();
        let found = check(&record, "m", &path, Some(after), Some(&entry), &mut |_| {});
        let FileCheck::Changed(what) = found else {
            panic!("{found:?}")
        };
        assert!(what.starts_with("sha256 expected "), "{what}");
        assert!(matches!(
            rehash(&record, "m", &path, &mut |_| {}),
            FileCheck::Changed(_)
        ));
    }
}
