//! `Fetcher::fetch`: every file of a locked model into the staging directory, several at once,
//! each from the HuggingFace cache, a verified leftover of an earlier run, or the network.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use mlib_manifest::lock::{LockedFile, LockedModel};
use mlib_store::{Hashes, StagedFile};
use sha2::{Digest, Sha256};

use crate::Fetcher;
use crate::download::{Download, Job, Service, discard, verify};
use crate::error::FetchError;
use crate::hfcache;
use crate::names::{endpoint_url, endpoint_url_with_path, safe_rel_path};
use crate::report::{Redacting, Reporter};
use crate::secret::redact_url;
use crate::source_url::SourceUrl;
use tracing::debug;

/// A counting semaphore: at most `jobs` files download at once across all `fetch` calls.
pub(crate) struct Slots {
    free: Mutex<usize>,
    cv: Condvar,
}

impl Slots {
    pub fn new(n: usize) -> Slots {
        Slots {
            free: Mutex::new(n.max(1)),
            cv: Condvar::new(),
        }
    }

    fn acquire(&self) -> SlotGuard<'_> {
        let mut free = self.free.lock().unwrap();
        while *free == 0 {
            free = self.cv.wait(free).unwrap();
        }
        *free -= 1;
        SlotGuard(self)
    }
}

struct SlotGuard<'a>(&'a Slots);

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        *self.0.free.lock().unwrap() += 1;
        self.0.cv.notify_one();
    }
}

impl Fetcher {
    pub(crate) fn jobs_for(
        &self,
        name: &str,
        locked: &LockedModel,
        staging: &Path,
    ) -> Result<Vec<Job>, FetchError> {
        let single = locked.files.len() == 1;
        let index_key = crate::mirror::layout::index_key(locked);
        locked
            .files
            .iter()
            .map(|file| {
                let rel_path = safe_rel_path(name, &file.path)?;
                let (source, service) = self.origin_of(name, locked, file)?;
                // The URL as locked, not as expanded: a new token keeps the same `.part`.
                let identity = (file.sha256.clone())
                    .or_else(|| file.url.clone())
                    .unwrap_or_else(|| source.url.to_string());
                let key = hex::encode(Sha256::digest(
                    format!("{name}\0{rel_path}\0{identity}").as_bytes(),
                ));
                let key = format!("mlib-{}", &key[..32]);
                Ok(Job {
                    name: name.to_string(),
                    label: if single {
                        name.to_string()
                    } else {
                        format!("{name}/{rel_path}")
                    },
                    rel_path,
                    url: source.url,
                    auth: source.auth,
                    secrets: source.secrets,
                    service,
                    size: file.size,
                    sha256: file.sha256.clone(),
                    blake3: file.blake3.clone(),
                    part: staging.join(format!("{key}.part")),
                    meta: staging.join(format!("{key}.part.json")),
                    done: staging.join(format!("{key}.done")),
                    index_key: index_key.clone(),
                })
            })
            .collect()
    }

    /// The first URL to ask for a locked file, built from the current endpoints.
    fn origin_of(
        &self,
        name: &str,
        locked: &LockedModel,
        file: &LockedFile,
    ) -> Result<(SourceUrl, Service), FetchError> {
        let incomplete = |what: &str| FetchError::Protocol {
            url: locked.source.clone(),
            message: format!("the lock entry of {name} has no {what}; run `mlib lock` again"),
        };
        if let Some(url) = &file.url {
            return Ok((SourceUrl::expand(self, name, url)?, Service::Plain));
        }
        let plain = |url: url::Url| SourceUrl {
            url,
            auth: None,
            secrets: Vec::new(),
        };
        if let Some(repo_path) = &file.repo_path {
            let repo = locked.repo.as_deref().ok_or_else(|| incomplete("repo"))?;
            let commit = locked
                .commit
                .as_deref()
                .ok_or_else(|| incomplete("commit"))?;
            let mut segs: Vec<&str> = repo.split('/').collect();
            segs.extend(["resolve", commit]);
            let url = endpoint_url_with_path(&self.config.hf_endpoint, &segs, repo_path)?;
            self.client.parse_url(url.as_str())?;
            return Ok((
                plain(url),
                Service::Hf {
                    repo: repo.into(),
                    repo_path: repo_path.clone(),
                    commit: commit.into(),
                },
            ));
        }
        if let Some(file_id) = file.file_id {
            let version_id = locked.version_id.ok_or_else(|| incomplete("version_id"))?;
            let mut url = endpoint_url(
                &self.config.civitai_endpoint,
                &["api", "download", "models", &version_id.to_string()],
            )?;
            url.set_query(Some(&format!("fileId={file_id}")));
            self.client.parse_url(url.as_str())?;
            return Ok((plain(url), Service::Civitai { version_id }));
        }
        Err(incomplete("url, repo_path or file_id"))
    }

    /// How the plan expects a model to come from the HuggingFace cache when every file of
    /// it is there (reflinked, hard linked or copied into `store`); `None` when it is not
    /// all there (or not a HuggingFace model).
    pub fn cache_reuse(&self, locked: &LockedModel, store: &Path) -> Option<mlib_store::Transfer> {
        let cache = self.config.hf_cache.as_deref()?;
        let (repo, commit) = (locked.repo.as_deref()?, locked.commit.as_deref()?);
        let mut how: Option<mlib_store::Transfer> = None;
        for file in &locked.files {
            let repo_path = file.repo_path.as_deref()?;
            let src = hfcache::find(cache, repo, commit, repo_path, file.sha256.as_deref())?;
            if !fs_err::metadata(&src).is_ok_and(|m| m.len() == file.size) {
                return None;
            }
            let this = crate::reuse::likely(&src, store);
            how = Some(how.map_or(this, |h| h.and(this)));
        }
        how
    }

    pub(crate) fn fetch_all(
        &self,
        jobs: &[Job],
        reporter: &dyn Reporter,
    ) -> Result<Vec<StagedFile>, FetchError> {
        let cancel = AtomicBool::new(false);
        let next = AtomicUsize::new(0);
        let results: Vec<Mutex<Option<Result<StagedFile, FetchError>>>> =
            jobs.iter().map(|_| Mutex::new(None)).collect();
        let work = || {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= jobs.len() || cancel.load(Ordering::SeqCst) {
                    return;
                }
                let _slot = self.slots.acquire();
                let r = self.fetch_one(&jobs[i], reporter, &cancel);
                if r.is_err() {
                    cancel.store(true, Ordering::SeqCst);
                }
                *results[i].lock().unwrap() = Some(r);
            }
        };
        let threads = self.config.jobs.clamp(1, jobs.len().max(1));
        if threads == 1 {
            work();
        } else {
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(work);
                }
            });
        }
        let mut staged = Vec::with_capacity(jobs.len());
        let mut first_error = None;
        for (i, r) in results.into_iter().enumerate() {
            match r.into_inner().unwrap() {
                Some(Ok(s)) => staged.push(s),
                // The real failure beats the cancellations it caused.
                Some(Err(FetchError::Cancelled { .. })) | None => {
                    let cancelled = FetchError::Cancelled {
                        url: redact_url(jobs[i].url.as_str()),
                    };
                    first_error.get_or_insert(cancelled.redacted(&jobs[i].secrets));
                }
                Some(Err(e)) => {
                    if matches!(first_error, None | Some(FetchError::Cancelled { .. })) {
                        first_error = Some(e);
                    }
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(staged),
        }
    }

    fn fetch_one(
        &self,
        job: &Job,
        reporter: &dyn Reporter,
        cancel: &AtomicBool,
    ) -> Result<StagedFile, FetchError> {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        let reporter = Redacting::new(reporter, &job.secrets);
        reporter.start(id, &job.label, Some(job.size));
        let result = self
            .fetch_one_inner(job, id, &reporter, cancel)
            .map_err(|e| e.redacted(&job.secrets));
        match &result {
            Ok(_) => reporter.finish(id),
            Err(_) => reporter.failed(id),
        }
        result.map(|hashes| StagedFile {
            staged: job.done.clone(),
            rel_path: job.rel_path.clone(),
            hashes,
        })
    }

    fn fetch_one_inner(
        &self,
        job: &Job,
        id: u64,
        reporter: &dyn Reporter,
        cancel: &AtomicBool,
    ) -> Result<Hashes, FetchError> {
        let url = redact_url(job.url.as_str());
        // A verified download an earlier run staged but never committed.
        if fs_err::metadata(&job.done).is_ok_and(|m| m.len() == job.size) {
            let hashes = hash_verified(&job.done, reporter, id)?;
            if verify(job, &hashes, &url).is_ok() {
                let _ = fs_err::remove_file(&job.meta);
                debug!(file = %job.label, "a verified download of an earlier run is reused");
                reporter.note(id, "already downloaded");
                return Ok(hashes);
            }
            let _ = fs_err::remove_file(&job.done);
            reporter.start(id, &job.label, Some(job.size));
        }
        if let Some(hashes) = self.try_hf_cache(job, id, reporter)? {
            return Ok(hashes);
        }
        // Mirrors need the network too: offline, the message below names the origin.
        if !self.config.offline
            && let Some(hashes) = self.try_mirrors(job, id, reporter, cancel)?
        {
            return Ok(hashes);
        }
        if self.config.offline {
            // Only HuggingFace files can come from a local cache; anything else needs the
            // network, and the message says what to download in the service's own terms.
            let what = match &job.service {
                Service::Hf { .. } => format!("{} is not in the HuggingFace cache", job.label),
                Service::Civitai { version_id } => format!(
                    "the file {} of Civitai model version {version_id} is not in the store (the lock has its file id; downloading it needs the network)",
                    job.rel_path
                ),
                Service::Plain => format!(
                    "{} is not in the store (downloading it needs the network)",
                    redact_url(job.url.as_str())
                ),
            };
            return Err(FetchError::Offline {
                name: job.name.clone(),
                what,
            });
        }
        let hashes = Download {
            f: self,
            job,
            id,
            reporter,
            cancel,
        }
        .run()
        .inspect_err(|e| {
            if matches!(
                e,
                FetchError::NotAModelFile { .. } | FetchError::SizeMismatch { .. }
            ) {
                discard(job);
            }
        })?;
        if let Err(e) = verify(job, &hashes, &url) {
            discard(job);
            return Err(e);
        }
        fs_err::rename(&job.part, &job.done)?;
        let _ = fs_err::remove_file(&job.meta);
        Ok(hashes)
    }

    /// Takes the file from the HuggingFace cache when it is there with the right size and
    /// hashes (zero network; reflinked, hard linked or copied: see [`crate::reuse`]); `None`
    /// otherwise.
    fn try_hf_cache(
        &self,
        job: &Job,
        id: u64,
        reporter: &dyn Reporter,
    ) -> Result<Option<Hashes>, FetchError> {
        let (
            Service::Hf {
                repo,
                repo_path,
                commit,
            },
            Some(cache),
        ) = (&job.service, self.config.hf_cache.as_deref())
        else {
            return Ok(None);
        };
        let Some(src) = hfcache::find(cache, repo, commit, repo_path, job.sha256.as_deref()) else {
            return Ok(None);
        };
        if !fs_err::metadata(&src).is_ok_and(|m| m.len() == job.size) {
            return Ok(None);
        }
        let staging = job.done.parent().unwrap_or(Path::new("."));
        let (taken, hashes, how) =
            crate::reuse::take(&src, staging, self.config.direct_io, reporter, id)?;
        if verify(job, &hashes, &src.display().to_string()).is_err() {
            // A damaged cache entry is not our error: download instead (unlinked: a hard
            // link's other name is the cache's).
            fs_err::remove_file(&taken)?;
            debug!(file = %job.label, cache = %src.display(), "the HuggingFace cache copy does not match: downloading");
            reporter.note(id, "the HuggingFace cache copy does not match; downloading");
            reporter.start(id, &job.label, Some(job.size));
            return Ok(None);
        }
        // `.done` is only ever read, renamed or unlinked: a hard link may carry that name.
        fs_err::rename(&taken, &job.done)?;
        debug!(file = %job.label, cache = %src.display(), %how, "reused from the HuggingFace cache");
        reporter.note(id, &format!("{how} from the HuggingFace cache"));
        Ok(Some(hashes))
    }
}

/// Hashes `src` (a verified download an earlier run left).
fn hash_verified(src: &Path, reporter: &dyn Reporter, id: u64) -> Result<Hashes, FetchError> {
    let mut input = fs_err::File::open(src)?;
    let mut progress = |n: u64| reporter.advance(id, n);
    Ok(mlib_store::copy_hashing(
        &mut input,
        &mut std::io::sink(),
        &mut progress,
    )?)
}
