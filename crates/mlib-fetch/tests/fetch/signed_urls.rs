//! Civitai's download endpoint redirects to a signed storage URL that expires; a download that
//! outlives it goes back to the endpoint for a new one (with the token, which the storage host
//! never sees) and resumes with `Range` where it stopped.

use std::time::Duration;

use mlib_fetch::{FetchConfig, FetchError, Fetcher, NoReporter};
use mlib_manifest::Source;
use mlib_manifest::lock::LockedModel;
use mlib_testserver::{CivitaiVersion, Expiry, Request, TestServer};

use crate::support::*;

fn locked(f: &Fetcher, version_id: u64) -> LockedModel {
    let source = Source::Civitai {
        model_id: None,
        version_id,
    };
    f.resolve(&model("long", source)).unwrap()
}

fn endpoint_requests(reqs: &[Request]) -> Vec<&Request> {
    reqs.iter()
        .filter(|r| r.path.starts_with("/api/download/"))
        .collect()
}

fn storage_gets(reqs: &[Request]) -> Vec<&Request> {
    reqs.iter().filter(|r| r.cdn && r.method == "GET").collect()
}

/// The token reached the download endpoint every time, and never the storage host.
fn assert_token_only_at_the_endpoint(reqs: &[Request]) {
    let bearer = format!("Bearer {CIVITAI_TOKEN}");
    for r in endpoint_requests(reqs) {
        assert_eq!(r.header("authorization"), Some(bearer.as_str()), "{r:?}");
    }
    for r in reqs.iter().filter(|r| r.cdn) {
        assert!(!r.path.contains(CIVITAI_TOKEN), "token in a storage URL");
        assert!(
            r.headers.iter().all(|(_, v)| !v.contains(CIVITAI_TOKEN)),
            "token sent to the storage host: {r:?}"
        );
    }
}

#[test]
fn a_download_that_outlives_its_signed_url_resumes_from_a_new_one() {
    let server = TestServer::start();
    let data = bytes(250_000, 60);
    // Each signed URL serves 100,000 bytes, then the storage host closes the connection.
    server.civitai_version(
        CivitaiVersion::new(6, 61)
            .file(610, "long.safetensors", data.clone())
            .signed_urls(Expiry::AfterBytes(100_000)),
    );
    let f = fetcher(&server);
    let locked = locked(&f, 61);
    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let staged = f
        .fetch("long", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    assert_eq!(staged[0].hashes.sha256, sha256(&data));

    let reqs = server.requests();
    let gets = storage_gets(&reqs);
    let ranges: Vec<Option<&str>> = gets.iter().map(|r| r.header("range")).collect();
    assert_eq!(
        ranges,
        [None, Some("bytes=100000-"), Some("bytes=200000-")],
        "each new URL resumes where the last one stopped"
    );
    let signatures: Vec<&str> = gets
        .iter()
        .map(|r| r.path.split("X-Amz-Signature=").nth(1).unwrap())
        .collect();
    assert!(
        signatures[0] != signatures[1] && signatures[1] != signatures[2],
        "every resume asked the endpoint for a new URL: {signatures:?}"
    );
    assert_eq!(endpoint_requests(&reqs).len(), 3);
    assert_eq!(
        server.total_bytes_sent(),
        data.len() as u64,
        "no byte twice"
    );
    assert_token_only_at_the_endpoint(&reqs);
}

#[test]
fn parallel_ranges_renew_an_expired_url_for_every_worker() {
    let server = TestServer::start();
    let data = bytes(3 << 20, 62);
    // The first URL (the probe's) runs out in its second chunk: the workers find it refused.
    server.civitai_version(
        CivitaiVersion::new(6, 63)
            .file(630, "big.safetensors", data.clone())
            .signed_urls(Expiry::AfterBytes(400 << 10)),
    );
    let f = Fetcher::new(FetchConfig {
        parallel_threshold: 1 << 20,
        stream_probe: Duration::ZERO,
        chunk_size: 256 << 10,
        range_jobs: 4,
        ..config(&server)
    });
    let locked = locked(&f, 63);
    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = f.fetch("big", &locked, staging.path(), &events).unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    assert_eq!(staged[0].hashes.sha256, sha256(&data));

    let reqs = server.requests();
    assert!(
        reqs.iter().any(|r| r.cdn && r.status == 403),
        "an expired URL was refused along the way"
    );
    assert!(
        events.all().contains("expired: HTTP 403 from"),
        "{}",
        events.all()
    );
    assert!(endpoint_requests(&reqs).len() >= 2, "the URL was renewed");
    assert!(
        reqs.iter().all(|r| !r.cdn || r.status != 200),
        "every storage answer was a range (nothing restarted)"
    );
    assert_token_only_at_the_endpoint(&reqs);
}

#[test]
fn a_download_endpoint_that_keeps_failing_is_a_clear_error_and_the_part_is_kept() {
    let server = TestServer::start();
    let data = bytes(250_000, 64);
    server.civitai_version(
        CivitaiVersion::new(6, 65)
            .file(650, "long.safetensors", data.clone())
            .signed_urls(Expiry::AfterBytes(100_000)),
    );
    let f = fetcher(&server);
    let locked = locked(&f, 65);
    // The first redirect works; when its URL expires, the endpoint answers only 503.
    server.civitai_download_fails_after(1, 503);
    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let err = f
        .fetch("long", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(matches!(err, FetchError::Network { .. }), "{err:?}");
    let text = err.to_string();
    for part in [
        "/api/download/models/65?fileId=650",
        "after 4 attempt(s)",
        "HTTP 503",
        "running the same command again resumes where it stopped",
    ] {
        assert!(text.contains(part), "{part:?} not in: {text}");
    }
    assert!(!text.contains(CIVITAI_TOKEN));
    let reqs = server.requests();
    // The first answer (its URL expired after 100,000 bytes), then 3 retries, all 503.
    assert_eq!(endpoint_requests(&reqs).len(), 1 + 3);
    assert_token_only_at_the_endpoint(&reqs);

    // Once the endpoint works again, a new run resumes the .part from a new URL.
    server.civitai_download_recovers();
    server.clear_requests();
    let staged = fetcher(&server)
        .fetch("long", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let reqs = server.requests();
    let gets = storage_gets(&reqs);
    assert_eq!(gets[0].header("range"), Some("bytes=100000-"));
    assert_token_only_at_the_endpoint(&reqs);
}

#[test]
fn a_new_url_the_storage_host_refuses_every_time_is_a_clear_error() {
    let server = TestServer::start();
    let data = bytes(50_000, 66);
    // Every URL is expired on arrival (zero requests allowed), as with a skewed clock.
    server.civitai_version(
        CivitaiVersion::new(6, 67)
            .file(670, "x.safetensors", data)
            .signed_urls(Expiry::AfterRequests(0)),
    );
    let f = fetcher(&server);
    let locked = locked(&f, 67);
    let staging = tempfile::tempdir().unwrap();
    let err = f
        .fetch("x", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("expired: HTTP 403 from 127.0.0.2")
            || text.contains("expired: HTTP 403 from localhost"),
        "{text}"
    );
    assert!(text.contains("Civitai's download endpoint"), "{text}");
    assert!(!text.contains("X-Amz-Signature=sig"), "{text}");
    assert_token_only_at_the_endpoint(&server.requests());
}
