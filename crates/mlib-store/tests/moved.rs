//! A person's file moved into the store by rename: the same inode, never lost on a failure
//! or a kill.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use mlib_fs::FileStamp;
use mlib_store::{Layout, ModelKey, Store, StoreError, hash_file};

const LORA: ModelKey = ModelKey {
    name: "my-lora",
    model_type: "loras",
    family: Some("sdxl"),
};

fn setup(layout: Layout) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("store"), layout);
    std::fs::create_dir_all(dir.path().join("downloads")).unwrap();
    (dir, store)
}

fn move_in(store: &Store, src: &Path) -> Result<mlib_store::Metadata, StoreError> {
    let stamp = FileStamp::read(src).unwrap();
    let hashes = hash_file(src).unwrap();
    store.ingest_moved(
        &LORA,
        src,
        None,
        &hashes,
        stamp,
        "./downloads/detail.safetensors",
    )
}

#[test]
fn a_file_on_the_store_filesystem_is_renamed_in_not_copied() {
    for layout in [Layout::Nested, Layout::Flat] {
        let (dir, store) = setup(layout);
        let src = dir.path().join("downloads/detail.safetensors");
        std::fs::write(&src, b"weights").unwrap();
        let inode = std::fs::metadata(&src).unwrap().ino();
        assert!(store.can_move_in(&src));

        let meta = move_in(&store, &src).unwrap();
        assert!(
            !src.exists(),
            "{layout:?}: the original is the stored copy now"
        );
        let stored = store.entry_path(&LORA, "detail.safetensors");
        assert_eq!(
            std::fs::metadata(&stored).unwrap().ino(),
            inode,
            "{layout:?}"
        );
        assert_eq!(std::fs::read(&stored).unwrap(), b"weights");
        assert_eq!(meta.files[0].sha256, hash_file(&stored).unwrap().sha256);
        assert_eq!(
            meta.files[0].stamp,
            Some(FileStamp::read(&stored).unwrap()),
            "{layout:?}: stamped where it stays"
        );
        assert!(std::fs::metadata(&stored).unwrap().permissions().readonly());
        let staging: Vec<_> = std::fs::read_dir(store.staging_dir().unwrap())
            .unwrap()
            .collect();
        assert!(
            staging.is_empty(),
            "{layout:?}: no note nor work folder left"
        );
    }
}

#[test]
fn a_file_changed_after_it_was_hashed_stays_where_it_is() {
    let (dir, store) = setup(Layout::Nested);
    let src = dir.path().join("downloads/detail.safetensors");
    std::fs::write(&src, b"weights").unwrap();
    let stamp = FileStamp::read(&src).unwrap();
    let hashes = hash_file(&src).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&src, b"other bytes").unwrap();

    let err = store
        .ingest_moved(&LORA, &src, None, &hashes, stamp, "./x")
        .unwrap_err();
    assert!(
        matches!(err, StoreError::ChangedSinceHashed { .. }),
        "{err}"
    );
    assert_eq!(std::fs::read(&src).unwrap(), b"other bytes");
    assert!(store.read_metadata(&LORA).unwrap().is_none());
}

#[test]
fn a_failure_after_the_rename_puts_the_file_back() {
    let (dir, store) = setup(Layout::Nested);
    let src = dir.path().join("downloads/detail.safetensors");
    std::fs::write(&src, b"weights").unwrap();
    // A file where the model's folder goes: installing fails after the file moved.
    let model_dir = store.model_dir(&LORA);
    std::fs::create_dir_all(model_dir.parent().unwrap()).unwrap();
    std::fs::write(&model_dir, b"in the way").unwrap();

    move_in(&store, &src).unwrap_err();
    assert_eq!(std::fs::read(&src).unwrap(), b"weights", "put back");
    let staging: Vec<_> = std::fs::read_dir(store.staging_dir().unwrap())
        .unwrap()
        .collect();
    assert!(staging.is_empty());
}

#[test]
fn no_move_for_a_symlink_or_a_file_with_another_name() {
    let (dir, store) = setup(Layout::Nested);
    let src = dir.path().join("downloads/detail.safetensors");
    std::fs::write(&src, b"weights").unwrap();
    let link = dir.path().join("downloads/link.safetensors");
    std::os::unix::fs::symlink(&src, &link).unwrap();
    assert!(
        !store.can_move_in(&link),
        "a symlink's target is not ours to move"
    );
    let twin = dir.path().join("downloads/twin.safetensors");
    std::fs::hard_link(&src, &twin).unwrap();
    assert!(
        !store.can_move_in(&src),
        "another name could change the stored bytes"
    );
}

/// What a kill between the rename and the model's folder reaching its place leaves: the
/// next run puts the file back, or keeps it in the quarantine when its place was taken.
#[test]
fn after_a_kill_the_next_run_puts_a_moved_file_back() {
    for taken in [false, true] {
        let (dir, store) = setup(Layout::Nested);
        let staging = store.staging_dir().unwrap();
        let tag = dead_writer_tag();
        let work = staging.join(format!(".move{tag}"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(work.join("detail.safetensors"), b"weights").unwrap();
        std::fs::write(work.join("metadata.json"), b"{}").unwrap();
        let from = dir.path().join("downloads/detail.safetensors");
        let note = serde_json::json!({"work": work, "from": from, "entry": "detail.safetensors"});
        std::fs::write(staging.join(format!(".moved{tag}")), note.to_string()).unwrap();
        if taken {
            std::fs::write(&from, b"a new file").unwrap();
        }

        let cleaned = store.clean_staging().unwrap();
        assert!(cleaned.kept.is_empty(), "taken: {taken}");
        if taken {
            assert_eq!(cleaned.moved_kept.len(), 1);
            assert!(cleaned.restored.is_empty());
            assert!(cleaned.moved_kept[0].starts_with(store.quarantine_dir()));
            assert_eq!(std::fs::read(&cleaned.moved_kept[0]).unwrap(), b"weights");
            assert_eq!(std::fs::read(&from).unwrap(), b"a new file");
        } else {
            assert_eq!(cleaned.restored, vec![from.clone()]);
            assert!(cleaned.moved_kept.is_empty());
            assert_eq!(std::fs::read(&from).unwrap(), b"weights");
        }
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    }
}

/// A stale work folder of a move without its note: what it holds is kept, never removed.
#[test]
fn a_moved_file_without_its_note_is_kept_in_the_quarantine() {
    let (_dir, store) = setup(Layout::Nested);
    let staging = store.staging_dir().unwrap();
    let work = staging.join(format!(".move{}", dead_writer_tag()));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("detail.safetensors"), b"weights").unwrap();
    // A kill while mlib wrote the metadata there left its temporary file too: mlib's own.
    std::fs::write(
        work.join(format!(".metadata.json{}", dead_writer_tag())),
        b"{",
    )
    .unwrap();
    let cleaned = store.clean_staging().unwrap();
    assert_eq!(cleaned.moved_kept.len(), 1, "{cleaned:?}");
    assert!(cleaned.moved_kept[0].starts_with(store.quarantine_dir()));
    assert_eq!(std::fs::read(&cleaned.moved_kept[0]).unwrap(), b"weights");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A file put back after a failure has its own mode again, not the store's read-only one.
#[test]
fn a_file_put_back_keeps_its_mode() {
    let (dir, store) = setup(Layout::Nested);
    let src = dir.path().join("downloads/detail.safetensors");
    std::fs::write(&src, b"weights").unwrap();
    set_mode(&src, 0o640);
    let model_dir = store.model_dir(&LORA);
    std::fs::create_dir_all(model_dir.parent().unwrap()).unwrap();
    std::fs::write(&model_dir, b"in the way").unwrap();
    move_in(&store, &src).unwrap_err();
    assert_eq!(std::fs::read(&src).unwrap(), b"weights");
    assert_eq!(mode(&src), 0o640);
}

/// The flat layout renames the file itself into the type's folder, then writes the model's
/// metadata: a kill in between leaves it there, claimed by no metadata. The next run puts it
/// back (with its mode) from there, as from the work folder; until then gc's inventory does
/// not take it for someone else's file. One the metadata claims is in place: left alone.
#[test]
fn after_a_kill_between_the_flat_rename_and_the_metadata_the_file_goes_back() {
    for claimed in [false, true] {
        let (dir, store) = setup(Layout::Flat);
        let staging = store.staging_dir().unwrap();
        let tag = dead_writer_tag();
        let work = staging.join(format!(".move{tag}"));
        std::fs::create_dir_all(&work).unwrap();
        let placed = store.entry_path(&LORA, "detail.safetensors");
        std::fs::create_dir_all(placed.parent().unwrap()).unwrap();
        std::fs::write(&placed, b"weights").unwrap();
        set_mode(&placed, 0o444);
        let hashes = hash_file(&placed).unwrap();
        let from = dir.path().join("downloads/detail.safetensors");
        let note = serde_json::json!({
            "work": work,
            "from": from,
            "entry": "detail.safetensors",
            "to": placed,
            "metadata": store.metadata_path(&LORA),
            "ino": std::fs::metadata(&placed).unwrap().ino(),
            "sha256": hashes.sha256,
            "mode": 0o600,
        });
        std::fs::write(staging.join(format!(".moved{tag}")), note.to_string()).unwrap();
        if claimed {
            let meta_path = store.metadata_path(&LORA);
            std::fs::create_dir_all(meta_path.parent().unwrap()).unwrap();
            let meta = serde_json::json!({
                "name": "my-lora", "type": "loras", "family": "sdxl", "source": "x",
                "entries": ["detail.safetensors"],
                "files": [{"path": "detail.safetensors", "size": 7,
                           "sha256": hashes.sha256, "blake3": hashes.blake3}],
                "added": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z",
            });
            std::fs::write(&meta_path, meta.to_string()).unwrap();
        }
        assert_eq!(store.being_moved_in().unwrap(), vec![placed.clone()]);

        let cleaned = store.clean_staging().unwrap();
        if claimed {
            assert!(cleaned.restored.is_empty());
            assert_eq!(std::fs::read(&placed).unwrap(), b"weights");
            assert!(!from.exists());
        } else {
            assert_eq!(cleaned.restored, vec![from.clone()]);
            assert_eq!(std::fs::read(&from).unwrap(), b"weights");
            assert_eq!(mode(&from), 0o600);
            assert!(!placed.exists());
        }
        assert!(store.being_moved_in().unwrap().is_empty());
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0);
    }
}

fn dead_writer_tag() -> String {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    format!("{}{pid}-1-0", mlib_fs::temp::TAG)
}

/// On a filesystem that clones (`MLIB_TEST_REFLINK_DIR`: an XFS made with `reflink=1`, or
/// Btrfs; see docs/PERFORMANCE.md), a copy into the store is a reflink: another inode, the
/// same bytes, and said so. Skipped, saying why, where no such folder is given.
#[test]
fn a_copy_on_a_filesystem_that_clones_is_a_reflink() {
    let Some(dir) = std::env::var_os("MLIB_TEST_REFLINK_DIR") else {
        eprintln!("skipped: set MLIB_TEST_REFLINK_DIR to a folder on XFS (reflink=1) or Btrfs");
        return;
    };
    let dir = tempfile::tempdir_in(dir).unwrap();
    let store = Store::new(dir.path().join("store"), Layout::Nested);
    let src = dir.path().join("detail.safetensors");
    std::fs::write(&src, vec![7u8; 1 << 20]).unwrap();
    let (meta, how) = store
        .ingest_local_how(
            &LORA,
            &src,
            None,
            &mlib_store::Expected::default(),
            "./x",
            &|_| true,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(how, mlib_store::Transfer::Reflinked);
    let stored = store.entry_path(&LORA, "detail.safetensors");
    assert_ne!(
        std::fs::metadata(&stored).unwrap().ino(),
        std::fs::metadata(&src).unwrap().ino()
    );
    assert_eq!(meta.files[0].sha256, hash_file(&src).unwrap().sha256);
}
