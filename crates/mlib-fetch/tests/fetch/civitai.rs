use mlib_fetch::{FetchConfig, FetchError, Fetcher, NoReporter};
use mlib_manifest::Source;
use mlib_testserver::{CivitaiVersion, Gate, Refusal, TestServer};

use crate::support::*;

fn civitai(model_id: Option<u64>, version_id: u64) -> Source {
    Source::Civitai {
        model_id,
        version_id,
    }
}

#[test]
fn version_api_gives_primary_file_hashes_and_download_crosses_hosts() {
    let server = TestServer::start();
    let data = bytes(250_000, 20);
    server.civitai_version(
        CivitaiVersion::new(122359, 135867)
            .base_model("SD 1.5")
            .file(501, "add_detail.safetensors", data.clone())
            .file(502, "training_data.zip", bytes(1000, 21))
            .gated(CIVITAI_TOKEN, Gate::Json401),
    );
    let f = fetcher(&server);
    let locked = f
        .resolve(&model("add-detail", civitai(Some(122359), 135867)))
        .unwrap();
    assert_eq!(locked.version_id, Some(135867));
    assert_eq!(locked.base_model.as_deref(), Some("SD 1.5"));
    let file = &locked.files[0];
    assert_eq!(file.path, "add_detail.safetensors");
    assert_eq!(file.file_id, Some(501));
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.sha256.as_deref(), Some(sha256(&data).as_str()));
    assert_eq!(
        file.blake3.as_deref(),
        Some(blake3::hash(&data).to_hex().as_str())
    );

    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let staged = f
        .fetch("add-detail", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let reqs = server.requests();
    let api = &reqs[0];
    assert_eq!(api.path, "/api/download/models/135867?fileId=501");
    assert_eq!(api.status, 307);
    assert_eq!(
        api.header("authorization"),
        Some(format!("Bearer {CIVITAI_TOKEN}").as_str())
    );
    let cdn = reqs.iter().find(|r| r.cdn).expect("the CDN was asked");
    assert_eq!(cdn.header("authorization"), None, "token leaked to the CDN");
    assert!(reqs.iter().all(|r| !r.path.contains(CIVITAI_TOKEN)));
    assert!(
        reqs.iter()
            .filter(|r| r.cdn)
            .all(|r| r.headers.iter().all(|(_, v)| !v.contains(CIVITAI_TOKEN)))
    );
}

#[test]
fn file_picks_a_named_file_or_renames_the_primary() {
    let server = TestServer::start();
    let second = bytes(3000, 22);
    server.civitai_version(
        CivitaiVersion::new(1, 2)
            .file(10, "main.safetensors", bytes(2000, 23))
            .file(11, "pruned.safetensors", second.clone()),
    );
    let f = fetcher(&server);
    let mut m = model("p", civitai(None, 2));
    m.file = Some("pruned.safetensors".into());
    let locked = f.resolve(&m).unwrap();
    assert_eq!(locked.files[0].file_id, Some(11));
    let staging = tempfile::tempdir().unwrap();
    let staged = f.fetch("p", &locked, staging.path(), &NoReporter).unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), second);

    m.file = Some("renamed.safetensors".into());
    let locked = f.resolve(&m).unwrap();
    assert_eq!(locked.files[0].file_id, Some(10));
    assert_eq!(locked.files[0].path, "renamed.safetensors");

    let err = f.resolve(&model("x", civitai(Some(99), 2))).unwrap_err();
    assert!(
        matches!(err, FetchError::CivitaiModelMismatch { .. }),
        "{err:?}"
    );
    let err = f.resolve(&model("y", civitai(None, 777))).unwrap_err();
    assert!(
        matches!(err, FetchError::CivitaiNotFound { version_id: 777 }),
        "{err:?}"
    );
}

#[test]
fn a_gated_download_without_token_is_a_clear_401() {
    let server = TestServer::start();
    server.civitai_version(
        CivitaiVersion::new(1, 3)
            .file(30, "g.safetensors", bytes(2000, 24))
            .gated("civ_right", Gate::Json401),
    );
    let f = Fetcher::new(FetchConfig {
        civitai_token: None,
        ..config(&server)
    });
    let locked = f.resolve(&model("g", civitai(None, 3))).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let err = f
        .fetch("g", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::CivitaiUnauthorized {
                version_id: 3,
                has_token: false,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("CIVITAI_TOKEN"), "{err}");
    // With a wrong token the message says so, and the token is not in it.
    let wrong = fetcher(&server);
    let err = wrong
        .fetch("g", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(err.to_string().contains("was rejected"), "{err}");
    assert!(!err.to_string().contains(CIVITAI_TOKEN));
}

#[test]
fn an_html_login_page_is_rejected_not_saved() {
    let server = TestServer::start();
    server.civitai_version(
        CivitaiVersion::new(1, 4)
            .file(40, "g.safetensors", bytes(2000, 25))
            .gated("civ_right", Gate::LoginPage),
    );
    let f = Fetcher::new(FetchConfig {
        civitai_token: None,
        ..config(&server)
    });
    let locked = f.resolve(&model("g", civitai(None, 4))).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let err = f
        .fetch("g", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(matches!(err, FetchError::NotAModelFile { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("HTML page") && msg.contains("CIVITAI_TOKEN"),
        "{msg}"
    );
    assert!(
        staged_names(staging.path()).is_empty(),
        "{:?}",
        staged_names(staging.path())
    );
}

#[test]
fn many_files_are_looked_up_by_hash_a_hundred_at_a_time() {
    let server = TestServer::start();
    let known = bytes(1000, 7);
    server.civitai_version(
        CivitaiVersion::new(5, 50)
            .model_type("LORA")
            .base_model("SD 1.5")
            .file(1, "known.safetensors", known.clone())
            .primary(1),
    );
    // 149 unknown hashes plus the known one, given in upper case as Civitai shows them.
    let mut hashes: Vec<String> = (0..149u32).map(|i| format!("{i:064x}")).collect();
    hashes.push(sha256(&known).to_ascii_uppercase());
    let found = fetcher(&server)
        .civitai_by_hashes(&hashes, &mlib_fetch::NoReporter)
        .unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    let matched = &found[&sha256(&known)];
    assert_eq!(matched.version_id, 50);
    assert_eq!(matched.file_name, "known.safetensors");
    assert_eq!(matched.info.family().as_deref(), Some("sd15"));
    let posts: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(posts.len(), 2, "150 hashes: two requests of at most 100");
}

#[test]
fn early_access_archived_and_quota_each_say_what_happened() {
    let server = TestServer::start();
    let cases = [
        (
            41,
            Refusal::EarlyAccess {
                deadline: "2026-12-24T00:00:00.000Z".into(),
            },
        ),
        (42, Refusal::Archived),
        (43, Refusal::Quota),
    ];
    for (id, refusal) in &cases {
        server.civitai_version(
            CivitaiVersion::new(4, *id)
                .file(*id * 10, "r.safetensors", bytes(1000, *id))
                .refused(refusal.clone()),
        );
    }
    let f = fetcher(&server);
    let staging = tempfile::tempdir().unwrap();
    let mut errors = Vec::new();
    for (id, _) in &cases {
        let locked = f.resolve(&model("r", civitai(None, *id))).unwrap();
        server.clear_requests();
        let err = f
            .fetch("r", &locked, staging.path(), &NoReporter)
            .unwrap_err();
        let downloads = server
            .requests()
            .iter()
            .filter(|r| r.path.starts_with("/api/download/"))
            .count();
        errors.push((err, downloads));
    }
    let (early, _) = &errors[0];
    assert!(
        matches!(early, FetchError::CivitaiEarlyAccess { version_id: 41, deadline: Some(d) } if d.starts_with("2026-12-24")),
        "{early:?}"
    );
    assert!(
        early.to_string().contains("early access until 2026-12-24"),
        "{early}"
    );
    let (archived, _) = &errors[1];
    assert!(
        matches!(archived, FetchError::CivitaiArchived { version_id: 42 }),
        "{archived:?}"
    );
    let (quota, asked) = &errors[2];
    assert!(
        matches!(quota, FetchError::CivitaiQuota { version_id: 43 }),
        "{quota:?}"
    );
    assert_eq!(*asked, 1, "a quota is not retried");
}

/// Found in review: the quota rule (a 429 without Retry-After is not retried) hit the API
/// routes too, where a 429 is a moment's load.
#[test]
fn a_busy_civitai_api_is_retried_while_a_download_quota_is_not() {
    let server = TestServer::start();
    let data = bytes(1000, 51);
    server.civitai_version(CivitaiVersion::new(5, 51).file(510, "a.safetensors", data.clone()));
    let f = fetcher(&server);
    server.civitai_api_busy(1);
    let locked = f.resolve(&model("a", civitai(None, 51))).unwrap();
    assert_eq!(locked.version_id, Some(51));
    server.civitai_api_busy(1);
    let found = f.civitai_by_hashes(&[sha256(&data)], &NoReporter).unwrap();
    assert_eq!(found.len(), 1);
    let statuses: Vec<u16> = server
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [429, 200, 429, 200]);
}
