//! The store on a real filesystem: layout, ingest, replace, commit, scan.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use mlib_store::{
    Expected, Hashes, Layout, Metadata, ModelKey, StagedFile, Store, StoreError, hash_file,
};
use sha2::Digest;

const LORA: ModelKey = ModelKey {
    name: "my-lora",
    model_type: "loras",
    family: Some("sdxl"),
};

fn store(layout: Layout) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("store"), layout);
    (dir, store)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, data).unwrap();
}

fn sha256(data: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(data))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Everything under `dir`, relative, sorted (to prove nothing was left behind).
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(items) = std::fs::read_dir(dir) else {
            return;
        };
        for item in items {
            let path = item.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                walk(root, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

fn ingest(store: &Store, key: &ModelKey, src: &Path) -> Result<Metadata, StoreError> {
    store.ingest_local(key, src, &Expected::default(), "./src", &mut |_| {})
}

#[test]
fn paths_follow_the_layout() {
    let nested = Store::new(PathBuf::from("/s"), Layout::Nested);
    assert_eq!(nested.model_dir(&LORA), Path::new("/s/loras/sdxl/my-lora"));
    assert_eq!(
        nested.metadata_path(&LORA),
        Path::new("/s/loras/sdxl/my-lora/metadata.json")
    );
    let no_family = ModelKey {
        family: None,
        ..LORA
    };
    assert_eq!(
        nested.model_dir(&no_family),
        Path::new("/s/loras/unknown/my-lora")
    );

    let flat = Store::new(PathBuf::from("/s"), Layout::Flat);
    assert_eq!(flat.model_dir(&LORA), Path::new("/s/loras"));
    assert_eq!(
        flat.metadata_path(&LORA),
        Path::new("/s/loras/.mlib-meta/my-lora.json")
    );
    assert_eq!(flat.root(), Path::new("/s"));
    assert_eq!(flat.layout(), Layout::Flat);
}

#[test]
fn ingest_file_stores_read_only_copy_and_metadata() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("in/my_lora_sdxl.safetensors");
    let data = vec![7u8; 3 << 20];
    write(&src, &data);

    let mut progress = 0;
    let expect = Expected {
        sha256: Some(sha256(&data).to_uppercase()),
        blake3: Some(blake3::hash(&data).to_hex().to_string()),
    };
    let meta = store
        .ingest_local(
            &LORA,
            &src,
            &expect,
            "./in/my_lora_sdxl.safetensors",
            &mut |n| progress += n,
        )
        .unwrap();
    assert_eq!(progress, data.len() as u64);

    let stored = store.model_dir(&LORA).join("my_lora_sdxl.safetensors");
    assert_eq!(std::fs::read(&stored).unwrap(), data);
    assert_eq!(mode(&stored), 0o444);
    assert_eq!(meta.entries, vec!["my_lora_sdxl.safetensors"]);
    assert_eq!(meta.files.len(), 1);
    assert_eq!(meta.files[0].path, "my_lora_sdxl.safetensors");
    assert_eq!(meta.files[0].size, data.len() as u64);
    assert_eq!(meta.files[0].sha256, sha256(&data));
    assert_eq!(meta.source, "./in/my_lora_sdxl.safetensors");
    assert_eq!(meta.family.as_deref(), Some("sdxl"));
    assert_eq!(meta.added, meta.updated);
    assert_eq!(store.read_metadata(&LORA).unwrap(), Some(meta));

    // The JSON people read: pretty, `type` key, RFC 3339 dates.
    let json = std::fs::read_to_string(store.metadata_path(&LORA)).unwrap();
    assert!(json.contains("\n  \"type\": \"loras\""), "{json}");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let added = value["added"].as_str().unwrap();
    assert!(added.parse::<jiff::Timestamp>().is_ok() && added.ends_with('Z'));

    // Staging is empty again; the source is untouched.
    assert_eq!(tree(&store.staging_dir().unwrap()), Vec::<String>::new());
    assert_eq!(std::fs::read(&src).unwrap(), data);
}

#[test]
fn hash_mismatch_stores_nothing() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("model.safetensors");
    write(&src, b"not the model you pinned");
    let wrong = "0".repeat(64);

    let err = store
        .ingest_local(
            &LORA,
            &src,
            &Expected {
                sha256: Some(wrong.clone()),
                blake3: None,
            },
            "x",
            &mut |_| {},
        )
        .unwrap_err();
    match &err {
        StoreError::HashMismatch {
            algorithm,
            expected,
            actual,
            path,
        } => {
            assert_eq!(*algorithm, "sha256");
            assert_eq!(expected, &wrong);
            assert_eq!(actual, &sha256(b"not the model you pinned"));
            assert_eq!(path, &src);
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(err.to_string().contains("Nothing was stored"), "{err}");

    let err = store
        .ingest_local(
            &LORA,
            &src,
            &Expected {
                sha256: None,
                blake3: Some(wrong),
            },
            "x",
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::HashMismatch {
            algorithm: "blake3",
            ..
        }
    ));

    assert!(!store.model_dir(&LORA).exists());
    assert_eq!(store.read_metadata(&LORA).unwrap(), None);
    assert_eq!(tree(&store.staging_dir().unwrap()), Vec::<String>::new());
}

#[test]
fn ingest_folder_keeps_the_folder_as_one_entry() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("FLUX.1-dev");
    write(&src.join("model_index.json"), b"{}");
    write(&src.join("transformer/config.json"), b"{\"a\":1}");
    write(&src.join("transformer/diffusion.safetensors"), &[1u8; 5000]);
    // HuggingFace cache snapshots are symlinks to blobs: the bytes are copied.
    write(&tmp.path().join("blobs/abc"), b"vae bytes");
    std::fs::create_dir_all(src.join("vae")).unwrap();
    std::os::unix::fs::symlink(tmp.path().join("blobs/abc"), src.join("vae/vae.bin")).unwrap();

    let key = ModelKey {
        name: "flux-dev",
        model_type: "diffusers",
        family: None,
    };
    let mut progress = 0;
    let meta = store
        .ingest_local(&key, &src, &Expected::default(), "hf://x", &mut |n| {
            progress += n
        })
        .unwrap();
    assert_eq!(meta.entries, vec!["FLUX.1-dev"]);
    let paths: Vec<_> = meta.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "FLUX.1-dev/model_index.json",
            "FLUX.1-dev/transformer/config.json",
            "FLUX.1-dev/transformer/diffusion.safetensors",
            "FLUX.1-dev/vae/vae.bin",
        ]
    );
    assert_eq!(progress, meta.size());
    assert_eq!(meta.size(), 2 + 7 + 5000 + 9);

    let dir = store.model_dir(&key);
    assert_eq!(dir, store.root().join("diffusers/unknown/flux-dev"));
    let vae = dir.join("FLUX.1-dev/vae/vae.bin");
    assert!(!vae.is_symlink());
    assert_eq!(std::fs::read(&vae).unwrap(), b"vae bytes");
    assert_eq!(mode(&vae), 0o444);
    // Folders stay owner-writable so mlib can remove the model later.
    assert_eq!(mode(&dir.join("FLUX.1-dev/vae")) & 0o200, 0o200);
    for file in &meta.files {
        assert_eq!(
            hash_file(&dir.join(&file.path)).unwrap(),
            Hashes {
                size: file.size,
                sha256: file.sha256.clone(),
                blake3: file.blake3.clone()
            }
        );
    }

    // A pin cannot apply to a folder.
    let err = store
        .ingest_local(
            &key,
            &src,
            &Expected {
                sha256: Some("a".repeat(64)),
                blake3: None,
            },
            "x",
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::PinOnFolder { .. }), "{err:?}");
}

#[test]
fn replacing_a_model_swaps_it_and_keeps_user_files() {
    let (tmp, store) = store(Layout::Nested);
    let v1 = tmp.path().join("v1/lora_v1.safetensors");
    let v2 = tmp.path().join("v2/lora_v2.safetensors");
    write(&v1, b"version one");
    write(&v2, b"version two");

    let first = ingest(&store, &LORA, &v1).unwrap();
    let dir = store.model_dir(&LORA);
    // Someone drops a preview next to the model.
    write(&dir.join("preview.png"), b"png");

    let second = ingest(&store, &LORA, &v2).unwrap();
    assert_eq!(second.entries, vec!["lora_v2.safetensors"]);
    assert_eq!(second.added, first.added);
    assert!(second.updated >= first.updated);
    assert_eq!(
        tree(&dir),
        ["lora_v2.safetensors", "metadata.json", "preview.png"]
    );
    assert_eq!(
        std::fs::read(dir.join("lora_v2.safetensors")).unwrap(),
        b"version two"
    );
    assert_eq!(std::fs::read(dir.join("preview.png")).unwrap(), b"png");
    assert_eq!(tree(&store.staging_dir().unwrap()), Vec::<String>::new());

    // Same entry name, new bytes: replaced in place.
    write(&v2, b"version two, fixed");
    ingest(&store, &LORA, &v2).unwrap();
    assert_eq!(
        std::fs::read(dir.join("lora_v2.safetensors")).unwrap(),
        b"version two, fixed"
    );
}

#[test]
fn ingest_as_renames_the_entry() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("download (1).safetensors");
    write(&src, b"bytes");
    let meta = store
        .ingest_local_as(
            &LORA,
            &src,
            Some("add_detail.safetensors"),
            &Expected::default(),
            "civitai:1@2",
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(meta.entries, vec!["add_detail.safetensors"]);
    assert!(store.entry_path(&LORA, "add_detail.safetensors").is_file());
}

#[test]
fn bad_names_and_sources_are_refused() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("a.bin");
    write(&src, b"a");
    for key in [
        ModelKey {
            name: "../escape",
            ..LORA
        },
        ModelKey { name: "", ..LORA },
        ModelKey {
            model_type: ".mlib",
            ..LORA
        },
        ModelKey {
            family: Some("a/b"),
            ..LORA
        },
    ] {
        let err = ingest(&store, &key, &src).unwrap_err();
        assert!(matches!(err, StoreError::InvalidName { .. }), "{err:?}");
    }

    let err = ingest(&store, &LORA, &tmp.path().join("nope.bin")).unwrap_err();
    assert!(matches!(err, StoreError::SourceMissing { .. }));
    assert!(err.to_string().contains("nope.bin"), "{err}");

    let meta_named = tmp.path().join("metadata.json");
    write(&meta_named, b"{}");
    let err = ingest(&store, &LORA, &meta_named).unwrap_err();
    assert!(err.to_string().contains("rename the file"), "{err}");
    assert!(!store.model_dir(&LORA).exists());
}

fn stage(store: &Store, name: &str, data: &[u8]) -> (PathBuf, Hashes) {
    let path = store.staging_dir().unwrap().join(name);
    std::fs::write(&path, data).unwrap();
    let hashes = hash_file(&path).unwrap();
    (path, hashes)
}

#[test]
fn commit_moves_staged_files_in() {
    let (_tmp, store) = store(Layout::Nested);
    let key = ModelKey {
        name: "sdxl-vae",
        model_type: "vae",
        family: Some("sdxl"),
    };
    let (a, ha) = stage(&store, "a.part", b"weights");
    let (b, hb) = stage(&store, "b.part", b"{}");
    let meta = store
        .commit(
            &key,
            vec![
                StagedFile {
                    staged: b,
                    rel_path: "repo/config.json".into(),
                    hashes: hb,
                },
                StagedFile {
                    staged: a,
                    rel_path: "repo/sub/.hidden.safetensors".into(),
                    hashes: ha.clone(),
                },
            ],
            "hf://org/repo",
        )
        .unwrap();
    assert_eq!(meta.entries, vec!["repo"]);
    assert_eq!(meta.files[1].path, "repo/sub/.hidden.safetensors");
    assert_eq!(meta.files[1].sha256, ha.sha256);
    let stored = store.model_dir(&key).join("repo/sub/.hidden.safetensors");
    assert_eq!(std::fs::read(&stored).unwrap(), b"weights");
    assert_eq!(mode(&stored), 0o444);
    assert_eq!(tree(&store.staging_dir().unwrap()), Vec::<String>::new());
    assert_eq!(store.read_metadata(&key).unwrap(), Some(meta));
}

#[test]
fn commit_refuses_bad_input_and_leaves_staged_files() {
    let (_tmp, store) = store(Layout::Nested);
    let (a, ha) = stage(&store, "a.part", b"weights");
    for rel in [
        "../x",
        "/abs",
        "a//b",
        "a/../b",
        ".hidden",
        "metadata.json",
        "",
    ] {
        let err = store
            .commit(
                &LORA,
                vec![StagedFile {
                    staged: a.clone(),
                    rel_path: rel.into(),
                    hashes: ha.clone(),
                }],
                "x",
            )
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidName { .. }),
            "{rel}: {err:?}"
        );
    }
    let twice = StagedFile {
        staged: a.clone(),
        rel_path: "x.bin".into(),
        hashes: ha.clone(),
    };
    let err = store
        .commit(&LORA, vec![twice.clone(), twice], "x")
        .unwrap_err();
    assert!(err.to_string().contains("listed twice"), "{err}");

    let mut wrong_size = ha.clone();
    wrong_size.size += 1;
    let err = store
        .commit(
            &LORA,
            vec![StagedFile {
                staged: a.clone(),
                rel_path: "x.bin".into(),
                hashes: wrong_size,
            }],
            "x",
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::SizeMismatch { .. }), "{err:?}");

    let err = store.commit(&LORA, Vec::new(), "x").unwrap_err();
    assert!(matches!(err, StoreError::Empty { .. }));
    assert!(
        a.is_file(),
        "a refused commit must not consume the staged file"
    );
    assert!(!store.model_dir(&LORA).exists());
}

#[test]
fn flat_layout_shares_the_type_folder() {
    let (tmp, store) = store(Layout::Flat);
    let a = tmp.path().join("a.safetensors");
    let b = tmp.path().join("b.safetensors");
    write(&a, b"A");
    write(&b, b"B");
    let key_a = ModelKey {
        name: "model-a",
        model_type: "checkpoints",
        family: Some("sd15"),
    };
    let key_b = ModelKey {
        name: "model-b",
        ..key_a
    };
    ingest(&store, &key_a, &a).unwrap();
    ingest(&store, &key_b, &b).unwrap();
    let dir = store.root().join("checkpoints");
    assert_eq!(
        tree(&dir),
        [
            ".mlib-meta",
            ".mlib-meta/model-a.json",
            ".mlib-meta/model-b.json",
            "a.safetensors",
            "b.safetensors"
        ]
    );
    assert_eq!(mode(&dir.join("a.safetensors")), 0o444);

    // model-b may not take model-a's file name.
    let err = store
        .ingest_local_as(
            &key_b,
            &b,
            Some("a.safetensors"),
            &Expected::default(),
            "x",
            &mut |_| {},
        )
        .unwrap_err();
    match &err {
        StoreError::EntryConflict { owner, .. } => assert_eq!(owner, "model-a"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(dir.join("a.safetensors")).unwrap(), b"A");

    // A new version of model-a with another file name replaces its old entry.
    let a2 = tmp.path().join("a2.safetensors");
    write(&a2, b"A2");
    let meta = ingest(&store, &key_a, &a2).unwrap();
    assert_eq!(meta.entries, vec!["a2.safetensors"]);
    assert!(!dir.join("a.safetensors").exists());
    assert_eq!(std::fs::read(dir.join("a2.safetensors")).unwrap(), b"A2");
    // ...and same name, new bytes.
    write(&a2, b"A2 fixed");
    ingest(&store, &key_a, &a2).unwrap();
    assert_eq!(
        std::fs::read(dir.join("a2.safetensors")).unwrap(),
        b"A2 fixed"
    );

    let removed = store.remove_model(&key_a).unwrap().unwrap();
    assert_eq!(removed.name, "model-a");
    assert_eq!(
        tree(&dir),
        [".mlib-meta", ".mlib-meta/model-b.json", "b.safetensors"]
    );
    assert_eq!(store.remove_model(&key_a).unwrap(), None);
}

#[test]
fn scan_finds_both_layouts_and_skips_mlib_and_entries() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("m.safetensors");
    write(&src, b"m");
    ingest(&store, &LORA, &src).unwrap();
    let folder = tmp.path().join("repo");
    write(&folder.join("sub/metadata.json"), b"not ours");
    let key = ModelKey {
        name: "repo",
        model_type: "diffusers",
        family: None,
    };
    ingest(&store, &key, &folder).unwrap();
    let flat = Store::new(store.root().to_owned(), Layout::Flat);
    let vae = ModelKey {
        name: "vae-ft",
        model_type: "vae",
        family: None,
    };
    ingest(&flat, &vae, &src).unwrap();
    // mlib's own folder is never read as models.
    write(&store.root().join(".mlib/tmp/x/metadata.json"), b"garbage");

    let found = store.scan().unwrap();
    let names: Vec<_> = found.iter().map(|(_, m)| m.name.as_str()).collect();
    assert_eq!(names, ["repo", "my-lora", "vae-ft"]);
    assert_eq!(found[1].0, store.metadata_path(&LORA));
    assert_eq!(found[2].0, flat.metadata_path(&vae));

    // A broken metadata file: scan names it, scan_lenient reports it and goes on.
    write(&store.root().join("loras/sd15/broken/metadata.json"), b"{");
    let err = store.scan().unwrap_err();
    assert!(err.to_string().contains("broken/metadata.json"), "{err}");
    let (ok, errors) = store.scan_lenient().unwrap();
    assert_eq!(ok.len(), 3);
    assert_eq!(errors.len(), 1);

    // An empty or missing store has no models.
    assert!(
        Store::new(tmp.path().join("none"), Layout::Nested)
            .scan()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn remove_nested_model() {
    let (tmp, store) = store(Layout::Nested);
    let src = tmp.path().join("m.safetensors");
    write(&src, b"m");
    ingest(&store, &LORA, &src).unwrap();
    assert!(store.remove_model(&LORA).unwrap().is_some());
    assert!(!store.model_dir(&LORA).exists());
    assert_eq!(tree(&store.staging_dir().unwrap()), Vec::<String>::new());
}
