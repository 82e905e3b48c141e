//! Environments, the journal, migration from schema 1, read-only opening.

use std::path::{Path, PathBuf};

use mlib_fs::FileStamp;
use mlib_registry::{
    FileStat, IndexEntry, LinkKind, NewEnvironment, NewLink, Registry, legacy_key,
};

fn new_env(key: &str, manifest: &str) -> NewEnvironment {
    NewEnvironment {
        key: key.into(),
        name: None,
        label: format!("{manifest} ({key})"),
        manifest: manifest.into(),
        apps: [("comfyui".to_string(), format!("/srv/{key}/ComfyUI"))].into(),
        models: vec!["loras/sdxl/m".into()],
    }
}

fn link(env: i64, target: &str) -> NewLink {
    NewLink {
        env,
        model: "m".into(),
        app: "comfyui".into(),
        target: PathBuf::from(target),
        source: PathBuf::from("/store/m.safetensors"),
        kind: LinkKind::Symlink,
        external: false,
        stat: FileStat::default(),
        source_ino: None,
        text: None,
    }
}

/// The schema-1 registry that mlib at commit e8c3a8e wrote (tests/e2e/fixtures/registry-v1).
fn v1_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/e2e/fixtures/registry-v1/store/.mlib/registry.db")
}

#[test]
fn a_schema_1_registry_migrates_its_links_to_a_legacy_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    std::fs::copy(v1_fixture(), &path).unwrap();
    let before: (String, u64, usize) = {
        let raw = rusqlite::Connection::open(&path).unwrap();
        let version: u32 = raw
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 1);
        let lineage = raw
            .query_row("SELECT lineage FROM meta", [], |r| r.get(0))
            .unwrap();
        let serial: i64 = raw
            .query_row("SELECT serial FROM meta", [], |r| r.get(0))
            .unwrap();
        let links: i64 = raw
            .query_row("SELECT COUNT(*) FROM links", [], |r| r.get(0))
            .unwrap();
        (lineage, serial as u64, links as usize)
    };

    let registry = Registry::open(&path).unwrap();
    assert_eq!(
        registry.schema_version().unwrap(),
        mlib_registry::schema_version()
    );
    registry.integrity_check().unwrap();
    // Lineage and serial survive: saved plans keep their meaning.
    assert_eq!(registry.lineage().unwrap(), before.0);
    assert_eq!(registry.serial().unwrap(), before.1);
    let envs = registry.environments().unwrap();
    assert_eq!(envs.len(), 1);
    let legacy = &envs[0];
    let manifest = "/tmp/mlib-registry-v1-fixture/models.yaml";
    assert_eq!(legacy.key, legacy_key(manifest));
    assert!(legacy.is_legacy());
    assert_eq!(
        legacy.models, None,
        "schema 1 never recorded what it declared"
    );
    assert_eq!(legacy.manifest, manifest);
    let links = registry.links().unwrap();
    assert_eq!(links.len(), before.2);
    assert_eq!(before.2, 6);
    assert!(links.iter().all(|l| l.env == legacy.id));
    let hardlinks = links
        .iter()
        .filter(|l| l.kind == LinkKind::Hardlink)
        .count();
    assert_eq!(hardlinks, 3);
    // The index is emptied: schema 1's scan could pair a changed file's stat with its old
    // hashes, so nothing it recorded is trusted.
    assert!(registry.index_entries().unwrap().is_empty());

    // Claiming moves the links and forgets the emptied legacy environment.
    let mine = registry
        .record_environment(&new_env("auto:x", manifest))
        .unwrap();
    let ids: Vec<i64> = links.iter().map(|l| l.id).collect();
    registry.claim_links(&ids, mine.id).unwrap();
    assert_eq!(registry.links_for_env(mine.id).unwrap().len(), 6);
    let envs = registry.environments().unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0].key, "auto:x");
    assert_eq!(registry.serial().unwrap(), before.1 + 1);
}

#[test]
fn environments_are_recorded_updated_and_counted() {
    let registry = Registry::open_in_memory().unwrap();
    let alice = registry
        .record_environment(&new_env("auto:alice", "/srv/models.yaml"))
        .unwrap();
    let bob = registry
        .record_environment(&new_env("auto:bob", "/srv/models.yaml"))
        .unwrap();
    assert_ne!(alice.id, bob.id);
    assert!(alice.applied_at.is_some());
    assert_eq!(alice.apps["comfyui"], "/srv/auto:alice/ComfyUI");
    registry.insert_link(&link(alice.id, "/a/1")).unwrap();
    registry.insert_link(&link(alice.id, "/a/2")).unwrap();
    registry.insert_link(&link(bob.id, "/b/1")).unwrap();

    // Applying again updates, never duplicates.
    let mut moved = new_env("auto:alice", "/elsewhere/models.yaml");
    moved.name = Some("alice".into());
    moved.label = "environment `alice`".into();
    let again = registry.record_environment(&moved).unwrap();
    assert_eq!(again.id, alice.id);
    assert_eq!(again.manifest, "/elsewhere/models.yaml");
    assert_eq!(again.label, "environment `alice`");
    let envs = registry.environments().unwrap();
    assert_eq!(envs.len(), 2);
    assert_eq!(
        envs[0].models.as_deref(),
        Some(&["loras/sdxl/m".to_string()][..])
    );
    // The same, but for the models each declared.
    let brief = registry.environments_without_models().unwrap();
    assert_eq!(brief.len(), 2);
    for (brief, full) in brief.iter().zip(&envs) {
        assert_eq!(brief.models, None);
        assert_eq!(
            (
                &brief.id,
                &brief.key,
                &brief.label,
                &brief.manifest,
                &brief.apps
            ),
            (&full.id, &full.key, &full.label, &full.manifest, &full.apps)
        );
    }
    let counts = registry.link_counts().unwrap();
    assert_eq!((counts[&alice.id], counts[&bob.id]), (2, 1));
    // Counted, and handed over one by one, oldest first, as `links` collects them.
    assert_eq!(registry.link_count().unwrap(), 3);
    let mut visited = Vec::new();
    registry.for_each_link(|link| visited.push(link)).unwrap();
    assert_eq!(visited, registry.links().unwrap());
    assert_eq!(registry.index_count().unwrap(), 0);
    assert!(registry.environment("auto:nobody").unwrap().is_none());
}

#[test]
fn an_environment_remembers_its_models_and_can_be_forgotten() {
    let registry = Registry::open_in_memory().unwrap();
    let alice = registry
        .record_environment(&new_env("auto:alice", "/srv/a.yaml"))
        .unwrap();
    let bob = registry
        .record_environment(&new_env("auto:bob", "/srv/b.yaml"))
        .unwrap();
    assert_eq!(alice.models, Some(vec!["loras/sdxl/m".to_string()]));
    let mut fewer = new_env("auto:alice", "/srv/a.yaml");
    fewer.models.clear();
    assert_eq!(
        registry.record_environment(&fewer).unwrap().models,
        Some(Vec::new())
    );
    registry.insert_link(&link(alice.id, "/a/1")).unwrap();
    registry.insert_link(&link(bob.id, "/b/1")).unwrap();
    let serial = registry.serial().unwrap();

    registry.forget_environment(alice.id).unwrap();
    let envs = registry.environments().unwrap();
    assert_eq!(envs.len(), 1);
    assert_eq!(envs[0].id, bob.id);
    let left: Vec<PathBuf> = registry
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.target)
        .collect();
    assert_eq!(left, vec![PathBuf::from("/b/1")]);
    assert!(registry.serial().unwrap() > serial);
}

#[test]
fn the_journal_is_cleared_by_recording_the_link() {
    let registry = Registry::open_in_memory().unwrap();
    let env = registry.record_environment(&new_env("e", "/m")).unwrap().id;
    let targets = [PathBuf::from("/a/1"), PathBuf::from("/a/2")];
    registry.journal_links(env, &targets).unwrap();
    let pending = registry.pending().unwrap();
    assert_eq!(pending.len(), 2);
    assert!(
        pending
            .iter()
            .all(|p| p.writer == mlib_fs::Process::current())
    );
    registry.insert_link(&link(env, "/a/1")).unwrap();
    assert_eq!(registry.pending().unwrap()[0].target, targets[1]);
    registry.unjournal(&targets[1..]).unwrap();
    assert!(registry.pending().unwrap().is_empty());
}

#[test]
fn a_run_left_by_a_dead_process_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let registry = Registry::open(&path).unwrap();
    let env = registry.record_environment(&new_env("e", "/m")).unwrap().id;
    // Our own run: not interrupted.
    assert!(registry.begin_run(env).unwrap().is_none());
    assert!(registry.interrupted_runs().unwrap().is_empty());
    // As if a killed process had begun it.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE runs SET pid = ?1, start = 1", [dead])
        .unwrap();
    assert_eq!(registry.interrupted_runs().unwrap().len(), 1);
    let previous = registry.begin_run(env).unwrap().expect("interrupted");
    assert_eq!(previous.writer.pid, dead);
    registry.end_run(env).unwrap();
    assert!(registry.interrupted_runs().unwrap().is_empty());
    assert!(registry.begin_run(env).unwrap().is_none());
}

#[test]
fn ending_a_run_clears_one_a_killed_process_left_but_not_a_live_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let registry = Registry::open(&path).unwrap();
    let env = registry.record_environment(&new_env("e", "/m")).unwrap().id;
    let set_writer = |pid: u32, start: i64| {
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute(
                "INSERT OR REPLACE INTO runs (env, pid, start, since) VALUES (?1, ?2, ?3, 'x')",
                rusqlite::params![env, pid, start],
            )
            .unwrap();
    };
    // Left by an apply that was killed; the next apply had nothing to change (no run of
    // its own) but recovered from it.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    set_writer(dead, 1);
    assert_eq!(registry.interrupted_runs().unwrap().len(), 1);
    registry.end_run(env).unwrap();
    assert!(registry.interrupted_runs().unwrap().is_empty());
    assert!(registry.begin_run(env).unwrap().is_none(), "no run left");
    // Another process still applying: its run stays.
    let mut live = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    set_writer(live.id(), 0);
    registry.end_run(env).unwrap();
    let count: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    live.kill().unwrap();
    live.wait().unwrap();
    assert_eq!(count, 1);
}

#[test]
fn the_index_trusts_only_an_unchanged_stamp() {
    let registry = Registry::open_in_memory().unwrap();
    let stamp = FileStamp {
        ino: 5,
        size: 10,
        mtime_ns: 100,
        ctime_ns: 200,
    };
    let entry = IndexEntry::new("a".into(), &stamp, "s".repeat(64), "b".repeat(64));
    assert!(entry.matches(&stamp));
    for changed in [
        FileStamp { ino: 6, ..stamp },
        FileStamp { size: 11, ..stamp },
        FileStamp {
            mtime_ns: 101,
            ..stamp
        },
        FileStamp {
            ctime_ns: 201,
            ..stamp
        },
    ] {
        assert!(!entry.matches(&changed), "{changed:?}");
    }

    // mlib's own hard link moved only the ctime: the entry follows.
    registry.index_put(&entry).unwrap();
    let linked = FileStamp {
        ctime_ns: 300,
        ..stamp
    };
    assert!(registry.index_touch("a", &stamp, &linked).unwrap());
    assert!(registry.index_all().unwrap()["a"].matches(&linked));
    // Anything else changed too: the entry is left stale, to be verified.
    let written = FileStamp {
        mtime_ns: 500,
        ctime_ns: 500,
        ..linked
    };
    assert!(!registry.index_touch("a", &linked, &written).unwrap());
    assert!(!registry.index_all().unwrap()["a"].matches(&written));
}

#[test]
fn a_read_only_registry_is_read_without_writing() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let path = state.join("registry.db");
    {
        let registry = Registry::open(&path).unwrap();
        let env = registry.record_environment(&new_env("e", "/m")).unwrap().id;
        registry.insert_link(&link(env, "/a/1")).unwrap();
    }
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555)).unwrap();
    let listing = || {
        let mut names: Vec<_> = std::fs::read_dir(&state)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let registry = Registry::open_for_reading(&path, false).unwrap();
    assert_eq!(registry.links().unwrap().len(), 1);
    assert_eq!(registry.environments().unwrap().len(), 1);
    drop(registry);
    assert_eq!(listing(), before);
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();

    // A WAL registry in a folder that may be written is read without writing either.
    let registry = Registry::open_for_reading(&path, true).unwrap();
    assert_eq!(registry.links().unwrap().len(), 1);
    drop(registry);
    assert_eq!(listing(), before);

    // A schema-1 registry is read through an upgraded copy; the file stays at schema 1.
    let old = dir.path().join("old.db");
    std::fs::copy(v1_fixture(), &old).unwrap();
    let registry = Registry::open_for_reading(&old, true).unwrap();
    assert_eq!(
        registry.schema_version().unwrap(),
        mlib_registry::schema_version()
    );
    assert_eq!(registry.links().unwrap().len(), 6);
    assert!(registry.environments().unwrap()[0].is_legacy());
    drop(registry);
    let raw = rusqlite::Connection::open(&old).unwrap();
    let version: u32 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 1);
}
