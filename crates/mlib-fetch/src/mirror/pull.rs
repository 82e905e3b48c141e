//! Fetching one file from the mirrors, in order, before its origin.

use std::sync::atomic::AtomicBool;

use mlib_store::Hashes;
use tracing::debug;

use super::layout::{ModelIndex, blob_key};
use super::{MirrorClient, MirrorError, Mirrors};
use crate::Fetcher;
use crate::download::{Download, Job, Service, discard, verify};
use crate::error::FetchError;
use crate::report::Reporter;

/// What became of one mirror for one file.
enum Outcome {
    Fetched(Hashes),
    /// Not there, or not usable for this file: try the next source.
    Next,
}

impl Mirrors {
    fn client(&self, i: usize) -> Result<&MirrorClient, String> {
        self.clients[i]
            .get_or_init(|| {
                MirrorClient::open(&self.urls[i], &self.fetcher.config).map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    fn given_up(&self, i: usize) -> bool {
        self.state.lock().expect("mirror state")[i].given_up
    }

    /// Says once why mirror `i` is not used, and stops asking it in this run when the reason
    /// is its set-up (a missing object is not such a reason).
    fn failed(&self, i: usize, message: &str, misconfigured: bool, reporter: &dyn Reporter) {
        let mut state = self.state.lock().expect("mirror state");
        if state[i].given_up {
            return;
        }
        if misconfigured {
            state[i].given_up = true;
            drop(state);
            reporter.warn(&format!(
                "{message}; not using this mirror for the rest of the run (files come from the next mirror or their origin)"
            ));
        } else {
            drop(state);
            reporter.warn(&format!("{message}; trying the next source"));
        }
    }

    /// After a miss on an S3 mirror, once per run: does its bucket exist at all? (A HEAD on a
    /// missing bucket is a plain 404, the same answer as a missing object.)
    fn check_bucket_once(&self, i: usize, client: &MirrorClient, reporter: &dyn Reporter) {
        {
            let mut state = self.state.lock().expect("mirror state");
            if state[i].bucket_checked || !client.writable() {
                return;
            }
            state[i].bucket_checked = true;
        }
        if let Err(MirrorError::Failed {
            message,
            misconfigured: true,
            ..
        }) = client.probe()
        {
            self.failed(
                i,
                &format!("mirror {}: {message}", self.urls[i]),
                true,
                reporter,
            );
        }
    }

    /// The index of `job`'s model on mirror `i` (read once per run).
    fn index(
        &self,
        i: usize,
        client: &MirrorClient,
        key: &str,
    ) -> Result<Option<ModelIndex>, MirrorError> {
        let cache_key = (i, key.to_owned());
        if let Some(found) = self.indexes.lock().expect("indexes").get(&cache_key) {
            return Ok(found.clone());
        }
        let index = client
            .get_small(key)?
            .and_then(|bytes| ModelIndex::parse(&bytes));
        self.indexes
            .lock()
            .expect("indexes")
            .insert(cache_key, index.clone());
        Ok(index)
    }
}

impl Fetcher {
    /// The file from the first mirror that has it with the right bytes, else `None` (the
    /// caller goes on to the origin). Only an interruption is an error here.
    pub(crate) fn try_mirrors(
        &self,
        job: &Job,
        id: u64,
        reporter: &dyn Reporter,
        cancel: &AtomicBool,
    ) -> Result<Option<Hashes>, FetchError> {
        let Some(mirrors) = &self.mirrors else {
            return Ok(None);
        };
        for i in 0..mirrors.urls.len() {
            if mirrors.given_up(i) {
                continue;
            }
            match self.try_mirror(mirrors, i, job, id, reporter, cancel)? {
                Outcome::Fetched(hashes) => return Ok(Some(hashes)),
                Outcome::Next => {}
            }
        }
        Ok(None)
    }

    fn try_mirror(
        &self,
        mirrors: &Mirrors,
        i: usize,
        job: &Job,
        id: u64,
        reporter: &dyn Reporter,
        cancel: &AtomicBool,
    ) -> Result<Outcome, FetchError> {
        let shown = mirrors.urls[i].to_string();
        let client = match mirrors.client(i) {
            Ok(client) => client,
            Err(message) => {
                mirrors.failed(i, &message, true, reporter);
                return Ok(Outcome::Next);
            }
        };
        let fail = |e: MirrorError| -> Result<Outcome, FetchError> {
            mirrors.failed_with(i, e, reporter);
            Ok(Outcome::Next)
        };
        // The bytes to ask for: the lock's sha256, else the one the mirror's index of this
        // model gives (files no server published a hash for).
        let (sha256, blake3) = match &job.sha256 {
            Some(sha256) => (sha256.clone(), job.blake3.clone()),
            None => {
                let indexed = match mirrors.index(i, client, &job.index_key) {
                    Ok(index) => index,
                    Err(e) => return fail(e),
                };
                let Some(file) = indexed.as_ref().and_then(|x| x.file(&job.rel_path)) else {
                    debug!(file = %job.label, mirror = %shown, "no sha256 in the lock and no index on the mirror");
                    reporter.detail(
                        id,
                        &format!("not on mirror {shown} (no index of this model)"),
                    );
                    return Ok(Outcome::Next);
                };
                (
                    file.sha256.clone(),
                    job.blake3.clone().or(Some(file.blake3.clone())),
                )
            }
        };
        let key = blob_key(&sha256);
        match client.head(&key) {
            Ok(Some(size)) if size == job.size => {}
            Ok(Some(size)) => {
                mirrors.failed(
                    i,
                    &format!(
                        "mirror {shown} has {key} with {size} bytes where {} expects {}: not used",
                        job.label, job.size
                    ),
                    false,
                    reporter,
                );
                return Ok(Outcome::Next);
            }
            Ok(None) => {
                mirrors.check_bucket_once(i, client, reporter);
                debug!(file = %job.label, mirror = %shown, "not on the mirror");
                reporter.detail(id, &format!("not on mirror {shown}"));
                return Ok(Outcome::Next);
            }
            Err(e) => return fail(e),
        }
        let url = match client.download_url(&key) {
            Ok(url) => url,
            Err(e) => return fail(e),
        };
        let mirror_job = Job {
            url,
            auth: None,
            secrets: Vec::new(),
            service: Service::Plain,
            sha256: Some(sha256),
            blake3,
            // A part of its own: the origin's validator means nothing to the mirror.
            part: job.part.with_extension("mirror.part"),
            meta: job.part.with_extension("mirror.part.json"),
            ..job.clone()
        };
        debug!(file = %job.label, mirror = %shown, "downloading from the mirror");
        reporter.note(id, &format!("from mirror {shown}"));
        let ran = Download {
            f: &mirrors.fetcher,
            job: &mirror_job,
            id,
            reporter,
            cancel,
        }
        .run();
        let hashes = match ran {
            Ok(hashes) => hashes,
            Err(e @ FetchError::Cancelled { .. }) => return Err(e),
            Err(e) => {
                discard(&mirror_job);
                reporter.start(id, &job.label, Some(job.size));
                mirrors.failed(i, &format!("mirror {shown}: {e}"), false, reporter);
                return Ok(Outcome::Next);
            }
        };
        if let Err(e) = verify(&mirror_job, &hashes, &shown) {
            discard(&mirror_job);
            reporter.start(id, &job.label, Some(job.size));
            let why = match e {
                FetchError::HashMismatch {
                    algo,
                    expected,
                    actual,
                    ..
                } => format!("{algo} {actual}, expected {expected}"),
                other => other.to_string(),
            };
            mirrors.failed(
                i,
                &format!(
                    "mirror {shown} served {} with the wrong bytes ({why}): rejected, nothing stored",
                    job.label
                ),
                false,
                reporter,
            );
            return Ok(Outcome::Next);
        }
        fs_err::rename(&mirror_job.part, &job.done)?;
        let _ = fs_err::remove_file(&mirror_job.meta);
        Ok(Outcome::Fetched(hashes))
    }
}

impl Fetcher {
    /// The configured mirrors, in the order they are tried.
    pub fn mirror_urls(&self) -> &[mlib_manifest::MirrorUrl] {
        self.mirrors.as_ref().map_or(&[], |m| &m.urls)
    }

    /// Which mirror would serve every file of `locked` now (HEAD requests, one per file and
    /// mirror until one has them all): `Ok(None)` when none does. For `plan --check-mirrors`;
    /// a mirror that fails is reported through `reporter` and skipped, as during apply.
    pub fn mirror_serving(
        &self,
        locked: &mlib_manifest::lock::LockedModel,
        reporter: &dyn Reporter,
    ) -> Option<mlib_manifest::MirrorUrl> {
        let mirrors = self.mirrors.as_ref()?;
        let index_key = super::layout::index_key(locked);
        'mirrors: for i in 0..mirrors.urls.len() {
            if mirrors.given_up(i) {
                continue;
            }
            let client = match mirrors.client(i) {
                Ok(client) => client,
                Err(message) => {
                    mirrors.failed(i, &message, true, reporter);
                    continue;
                }
            };
            for file in &locked.files {
                let sha256 = match &file.sha256 {
                    Some(sha256) => Some(sha256.clone()),
                    None => match mirrors.index(i, client, &index_key) {
                        Ok(index) => index
                            .as_ref()
                            .and_then(|x| x.file(&file.path))
                            .map(|f| f.sha256.clone()),
                        Err(e) => {
                            mirrors.failed_with(i, e, reporter);
                            continue 'mirrors;
                        }
                    },
                };
                let Some(sha256) = sha256 else {
                    continue 'mirrors;
                };
                match client.head(&blob_key(&sha256)) {
                    Ok(Some(size)) if size == file.size => {}
                    Ok(_) => {
                        mirrors.check_bucket_once(i, client, reporter);
                        continue 'mirrors;
                    }
                    Err(e) => {
                        mirrors.failed_with(i, e, reporter);
                        continue 'mirrors;
                    }
                }
            }
            return Some(mirrors.urls[i].clone());
        }
        None
    }
}

impl Mirrors {
    fn failed_with(&self, i: usize, e: MirrorError, reporter: &dyn Reporter) {
        let misconfigured = matches!(
            e,
            MirrorError::Failed {
                misconfigured: true,
                ..
            }
        );
        self.failed(i, &e.to_string(), misconfigured, reporter);
    }
}
