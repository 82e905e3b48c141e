//! Downloading one file into the staging directory.
//!
//! Every file goes to `{staging}/{key}.part` whose key is derived from the model name, the
//! file's path and its expected hash (or URL), so a re-run after a kill finds it again. Next to
//! it, `{key}.part.json` ([`PartMeta`]) records the server's validator (ETag/Last-Modified, for
//! `If-Range`) and, for parallel ranges, which chunks are complete. Once complete, hashed and
//! verified, the file is renamed to `{key}.done`: that is what the store's `commit` moves in,
//! and what a re-run reuses (after re-hashing) if the commit never happened.
//!
//! Every file starts as one sequential stream ([`stream`]), written with direct I/O where the
//! filesystem allows ([`mlib_fs::direct`]). A large one moves to parallel ranges ([`ranges`]) when that
//! one connection proves slow, or from the start when resuming a ranged `.part`.

pub(crate) mod ranges;
pub(crate) mod sniff;
pub(crate) mod stream;

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use mlib_store::{Hashes, MultiHasher};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::Fetcher;
use crate::client::{Failure, Reply, Token};
use crate::error::FetchError;
use crate::names::expects_text;
use crate::report::Reporter;
use crate::secret::{Secret, redact_url};

/// Which service a file comes from: decides the token and how errors are explained.
#[derive(Debug, Clone)]
pub(crate) enum Service {
    Hf {
        repo: String,
        repo_path: String,
        commit: String,
    },
    Civitai {
        version_id: u64,
    },
    Plain,
}

/// One file to fetch, with everything known about it. Not `Debug`: `url` may carry
/// credentials (expanded `${VAR}` values).
#[derive(Clone)]
pub(crate) struct Job {
    pub name: String,
    pub label: String,
    pub rel_path: String,
    pub url: Url,
    /// Credentials for `url`'s own origin from its user info (plain URL sources).
    pub auth: Option<Token>,
    /// Values no message may show (a plain URL's `${VAR}` values); see `source_url`.
    pub secrets: Vec<Secret>,
    pub service: Service,
    pub size: u64,
    pub sha256: Option<String>,
    pub blake3: Option<String>,
    pub part: PathBuf,
    pub meta: PathBuf,
    pub done: PathBuf,
    /// The name of this file's model index on a mirror (`mirror::layout::index_key`), read
    /// when the lock has no sha256 for the file.
    pub index_key: String,
}

/// Progress of a `.part` file that survives the process.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct PartMeta {
    /// A strong ETag or a Last-Modified date, sent back as `If-Range`.
    pub validator: Option<String>,
    pub total: u64,
    /// Present while downloading in parallel ranges (the file may then have holes).
    pub ranged: Option<RangedMeta>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RangedMeta {
    /// Chunks start at `origin + k * chunk`; `[0, origin)` was complete before.
    pub origin: u64,
    pub chunk: u64,
    /// `[0, contiguous)` is complete (and has been hashed once).
    pub contiguous: u64,
    /// Starts of chunks beyond `contiguous` that are complete.
    pub done: Vec<u64>,
}

impl PartMeta {
    pub fn load(job: &Job) -> Option<PartMeta> {
        let text = fs_err::read(&job.meta).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Written atomically, so a kill never leaves half a record.
    pub fn save(&self, job: &Job) -> Result<(), FetchError> {
        let json = serde_json::to_vec(self).expect("PartMeta serializes");
        mlib_fs::write_atomic(&job.meta, &json)?;
        Ok(())
    }
}

/// One file being downloaded.
pub(crate) struct Download<'a> {
    pub f: &'a Fetcher,
    pub job: &'a Job,
    pub id: u64,
    pub reporter: &'a dyn Reporter,
    pub cancel: &'a AtomicBool,
}

impl Download<'_> {
    pub fn token(&self) -> Option<&Token> {
        match self.job.service {
            Service::Hf { .. } => self.f.hf_token.as_ref(),
            Service::Civitai { .. } => self.f.civitai_token.as_ref(),
            Service::Plain => {
                (self.job.auth.as_ref()).or_else(|| self.f.token_for_url(&self.job.url))
            }
        }
    }

    /// `text` as a trace may show it: this file's secrets (its URL's `${VAR}` values) and the
    /// tokens starred, and credential-looking URL parameters too.
    pub fn shown(&self, text: &str) -> String {
        let secrets: Vec<&Secret> = self.job.secrets.iter().collect();
        self.f
            .client
            .scrub(&crate::secret::redact_text(text, &secrets))
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn cancelled_error(&self) -> FetchError {
        FetchError::Cancelled {
            url: redact_url(self.job.url.as_str()),
        }
    }

    /// Downloads into the `.part` (resuming what a previous run left), returning its hashes
    /// once complete and synced to disk. Verification is the caller's.
    pub fn run(&self) -> Result<Hashes, FetchError> {
        let job = self.job;
        let meta = PartMeta::load(job).filter(|m| m.total == job.size);
        // Without a validator a prefix can only be trusted if the final hash will check it.
        let mut meta = meta.filter(|m| m.validator.is_some() || job.sha256.is_some());
        let file = open_own_part(job)?;
        if file.is_none() {
            meta = None;
        }
        let file = match file {
            Some(file) => file,
            None => fs_err::File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&job.part)?,
        };
        let len = file.metadata()?.len();
        let validator = meta.as_ref().and_then(|m| m.validator.clone());
        if let Some(PartMeta {
            ranged: Some(r), ..
        }) = &meta
            && self.ranged_allowed()
        {
            // Parallel ranges already began (the file may have holes): go on with them.
            let grid = ranges::Grid::resume(r, len, job.size);
            return ranges::run(self, file, grid, validator, None);
        }
        let prefix = match &meta {
            Some(m) => m.ranged.as_ref().map_or(len, |r| r.contiguous.min(len)),
            None => 0,
        }
        .min(job.size);
        file.set_len(prefix)?;
        let c = &self.f.config;
        let large = self.ranged_allowed() && job.size - prefix >= c.parallel_threshold;
        tracing::debug!(
            file = %job.label,
            size = job.size,
            from = prefix,
            watched = large,
            direct_io = c.direct_io,
            "downloading"
        );
        if large && c.stream_probe.is_zero() {
            let grid = ranges::Grid::new(prefix, c.chunk_size, job.size);
            return ranges::run(self, file, grid, validator, None);
        }
        // A large file starts as one stream too, and moves to parallel ranges only if that
        // connection turns out slow (see `FetchConfig::slow_stream_rate`).
        stream::run(self, file, prefix, validator, large)
    }

    /// Large model files may go in parallel ranges (small ones and text files never do).
    fn ranged_allowed(&self) -> bool {
        let c = &self.f.config;
        c.range_jobs > 1
            && c.chunk_size > 0
            && self.job.size >= c.parallel_threshold
            && !expects_text(&self.job.rel_path)
    }

    /// Rejects an HTML/JSON answer by its `Content-Type` (model files only).
    pub fn check_content_type(&self, reply: &Reply) -> Result<(), Failure> {
        if expects_text(&self.job.rel_path) {
            return Ok(());
        }
        match sniff::from_content_type(reply.header("content-type")) {
            Some(kind) => Err(Failure::Fatal(self.not_a_model(reply, kind))),
            None => Ok(()),
        }
    }

    /// Rejects an HTML/JSON answer by its first bytes (model files only).
    pub fn check_first_bytes(&self, reply_url: &Url, first: &[u8]) -> Result<(), Failure> {
        if expects_text(&self.job.rel_path) {
            return Ok(());
        }
        match sniff::from_bytes(first) {
            Some(kind) => Err(Failure::Fatal(self.not_a_model_at(reply_url, kind))),
            None => Ok(()),
        }
    }

    fn not_a_model(&self, reply: &Reply, kind: &'static str) -> FetchError {
        self.not_a_model_at(&reply.url, kind)
    }

    fn not_a_model_at(&self, url: &Url, kind: &'static str) -> FetchError {
        let c = &self.f.config;
        let hint = match &self.job.service {
            Service::Hf { repo, .. } => format!(
                "Set HF_TOKEN (if the repo is gated, accept its licence at {}/{repo} first).",
                c.hf_endpoint
            ),
            Service::Civitai { .. } => format!(
                "Set CIVITAI_TOKEN to an API key created at {}/user/account.",
                c.civitai_endpoint
            ),
            Service::Plain => {
                "Check that the URL is a direct download link to the file, not a web page; if the site needs a login, download through its API with a token.".into()
            }
        };
        FetchError::NotAModelFile {
            url: redact_url(url.as_str()),
            kind,
            hint,
        }
    }

    /// Whether an answer is worth retrying (see [`crate::resolve::civitai::transient`] for
    /// Civitai's quota).
    pub fn transient(&self, reply: &Reply) -> Option<crate::client::Failure> {
        match self.job.service {
            Service::Civitai { .. } if is_origin(&reply.url, &self.f.config.civitai_endpoint) => {
                crate::resolve::civitai::transient(self.f, reply)
            }
            _ => self.f.client.transient_status(reply),
        }
    }

    /// A refusal by the storage host a download endpoint redirected to: Civitai's (and the
    /// Hub's) redirects are signed URLs that expire, so a download that outlives one, or
    /// resumes after it, is refused there (400, 401 or 403). That is not the user's error and
    /// not the model's: the next attempt starts again at the download endpoint (`job.url`),
    /// which signs a new URL, and resumes with `Range` where the `.part` ends. The token went
    /// only to the endpoint (`Client::send` sends it to its own origins alone).
    pub fn expired_storage_url(&self, reply: &Reply) -> Option<Failure> {
        if matches!(self.job.service, Service::Plain)
            || reply.url.origin() == self.job.url.origin()
            || !matches!(reply.status(), 400 | 401 | 403)
        {
            return None;
        }
        let host = reply.url.host_str().unwrap_or("the storage host");
        Some(Failure::Transient {
            reason: format!(
                "the signed URL from {} expired: HTTP {} from {host}",
                self.endpoint_name(),
                reply.status(),
            ),
            retry_after: None,
        })
    }

    /// The download endpoint, in words, for messages.
    fn endpoint_name(&self) -> String {
        let endpoint = redact_url(self.job.url.as_str());
        match self.job.service {
            Service::Civitai { .. } => format!("Civitai's download endpoint ({endpoint})"),
            _ => endpoint,
        }
    }

    /// Maps an error status at fetch time to the service's clear error.
    pub fn status_error(&self, reply: Reply) -> FetchError {
        let f = self.f;
        match &self.job.service {
            Service::Hf {
                repo,
                repo_path,
                commit,
            } => crate::resolve::hf::status_error(f, reply, repo, Some(repo_path), commit),
            Service::Civitai { version_id }
                if is_origin(&reply.url, &f.config.civitai_endpoint) =>
            {
                crate::resolve::civitai::status_error(f, reply, *version_id)
            }
            _ => FetchError::Http {
                url: redact_url(reply.url.as_str()),
                status: reply.status(),
                detail: f.client.scrub(&reply.detail()),
            },
        }
    }

    pub fn size_mismatch(&self, actual: u64) -> FetchError {
        FetchError::SizeMismatch {
            name: self.job.name.clone(),
            path: self.job.rel_path.clone(),
            url: redact_url(self.job.url.as_str()),
            expected: self.job.size,
            actual,
        }
    }

    /// Feeds `[0, len)` of the `.part` to `hasher`, reporting it as progress.
    pub fn rehash_prefix(
        &self,
        file: &mut fs_err::File,
        len: u64,
        hasher: &mut MultiHasher,
    ) -> Result<(), FetchError> {
        file.seek(SeekFrom::Start(0))?;
        let mut buf = vec![0u8; READ_BACK_PIECE];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            file.read_exact(&mut buf[..want])?;
            stream::hash_here(hasher, &buf[..want]);
            self.reporter.advance(self.id, want as u64);
            left -= want as u64;
        }
        Ok(())
    }
}

fn is_origin(url: &Url, endpoint: &str) -> bool {
    Url::parse(endpoint).is_ok_and(|e| e.origin() == url.origin())
}

/// A strong validator for `If-Range`: a non-weak ETag, else Last-Modified.
pub(crate) fn validator(reply: &Reply) -> Option<String> {
    reply
        .header("etag")
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| reply.header("last-modified"))
        .map(str::to_string)
}

/// `(start, total)` from `Content-Range: bytes start-end/total`.
pub(crate) fn content_range(reply: &Reply) -> Option<(u64, u64)> {
    let v = reply
        .header("content-range")?
        .trim()
        .strip_prefix("bytes ")?;
    let (range, total) = v.split_once('/')?;
    let start = range.split_once('-')?.0.trim().parse().ok()?;
    Some((start, total.trim().parse().ok()?))
}

/// Reads until `buf` is full or the body ends; an error after some bytes is returned together
/// with them, so nothing received is lost.
pub(crate) fn fill(reader: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<std::io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Buffers in flight between the network, hashing and disk stages.
const PUMP_BUFFERS: usize = 6;
/// Also the size of each direct write (see [`mlib_fs::direct`]): large enough that one `pwrite` per
/// MiB costs nothing, small enough that the six buffers stay a few MiB. The 128 KiB limit of
/// [`WRITE_PIECE`] was about the page cache and does not apply to direct writes.
const PUMP_BUFFER_SIZE: usize = 1 << 20;

/// The largest single `write()` into the `.part` file through the page cache (see there).
pub(crate) use mlib_fs::direct::WRITE_PIECE;

/// Bytes read back from the `.part` per `read()` when hashing what is already on disk: small
/// enough to stay in the core's L2 cache while sha256 and then blake3 go over it. With 1 MiB
/// reads, sha256 read each buffer from L3 or memory; 128 KiB made the parallel-range download
/// of a 2 GiB file about a tenth faster and cheaper (4 of 4 paired runs, `download_bench`).
pub(crate) const READ_BACK_PIECE: usize = 128 << 10;

/// Writes all of `bytes` at `out`'s position in pieces of at most [`WRITE_PIECE`].
pub(crate) fn write_in_pieces(out: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(WRITE_PIECE) {
        out.write_all(piece)?;
    }
    Ok(())
}

/// What `pump`'s `inspect` wants after accepting a buffer.
pub(crate) enum Flow {
    More,
    /// Stop after this buffer (it is written): the caller continues the download otherwise.
    Enough,
}

/// How a `pump` ended. Every byte `inspect` accepted has been written in all three cases.
pub(crate) enum Ended {
    /// The body ended, or `limit` bytes were read.
    Complete,
    /// The connection failed after the accepted bytes.
    Lost(std::io::Error),
    /// `inspect` answered [`Flow::Enough`].
    Stopped,
}

/// Streams up to `limit` bytes of `reader` through `inspect` (checks, hashing, progress; on
/// the calling thread) into `out` from file offset `start`. Receiving, hashing and writing run
/// on three threads as a pipeline: done in turn, each waits for the others (measured: about a
/// third slower on loopback). Memory: six 1 MiB buffers.
///
/// `inspect` also gets the total time this call has so far waited for the network (for a
/// received buffer), which tells a slow network from a slow disk or CPU.
///
/// Each received byte is put at the same offset modulo [`direct::ALIGN`] in its (aligned)
/// buffer as in the file, so `out` can write the aligned blocks with direct I/O as they are.
///
/// Stopping (an error from `inspect`, or [`Flow::Enough`]) waits for the receiving thread to
/// finish the read it is in: at most one buffer's worth of the connection's time.
pub(crate) fn pump(
    mut reader: impl Read + Send,
    start: u64,
    limit: u64,
    out: &mut mlib_fs::direct::Writer,
    mut inspect: impl FnMut(&[u8], Duration) -> Result<Flow, Failure>,
) -> Result<Ended, Failure> {
    use mlib_fs::direct::{ALIGN, AlignedBuf};
    use std::sync::mpsc;
    /// A buffer holding `n` received bytes from `skew` on, and the error that ended the body.
    struct Filled {
        buf: AlignedBuf,
        skew: usize,
        n: usize,
        err: Option<std::io::Error>,
    }
    let (full_tx, full_rx) = mpsc::sync_channel::<Filled>(PUMP_BUFFERS);
    let (write_tx, write_rx) = mpsc::sync_channel::<Filled>(PUMP_BUFFERS);
    let (free_tx, free_rx) = mpsc::channel::<AlignedBuf>();
    for _ in 0..PUMP_BUFFERS {
        free_tx
            .send(AlignedBuf::new(PUMP_BUFFER_SIZE))
            .expect("receiver alive");
    }
    std::thread::scope(|s| {
        s.spawn(move || {
            let mut pos = start;
            let mut left = limit;
            while left > 0 {
                let Ok(mut buf) = free_rx.recv() else { return };
                let skew = (pos % ALIGN as u64) as usize;
                let space = &mut buf.as_mut_slice()[skew..];
                let want = space.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let (n, err) = fill(&mut reader, &mut space[..want]);
                pos += n as u64;
                left -= n as u64;
                let end = n < want || err.is_some();
                let filled = Filled { buf, skew, n, err };
                if full_tx.send(filled).is_err() || end {
                    return;
                }
            }
        });
        let writer = s.spawn(move || -> std::io::Result<()> {
            let mut pos = start;
            for Filled { buf, skew, n, .. } in write_rx {
                out.write_at(pos, &buf.as_slice()[skew..skew + n])?;
                pos += n as u64;
                // The reader may be gone already; the buffer is then simply dropped.
                let _ = free_tx.send(buf);
            }
            Ok(())
        });
        // Returning drops the channels' ends, which stops the reader and ends the writer.
        let inspected = (move || -> Result<Ended, Failure> {
            let mut waited = Duration::ZERO;
            loop {
                let asked = Instant::now();
                let Ok(mut filled) = full_rx.recv() else {
                    return Ok(Ended::Complete);
                };
                waited += asked.elapsed();
                let err = filled.err.take();
                let mut flow = Flow::More;
                if filled.n > 0 {
                    let bytes = &filled.buf.as_slice()[filled.skew..filled.skew + filled.n];
                    flow = inspect(bytes, waited)?;
                    if write_tx.send(filled).is_err() {
                        // The writer failed: its error is what this call returns.
                        return Ok(Ended::Complete);
                    }
                }
                match (flow, err) {
                    (Flow::Enough, _) => return Ok(Ended::Stopped),
                    (Flow::More, Some(e)) => return Ok(Ended::Lost(e)),
                    (Flow::More, None) => {}
                }
            }
        })();
        let written = writer.join().expect("the writer thread does not panic");
        written.map_err(|e| Failure::Fatal(e.into()))?;
        inspected
    })
}

/// The `.part` to resume, opened for writing, when it is this download's own file: `None`
/// when there is none, or when the name was another file's too (a hard link: an older mlib
/// hard linked HuggingFace cache blobs there, and writing through it would change the cache's
/// file). Such a name is unlinked with its record, never truncated or written through; the
/// caller starts a new file.
fn open_own_part(job: &Job) -> Result<Option<fs_err::File>, FetchError> {
    let own = |meta: &std::fs::Metadata| meta.is_file() && mlib_fs::platform::link_count(meta) == 1;
    // Looked at before it is opened for writing (a shared name may be read-only), and
    // again once open (it is the open file that gets written).
    match fs_err::symlink_metadata(&job.part) {
        Ok(meta) if own(&meta) => {}
        Ok(_) => return unlink_part(job),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    let file = match fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&job.part)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    if own(&file.metadata()?) {
        return Ok(Some(file));
    }
    drop(file);
    unlink_part(job)
}

fn unlink_part(job: &Job) -> Result<Option<fs_err::File>, FetchError> {
    tracing::debug!(part = %job.part.display(), "the .part is not only this download's: unlinked, not reused");
    fs_err::remove_file(&job.part)?;
    let _ = fs_err::remove_file(&job.meta);
    Ok(None)
}

/// Deletes a download's `.part` and its record (after a failed verification).
pub(crate) fn discard(job: &Job) {
    let _ = fs_err::remove_file(&job.part);
    let _ = fs_err::remove_file(&job.meta);
}

/// Checks size and hashes against what the lock expects.
pub(crate) fn verify(job: &Job, hashes: &Hashes, url: &str) -> Result<(), FetchError> {
    if hashes.size != job.size {
        return Err(FetchError::SizeMismatch {
            name: job.name.clone(),
            path: job.rel_path.clone(),
            url: url.to_string(),
            expected: job.size,
            actual: hashes.size,
        });
    }
    let checks = [
        ("sha256", &job.sha256, &hashes.sha256),
        ("blake3", &job.blake3, &hashes.blake3),
    ];
    for (algo, expected, actual) in checks {
        if let Some(expected) = expected
            && expected != actual
        {
            return Err(FetchError::HashMismatch {
                name: job.name.clone(),
                path: job.rel_path.clone(),
                url: url.to_string(),
                algo,
                expected: expected.clone(),
                actual: actual.clone(),
            });
        }
    }
    Ok(())
}
