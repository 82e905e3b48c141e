//! Large files in parallel ranges, when one connection proved slow (see `stream::Watch`) or a
//! ranged `.part` is resumed: the rest of the file is cut into chunks (64 MiB by default), workers
//! each download a chunk with `Range` + `If-Range` and write it at its offset through their own
//! file handle, and the calling thread hashes chunks *in order* as soon as each is complete.
//!
//! Why hash in order while downloading rather than in a final pass: sha256 cannot be split, so
//! a final pass would add a full sequential read (seconds per GiB on a slow disk) after the
//! last byte arrived. Hashing chunk k while chunks k+1.. are still downloading hides that cost
//! behind the network, and the chunk is read back while still in the page cache. Memory stays
//! at one buffer per worker plus one for the hasher, whatever the file size.
//!
//! The first request (for the first missing chunk) doubles as a probe: a 200 means the server
//! does not do ranges (or the file changed), and the download falls back to one stream from 0.
//! Progress survives a kill: [`RangedMeta`] records the hashed prefix and completed chunks.

use std::io::{Read, Seek, SeekFrom};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};

use mlib_store::{Hashes, MultiHasher};
use url::Url;

use crate::client::{Failure, Follow, Reply};
use crate::download::{
    Download, PartMeta, READ_BACK_PIECE, RangedMeta, content_range, fill, stream, validator,
    write_in_pieces,
};
use crate::error::FetchError;
use crate::retry::trace_retry;
use crate::secret::redact_url;
use tracing::debug;

/// Chunk boundaries and which chunks are already on disk.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    origin: u64,
    chunk: u64,
    chunks: Vec<(u64, u64)>,
    done: Vec<bool>,
}

impl Grid {
    /// `[0, prefix)` complete, then chunks of `chunk` bytes up to `size`.
    pub fn new(prefix: u64, chunk: u64, size: u64) -> Grid {
        let mut chunks = Vec::new();
        let mut done = Vec::new();
        if prefix > 0 {
            chunks.push((0, prefix));
            done.push(true);
        }
        let mut a = prefix;
        while a < size {
            let b = (a + chunk).min(size);
            chunks.push((a, b));
            done.push(false);
            a = b;
        }
        Grid {
            origin: prefix,
            chunk,
            chunks,
            done,
        }
    }

    /// The grid a previous run recorded, with its completed chunks (those within the file).
    pub fn resume(meta: &RangedMeta, len: u64, size: u64) -> Grid {
        let mut grid = Grid::new(meta.origin.min(size), meta.chunk.max(1), size);
        for (i, &(a, b)) in grid.chunks.iter().enumerate() {
            if b <= len && (b <= meta.contiguous || meta.done.contains(&a)) {
                grid.done[i] = true;
            }
        }
        grid
    }

    fn meta(&self, contiguous: u64) -> RangedMeta {
        RangedMeta {
            origin: self.origin,
            chunk: self.chunk,
            contiguous,
            done: self
                .chunks
                .iter()
                .zip(&self.done)
                .filter(|&(&(_, b), &d)| d && b > contiguous)
                .map(|(&(a, _), _)| a)
                .collect(),
        }
    }
}

/// Why the workers stopped early.
enum Stop {
    Failed(FetchError),
    /// The server's copy changed mid-download: start over from byte 0.
    Changed,
}

struct Shared {
    grid: Mutex<Grid>,
    stop: Mutex<Option<Stop>>,
    cv: Condvar,
    halt: AtomicBool,
    next: AtomicUsize,
    first: Mutex<Option<Reply>>,
    /// Where ranges are asked for: the URL the download endpoint redirected to. Often a
    /// signed URL that expires; the worker that finds it refused asks the endpoint again and
    /// puts the new URL here for every worker.
    target: Mutex<Option<Url>>,
    meta: Mutex<PartMeta>,
    /// Taken by a worker around each buffer it writes. The kernel already lets only one
    /// buffered `write()` into a file at a time (ext4, XFS and btrfs hold the inode lock), but
    /// its waiters spin on the CPU while the holder copies: with four workers on two cores that
    /// spinning was 6% of a 2 GiB download's CPU (`rwsem_spin_on_owner`), and the download
    /// took 6.5-9.8 s against 4.8-7.0 s with this lock, whose waiters sleep (4 of 4 paired
    /// runs). Nothing is lost: the writes were serialised anyway.
    write: Mutex<()>,
}

impl Shared {
    fn fail(&self, stop: Stop) {
        let mut s = self.stop.lock().unwrap();
        if s.is_none() {
            *s = Some(stop);
        }
        self.halt.store(true, Ordering::SeqCst);
        drop(s);
        // Under the grid lock, so the hasher cannot miss the wake-up between check and wait.
        let _grid = self.grid.lock().unwrap();
        self.cv.notify_all();
    }
}

/// `hashed`: the hash state of `[0, grid.origin)` when the caller has it (a stream that moved
/// to ranges), so that prefix is not read back; otherwise it is read and hashed here.
pub(crate) fn run(
    dl: &Download,
    file: fs_err::File,
    grid: Grid,
    mut validator_in: Option<String>,
    hashed: Option<MultiHasher>,
) -> Result<Hashes, FetchError> {
    let todo: Vec<usize> = (0..grid.chunks.len()).filter(|&i| !grid.done[i]).collect();
    let mut target: Option<Url> = None;
    let mut first = None;
    if let Some(&i0) = todo.first() {
        match probe(dl, grid.chunks[i0], validator_in.as_deref())? {
            Some(reply) => {
                let v = validator(&reply);
                if validator_in.is_some() && v.is_some() && v != validator_in {
                    debug!(file = %dl.job.label, "the file changed on the server: starting over");
                    return restart(dl, file);
                }
                validator_in = v.or(validator_in);
                target = Some(reply.url.clone());
                first = Some(reply);
            }
            None => {
                debug!(file = %dl.job.label, "the server answered a range with the whole file");
                return restart(dl, file);
            }
        }
    }
    let contiguous = contiguous_prefix(&grid);
    let meta = PartMeta {
        validator: validator_in.clone(),
        total: dl.job.size,
        ranged: Some(grid.meta(contiguous)),
    };
    meta.save(dl.job)?;
    if contiguous > 0 && hashed.is_none() {
        debug!(
            file = %dl.job.label,
            offset = contiguous,
            size = dl.job.size,
            "resuming a ranged .part"
        );
        dl.reporter.note(
            dl.id,
            &format!(
                "resuming: {contiguous} of {} bytes already here",
                dl.job.size
            ),
        );
    }
    let shared = Shared {
        grid: Mutex::new(grid.clone()),
        stop: Mutex::new(None),
        cv: Condvar::new(),
        halt: AtomicBool::new(false),
        next: AtomicUsize::new(0),
        first: Mutex::new(first),
        target: Mutex::new(target),
        meta: Mutex::new(meta),
        write: Mutex::new(()),
    };
    let workers = dl.f.config.range_jobs.min(todo.len());
    debug!(
        file = %dl.job.label,
        from = grid.origin,
        chunks = todo.len(),
        chunk_size = grid.chunk,
        workers,
        "downloading in parallel ranges"
    );
    let hashed = std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| worker(dl, &shared, &todo, validator_in.as_deref()));
        }
        let result = hash_in_order(dl, &shared, &grid, hashed);
        if result.is_err() {
            shared.halt.store(true, Ordering::SeqCst);
        }
        result
    });
    match shared.stop.into_inner().unwrap() {
        Some(Stop::Failed(e)) => return Err(e),
        Some(Stop::Changed) => {
            debug!(file = %dl.job.label, "the file changed on the server: starting over");
            return restart(dl, file);
        }
        None => {}
    }
    let hasher = hashed?;
    file.sync_all()?;
    Ok(hasher.finalize())
}

/// Falls back to one sequential stream from byte 0.
fn restart(dl: &Download, file: fs_err::File) -> Result<Hashes, FetchError> {
    dl.reporter
        .note(dl.id, "the server does not resume this file; starting over");
    dl.reporter.start(dl.id, &dl.job.label, Some(dl.job.size));
    file.set_len(0)?;
    let _ = fs_err::remove_file(&dl.job.meta);
    // Not watched: a slow stream would come back here.
    stream::run(dl, file, 0, None, false)
}

fn contiguous_prefix(grid: &Grid) -> u64 {
    grid.chunks
        .iter()
        .zip(&grid.done)
        .take_while(|&(_, &d)| d)
        .last()
        .map_or(0, |(&(_, b), _)| b)
}

/// Asks for the first missing chunk: `Some(206 reply)` to keep, `None` if ranges do not work.
fn probe(dl: &Download, (a, b): (u64, u64), v: Option<&str>) -> Result<Option<Reply>, FetchError> {
    let range = format!("bytes={a}-{}", b - 1);
    let client = &dl.f.client;
    client.retrying(
        &dl.job.label,
        dl.job.url.as_str(),
        &dl.job.secrets,
        dl.reporter,
        || {
            let mut headers = vec![("Range", range.as_str())];
            if let Some(v) = v {
                headers.push(("If-Range", v));
            }
            let reply = client.send(false, &dl.job.url, &headers, dl.token(), Follow::All)?;
            if let Some(t) = dl.transient(&reply) {
                return Err(t);
            }
            match reply.status() {
                200 => Ok(None),
                206 => {
                    dl.check_content_type(&reply)?;
                    match content_range(&reply) {
                        Some((start, total)) if start == a && total == dl.job.size => {
                            Ok(Some(reply))
                        }
                        Some((_, total)) if total != dl.job.size => {
                            Err(Failure::Fatal(dl.size_mismatch(total)))
                        }
                        _ => Ok(None),
                    }
                }
                _ => Err(Failure::Fatal(dl.status_error(reply))),
            }
        },
    )
}

fn worker(dl: &Download, shared: &Shared, todo: &[usize], v: Option<&str>) {
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if shared.halt.load(Ordering::SeqCst) {
            return;
        }
        if dl.cancelled() {
            shared.fail(Stop::Failed(dl.cancelled_error()));
            return;
        }
        let k = shared.next.fetch_add(1, Ordering::SeqCst);
        let Some(&idx) = todo.get(k) else { return };
        let bounds = shared.grid.lock().unwrap().chunks[idx];
        let initial = if k == 0 {
            shared.first.lock().unwrap().take()
        } else {
            None
        };
        match chunk(dl, shared, bounds, initial, v, &mut buf) {
            Ok(()) => {
                let mut grid = shared.grid.lock().unwrap();
                grid.done[idx] = true;
                let mut meta = shared.meta.lock().unwrap();
                let contiguous = meta.ranged.as_ref().map_or(0, |r| r.contiguous);
                meta.ranged = Some(grid.meta(contiguous));
                let saved = meta.save(dl.job);
                drop((meta, grid));
                if let Err(e) = saved {
                    shared.fail(Stop::Failed(e));
                }
                shared.cv.notify_all();
            }
            Err(stop) => {
                shared.fail(stop);
                return;
            }
        }
    }
}

/// Downloads `[a, b)` into the `.part`, retrying from where it stopped.
fn chunk(
    dl: &Download,
    shared: &Shared,
    (a, b): (u64, u64),
    mut initial: Option<Reply>,
    v: Option<&str>,
    buf: &mut [u8],
) -> Result<(), Stop> {
    let mut out = fs_err::OpenOptions::new()
        .write(true)
        .open(&dl.job.part)
        .map_err(|e| Stop::Failed(e.into()))?;
    let mut pos = a;
    let mut via_origin = false;
    let mut failures = 0;
    let policy = dl.f.client.policy;
    loop {
        let before = pos;
        let attempt = (|| -> Result<(), Failure> {
            let reply = match initial.take() {
                Some(r) => r,
                None => {
                    let stored = shared.target.lock().unwrap().clone();
                    let direct = stored.filter(|_| !via_origin);
                    let url = direct.as_ref().unwrap_or(&dl.job.url);
                    let range = format!("bytes={pos}-{}", b - 1);
                    let mut headers = vec![("Range", range.as_str())];
                    if let Some(v) = v {
                        headers.push(("If-Range", v));
                    }
                    let reply =
                        dl.f.client
                            .send(false, url, &headers, dl.token(), Follow::All)?;
                    if let Some(t) = dl.transient(&reply) {
                        return Err(t);
                    }
                    match (reply.status(), content_range(&reply)) {
                        (206, Some((start, _))) if start == pos => {
                            if direct.is_none() && reply.url != dl.job.url {
                                // A new URL from the endpoint: every worker uses it from now.
                                *shared.target.lock().unwrap() = Some(reply.url.clone());
                                via_origin = false;
                            }
                            reply
                        }
                        (200, _) => {
                            return Err(Failure::Transient {
                                reason: CHANGED.into(),
                                retry_after: None,
                            });
                        }
                        (s, _) if s >= 400 => {
                            let expired = dl.expired_storage_url(&reply);
                            if direct.is_none() && expired.is_none() {
                                return Err(Failure::Fatal(dl.status_error(reply)));
                            }
                            // The URL (often presigned) expired: ask the origin again.
                            via_origin = true;
                            return Err(expired.unwrap_or_else(|| Failure::Transient {
                                reason: format!(
                                    "HTTP {s} from the download URL; asking the origin again"
                                ),
                                retry_after: None,
                            }));
                        }
                        _ => return Err(Failure::Fatal(dl.status_error(reply))),
                    }
                }
            };
            dl.check_content_type(&reply)?;
            out.seek(SeekFrom::Start(pos))
                .map_err(|e| Failure::Fatal(e.into()))?;
            let mut reader = reply.into_reader();
            while pos < b {
                let want = buf.len().min((b - pos) as usize);
                let (n, err) = fill(&mut reader as &mut dyn Read, &mut buf[..want]);
                if n > 0 {
                    let written = {
                        let _turn = shared.write.lock().unwrap_or_else(|e| e.into_inner());
                        write_in_pieces(&mut out, &buf[..n])
                    };
                    written.map_err(|e| Failure::Fatal(e.into()))?;
                    pos += n as u64;
                    dl.reporter.advance(dl.id, n as u64);
                }
                if shared.halt.load(Ordering::SeqCst) || dl.cancelled() {
                    return Err(Failure::Fatal(dl.cancelled_error()));
                }
                if let Some(e) = err {
                    return Err(Failure::Transient {
                        reason: dl
                            .f
                            .client
                            .scrub(&format!("connection lost in bytes {a}-{b}: {e}")),
                        retry_after: None,
                    });
                }
                if n < want {
                    return Err(Failure::Transient {
                        reason: format!("the body ended at byte {pos} of range {a}-{b}"),
                        retry_after: None,
                    });
                }
            }
            Ok(())
        })();
        match attempt {
            Ok(()) => return Ok(()),
            Err(Failure::Fatal(e)) => return Err(Stop::Failed(e)),
            Err(Failure::Transient { reason, .. }) if reason == CHANGED => {
                return Err(Stop::Changed);
            }
            Err(Failure::Transient {
                reason,
                retry_after,
            }) => {
                if pos > before {
                    failures = 0;
                }
                failures += 1;
                if failures > policy.retries {
                    return Err(Stop::Failed(FetchError::Network {
                        url: redact_url(dl.job.url.as_str()),
                        attempts: failures,
                        reason,
                    }));
                }
                dl.reporter.retry(&dl.job.label, failures, &reason);
                let delay = policy.delay(failures, retry_after);
                let what = format!("{} bytes {a}-{b}", dl.job.label);
                trace_retry(&what, failures, policy.retries, delay, &dl.shown(&reason));
                std::thread::sleep(delay);
            }
        }
    }
}

const CHANGED: &str = "the file changed on the server during the download";

/// Hashes chunks in file order as they complete, from `hashed` (the state after
/// `[0, grid.origin)`) if given; records the hashed prefix for resume.
fn hash_in_order(
    dl: &Download,
    shared: &Shared,
    grid: &Grid,
    hashed: Option<MultiHasher>,
) -> Result<MultiHasher, FetchError> {
    let (mut hasher, hashed_to) = match hashed {
        Some(h) => (h, grid.origin),
        None => (MultiHasher::new(), 0),
    };
    let mut input = fs_err::File::open(&dl.job.part)?;
    let mut buf = vec![0u8; READ_BACK_PIECE];
    for (idx, &(a, b)) in grid.chunks.iter().enumerate() {
        if b <= hashed_to {
            continue;
        }
        {
            let mut g = shared.grid.lock().unwrap();
            while !g.done[idx] {
                if shared.halt.load(Ordering::SeqCst) {
                    return Err(dl.cancelled_error());
                }
                g = shared.cv.wait(g).unwrap();
            }
        }
        input.seek(SeekFrom::Start(a))?;
        let mut left = b - a;
        while left > 0 {
            let want = buf.len().min(left as usize);
            input.read_exact(&mut buf[..want])?;
            stream::hash_here(&mut hasher, &buf[..want]);
            left -= want as u64;
            if grid.done[idx] {
                // Already on disk before this run: count it as progress now.
                dl.reporter.advance(dl.id, want as u64);
            }
        }
        // Same lock order as the workers: grid, then meta.
        let g = shared.grid.lock().unwrap();
        let mut meta = shared.meta.lock().unwrap();
        meta.ranged = Some(g.meta(b));
        meta.save(dl.job)?;
    }
    Ok(hasher)
}
