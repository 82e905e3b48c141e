//! Opening a bundle: its header, manifest and lock, the small entries at its start. The
//! models' bytes are read only by [`Bundle::ingest`].

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use crate::error::BundleError;
use crate::header::{
    FORMAT, HEADER_ENTRY, Header, LOCK_ENTRY, MANIFEST_ENTRY, MAX_HEADER_BYTES, MAX_MANIFEST_BYTES,
};

/// An opened bundle: what it says, and the manifest and lock it carries.
#[derive(Debug, Clone)]
pub struct Bundle {
    pub path: PathBuf,
    pub header: Header,
    pub manifest: Vec<u8>,
    pub lock: Option<Vec<u8>>,
}

pub(crate) type Archive = tar::Archive<BufReader<fs_err::File>>;

impl Bundle {
    /// Reads the bundle's first entries; refuses a file that is not a bundle, or one of a
    /// newer format, with a message saying so.
    pub fn open(path: &Path) -> Result<Bundle, BundleError> {
        let mut archive = archive(path)?;
        let mut entries = archive.entries()?;
        let mut next = |name: &str, max: u64| -> Result<Vec<u8>, BundleError> {
            let not_a_bundle = |reason: String| BundleError::NotABundle {
                path: path.into(),
                reason,
            };
            let mut entry = match entries.next() {
                Some(Ok(entry)) => entry,
                Some(Err(e)) => return Err(not_a_bundle(format!("no tar entry {name} ({e})"))),
                None => return Err(not_a_bundle(format!("it has no entry {name}"))),
            };
            let found = entry.path_bytes().into_owned();
            if found != name.as_bytes() {
                return Err(not_a_bundle(format!(
                    "its entry is {}, not {name}",
                    String::from_utf8_lossy(&found)
                )));
            }
            if entry.size() > max {
                return Err(not_a_bundle(format!(
                    "{name} is {} bytes, more than {max}",
                    entry.size()
                )));
            }
            let mut bytes = Vec::with_capacity(entry.size() as usize);
            entry.read_to_end(&mut bytes)?;
            if bytes.len() as u64 != entry.size() {
                return Err(BundleError::Truncated {
                    path: path.into(),
                    detail: format!("in {name}"),
                    stored: 0,
                });
            }
            Ok(bytes)
        };
        let json = next(HEADER_ENTRY, MAX_HEADER_BYTES)?;
        let header = parse_header(path, &json)?;
        let manifest = next(MANIFEST_ENTRY, MAX_MANIFEST_BYTES)?;
        let lock = match header.has_lock {
            true => Some(next(LOCK_ENTRY, MAX_MANIFEST_BYTES)?),
            false => None,
        };
        Ok(Bundle {
            path: path.into(),
            header,
            manifest,
            lock,
        })
    }

    /// How many entries precede the models' files.
    pub(crate) fn leading_entries(&self) -> usize {
        if self.header.has_lock { 3 } else { 2 }
    }
}

pub(crate) fn archive(path: &Path) -> Result<Archive, BundleError> {
    let file = fs_err::File::open(path)?;
    if file.metadata()?.is_dir() {
        return Err(BundleError::NotABundle {
            path: path.into(),
            reason: "it is a folder".into(),
        });
    }
    Ok(tar::Archive::new(BufReader::with_capacity(1 << 20, file)))
}

fn parse_header(path: &Path, json: &[u8]) -> Result<Header, BundleError> {
    // The format first, so a newer bundle is named as such even if its fields changed.
    #[derive(serde::Deserialize)]
    struct Format {
        format: u32,
        #[serde(default)]
        mlib_version: String,
    }
    let not_a_bundle = |reason: String| BundleError::NotABundle {
        path: path.into(),
        reason,
    };
    let format: Format = serde_json::from_slice(json)
        .map_err(|e| not_a_bundle(format!("{HEADER_ENTRY} is not valid ({e})")))?;
    if format.format > FORMAT {
        return Err(BundleError::NewerFormat {
            path: path.into(),
            format: format.format,
            made_by: format.mlib_version,
        });
    }
    let header: Header = serde_json::from_slice(json)
        .map_err(|e| not_a_bundle(format!("{HEADER_ENTRY} is not valid ({e})")))?;
    if let Some(problem) = header.problem() {
        return Err(not_a_bundle(format!("{HEADER_ENTRY}: {problem}")));
    }
    Ok(header)
}
