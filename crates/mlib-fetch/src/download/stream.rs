//! A sequential download: one connection, bytes appended to the `.part` and hashed as they
//! arrive, with 1 MiB buffers whatever the file size, written with direct I/O where possible.
//!
//! Resume asks for `Range: bytes={have}-` with `If-Range: {validator}`. A 206 continues the
//! file; a 200 means the server ignored the range or the file changed, so the `.part` is
//! truncated and the download restarts cleanly from byte 0. Within one process the hasher
//! state survives a dropped connection, so only a new process re-hashes the prefix.
//!
//! A large file (`watch`) is watched: if its one connection is slow (see [`Watch`]), the stream
//! stops at a buffer boundary and the rest is downloaded in parallel ranges, handing over the
//! hasher so the prefix is not read back.

use std::time::{Duration, Instant};

use mlib_store::{Hashes, MultiHasher};

use crate::client::{Failure, Follow, Reply};
use crate::download::{Download, Ended, Flow, PartMeta, content_range, pump, ranges, validator};
use crate::error::FetchError;
use crate::retry::trace_retry;
use crate::secret::redact_url;
use mlib_fs::direct::Writer;
use tracing::debug;

struct State {
    have: u64,
    validator: Option<String>,
    hasher: MultiHasher,
}

/// How an attempt ended without error.
enum Outcome {
    Complete,
    /// The connection is slow: continue in parallel ranges from `have`.
    Slow,
}

/// Decides whether a large file's single connection is slow enough that parallel ranges would
/// be faster: measured over windows of `FetchConfig::stream_probe` (1 s by default), starting
/// at the first received buffer of each connection.
///
/// Slow means both: fewer than `FetchConfig::slow_stream_rate` bytes per second, *and* the
/// hashing thread spent at least half of the window waiting for the network. The second part
/// keeps a stream that is limited by this machine (disk, CPU: more connections would not help,
/// and parallel ranges cost a read-back of every chunk to hash it in order) from switching.
/// Every window is judged, so a connection that slows down later (a CDN's burst allowance
/// running out) is caught too.
struct Watch {
    window: Duration,
    min_rate: u64,
    /// `(when, have, waited)` at the start of the current window.
    since: Option<(Instant, u64, Duration)>,
    /// Bytes per second over the last window judged.
    rate: f64,
}

impl Watch {
    /// Whether the window that ends now shows a slow connection (then starts the next window).
    fn slow(&mut self, have: u64, waited: Duration) -> bool {
        let now = Instant::now();
        let Some((t0, have0, waited0)) = self.since else {
            self.since = Some((now, have, waited));
            return false;
        };
        let elapsed = now - t0;
        if elapsed < self.window {
            return false;
        }
        self.since = Some((now, have, waited));
        self.rate = (have - have0) as f64 / elapsed.as_secs_f64();
        let starved = (waited - waited0) * 2 >= elapsed;
        self.rate < self.min_rate as f64 && starved
    }
}

/// `watch`: the file may move to parallel ranges if its connection is slow.
pub(crate) fn run(
    dl: &Download,
    mut file: fs_err::File,
    prefix: u64,
    validator: Option<String>,
    watch: bool,
) -> Result<Hashes, FetchError> {
    let mut st = State {
        have: prefix,
        validator,
        hasher: MultiHasher::new(),
    };
    if prefix > 0 {
        debug!(
            file = %dl.job.label,
            offset = prefix,
            size = dl.job.size,
            "resuming from the .part file (its prefix is hashed again)"
        );
        dl.reporter.note(
            dl.id,
            &format!("resuming at {prefix} of {} bytes", dl.job.size),
        );
        dl.rehash_prefix(&mut file, prefix, &mut st.hasher)?;
    }
    let c = &dl.f.config;
    let mut watch = (watch && c.slow_stream_rate > 0).then_some(Watch {
        window: c.stream_probe,
        min_rate: c.slow_stream_rate,
        since: None,
        rate: 0.0,
    });
    let policy = dl.f.client.policy;
    let mut failures = 0;
    while st.have < dl.job.size || st.have == 0 {
        if dl.cancelled() {
            return Err(dl.cancelled_error());
        }
        let before = st.have;
        match attempt(dl, &mut file, &mut st, watch.as_mut()) {
            Ok(Outcome::Complete) => break,
            Ok(Outcome::Slow) => {
                let grid = ranges::Grid::new(st.have, c.chunk_size, dl.job.size);
                return ranges::run(dl, file, grid, st.validator, Some(st.hasher));
            }
            Err(Failure::Fatal(e)) => return Err(e),
            Err(Failure::Transient {
                reason,
                retry_after,
            }) => {
                if st.have > before {
                    failures = 0;
                }
                failures += 1;
                if failures > policy.retries {
                    return Err(FetchError::Network {
                        url: redact_url(dl.job.url.as_str()),
                        attempts: failures,
                        reason,
                    });
                }
                dl.reporter.retry(&dl.job.label, failures, &reason);
                let delay = policy.delay(failures, retry_after);
                trace_retry(
                    &dl.job.label,
                    failures,
                    policy.retries,
                    delay,
                    &dl.shown(&reason),
                );
                std::thread::sleep(delay);
            }
        }
    }
    file.sync_all()?;
    Ok(st.hasher.finalize())
}

fn restart(dl: &Download, file: &mut fs_err::File, st: &mut State) -> Result<(), Failure> {
    file.set_len(0).map_err(|e| Failure::Fatal(e.into()))?;
    st.have = 0;
    st.hasher = MultiHasher::new();
    dl.reporter.start(dl.id, &dl.job.label, Some(dl.job.size));
    Ok(())
}

fn attempt(
    dl: &Download,
    file: &mut fs_err::File,
    st: &mut State,
    mut watch: Option<&mut Watch>,
) -> Result<Outcome, Failure> {
    let job = dl.job;
    let range = format!("bytes={}-", st.have);
    let mut headers = Vec::new();
    if st.have > 0 {
        headers.push(("Range", range.as_str()));
        if let Some(v) = &st.validator {
            headers.push(("If-Range", v.as_str()));
        }
    }
    let reply =
        dl.f.client
            .send(false, &job.url, &headers, dl.token(), Follow::All)?;
    if let Some(t) = dl
        .transient(&reply)
        .or_else(|| dl.expired_storage_url(&reply))
    {
        return Err(t);
    }
    match reply.status() {
        200 => {
            if st.have > 0 {
                debug!(
                    file = %dl.job.label,
                    asked_from = st.have,
                    "the server ignored the range (or the file changed): starting over from byte 0"
                );
                dl.reporter
                    .note(dl.id, "the server did not resume; starting over");
                restart(dl, file, st)?;
            }
        }
        206 => match content_range(&reply) {
            Some((start, total)) if start == st.have => {
                if total != job.size {
                    return Err(Failure::Fatal(dl.size_mismatch(total)));
                }
            }
            _ => {
                return Err(Failure::Fatal(FetchError::Protocol {
                    url: redact_url(reply.url.as_str()),
                    message: format!(
                        "asked for bytes from {} but got Content-Range {:?}",
                        st.have,
                        reply.header("content-range")
                    ),
                }));
            }
        },
        416 => {
            restart(dl, file, st)?;
            st.validator = None;
            return Err(Failure::Transient {
                reason: "the server refused to resume; starting over".into(),
                retry_after: None,
            });
        }
        _ => return Err(Failure::Fatal(dl.status_error(reply))),
    }
    dl.check_content_type(&reply)?;
    let fresh = st.have == 0;
    let declared = (reply.status() == 200)
        .then(|| {
            reply
                .header("content-length")
                .and_then(|v| v.parse::<u64>().ok())
        })
        .flatten();
    if fresh {
        st.validator = validator(&reply);
        let meta = PartMeta {
            validator: st.validator.clone(),
            total: job.size,
            ranged: None,
        };
        meta.save(job)?;
    }
    let url = reply.url.clone();
    // Ranges must work for the rest to be fetched in parallel; and each connection is judged
    // from its own first buffer.
    if !accepts_ranges(&reply) {
        watch = None;
    }
    if let Some(w) = watch.as_deref_mut() {
        w.since = None;
    }
    let reader = reply.into_reader();
    let mut out = Writer::new(file, dl.f.config.direct_io);
    let mut first = fresh;
    // One byte more than expected is enough to notice an oversized body.
    let limit = job.size - st.have + 1;
    let start = st.have;
    let ended = pump(reader, start, limit, &mut out, |bytes, waited| {
        if first {
            first = false;
            dl.check_first_bytes(&url, bytes)?;
            if let Some(len) = declared.filter(|l| *l != job.size) {
                return Err(Failure::Fatal(dl.size_mismatch(len)));
            }
        }
        let n = bytes.len() as u64;
        if st.have + n > job.size {
            return Err(Failure::Fatal(dl.size_mismatch(st.have + n)));
        }
        if dl.cancelled() {
            return Err(Failure::Fatal(dl.cancelled_error()));
        }
        // Counted once accepted: `pump` writes every accepted buffer before returning.
        hash_here(&mut st.hasher, bytes);
        st.have += n;
        dl.reporter.advance(dl.id, n);
        // Only worth it with at least two ranges' worth left.
        let worth = job.size - st.have > dl.f.config.chunk_size;
        if let Some(w) = watch.as_deref_mut()
            && worth
            && w.slow(st.have, waited)
        {
            return Ok(Flow::Enough);
        }
        Ok(Flow::More)
    })?;
    match ended {
        Ended::Stopped => {
            let rate = watch.map_or(0.0, |w| w.rate);
            debug!(
                file = %dl.job.label,
                at = st.have,
                mib_per_s = rate / f64::from(1 << 20),
                threshold_mib_per_s = dl.f.config.slow_stream_rate as f64 / f64::from(1 << 20),
                "one connection is slow: switching to parallel ranges"
            );
            dl.reporter.note(
                dl.id,
                &format!(
                    "one connection gives {:.1} MiB/s; downloading the remaining {} bytes in parallel ranges",
                    rate / f64::from(1 << 20),
                    job.size - st.have
                ),
            );
            return Ok(Outcome::Slow);
        }
        Ended::Lost(e) => {
            return Err(Failure::Transient {
                reason: dl.f.client.scrub(&format!(
                    "connection lost after {} of {} bytes: {e}",
                    st.have, job.size
                )),
                retry_after: None,
            });
        }
        Ended::Complete => {}
    }
    if st.have < job.size {
        return Err(Failure::Transient {
            reason: format!("the body ended after {} of {} bytes", st.have, job.size),
            retry_after: None,
        });
    }
    Ok(Outcome::Complete)
}

/// A 206, or a 200 with `Accept-Ranges: bytes`: asking for ranges of this file should work.
fn accepts_ranges(reply: &Reply) -> bool {
    reply.status() == 206
        || reply
            .header("accept-ranges")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("bytes"))
}

/// Feeds `hasher` in pieces small enough that it hashes on this thread: `pump` already runs
/// receiving and writing on their own threads, and a thread spawned per buffer (what
/// `MultiHasher` does for large updates) cost more than it saved here (measured with strace:
/// ~1000 clone/mmap/munmap rounds per GiB).
pub(crate) fn hash_here(hasher: &mut MultiHasher, bytes: &[u8]) {
    for piece in bytes.chunks(128 << 10) {
        hasher.update(piece);
    }
}
