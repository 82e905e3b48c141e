//! Reading a bundle's models into the store, each file hashed while it is written.
//!
//! The tar is read once, front to back. A model already in the store is skipped (its bytes
//! are read past, never written). Every other model is received into the staging area and
//! enters the store whole, only once each of its files has the size, sha256 and blake3 the
//! header lists: a model with one wrong byte is dropped and named in the error. A bundle that
//! ends early stops the reading; the models finished before that point are in the store
//! (verified), the one being read is dropped, so running again after copying the bundle again
//! skips what is there and stores the rest.

use std::io::{ErrorKind, Read};

use mlib_store::{Hashes, ModelKey, Store, StoreError};

use crate::error::{BadFile, BundleError};
use crate::header::{BundledFile, BundledModel};
use crate::read::{Bundle, archive};

/// What happens while a bundle is read into the store.
#[derive(Debug)]
pub enum Event<'a> {
    /// The model's files are being read into the store.
    Receiving(&'a BundledModel),
    /// Bytes of model files written (a delta).
    Progress(u64),
    /// The model is in the store now, verified.
    Stored(&'a BundledModel),
    /// The model was in the store already: its bytes were skipped.
    Present(&'a BundledModel),
}

/// Which models were stored, and which were there already.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub stored: Vec<String>,
    pub present: Vec<String>,
}

impl Bundle {
    /// Reads every model the store does not have (`present` says which it has) into `store`.
    pub fn ingest(
        &self,
        store: &Store,
        present: &dyn Fn(&BundledModel) -> bool,
        events: &mut dyn FnMut(Event<'_>),
    ) -> Result<Report, BundleError> {
        let mut report = Report::default();
        let truncated = |detail: String, report: &Report| BundleError::Truncated {
            path: self.path.clone(),
            detail,
            stored: report.stored.len(),
        };
        let mut archive = archive(&self.path)?;
        let mut entries = archive.entries()?;
        for _ in 0..self.leading_entries() {
            match entries.next() {
                Some(Ok(_)) => {}
                _ => return Err(truncated("in its first entries".into(), &report)),
            }
        }
        let mut bad = Vec::new();
        for model in &self.header.models {
            let mut receiving = if present(model) {
                report.present.push(model.name.clone());
                events(Event::Present(model));
                None
            } else {
                events(Event::Receiving(model));
                Some(store.receive(&key(model))?)
            };
            for file in &model.files {
                let name = model.entry_name(file);
                let mut entry = match entries.next() {
                    Some(Ok(entry)) => entry,
                    Some(Err(e)) => return Err(truncated(format!("before {name}: {e}"), &report)),
                    None => return Err(truncated(format!("before {name}"), &report)),
                };
                let found = entry.path_bytes().into_owned();
                if found != name.as_bytes() {
                    return Err(BundleError::NotABundle {
                        path: self.path.clone(),
                        reason: format!(
                            "its entry {} is where {name} should be",
                            String::from_utf8_lossy(&found)
                        ),
                    });
                }
                if entry.size() != file.size {
                    return Err(BundleError::NotABundle {
                        path: self.path.clone(),
                        reason: format!(
                            "its entry {name} holds {} bytes, its header says {}",
                            entry.size(),
                            file.size
                        ),
                    });
                }
                let Some(into) = receiving.as_mut() else {
                    continue;
                };
                let mut exact = Exact {
                    inner: &mut entry,
                    left: file.size,
                };
                let written = into.file(&file.path, &mut exact, &mut |n| {
                    events(Event::Progress(n));
                });
                let hashes = match written {
                    Ok(hashes) => hashes,
                    Err(StoreError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => {
                        return Err(truncated(format!("in {name}"), &report));
                    }
                    Err(e) => return Err(e.into()),
                };
                if let Some(wrong) = mismatch(model, file, &hashes) {
                    // Dropping the model's staging folder: none of it reaches the store.
                    bad.push(wrong);
                    receiving = None;
                }
            }
            if let Some(received) = receiving {
                received.finish(&model.source)?;
                report.stored.push(model.name.clone());
                events(Event::Stored(model));
            }
        }
        if !bad.is_empty() {
            return Err(BundleError::BadBytes {
                path: self.path.clone(),
                files: bad,
            });
        }
        Ok(report)
    }
}

fn key(model: &BundledModel) -> ModelKey<'_> {
    ModelKey {
        name: &model.name,
        model_type: &model.model_type,
        family: model.family.as_deref(),
    }
}

fn mismatch(model: &BundledModel, file: &BundledFile, hashes: &Hashes) -> Option<BadFile> {
    let size = (hashes.size.to_string(), file.size.to_string());
    let checks = [
        ("size", &size.1, &size.0),
        ("sha256", &file.sha256, &hashes.sha256),
        ("blake3", &file.blake3, &hashes.blake3),
    ];
    checks
        .into_iter()
        .find(|(_, expected, actual)| !expected.eq_ignore_ascii_case(actual))
        .map(|(what, expected, actual)| BadFile {
            model: model.name.clone(),
            path: file.path.clone(),
            what,
            expected: expected.clone(),
            actual: actual.clone(),
        })
}

/// Exactly `left` bytes of `inner`: a short read (the tar ends inside the entry) is an
/// `UnexpectedEof` error rather than a short file; more than `left` is never read.
struct Exact<'r> {
    inner: &'r mut dyn Read,
    left: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::new(
                ErrorKind::UnexpectedEof,
                "the bundle ends inside this file",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}
