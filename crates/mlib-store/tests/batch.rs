//! Many models put in place at once (`stage_local_selected` + `install_staged`), as the
//! first apply of many local models does: the same store as one-by-one ingests, no debris.

use std::path::Path;

use mlib_store::{Expected, Layout, ModelKey, StagedModel, Store, StoreError};
use sha2::Digest;

fn stage(
    store: &Store,
    key: &ModelKey,
    src: &Path,
    sha256: Option<String>,
) -> Result<StagedModel, StoreError> {
    let expect = Expected {
        sha256,
        blake3: None,
    };
    store.stage_local_selected(key, src, None, &expect, "./src", &|_| true, &mut |_| {})
}

fn key(name: &str) -> ModelKey<'_> {
    ModelKey {
        name,
        model_type: "loras",
        family: Some("sdxl"),
    }
}

fn staging_is_empty(store: &Store) -> bool {
    std::fs::read_dir(store.root().join(".mlib/tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

#[test]
fn a_batch_installs_like_single_ingests_and_leaves_nothing_in_staging() {
    for layout in [Layout::Nested, Layout::Flat] {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("store"), layout);
        let names = ["a", "b", "c"];
        let mut batch = Vec::new();
        for name in names {
            let src = dir.path().join(format!("{name}.safetensors"));
            std::fs::write(&src, name.repeat(1000)).unwrap();
            let digest = hex::encode(sha2::Sha256::digest(name.repeat(1000)));
            batch.push(stage(&store, &key(name), &src, Some(digest)).unwrap());
        }
        // Nothing is in the store before the batch is installed.
        for name in names {
            assert!(
                store.read_metadata(&key(name)).unwrap().is_none(),
                "{layout:?}"
            );
        }
        let installed = store.install_staged(batch);
        assert_eq!(installed.len(), 3);
        for (name, result) in names.iter().zip(installed) {
            let meta = result.unwrap();
            assert_eq!(meta.name, *name);
            let file = store.entry_path(&key(name), &format!("{name}.safetensors"));
            assert_eq!(std::fs::read(&file).unwrap(), name.repeat(1000).as_bytes());
            assert!(std::fs::metadata(&file).unwrap().permissions().readonly());
            // The stamp recorded is the file's: a fresh registry can trust it unhashed.
            let stamp = mlib_fs::FileStamp::read(&file).unwrap();
            assert_eq!(meta.files[0].stamp, Some(stamp), "{layout:?} {name}");
            assert_eq!(store.read_metadata(&key(name)).unwrap(), Some(meta));
        }
        assert!(staging_is_empty(&store), "{layout:?}");
    }
}

#[test]
fn a_wrong_hash_is_refused_at_staging_and_a_dropped_stage_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("store"), Layout::Nested);
    let src = dir.path().join("m.safetensors");
    std::fs::write(&src, b"weights").unwrap();
    let wrong = Some("0".repeat(64));
    assert!(matches!(
        stage(&store, &key("m"), &src, wrong),
        Err(StoreError::HashMismatch { .. })
    ));
    assert!(staging_is_empty(&store));
    let staged = stage(&store, &key("m"), &src, None).unwrap();
    assert_eq!(staged.size(), 7);
    drop(staged);
    assert!(staging_is_empty(&store));
    assert!(store.read_metadata(&key("m")).unwrap().is_none());
    assert!(store.install_staged(Vec::new()).is_empty());
}
