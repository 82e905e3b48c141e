//! Writing a bundle: the header, the manifest and its lock, then every model's files read
//! from the store straight into the tar.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use mlib_store::MultiHasher;

use crate::error::BundleError;
use crate::header::{HEADER_ENTRY, Header, LOCK_ENTRY, MANIFEST_ENTRY};

/// What goes into a bundle besides the header.
pub struct Content<'a> {
    pub manifest: &'a [u8],
    pub lock: Option<&'a [u8]>,
    /// Each model's folder in the store, in the header's order.
    pub model_dirs: &'a [PathBuf],
}

/// Writes the bundle to `out` (under a temporary name, renamed into place once complete and
/// fsynced: a kill or an error never leaves half a bundle under that name). Every file is
/// hashed while it is read from the store and must have the header's size and hashes.
/// `progress` gets byte deltas of model files. Returns the bytes of model files written.
pub fn create(
    out: &Path,
    header: &Header,
    content: &Content,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, BundleError> {
    if fs_err::symlink_metadata(out).is_ok() {
        return Err(BundleError::OutputExists { path: out.into() });
    }
    let mut file = mlib_fs::AtomicFile::create(out)?;
    let mtime = header.created.as_second().max(0) as u64;
    let mut written = 0;
    {
        let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file.file()));
        let json = serde_json::to_vec_pretty(header).expect("a header serializes");
        append(&mut tar, HEADER_ENTRY, &json, mtime)?;
        append(&mut tar, MANIFEST_ENTRY, content.manifest, mtime)?;
        if let Some(lock) = content.lock {
            append(&mut tar, LOCK_ENTRY, lock, mtime)?;
        }
        for (model, dir) in header.models.iter().zip(content.model_dirs) {
            for bundled in &model.files {
                let path = dir.join(&bundled.path);
                let mut source = Checked::open(&path, bundled.size, progress)?;
                let mut entry = entry_header(bundled.size, mtime);
                tar.append_data(&mut entry, model.entry_name(bundled), &mut source)?;
                source.verify(&path, bundled)?;
                written += bundled.size;
            }
        }
        tar.into_inner()?.flush()?;
    }
    file.commit()?;
    Ok(written)
}

fn entry_header(size: u64, mtime: u64) -> tar::Header {
    let mut entry = tar::Header::new_gnu();
    entry.set_entry_type(tar::EntryType::Regular);
    entry.set_size(size);
    entry.set_mode(0o444);
    entry.set_mtime(mtime);
    entry
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    name: &str,
    bytes: &[u8],
    mtime: u64,
) -> Result<(), BundleError> {
    let mut entry = entry_header(bytes.len() as u64, mtime);
    tar.append_data(&mut entry, name, bytes)?;
    Ok(())
}

/// A store file read at most to its recorded size, hashed on the way.
struct Checked<'p> {
    file: std::io::Take<fs_err::File>,
    hasher: MultiHasher,
    progress: &'p mut dyn FnMut(u64),
}

impl<'p> Checked<'p> {
    fn open(
        path: &Path,
        size: u64,
        progress: &'p mut dyn FnMut(u64),
    ) -> Result<Checked<'p>, BundleError> {
        let file = fs_err::File::open(path)?;
        let actual = file.metadata()?.len();
        if actual != size {
            return Err(BundleError::StoreFileChanged {
                file: path.into(),
                detail: format!("{actual} bytes, {size} expected"),
            });
        }
        Ok(Checked {
            file: file.take(size),
            hasher: MultiHasher::new(),
            progress,
        })
    }

    fn verify(self, path: &Path, bundled: &crate::BundledFile) -> Result<(), BundleError> {
        let hashes = self.hasher.finalize();
        let changed = |detail: String| BundleError::StoreFileChanged {
            file: path.into(),
            detail,
        };
        if hashes.size != bundled.size {
            return Err(changed(format!(
                "{} bytes read, {} expected",
                hashes.size, bundled.size
            )));
        }
        if hashes.sha256 != bundled.sha256 {
            return Err(changed(format!(
                "sha256 {}, {} expected",
                hashes.sha256, bundled.sha256
            )));
        }
        if hashes.blake3 != bundled.blake3 {
            return Err(changed(format!(
                "blake3 {}, {} expected",
                hashes.blake3, bundled.blake3
            )));
        }
        Ok(())
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.hasher.update(&buf[..n]);
        (self.progress)(n as u64);
        Ok(n)
    }
}
