use std::time::{Duration, Instant};

use mlib_fetch::{FetchConfig, FetchError, Fetcher, NoReporter};
use mlib_manifest::Source;
use mlib_manifest::lock::LockedModel;
use mlib_testserver::{Blob, Faults, TestServer};

use crate::support::*;

fn url_model(name: &str, url: &str, sha: Option<String>) -> mlib_manifest::Model {
    let mut m = model(name, Source::Url(url.into()));
    m.sha256 = sha;
    m
}

/// The one staged file holds exactly `data`, with its sha256 and blake3 (compared without
/// printing megabytes on failure).
fn assert_staged(staged: &[mlib_store::StagedFile], data: &[u8], context: &str) {
    assert!(
        fs_err::read(&staged[0].staged).unwrap() == data,
        "content: {context}"
    );
    assert_eq!(staged[0].hashes.sha256, sha256(data), "{context}");
    assert_eq!(
        staged[0].hashes.blake3,
        blake3::hash(data).to_hex().to_string(),
        "{context}"
    );
}

/// A lock entry for a plain URL, without any request.
fn locked_url(url: &str, size: u64, sha: Option<String>) -> LockedModel {
    LockedModel::for_url(url, "model.safetensors", size, sha)
}

#[test]
fn url_sources_need_a_pin_and_plain_http_only_on_loopback() {
    let server = TestServer::start();
    let data = bytes(10_000, 30);
    let url = server.add(
        "/files/x.safetensors",
        Blob::new(data.clone()).filename("named.safetensors"),
    );
    let f = fetcher(&server);
    let err = f.resolve(&url_model("x", &url, None)).unwrap_err();
    assert!(matches!(err, FetchError::Unpinned { .. }), "{err:?}");
    assert!(err.to_string().contains("--allow-unpinned"));
    assert!(server.requests().is_empty(), "refused before any request");

    let locked = f
        .resolve(&url_model("x", &url, Some(sha256(&data))))
        .unwrap();
    assert_eq!(locked.files[0].size, data.len() as u64);
    assert_eq!(locked.files[0].path, "named.safetensors");
    assert_eq!(locked.files[0].url.as_deref(), Some(url.as_str()));

    let unpinned = Fetcher::new(FetchConfig {
        allow_unpinned: true,
        ..config(&server)
    });
    let locked = unpinned.resolve(&url_model("x", &url, None)).unwrap();
    assert!(locked.files[0].sha256.is_none());

    let err = f
        .resolve(&url_model(
            "y",
            "http://example.invalid/x.bin",
            Some(sha256(&data)),
        ))
        .unwrap_err();
    assert!(matches!(err, FetchError::InsecureUrl { .. }), "{err:?}");
    assert!(err.to_string().contains("--allow-http"));
}

#[test]
fn a_download_cut_at_half_resumes_and_transfers_the_rest_only() {
    let server = TestServer::start();
    let data = bytes(2 << 20, 31);
    let path = "/files/big.safetensors";
    let url = server.add(path, Blob::new(data.clone()).close_after(1 << 20));
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();

    // First "process": no retries, so the cut connection ends the fetch.
    let first = Fetcher::new(FetchConfig {
        retries: 0,
        ..config(&server)
    });
    let err = first
        .fetch("big", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
    assert!(
        staged_names(staging.path())
            .iter()
            .any(|n| n.ends_with(".part"))
    );
    let sent_first = server.bytes_sent(path);
    assert_eq!(sent_first, 1 << 20);

    // Second "process": finds the .part, re-hashes it, asks for the rest only.
    let events = Events::default();
    let staged = fetcher(&server)
        .fetch("big", &locked, staging.path(), &events)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    assert_eq!(staged[0].hashes.sha256, sha256(&data));
    let resumed = server.requests().into_iter().last().unwrap();
    assert_eq!(resumed.header("range"), Some("bytes=1048576-"));
    assert!(resumed.header("if-range").is_some());
    assert_eq!(resumed.status, 206);
    let again = server.bytes_sent(path) - sent_first;
    assert!(
        again < data.len() as u64 / 2 + 1,
        "re-transferred {again} bytes"
    );
    assert!(
        events.all().contains("resuming at 1048576"),
        "{}",
        events.all()
    );
    assert_eq!(
        *events.advanced.lock().unwrap().values().next().unwrap(),
        data.len() as u64
    );
    assert_eq!(
        staged_names(staging.path()).len(),
        1,
        "only the staged file is left"
    );
}

#[test]
fn a_server_answering_200_to_a_range_restarts_cleanly() {
    let server = TestServer::start();
    let data = bytes(1 << 20, 32);
    let path = "/files/norange.bin";
    let url = server.add(
        path,
        Blob::new(data.clone()).close_after(400_000).ignore_range(),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    // Retried in-process: the retry asks for a range, gets 200, truncates and starts over.
    let staged = fetcher(&server)
        .fetch("n", &locked, staging.path(), &events)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].header("range"), Some("bytes=400000-"));
    assert_eq!(reqs[1].status, 200);
    assert!(events.all().contains("starting over"), "{}", events.all());
}

#[test]
fn a_changed_file_is_not_appended_to_an_old_prefix() {
    let server = TestServer::start();
    let old = bytes(1 << 20, 33);
    let new = bytes(1 << 20, 34);
    let path = "/files/changing.bin";
    let url = server.add(path, Blob::new(old).close_after(500_000));
    let staging = tempfile::tempdir().unwrap();
    let locked = locked_url(&url, new.len() as u64, Some(sha256(&new)));
    let first = Fetcher::new(FetchConfig {
        retries: 0,
        ..config(&server)
    });
    first
        .fetch("c", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    server.add(path, Blob::new(new.clone()));
    let staged = fetcher(&server)
        .fetch("c", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), new);
    let last = server.requests().into_iter().last().unwrap();
    assert!(last.header("if-range").is_some());
    assert_eq!(last.status, 200, "If-Range no longer matched: full body");
}

#[test]
fn transient_errors_are_retried_honouring_retry_after() {
    let server = TestServer::start();
    let data = bytes(50_000, 35);
    let url = server.add(
        "/files/flaky.bin",
        Blob::new(data.clone()).fail_first(2, None),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = fetcher(&server)
        .fetch("f", &locked, staging.path(), &events)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let statuses: Vec<u16> = server.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [503, 503, 200]);
    assert_eq!(events.retries().len(), 2, "{}", events.all());

    let url = server.add(
        "/files/slow.bin",
        Blob::new(data.clone()).fail_first(1, Some(1)),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    server.clear_requests();
    let started = Instant::now();
    fetcher(&server)
        .fetch("s", &locked, staging.path(), &NoReporter)
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_secs(1),
        "Retry-After ignored"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn retries_give_up_and_client_errors_fail_at_once() {
    let server = TestServer::start();
    let data = bytes(1000, 36);
    let url = server.add(
        "/files/down.bin",
        Blob::new(data.clone()).fail_first(100, None),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let err = fetcher(&server)
        .fetch("d", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Network { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4);

    for status in [404u16, 403, 410] {
        server.clear_requests();
        let faults = Faults {
            fail_first: 100,
            fail_status: status,
            ..Faults::default()
        };
        let url = server.add("/files/gone.bin", Blob::new(data.clone()).faults(faults));
        let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
        let err = fetcher(&server)
            .fetch("g", &locked, staging.path(), &NoReporter)
            .unwrap_err();
        assert!(
            matches!(err, FetchError::Http { status: s, .. } if s == status),
            "{err:?}"
        );
        assert_eq!(server.requests().len(), 1, "no retry for {status}");
    }
    let missing = locked_url(&format!("{}/files/none.bin", server.url()), 1, None);
    let err = fetcher(&server)
        .fetch("m", &missing, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(err.to_string().contains("HTTP 404"), "{err}");
}

#[test]
fn a_hash_mismatch_deletes_the_download_and_redacts_the_url() {
    let server = TestServer::start();
    let data = bytes(100_000, 37);
    let url = server.add_blob("/files/m.bin", data.clone());
    let url = format!("{url}?token=supersecret&v=1");
    let wrong = "f".repeat(64);
    let locked = locked_url(&url, data.len() as u64, Some(wrong.clone()));
    let staging = tempfile::tempdir().unwrap();
    let err = fetcher(&server)
        .fetch("m", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    let FetchError::HashMismatch {
        expected,
        actual,
        url: shown,
        ..
    } = &err
    else {
        panic!("{err:?}")
    };
    assert_eq!(expected, &wrong);
    assert_eq!(actual, &sha256(&data));
    assert!(
        shown.contains("token=***") && !shown.contains("supersecret"),
        "{shown}"
    );
    let msg = err.to_string();
    assert!(msg.contains(&wrong) && msg.contains(&sha256(&data)) && !msg.contains("supersecret"));
    assert!(
        staged_names(staging.path()).is_empty(),
        "{:?}",
        staged_names(staging.path())
    );

    // A size that disagrees with the server is caught before writing anything.
    let locked = locked_url(&url, 5, None);
    let err = fetcher(&server)
        .fetch("m", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(matches!(err, FetchError::SizeMismatch { .. }), "{err:?}");
    assert!(staged_names(staging.path()).is_empty());
}

#[test]
fn html_and_json_bodies_are_not_saved_as_models() {
    let server = TestServer::start();
    let page = b"<!DOCTYPE html><html><body>Log in</body></html>".to_vec();
    let staging = tempfile::tempdir().unwrap();
    for (path, blob) in [
        (
            "/a.safetensors",
            Blob::new(page.clone()).content_type("text/html"),
        ),
        ("/b.safetensors", Blob::new(page.clone())),
        (
            "/c.safetensors",
            Blob::new(b"{\"error\": \"denied\"}".to_vec()),
        ),
    ] {
        let url = server.add(path, blob);
        let locked = locked_url(&url, 48, None);
        let err = fetcher(&server)
            .fetch("h", &locked, staging.path(), &NoReporter)
            .unwrap_err();
        assert!(
            matches!(err, FetchError::NotAModelFile { .. }),
            "{path}: {err:?}"
        );
        assert!(staged_names(staging.path()).is_empty());
    }
    // A JSON file that is meant to be JSON is fine.
    let json = b"{\"a\": 1}".to_vec();
    let url = server.add(
        "/config.json",
        Blob::new(json.clone()).content_type("application/json"),
    );
    let mut locked = locked_url(&url, json.len() as u64, None);
    locked.files[0].path = "config.json".into();
    fetcher(&server)
        .fetch("j", &locked, staging.path(), &NoReporter)
        .unwrap();
}

#[test]
fn large_files_download_in_parallel_ranges_with_correct_hashes() {
    let server = TestServer::start();
    let data = bytes(3 << 20, 38);
    let path = "/files/huge.safetensors";
    // The first range request is cut: only that chunk is retried.
    let url = server.add(path, Blob::new(data.clone()).close_after(100_000));
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let f = Fetcher::new(FetchConfig {
        parallel_threshold: 1 << 20,
        stream_probe: Duration::ZERO,
        chunk_size: 256 << 10,
        range_jobs: 4,
        ..config(&server)
    });
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = f.fetch("huge", &locked, staging.path(), &events).unwrap();
    assert_eq!(staged[0].hashes.sha256, sha256(&data));
    assert_eq!(
        staged[0].hashes.blake3,
        blake3::hash(&data).to_hex().to_string()
    );
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let reqs = server.requests();
    let ranged = reqs.iter().filter(|r| r.status == 206).count();
    assert_eq!(ranged, 12 + 1, "12 chunks plus the retry of the cut one");
    assert!(reqs.iter().all(|r| r.header("range").is_some()));
    let sent = server.bytes_sent(path);
    assert_eq!(
        sent,
        data.len() as u64,
        "the cut chunk resumed where it stopped"
    );
    assert_eq!(
        *events.advanced.lock().unwrap().values().next().unwrap(),
        data.len() as u64
    );
}

#[test]
fn parallel_ranges_fall_back_to_one_stream_without_range_support() {
    let server = TestServer::start();
    let data = bytes(2 << 20, 39);
    let url = server.add("/files/plain.bin", Blob::new(data.clone()).ignore_range());
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let f = Fetcher::new(FetchConfig {
        parallel_threshold: 1 << 20,
        stream_probe: Duration::ZERO,
        chunk_size: 256 << 10,
        ..config(&server)
    });
    let staging = tempfile::tempdir().unwrap();
    let staged = f.fetch("p", &locked, staging.path(), &NoReporter).unwrap();
    assert_eq!(staged[0].hashes.sha256, sha256(&data));
    assert_eq!(server.requests().len(), 2, "the probe, then one plain GET");
}

#[test]
fn parallel_ranges_resume_the_missing_chunks_only() {
    let server = TestServer::start();
    let data = bytes(3 << 20, 40);
    let path = "/files/ranged.safetensors";
    let faults = Faults {
        fail_nth: Some(6),
        ..Faults::default()
    };
    let url = server.add(path, Blob::new(data.clone()).faults(faults));
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let ranged = |retries, stream_probe| {
        Fetcher::new(FetchConfig {
            parallel_threshold: 1 << 20,
            stream_probe,
            chunk_size: 256 << 10,
            range_jobs: 2,
            retries,
            ..config(&server)
        })
    };
    let staging = tempfile::tempdir().unwrap();
    // The 7th request fails and this "process" gives up: with two workers, at least five
    // chunks were complete (each worker finishes a chunk before asking for the next).
    ranged(0, Duration::ZERO)
        .fetch("r", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    let meta = staged_names(staging.path())
        .into_iter()
        .find(|n| n.ends_with(".part.json"))
        .expect("progress recorded");
    let meta: serde_json::Value =
        serde_json::from_slice(&fs_err::read(staging.path().join(meta)).unwrap()).unwrap();
    let r = &meta["ranged"];
    let chunk = 256u64 << 10;
    let contiguous = r["contiguous"].as_u64().unwrap();
    let beyond: u64 = r["done"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| chunk.min(data.len() as u64 - a.as_u64().unwrap()))
        .sum();
    let kept = contiguous + beyond;
    assert!(kept >= 5 * chunk, "{meta}");

    let first = server.bytes_sent(path);
    // A ranged `.part` goes on in ranges, even where a new download would start as one stream.
    let staged = ranged(3, Duration::from_secs(1))
        .fetch("r", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(staged[0].hashes.sha256, sha256(&data));
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    assert_eq!(
        server.bytes_sent(path) - first,
        data.len() as u64 - kept,
        "only the chunks not recorded as complete were downloaded again"
    );
}

/// A sequential download of an odd size, cut at an odd offset, resumed by a new "process" and
/// by a retry within the process: byte for byte the same, with direct I/O (the aligned middle
/// of each buffer) and without it (`MLIB_DIRECT_IO=0`: everything through the page cache).
#[test]
fn odd_sizes_and_odd_resume_offsets_with_and_without_direct_io() {
    for direct_io in [true, false] {
        let server = TestServer::start();
        let data = bytes((3 << 20) + 12_345, 41);
        let path = "/files/odd.safetensors";
        let cut = 1_000_003;
        let url = server.add(path, Blob::new(data.clone()).close_after(cut));
        let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
        let staging = tempfile::tempdir().unwrap();
        let with = |retries| {
            Fetcher::new(FetchConfig {
                retries,
                direct_io,
                ..config(&server)
            })
        };
        with(0)
            .fetch("o", &locked, staging.path(), &NoReporter)
            .unwrap_err();
        let part = staged_names(staging.path())
            .into_iter()
            .find(|n| n.ends_with(".part"))
            .unwrap();
        let kept = fs_err::read(staging.path().join(part)).unwrap();
        assert_eq!(kept.len() as u64, cut, "every received byte was written");
        assert!(kept[..] == data[..cut as usize]);

        let events = Events::default();
        let staged = with(3)
            .fetch("o", &locked, staging.path(), &events)
            .unwrap();
        assert_staged(&staged, &data, &format!("direct_io {direct_io}"));
        let last = server.requests().into_iter().last().unwrap();
        assert_eq!(last.header("range"), Some("bytes=1000003-"));

        // Cut again within one process (the cut fault is spent: reset it), then retried.
        let url = server.add(
            "/files/odd2.safetensors",
            Blob::new(data.clone()).close_after(cut + 4096 * 3 + 1),
        );
        let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
        let staged = with(3)
            .fetch("o2", &locked, staging.path(), &NoReporter)
            .unwrap();
        assert_staged(&staged, &data, &format!("direct_io {direct_io}, retried"));
    }
}

/// Parallel ranges only where they help: a large file starts as one stream, and moves to
/// ranges once that connection proves slow, handing over what it has (on disk and hashed).
fn adaptive(server: &TestServer, slow_stream_rate: u64) -> Fetcher {
    Fetcher::new(FetchConfig {
        parallel_threshold: 1 << 20,
        chunk_size: 512 << 10,
        range_jobs: 4,
        stream_probe: Duration::from_millis(200),
        slow_stream_rate,
        ..config(server)
    })
}

#[test]
fn a_slow_connection_moves_the_rest_of_a_large_file_to_parallel_ranges() {
    let server = TestServer::start();
    let data = bytes((6 << 20) + 777, 42);
    let path = "/files/slow.safetensors";
    // Each connection gets 2 MiB/s, far below the 64 MiB/s asked of one connection.
    let url = server.add(path, Blob::new(data.clone()).throttle(2 << 20));
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = adaptive(&server, 64 << 20)
        .fetch("s", &locked, staging.path(), &events)
        .unwrap();
    assert_staged(&staged, &data, "");
    assert!(events.all().contains("parallel ranges"), "{}", events.all());
    // Progress counts every byte once: the stream's prefix is not counted (or hashed) again.
    assert_eq!(
        *events.advanced.lock().unwrap().values().next().unwrap(),
        data.len() as u64
    );
    let reqs = server.requests();
    assert_eq!(reqs[0].header("range"), None, "one plain stream first");
    assert_eq!(reqs[0].status, 200);
    let ranged: Vec<_> = reqs[1..].iter().filter(|r| r.status == 206).collect();
    assert!(ranged.len() >= 2, "{reqs:?}");
    // The ranges start where the stream stopped, at a buffer boundary.
    let first = ranged[0].header("range").unwrap();
    let from: u64 = first["bytes=".len()..]
        .split('-')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(from > 0 && from.is_multiple_of(1 << 20), "{first}");
    // How much faster that is, is for benchmarks (bench/downloads), not a timed test.
}

#[test]
fn a_fast_connection_keeps_a_large_file_in_one_stream() {
    let server = TestServer::start();
    let data = bytes(8 << 20, 43);
    let url = server.add("/files/fast.safetensors", Blob::new(data.clone()));
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let staged = adaptive(&server, 1 << 20)
        .fetch("f", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert!(fs_err::read(&staged[0].staged).unwrap() == data);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0].header("range"), None);

    // Throttled, but above the bar: still one stream.
    let data = bytes(2 << 20, 44);
    let url = server.add(
        "/files/enough.safetensors",
        Blob::new(data.clone()).throttle(4 << 20),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    server.clear_requests();
    let staged = adaptive(&server, 1 << 20)
        .fetch("e", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert!(fs_err::read(&staged[0].staged).unwrap() == data);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn the_hubs_rate_limit_is_waited_out_as_its_ratelimit_header_says() {
    let server = TestServer::start();
    let data = bytes(20_000, 37);
    let url = server.add(
        "/files/limited.bin",
        Blob::new(data.clone()).rate_limited(1, 1),
    );
    let locked = locked_url(&url, data.len() as u64, Some(sha256(&data)));
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    fetcher(&server)
        .fetch("l", &locked, staging.path(), &events)
        .unwrap();
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert!(
        reqs[1].at - reqs[0].at >= Duration::from_secs(1),
        "RateLimit t= ignored"
    );
    let retries = events.retries().join("\n");
    assert!(
        retries
            .contains("rate limited (5000 requests per 300 s); waiting 1s for the window to reset"),
        "{retries}"
    );
}
