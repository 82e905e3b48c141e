use std::sync::Mutex;

use mlib_fetch::{FetchConfig, FetchError, Fetcher, NoReporter, Reporter, Secret, record_hashes};
use mlib_testserver::{TestServer, populate_hf_cache};

use crate::support::*;

#[test]
fn single_file_resolves_to_commit_and_lfs_hash_and_downloads_via_cdn() {
    let server = TestServer::start();
    let data = bytes(300_000, 1);
    let commit = server
        .hf_repo("org/sdxl")
        .lfs("unet/model.safetensors", data.clone())
        .publish();
    let f = fetcher(&server);
    let m = model("sdxl", hf("org/sdxl", Some("unet/model.safetensors")));
    let locked = f.resolve(&m).unwrap();
    assert_eq!(locked.commit.as_deref(), Some(commit.commit.as_str()));
    assert_eq!(locked.repo.as_deref(), Some("org/sdxl"));
    let file = &locked.files[0];
    assert_eq!(file.path, "model.safetensors");
    assert_eq!(file.repo_path.as_deref(), Some("unet/model.safetensors"));
    assert_eq!(file.size, data.len() as u64);
    assert_eq!(file.sha256.as_deref(), Some(sha256(&data).as_str()));
    // Resolving never follows the redirect to the CDN.
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.cdn && r.method == "HEAD")
    );

    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let staged = f
        .fetch("sdxl", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(staged.len(), 1);
    assert_eq!(staged[0].rel_path, "model.safetensors");
    assert_eq!(staged[0].hashes.sha256, sha256(&data));
    assert_eq!(
        staged[0].hashes.blake3,
        blake3::hash(&data).to_hex().to_string()
    );
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);

    let reqs = server.requests();
    let hub = reqs.iter().find(|r| !r.cdn).unwrap();
    let cdn = reqs.iter().find(|r| r.cdn).unwrap();
    assert_eq!(
        hub.path,
        format!("/org/sdxl/resolve/{}/unet/model.safetensors", commit.commit)
    );
    assert_eq!(
        hub.header("authorization"),
        Some(format!("Bearer {HF_TOKEN}").as_str())
    );
    assert_eq!(cdn.header("authorization"), None, "token leaked to the CDN");
    assert_ne!(hub.host, cdn.host);
}

#[test]
fn folder_with_globs_selects_files_and_hashes_small_ones_on_download() {
    let server = TestServer::start();
    let unet = bytes(200_000, 2);
    let vae = bytes(100_000, 3);
    server
        .hf_repo("org/diffusers")
        .small(
            "model_index.json",
            br#"{"_class_name": "Pipeline"}"#.to_vec(),
        )
        .small("unet/config.json", br#"{"in_channels": 4}"#.to_vec())
        .lfs("unet/model.safetensors", unet.clone())
        .lfs("unet/model.fp32.safetensors", bytes(50_000, 4))
        .lfs("vae/model.safetensors", vae.clone())
        .small("README.md", b"# readme".to_vec())
        .publish();
    let f = fetcher(&server);
    let mut m = model("pipe", hf("org/diffusers", None));
    m.include = vec!["*.json".into(), "unet/*".into(), "vae/*".into()];
    m.exclude = vec!["*fp32*".into()];
    let mut locked = f.resolve(&m).unwrap();
    let paths: Vec<&str> = locked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "diffusers/model_index.json",
            "diffusers/unet/config.json",
            "diffusers/unet/model.safetensors",
            "diffusers/vae/model.safetensors"
        ]
    );
    // Small files have no published sha256; LFS files do.
    assert!(locked.files[0].sha256.is_none());
    assert_eq!(
        locked.files[2].sha256.as_deref(),
        Some(sha256(&unet).as_str())
    );
    assert!(!locked.is_complete());

    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = f.fetch("pipe", &locked, staging.path(), &events).unwrap();
    assert_eq!(staged.len(), 4);
    assert_eq!(fs_err::read(&staged[3].staged).unwrap(), vae);
    assert!(record_hashes(&mut locked, &staged));
    assert!(locked.is_complete());
    assert_eq!(
        locked.files[0].sha256.as_deref(),
        Some(sha256(br#"{"_class_name": "Pipeline"}"#).as_str())
    );
    assert!(
        !record_hashes(&mut locked, &staged),
        "second time changes nothing"
    );
    assert_eq!(events.all().matches("finish").count(), 4);
}

#[test]
fn a_folder_path_becomes_one_entry_named_after_it() {
    let server = TestServer::start();
    server
        .hf_repo("org/flux")
        .lfs("transformer/a.safetensors", bytes(1000, 5))
        .lfs("transformer/b.safetensors", bytes(1000, 6))
        .lfs("vae/c.safetensors", bytes(1000, 7))
        .publish();
    let f = fetcher(&server);
    let locked = f
        .resolve(&model("t", hf("org/flux", Some("transformer"))))
        .unwrap();
    let paths: Vec<&str> = locked.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["transformer/a.safetensors", "transformer/b.safetensors"]
    );
    assert_eq!(
        locked.files[0].repo_path.as_deref(),
        Some("transformer/a.safetensors")
    );
}

#[test]
fn a_branch_resolves_to_its_commit_and_a_pinned_commit_stays() {
    let server = TestServer::start();
    let old = bytes(5000, 8);
    let new = bytes(6000, 9);
    let v1 = server
        .hf_repo("org/m")
        .lfs("m.safetensors", old.clone())
        .publish();
    let v2 = server
        .hf_repo("org/m")
        .lfs("m.safetensors", new.clone())
        .publish();
    assert_ne!(v1.commit, v2.commit);
    let f = fetcher(&server);
    let mut m = model("m", hf("org/m", Some("m.safetensors")));
    m.revision = Some("main".into());
    let locked = f.resolve(&m).unwrap();
    assert_eq!(locked.commit.as_deref(), Some(v2.commit.as_str()));
    assert_eq!(locked.revision.as_deref(), Some("main"));
    assert_eq!(
        locked.files[0].sha256.as_deref(),
        Some(sha256(&new).as_str())
    );

    m.revision = Some(v1.commit.clone());
    let pinned = f.resolve(&m).unwrap();
    assert_eq!(pinned.commit.as_deref(), Some(v1.commit.as_str()));
    let staging = tempfile::tempdir().unwrap();
    let staged = f.fetch("m", &pinned, staging.path(), &NoReporter).unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), old);
}

#[test]
fn gated_repo_errors_say_what_to_do_and_never_show_the_token() {
    let server = TestServer::start();
    server
        .hf_repo("org/gated")
        .lfs("m.safetensors", bytes(1000, 10))
        .gated("hf_right")
        .publish();
    let m = model("g", hf("org/gated", Some("m.safetensors")));

    let anonymous = Fetcher::new(FetchConfig {
        hf_token: None,
        ..config(&server)
    });
    let err = anonymous.resolve(&m).unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::GatedRepo {
                has_token: false,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("org/gated") && msg.contains("HF_TOKEN"),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("{}/org/gated", server.url())),
        "{msg}"
    );

    let wrong = fetcher(&server);
    let err = wrong.resolve(&m).unwrap_err();
    assert!(
        matches!(
            err,
            FetchError::GatedRepo {
                has_token: true,
                ..
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.contains("not been granted access"), "{msg}");
    assert!(!msg.contains(HF_TOKEN) && !format!("{err:?}").contains(HF_TOKEN));

    let right = Fetcher::new(FetchConfig {
        hf_token: Some(Secret::new("hf_right")),
        ..config(&server)
    });
    let locked = right.resolve(&m).unwrap();
    let staging = tempfile::tempdir().unwrap();
    right
        .fetch("g", &locked, staging.path(), &NoReporter)
        .unwrap();
    // A gated folder is found out at resolve time too (its listing alone would not say).
    let folder = model("gf", hf("org/gated", None));
    assert!(matches!(
        anonymous.resolve(&folder),
        Err(FetchError::GatedRepo { .. })
    ));
}

#[test]
fn missing_repo_file_and_revision_are_distinct_errors() {
    let server = TestServer::start();
    server
        .hf_repo("org/m")
        .lfs("m.safetensors", bytes(100, 11))
        .publish();
    let f = fetcher(&server);

    let err = f
        .resolve(&model("a", hf("org/nope", Some("m.safetensors"))))
        .unwrap_err();
    assert!(matches!(err, FetchError::RepoNotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("org/nope"));

    let err = f
        .resolve(&model("b", hf("org/m", Some("other.safetensors"))))
        .unwrap_err();
    assert!(matches!(err, FetchError::EntryNotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("other.safetensors") && msg.contains("org/m") && msg.contains("main"),
        "{msg}"
    );

    let mut m = model("c", hf("org/m", Some("m.safetensors")));
    m.revision = Some("v9".into());
    let err = f.resolve(&m).unwrap_err();
    assert!(
        matches!(err, FetchError::RevisionNotFound { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("revision v9"));

    let err = f.resolve(&model("d", hf("org/nope", None))).unwrap_err();
    assert!(matches!(err, FetchError::RepoNotFound { .. }), "{err:?}");

    let mut m = model("e", hf("org/m", None));
    m.include = vec!["*.gguf".into()];
    assert!(matches!(f.resolve(&m), Err(FetchError::NoFiles { .. })));
    // Every one of these failed at once: no retries for a 4xx.
    assert_eq!(server.requests().len(), 6, "{:#?}", server.requests());
}

#[test]
fn the_manifest_hash_must_match_upstream() {
    let server = TestServer::start();
    server
        .hf_repo("org/m")
        .lfs("m.safetensors", bytes(100, 12))
        .publish();
    let mut m = model("m", hf("org/m", Some("m.safetensors")));
    m.sha256 = Some("0".repeat(64));
    let err = fetcher(&server).resolve(&m).unwrap_err();
    assert!(matches!(err, FetchError::PinMismatch { .. }), "{err:?}");
}

#[test]
fn files_in_the_hf_cache_are_taken_with_zero_network() {
    let server = TestServer::start();
    let lfs = bytes(400_000, 13);
    let commit = server
        .hf_repo("org/cached")
        .lfs("m.safetensors", lfs.clone())
        .small("config.json", b"{\"a\": 1}".to_vec())
        .publish();
    let hub = tempfile::tempdir().unwrap();
    populate_hf_cache(hub.path(), &commit, Some("main"), None).unwrap();
    let f = Fetcher::new(FetchConfig {
        hf_cache: Some(hub.path().to_path_buf()),
        ..config(&server)
    });
    let locked = f.resolve(&model("c", hf("org/cached", None))).unwrap();
    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let events = Events::default();
    let staged = f.fetch("c", &locked, staging.path(), &events).unwrap();
    assert_eq!(staged.len(), 2);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    assert_eq!(fs_err::read(&staged[1].staged).unwrap(), lfs);
    assert_eq!(staged[1].hashes.sha256, sha256(&lfs));
    assert_eq!(staged[0].hashes.sha256, sha256(b"{\"a\": 1}"));
    // The cache itself keeps its blob (taken, not moved).
    let blob = hub
        .path()
        .join("models--org--cached/blobs")
        .join(sha256(&lfs));
    assert!(blob.is_file());
    // One filesystem that cannot clone (the test machine's temporary folder): a hard link,
    // the same inode under a second name, and the output says so.
    use std::os::unix::fs::MetadataExt;
    let (blob_meta, staged_meta) = (
        fs_err::metadata(&blob).unwrap(),
        fs_err::metadata(&staged[1].staged).unwrap(),
    );
    let one_fs = blob_meta.dev() == staged_meta.dev();
    if one_fs && !mlib_fs::platform::may_reflink(staging.path()) {
        assert_eq!(blob_meta.ino(), staged_meta.ino(), "hard linked");
        assert!(
            events
                .all()
                .contains("hardlinked from the HuggingFace cache")
        );
    } else {
        assert_ne!(blob_meta.ino(), staged_meta.ino());
        let all = events.all();
        assert!(
            all.contains("reflinked from the HuggingFace cache")
                || all.contains("copied from the HuggingFace cache"),
            "{all}"
        );
    }
}

#[test]
fn a_damaged_cache_blob_is_downloaded_instead() {
    let server = TestServer::start();
    let data = bytes(10_000, 14);
    let commit = server
        .hf_repo("org/d")
        .lfs("m.safetensors", data.clone())
        .publish();
    let hub = tempfile::tempdir().unwrap();
    let dir = populate_hf_cache(hub.path(), &commit, Some("main"), None).unwrap();
    let blob = dir.join("blobs").join(sha256(&data));
    fs_err::remove_file(&blob).unwrap();
    fs_err::write(&blob, bytes(10_000, 99)).unwrap();
    let f = Fetcher::new(FetchConfig {
        hf_cache: Some(hub.path().to_path_buf()),
        ..config(&server)
    });
    let locked = f
        .resolve(&model("d", hf("org/d", Some("m.safetensors"))))
        .unwrap();
    let staging = tempfile::tempdir().unwrap();
    let staged = f.fetch("d", &locked, staging.path(), &NoReporter).unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    // Hashed before it was trusted: the damaged blob is not what was linked.
    assert_eq!(fs_err::read(&blob).unwrap(), bytes(10_000, 99));
    assert!(server.bytes_sent(&commit.file("m.safetensors").cdn_path()) > 0);
}

#[test]
fn offline_resolves_and_fetches_from_the_cache_only() {
    let server = TestServer::start();
    let data = bytes(20_000, 15);
    let commit = server
        .hf_repo("org/off")
        .lfs("unet/m.safetensors", data.clone())
        .small("unet/config.json", b"{}".to_vec())
        .publish();
    let hub = tempfile::tempdir().unwrap();
    populate_hf_cache(hub.path(), &commit, Some("main"), None).unwrap();
    let f = Fetcher::new(FetchConfig {
        hf_cache: Some(hub.path().to_path_buf()),
        offline: true,
        ..config(&server)
    });
    let single = f
        .resolve(&model("s", hf("org/off", Some("unet/m.safetensors"))))
        .unwrap();
    assert_eq!(single.commit.as_deref(), Some(commit.commit.as_str()));
    assert_eq!(
        single.files[0].sha256.as_deref(),
        Some(sha256(&data).as_str())
    );
    assert_eq!(single.files[0].size, data.len() as u64);
    let folder = f.resolve(&model("f", hf("org/off", Some("unet")))).unwrap();
    assert_eq!(folder.files.len(), 2);
    let staging = tempfile::tempdir().unwrap();
    f.fetch("f", &folder, staging.path(), &NoReporter).unwrap();
    assert!(server.requests().is_empty());

    let err = f
        .resolve(&model("x", hf("org/other", Some("a.bin"))))
        .unwrap_err();
    assert!(matches!(err, FetchError::Offline { .. }), "{err:?}");
    assert!(err.to_string().contains("offline"));
    // A locked file missing from the cache is not downloaded either.
    let online = fetcher(&server);
    let other = server
        .hf_repo("org/other")
        .lfs("a.bin", bytes(10, 16))
        .publish();
    let locked = online
        .resolve(&model("o", hf("org/other", Some("a.bin"))))
        .unwrap();
    server.clear_requests();
    let err = f
        .fetch("o", &locked, staging.path(), &NoReporter)
        .unwrap_err();
    assert!(matches!(err, FetchError::Offline { .. }), "{err:?}");
    assert!(server.requests().is_empty());
    let _ = other;
}

/// The Hub since 2025: `resolve` answers 307 to a relative `/api/resolve-cache/...` on the hub
/// host with the commit and LFS headers, and only that hop redirects to the CDN.
#[test]
fn a_relative_resolve_cache_hop_keeps_the_headers_of_the_first_answer() {
    let server = TestServer::start();
    server.hf_resolve_cache(true);
    let data = bytes(200_000, 9);
    let commit = server
        .hf_repo("org/flux")
        .lfs("flux.safetensors", data.clone())
        .publish();
    let f = fetcher(&server);
    let locked = f
        .resolve(&model("flux", hf("org/flux", Some("flux.safetensors"))))
        .unwrap();
    assert_eq!(locked.commit.as_deref(), Some(commit.commit.as_str()));
    assert_eq!(
        locked.files[0].sha256.as_deref(),
        Some(sha256(&data).as_str())
    );
    assert_eq!(locked.files[0].size, data.len() as u64);

    server.clear_requests();
    let staging = tempfile::tempdir().unwrap();
    let staged = f
        .fetch("flux", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert_eq!(fs_err::read(&staged[0].staged).unwrap(), data);
    let reqs = server.requests();
    let hop = reqs
        .iter()
        .find(|r| r.path.starts_with("/api/resolve-cache/"))
        .expect("the relative hop is followed on the hub host");
    assert!(!hop.cdn);
    assert_eq!(
        hop.header("authorization"),
        Some(format!("Bearer {HF_TOKEN}").as_str()),
        "same host: the token goes with it"
    );
    assert!(
        reqs.iter()
            .filter(|r| r.cdn)
            .all(|r| r.header("authorization").is_none())
    );
}

/// Records, while a file is being hashed, every name in the staging folder that is the
/// cache's blob itself (a hard link).
struct BlobNames {
    staging: std::path::PathBuf,
    blob_ino: u64,
    seen: Mutex<Vec<String>>,
}

impl Reporter for BlobNames {
    fn start(&self, _: u64, _: &str, _: Option<u64>) {}
    fn advance(&self, _: u64, _: u64) {
        use std::os::unix::fs::MetadataExt;
        for entry in fs_err::read_dir(&self.staging).unwrap().flatten() {
            let meta = fs_err::symlink_metadata(entry.path()).unwrap();
            if meta.ino() == self.blob_ino {
                let name = entry.file_name().to_string_lossy().into_owned();
                self.seen.lock().unwrap().push(name);
            }
        }
    }
    fn finish(&self, _: u64) {}
    fn retry(&self, _: &str, _: u32, _: &str) {}
    fn note(&self, _: u64, _: &str) {}
}

/// A hard link to a cache blob never carries the name a download resumes: a kill while it is
/// hashed must not leave the cache's file where the next download writes.
#[test]
fn a_hard_linked_cache_blob_is_never_a_resumable_part() {
    use std::os::unix::fs::MetadataExt;
    let server = TestServer::start();
    let data = bytes(300_000, 21);
    let commit = server
        .hf_repo("org/h")
        .lfs("m.safetensors", data.clone())
        .publish();
    let hub = tempfile::tempdir().unwrap();
    let dir = populate_hf_cache(hub.path(), &commit, Some("main"), None).unwrap();
    let blob = dir.join("blobs").join(sha256(&data));
    let f = Fetcher::new(FetchConfig {
        hf_cache: Some(hub.path().to_path_buf()),
        ..config(&server)
    });
    let locked = f
        .resolve(&model("h", hf("org/h", Some("m.safetensors"))))
        .unwrap();
    let staging = tempfile::tempdir().unwrap();
    let names = BlobNames {
        staging: staging.path().to_path_buf(),
        blob_ino: fs_err::metadata(&blob).unwrap().ino(),
        seen: Mutex::default(),
    };
    let staged = f.fetch("h", &locked, staging.path(), &names).unwrap();
    let seen = names.seen.lock().unwrap().clone();
    assert!(
        seen.iter().all(|n| !n.ends_with(".part")),
        "hashed under a download's name: {seen:?}"
    );

    // What an earlier version left: the blob hard linked as the `.part`. A download that
    // finds it (no cache this time, and no network) unlinks it and never writes through it.
    let done = staged[0].staged.clone();
    let part = done.with_extension("part");
    fs_err::remove_file(&done).unwrap();
    fs_err::hard_link(&blob, &part).unwrap();
    let offline = Fetcher::new(FetchConfig {
        hf_endpoint: "http://127.0.0.1:9".into(),
        retries: 0,
        ..config(&server)
    });
    let _ = offline.fetch("h", &locked, staging.path(), &NoReporter);
    assert!(
        fs_err::read(&blob).unwrap() == data,
        "the cache's blob is intact"
    );
    assert!(
        fs_err::metadata(&part).map_or(true, |m| m.ino() != names.blob_ino),
        "the shared name is gone"
    );
    // A working download then writes a file of its own.
    let staged = fetcher(&server)
        .fetch("h", &locked, staging.path(), &NoReporter)
        .unwrap();
    assert!(fs_err::read(&staged[0].staged).unwrap() == data);
    assert!(fs_err::read(&blob).unwrap() == data);
    assert_eq!(fs_err::metadata(&blob).unwrap().nlink(), 1);
}
