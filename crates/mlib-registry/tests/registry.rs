//! The registry on a real SQLite file.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use mlib_registry::{
    FileStat, IndexEntry, LinkKind, NewEnvironment, NewLink, Registry, RegistryError,
};

/// Records an environment keyed `key` (from manifest `key`) and returns its id.
fn env(registry: &Registry, key: &str) -> i64 {
    registry
        .record_environment(&NewEnvironment {
            key: key.into(),
            name: None,
            label: key.into(),
            manifest: key.into(),
            apps: Default::default(),
            models: Vec::new(),
        })
        .unwrap()
        .id
}

fn link(env: i64, model: &str, target: &str) -> NewLink {
    NewLink {
        env,
        model: model.into(),
        app: "comfyui".into(),
        target: PathBuf::from(target),
        source: PathBuf::from(format!("/store/loras/sdxl/{model}/{model}.safetensors")),
        kind: LinkKind::Symlink,
        external: false,
        stat: FileStat {
            dev: 2049,
            ino: 42,
            mtime_ns: 1_700_000_000_123_456_789,
            size: 100,
        },
        source_ino: None,
        text: None,
    }
}

fn entry(path: &str, sha: char) -> IndexEntry {
    IndexEntry {
        path: path.into(),
        size: 5,
        mtime_ns: 1,
        ino: 7,
        ctime_ns: 3,
        sha256: sha.to_string().repeat(64),
        blake3: "b".repeat(64),
    }
}

#[test]
fn creates_schema_and_keeps_lineage_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store/.mlib/registry.db");
    let registry = Registry::open(&path).unwrap();
    assert!(path.is_file());
    assert_eq!(
        registry.schema_version().unwrap(),
        mlib_registry::schema_version()
    );
    assert_eq!(registry.serial().unwrap(), 0);
    let lineage = registry.lineage().unwrap();
    assert_eq!(lineage.len(), 32);
    assert!(lineage.bytes().all(|b| b.is_ascii_hexdigit()));
    let m = env(&registry, "m");
    registry.insert_link(&link(m, "a", "/app/a")).unwrap();
    drop(registry);

    let again = Registry::open(&path).unwrap();
    assert_eq!(again.lineage().unwrap(), lineage);
    assert_eq!(again.serial().unwrap(), 1);
    assert_eq!(again.links().unwrap().len(), 1);

    // WAL, foreign keys, the CHECK on kind: as the schema says.
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let bad = raw.execute(
        "INSERT INTO links (env, model, app, target, source, kind, dev, ino, mtime_ns, size, created_at)
         VALUES (1, 'a', 'x', '/t', '/s', 'reflink', 0, 0, 0, 0, '')",
        [],
    );
    assert!(bad.is_err(), "kind 'reflink' must be refused");
    let orphan = raw.execute(
        "INSERT INTO links (env, model, app, target, source, kind, dev, ino, mtime_ns, size, created_at)
         VALUES (99, 'a', 'x', '/t', '/s', 'symlink', 0, 0, 0, 0, '')",
        [],
    );
    assert!(orphan.is_err(), "a link of no environment must be refused");

    // A new registry is another lineage.
    let other = Registry::open(&dir.path().join("other.db")).unwrap();
    assert_ne!(other.lineage().unwrap(), lineage);
}

#[test]
fn migrates_an_empty_file_and_refuses_a_newer_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.db");
    std::fs::write(&path, b"").unwrap();
    let registry = Registry::open(&path).unwrap();
    assert_eq!(
        registry.schema_version().unwrap(),
        mlib_registry::schema_version()
    );
    assert!(registry.links().unwrap().is_empty());
    drop(registry);

    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 99).unwrap();
    drop(raw);
    let err = Registry::open(&path).unwrap_err();
    match &err {
        RegistryError::TooNew { found, known, .. } => {
            assert_eq!((*found, *known), (99, mlib_registry::schema_version()))
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("upgrade mlib"), "{err}");
}

#[test]
fn serial_bumps_on_every_link_change_only() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("r.db")).unwrap();
    let m = env(&registry, "m");
    let id = registry.insert_link(&link(m, "a", "/app/a")).unwrap();
    assert_eq!(registry.serial().unwrap(), 1);
    registry
        .insert_links(&[link(m, "b", "/app/b"), link(m, "c", "/app/c")])
        .unwrap();
    assert_eq!(registry.serial().unwrap(), 2);
    registry.delete_link(id).unwrap();
    assert_eq!(registry.serial().unwrap(), 3);
    // Nothing changed: no bump.
    registry.delete_link(id).unwrap();
    registry.insert_links(&[]).unwrap();
    registry.index_put(&entry("x", 'a')).unwrap();
    assert_eq!(registry.index_count().unwrap(), 1);
    let mut visited = Vec::new();
    registry.for_each_index_entry(|e| visited.push(e)).unwrap();
    assert_eq!(visited, registry.index_entries().unwrap());
    assert_eq!(visited[0].path, "x");
    registry.index_remove("x").unwrap();
    assert_eq!(registry.index_count().unwrap(), 0);
    registry
        .journal_links(m, &[PathBuf::from("/app/d")])
        .unwrap();
    env(&registry, "m");
    assert_eq!(registry.serial().unwrap(), 3);
}

#[test]
fn a_target_another_environment_recorded_refuses_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("r.db")).unwrap();
    let (a, b) = (env(&registry, "/work/a"), env(&registry, "/work/b"));
    let theirs = registry.insert_link(&link(a, "x", "/app/x")).unwrap();
    registry
        .journal_links(b, &[PathBuf::from("/app/y"), PathBuf::from("/app/x")])
        .unwrap();
    let serial = registry.serial().unwrap();

    let err = registry
        .insert_links(&[link(b, "y", "/app/y"), link(b, "x", "/app/x")])
        .unwrap_err();
    match err {
        RegistryError::TargetOwned { target, env } => {
            assert_eq!((target, env), (PathBuf::from("/app/x"), a));
        }
        other => panic!("{other:?}"),
    }
    // Nothing of the batch is recorded or unjournaled, and their record is untouched.
    assert!(registry.links_for_env(b).unwrap().is_empty());
    assert_eq!(registry.pending().unwrap().len(), 2);
    assert_eq!(registry.serial().unwrap(), serial);
    let kept = registry.link_at(Path::new("/app/x")).unwrap().unwrap();
    assert_eq!((kept.id, kept.env, kept.model.as_str()), (theirs, a, "x"));

    // Their own target again replaces their record.
    registry.insert_links(&[link(a, "x2", "/app/x")]).unwrap();
    let replaced = registry.link_at(Path::new("/app/x")).unwrap().unwrap();
    assert_eq!((replaced.env, replaced.model.as_str()), (a, "x2"));
    assert_eq!(registry.links().unwrap().len(), 1);
}

#[test]
fn links_round_trip_replace_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("r.db")).unwrap();
    let (a, b) = (env(&registry, "/work/a"), env(&registry, "/work/b"));
    let mut first = link(a, "lora-a", "/app/loras/a.safetensors");
    // Inode and device numbers use the full u64 range on some filesystems.
    first.stat.ino = u64::MAX - 3;
    first.stat.dev = 1 << 63;
    first.kind = LinkKind::Hardlink;
    first.external = true;
    let id = registry.insert_link(&first).unwrap();
    registry
        .insert_link(&link(b, "lora-b", "/app/loras/b.safetensors"))
        .unwrap();

    let all = registry.links().unwrap();
    assert_eq!(all.len(), 2);
    let got = &all[0];
    assert_eq!(got.id, id);
    assert_eq!(
        (
            &got.env,
            &got.model,
            &got.app,
            &got.target,
            &got.source,
            got.kind,
            got.external,
            got.stat
        ),
        (
            &first.env,
            &first.model,
            &first.app,
            &first.target,
            &first.source,
            first.kind,
            first.external,
            first.stat
        )
    );
    // When it was made is kept in the file (for a person reading it), not in the record.
    let created_at: String = rusqlite::Connection::open(dir.path().join("r.db"))
        .unwrap()
        .query_row("SELECT created_at FROM links WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(
        created_at.parse::<jiff::Timestamp>().is_ok(),
        "{created_at}"
    );

    // Same target again: the old record is replaced, not duplicated.
    let mut replacement = link(a, "lora-a2", "/app/loras/a.safetensors");
    replacement.kind = LinkKind::Copy;
    let new_id = registry.insert_link(&replacement).unwrap();
    assert_ne!(new_id, id);
    let mine = registry.links_for_env(a).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].id, mine[0].model.as_str(), mine[0].kind),
        (new_id, "lora-a2", LinkKind::Copy)
    );
    assert_eq!(registry.links_for_env(b).unwrap().len(), 1);
    assert!(registry.links_for_env(99).unwrap().is_empty());
    assert_eq!(registry.links_for_model("lora-b").unwrap().len(), 1);
    let at = registry
        .link_at(Path::new("/app/loras/a.safetensors"))
        .unwrap()
        .unwrap();
    assert_eq!(at.id, new_id);
    assert!(registry.link_at(Path::new("/app/none")).unwrap().is_none());

    registry.delete_links(&[new_id]).unwrap();
    assert_eq!(registry.links().unwrap().len(), 1);
}

#[test]
fn twenty_thousand_links_in_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("r.db")).unwrap();
    let m = env(&registry, "m");
    let links: Vec<_> = (0..20_000)
        .map(|i| {
            link(
                m,
                &format!("model-{}", i % 500),
                &format!("/app/{i}.safetensors"),
            )
        })
        .collect();
    let start = Instant::now();
    let ids = registry.insert_links(&links).unwrap();
    let took = start.elapsed();
    eprintln!("20000 links recorded in {took:?}");
    assert_eq!(ids.len(), 20_000);
    assert_eq!(registry.serial().unwrap(), 1);
    assert_eq!(registry.links_for_model("model-7").unwrap().len(), 40);
    let start = Instant::now();
    assert_eq!(registry.links_for_env(m).unwrap().len(), 20_000);
    registry.delete_links(&ids[..10_000]).unwrap();
    eprintln!("queried and deleted 10000 in {:?}", start.elapsed());
    assert_eq!(registry.links().unwrap().len(), 10_000);
    // Generous: one transaction takes well under a second; one per row would take minutes.
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn file_index_put_all_remove() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::open(&dir.path().join("r.db")).unwrap();
    registry
        .index_put(&entry("loras/sdxl/a/a.safetensors", 'a'))
        .unwrap();
    registry
        .index_put_many(&[
            entry("vae/x/v/v.bin", 'c'),
            entry("loras/sdxl/a/a.safetensors", 'd'),
        ])
        .unwrap();
    let mut big = entry("huge", 'e');
    big.size = u64::MAX;
    big.ino = u64::MAX;
    big.mtime_ns = -5;
    registry.index_put(&big).unwrap();

    let index = registry.index_all().unwrap();
    assert_eq!(index.len(), 3);
    assert_eq!(index["loras/sdxl/a/a.safetensors"].sha256, "d".repeat(64));
    assert_eq!(index["huge"], big);
    registry.index_remove("huge").unwrap();
    assert_eq!(registry.index_all().unwrap().len(), 2);
}

#[test]
fn two_handles_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let a = Registry::open(&path).unwrap();
    let b = Registry::open(&path).unwrap();
    let m = env(&a, "m");
    a.insert_link(&link(m, "x", "/app/x")).unwrap();
    assert_eq!(b.links().unwrap().len(), 1);
    assert_eq!(b.serial().unwrap(), 1);
    assert_eq!(a.lineage().unwrap(), b.lineage().unwrap());
}

#[test]
fn in_memory_registry_works_and_touches_no_file() {
    let registry = Registry::open_in_memory().unwrap();
    assert_eq!(registry.serial().unwrap(), 0);
    assert!(registry.links().unwrap().is_empty());
    let m = env(&registry, "m");
    registry.insert_link(&link(m, "x", "/app/x")).unwrap();
    assert_eq!(registry.serial().unwrap(), 1);
}

#[test]
fn non_utf8_paths_are_refused() {
    let registry = Registry::open_in_memory().unwrap();
    let mut bad = link(env(&registry, "m"), "x", "/app/x");
    bad.target = PathBuf::from(std::ffi::OsStr::from_bytes(b"/app/\xff.bin"));
    let err = registry.insert_link(&bad).unwrap_err();
    assert!(matches!(err, RegistryError::NonUtf8Path { .. }), "{err:?}");
    assert_eq!(registry.serial().unwrap(), 0);
}

#[test]
fn file_stat_lstat_and_stat() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, b"12345").unwrap();
    let when = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(when)
        .unwrap();
    let link = dir.path().join("l");
    std::os::unix::fs::symlink(&file, &link).unwrap();

    let stat = FileStat::stat(&link).unwrap();
    assert_eq!(stat, FileStat::lstat(&file).unwrap());
    assert_eq!(stat.size, 5);
    assert_eq!(stat.mtime_ns, 1_700_000_000_123_456_789);
    let lstat = FileStat::lstat(&link).unwrap();
    assert_ne!(lstat.ino, stat.ino);
    let err = FileStat::stat(&dir.path().join("missing")).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
}

#[test]
fn shared_between_threads() {
    let registry = Registry::open_in_memory().unwrap();
    let m = env(&registry, "m");
    std::thread::scope(|scope| {
        for t in 0..4 {
            let registry = &registry;
            scope.spawn(move || {
                for i in 0..50 {
                    registry
                        .insert_link(&link(m, "x", &format!("/app/{t}/{i}")))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(registry.links().unwrap().len(), 200);
    assert_eq!(registry.serial().unwrap(), 200);
}
