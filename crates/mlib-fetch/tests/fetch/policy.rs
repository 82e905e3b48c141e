//! The lock file's rules (`Fetcher::resolve_manifest`), one test per rule, against the real
//! fetcher and the test server: which models come from the lock, a saved plan or the network,
//! what `--locked` and offline refuse, and what the lock file should say afterwards.

use std::collections::BTreeMap;
use std::path::Path;

use mlib_fetch::{
    FetchConfig, FetchError, Fetcher, LockPolicy, NoReporter, ResolveError, Resolved, Uncovered,
};
use mlib_manifest::Manifest;
use mlib_manifest::lock::Lock;
use mlib_testserver::TestServer;

use crate::support::*;

/// Two HF models and a local one; `revision` is `a`'s.
fn manifest(dir: &Path, a_revision: &str, with_b: bool) -> Manifest {
    let mut text = format!(
        "version: 1\nstore: ./store\nmodels:\n  a:\n    source: hf://org/a/a.safetensors\n    revision: {a_revision}\n    type: loras\n  local:\n    source: ./l.safetensors\n    sha256: {}\n    type: loras\n",
        "0".repeat(64)
    );
    if with_b {
        text.push_str("  b:\n    source: hf://org/b/b.safetensors\n    type: loras\n");
    }
    mlib_manifest::parse(&text, &dir.join("models.yaml"), &|_| None).unwrap()
}

fn server() -> TestServer {
    let server = TestServer::start();
    for (repo, file, seed) in [("org/a", "a.safetensors", 1), ("org/b", "b.safetensors", 2)] {
        server
            .hf_repo(repo)
            .branch("main")
            .lfs(file, bytes(4000, seed))
            .publish();
    }
    server
}

fn resolve(
    f: &Fetcher,
    manifest: &Manifest,
    on_disk: Option<&Lock>,
    policy: LockPolicy<'_>,
) -> Result<Resolved, ResolveError> {
    f.resolve_manifest(manifest, on_disk, &policy, &NoReporter)
}

#[test]
fn models_the_lock_does_not_cover_are_resolved_and_then_come_from_the_lock() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "main", true);
    let f = fetcher(&server);
    let first = resolve(&f, &m, None, LockPolicy::default()).unwrap();
    assert_eq!(first.newly_resolved, ["a", "b"]);
    assert!(first.lock_changed, "a new lock file is a change");
    assert_eq!(first.lock.models.len(), 2, "the local model is not locked");
    assert_eq!(first.models.len(), 2);

    server.clear_requests();
    let again = resolve(&f, &m, Some(&first.lock), LockPolicy::default()).unwrap();
    assert!(again.newly_resolved.is_empty());
    assert!(!again.lock_changed);
    assert_eq!(again.models, first.models);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn only_the_model_whose_entry_is_stale_is_resolved_again() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher(&server);
    let lock = resolve(
        &f,
        &manifest(dir.path(), "main", true),
        None,
        LockPolicy::default(),
    )
    .unwrap()
    .lock;
    let commit = lock.models["a"].commit.clone().unwrap();
    server.clear_requests();
    let pinned = manifest(dir.path(), &commit, true);
    let r = resolve(&f, &pinned, Some(&lock), LockPolicy::default()).unwrap();
    assert_eq!(r.newly_resolved, ["a"], "the revision changed");
    assert!(r.lock_changed);
    assert!(
        server.requests().iter().all(|q| !q.path.contains("org/b")),
        "b was fresh: {:#?}",
        server.requests()
    );
}

#[test]
fn locked_refuses_to_resolve_and_names_every_model_with_why() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher(&server);
    let lock = resolve(
        &f,
        &manifest(dir.path(), "main", false),
        None,
        LockPolicy::default(),
    )
    .unwrap()
    .lock;
    server.clear_requests();
    let locked = LockPolicy {
        locked: true,
        ..LockPolicy::default()
    };
    let err = resolve(&f, &manifest(dir.path(), "v2", true), Some(&lock), locked).unwrap_err();
    let ResolveError::NotCovered {
        lock_file,
        uncovered,
    } = &err
    else {
        panic!("{err}");
    };
    assert_eq!(lock_file, "models.lock");
    assert_eq!(
        uncovered,
        &[
            Uncovered {
                name: "a".into(),
                why: "revision changed from main to v2".into()
            },
            Uncovered {
                name: "b".into(),
                why: "not in the lock".into()
            },
        ]
    );
    assert!(err.to_string().contains("Run `mlib lock`"), "{err}");
    assert!(server.requests().is_empty(), "--locked resolves nothing");

    // A lock that covers the manifest is all --locked needs.
    let covered = resolve(
        &f,
        &manifest(dir.path(), "main", false),
        Some(&lock),
        locked,
    )
    .unwrap();
    assert_eq!(covered.models.len(), 1);
    assert!(server.requests().is_empty());
}

#[test]
fn offline_resolves_nothing_over_the_network_but_uses_the_lock() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "main", false);
    let lock = resolve(&fetcher(&server), &m, None, LockPolicy::default())
        .unwrap()
        .lock;
    server.clear_requests();
    let offline = Fetcher::new(FetchConfig {
        offline: true,
        ..config(&server)
    });
    let err = resolve(&offline, &m, None, LockPolicy::default()).unwrap_err();
    assert!(
        matches!(
            &err,
            ResolveError::Resolve { name, error, .. }
                if name == "a" && matches!(**error, FetchError::Offline { .. })
        ),
        "{err:?}"
    );
    let from_lock = resolve(&offline, &m, Some(&lock), LockPolicy::default()).unwrap();
    assert_eq!(from_lock.models["a"], lock.models["a"]);
    assert!(server.requests().is_empty(), "{:#?}", server.requests());
}

#[test]
fn a_saved_plans_resolution_wins_over_the_lock_and_the_network() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), "main", true);
    let f = fetcher(&server);
    let lock = resolve(&f, &m, None, LockPolicy::default()).unwrap().lock;
    let mut approved = lock.models["a"].clone();
    approved.commit = Some("0123456789abcdef0123456789abcdef01234567".into());
    let saved = BTreeMap::from([("a".to_string(), approved.clone())]);
    server.clear_requests();
    let r = resolve(
        &f,
        &m,
        Some(&lock),
        LockPolicy {
            saved: Some(&saved),
            // Even --locked: the plan is the approval, whatever the lock says.
            locked: true,
            ..LockPolicy::default()
        },
    )
    .unwrap();
    assert_eq!(r.models["a"], approved);
    assert_eq!(r.lock.models["a"], approved, "the lock follows the plan");
    assert_eq!(r.models["b"], lock.models["b"]);
    assert!(r.newly_resolved.is_empty());
    assert!(r.lock_changed);
    assert!(server.requests().is_empty());
}

#[test]
fn lock_only_leaves_uncovered_models_out_and_resolves_nothing() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher(&server);
    let lock = resolve(
        &f,
        &manifest(dir.path(), "main", false),
        None,
        LockPolicy::default(),
    )
    .unwrap()
    .lock;
    server.clear_requests();
    let lock_only = LockPolicy {
        lock_only: true,
        ..LockPolicy::default()
    };
    let r = resolve(
        &f,
        &manifest(dir.path(), "main", true),
        Some(&lock),
        lock_only,
    )
    .unwrap();
    assert_eq!(r.models.keys().collect::<Vec<_>>(), ["a"]);
    assert!(!r.lock_changed);
    let none = resolve(&f, &manifest(dir.path(), "main", true), None, lock_only).unwrap();
    assert!(none.models.is_empty() && !none.lock_changed, "{none:?}");
    assert!(server.requests().is_empty());
}

#[test]
fn entries_of_models_no_longer_in_the_manifest_are_dropped() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let f = fetcher(&server);
    let lock = resolve(
        &f,
        &manifest(dir.path(), "main", true),
        None,
        LockPolicy::default(),
    )
    .unwrap()
    .lock;
    server.clear_requests();
    let r = resolve(
        &f,
        &manifest(dir.path(), "main", false),
        Some(&lock),
        LockPolicy::default(),
    )
    .unwrap();
    assert_eq!(r.lock.models.keys().collect::<Vec<_>>(), ["a"]);
    assert!(r.lock_changed, "dropping an entry changes the lock");
    assert!(server.requests().is_empty());
}

#[test]
fn without_remote_models_there_is_no_lock_to_write_unless_one_exists() {
    let server = server();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version: 1\nstore: ./store\nmodels:\n  local:\n    source: ./l.safetensors\n    sha256: {}\n    type: loras\n",
        "0".repeat(64)
    );
    let local_only =
        mlib_manifest::parse(&text, &dir.path().join("models.yaml"), &|_| None).unwrap();
    let f = fetcher(&server);
    let r = resolve(&f, &local_only, None, LockPolicy::default()).unwrap();
    assert!(!r.lock_changed && r.lock.models.is_empty());
    // An existing lock whose entries all went: written, empty.
    let old = resolve(
        &f,
        &manifest(dir.path(), "main", false),
        None,
        LockPolicy::default(),
    )
    .unwrap()
    .lock;
    let r = resolve(&f, &local_only, Some(&old), LockPolicy::default()).unwrap();
    assert!(r.lock_changed && r.lock.models.is_empty());
}
