//! Taking a blob of the HuggingFace cache into staging without copying it where the
//! filesystem allows: a reflink (an independent clone), else a hard link (the same inode
//! under a second name), else a copy. Each is hashed before it is trusted.
//!
//! A hard link shares everything with the cache's blob, mode included: the store makes its
//! files read-only, so the cache's blob becomes read-only too. `huggingface_hub` never
//! writes into a blob it has (it writes a new one and renames it), and removing a read-only
//! file needs only the folder's permission, so the cache keeps working; and a blob nobody
//! can write through either name is what both sides want. mlib hard links only blobs owned
//! by the user running it, so it never changes another user's file. Whatever happens to the
//! cache's name afterwards (removed, or the blob rewritten in place by someone who made it
//! writable again) moves the inode's ctime, so the store's stamp no longer matches and the
//! next plan hashes the file again before trusting it.

use std::io;
use std::path::{Path, PathBuf};

use mlib_fs::{FileStamp, platform};
use mlib_store::{Hashes, Transfer};

use crate::error::FetchError;
use crate::report::Reporter;

/// `src` taken into the staging folder `dir`, hashed: reflinked, hard linked or copied.
/// Returns where it is, under a temporary name of this process (`mlib_fs::temp`) that the
/// caller renames once it has checked the hashes, or removes.
///
/// Never under the download's `.part` name: a hard link is the cache's own blob under a
/// second name, and a download resuming a `.part` writes into it. A kill leaves the
/// temporary name, which the next run's staging cleanup unlinks (the blob keeps its name in
/// the cache); a reflink or a copy is a file of its own either way.
pub(crate) fn take(
    src: &Path,
    dir: &Path,
    direct_io: bool,
    reporter: &dyn Reporter,
    id: u64,
) -> Result<(PathBuf, Hashes, Transfer), FetchError> {
    let tmp = mlib_fs::temp::path_for(dir, "hf-cache");
    let taken = take_as(src, &tmp, direct_io, reporter, id);
    if taken.is_err() {
        let _ = remove_if_there(&tmp);
    }
    let (hashes, how) = taken?;
    Ok((tmp, hashes, how))
}

fn take_as(
    src: &Path,
    part: &Path,
    direct_io: bool,
    reporter: &dyn Reporter,
    id: u64,
) -> Result<(Hashes, Transfer), FetchError> {
    let mut progress = |n: u64| reporter.advance(id, n);
    let mut input = fs_err::File::open(src)?;
    let mut out = Some(fs_err::File::create_new(part)?);
    if let Some(clone) = &out {
        match platform::reflink(input.file(), clone.file()) {
            Ok(()) => {
                let hashes = hash(part, &mut progress)?;
                clone.sync_all()?;
                return Ok((hashes, Transfer::Reflinked));
            }
            Err(e) if e.kind() == io::ErrorKind::Unsupported => {}
            Err(e) => return Err(e.into()),
        }
    }
    if platform::owned_by_me(&fs_err::metadata(src)?) {
        drop(out.take());
        fs_err::remove_file(part)?;
        // The blob itself, not the snapshot's symlink to it (link(2) does not follow it).
        // Refused across filesystems or mounts, or where the system protects hard links:
        // then a copy.
        let blob = fs_err::canonicalize(src)?;
        if std::fs::hard_link(&blob, part).is_ok() {
            // The bytes hashed are the bytes linked only if nothing wrote in between.
            let before = FileStamp::read(part)?;
            let hashes = hash(part, &mut progress)?;
            if FileStamp::read(part)? != before {
                fs_err::remove_file(part)?;
                let changed = format!("{} changed while it was hashed", src.display());
                return Err(io::Error::other(changed).into());
            }
            // The cache may never have synced it: the store records only durable bytes.
            fs_err::File::open(part)?.sync_all()?;
            return Ok((hashes, Transfer::Hardlinked));
        }
    }
    let mut out = match out {
        Some(out) => out,
        None => fs_err::File::create_new(part)?,
    };
    let hashes = mlib_store::copy_into_file(&mut input, &mut out, direct_io, &mut progress)?;
    out.sync_all()?;
    Ok((hashes, Transfer::Copied))
}

/// What [`take`] will most likely do with `src` for a store whose staging folder is (or
/// will be) in `store`: for the plan, which must not write to find out.
pub fn likely(src: &Path, store: &Path) -> Transfer {
    let Some(store) = store.ancestors().find(|p| p.exists()) else {
        return Transfer::Copied;
    };
    let (Ok(src_meta), Ok(store_meta)) = (fs_err::metadata(src), fs_err::metadata(store)) else {
        return Transfer::Copied;
    };
    if platform::device(&src_meta) != platform::device(&store_meta) {
        return Transfer::Copied;
    }
    if platform::may_reflink(store) {
        Transfer::Reflinked
    } else if platform::owned_by_me(&src_meta)
        && platform::mount_id(src) == platform::mount_id(store)
    {
        Transfer::Hardlinked
    } else {
        Transfer::Copied
    }
}

fn hash(path: &Path, progress: &mut dyn FnMut(u64)) -> io::Result<Hashes> {
    let mut file = fs_err::File::open(path)?;
    mlib_store::copy_hashing(&mut file, &mut io::sink(), progress)
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs_err::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
