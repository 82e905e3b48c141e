//! A sequential download: one connection, bytes appended to the `.part` and hashed as they
//! arrive, with 1 MiB buffers whatever the file size.
//!
//! Resume asks for `Range: bytes={have}-` with `If-Range: {validator}`. A 206 continues the
//! file; a 200 means the server ignored the range or the file changed, so the `.part` is
//! truncated and the download restarts cleanly from byte 0. Within one process the hasher
//! state survives a dropped connection, so only a new process re-hashes the prefix.

use std::io::{Seek, SeekFrom};

use mlib_store::{Hashes, MultiHasher};

use crate::client::{Failure, Follow};
use crate::download::{Download, PartMeta, content_range, pump, validator};
use crate::error::FetchError;
use crate::secret::redact_url;

struct State {
    have: u64,
    validator: Option<String>,
    hasher: MultiHasher,
}

pub(crate) fn run(
    dl: &Download,
    mut file: fs_err::File,
    prefix: u64,
    validator: Option<String>,
) -> Result<Hashes, FetchError> {
    let mut st = State {
        have: prefix,
        validator,
        hasher: MultiHasher::new(),
    };
    if prefix > 0 {
        dl.reporter.note(
            dl.id,
            &format!("resuming at {prefix} of {} bytes", dl.job.size),
        );
        dl.rehash_prefix(&mut file, prefix, &mut st.hasher)?;
    }
    let policy = dl.f.client.policy;
    let mut failures = 0;
    while st.have < dl.job.size || st.have == 0 {
        if dl.cancelled() {
            return Err(dl.cancelled_error());
        }
        let before = st.have;
        match attempt(dl, &mut file, &mut st) {
            Ok(()) => break,
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
                std::thread::sleep(policy.delay(failures, retry_after));
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

fn attempt(dl: &Download, file: &mut fs_err::File, st: &mut State) -> Result<(), Failure> {
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
    if let Some(t) = dl.f.client.transient_status(&reply) {
        return Err(t);
    }
    match reply.status() {
        200 => {
            if st.have > 0 {
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
    let reader = reply.into_reader();
    file.seek(SeekFrom::Start(st.have))
        .map_err(|e| Failure::Fatal(e.into()))?;
    let mut first = fresh;
    // One byte more than expected is enough to notice an oversized body.
    let limit = job.size - st.have + 1;
    let err = pump(reader, limit, file, |bytes| {
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
        Ok(())
    })?;
    if let Some(e) = err {
        return Err(Failure::Transient {
            reason: dl.f.client.scrub(&format!(
                "connection lost after {} of {} bytes: {e}",
                st.have, job.size
            )),
            retry_after: None,
        });
    }
    if st.have < job.size {
        return Err(Failure::Transient {
            reason: format!("the body ended after {} of {} bytes", st.have, job.size),
            retry_after: None,
        });
    }
    Ok(())
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
