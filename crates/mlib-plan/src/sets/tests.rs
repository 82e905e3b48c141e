use std::path::{Path, PathBuf};

use super::*;

fn touch(dir: &Path, names: &[&str]) -> Vec<PathBuf> {
    names
        .iter()
        .map(|name| {
            let path = dir.join(name);
            std::fs::write(&path, name).unwrap();
            path
        })
        .collect()
}

#[test]
fn shard_names() {
    assert_eq!(
        shard_of("model-00002-of-00005.safetensors"),
        Some(("model", 2, 5, "safetensors"))
    );
    assert_eq!(
        shard_of("qwen2.5-7b-q4_k_m-00001-of-00003.gguf"),
        Some(("qwen2.5-7b-q4_k_m", 1, 3, "gguf"))
    );
    for not in [
        "model.safetensors",
        "model-00006-of-00005.safetensors",
        "model-00000-of-00005.safetensors",
        "-00001-of-00002.gguf",
        "model-x-of-00002.gguf",
        "model-00001-of-.gguf",
        "noextension-00001-of-00002",
    ] {
        assert_eq!(shard_of(not), None, "{not}");
    }
}

#[test]
fn a_sharded_set_is_one_group_with_its_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("flux-transformer");
    std::fs::create_dir(&dir).unwrap();
    let mut files = touch(
        &dir,
        &[
            "diffusion_pytorch_model-00002-of-00002.safetensors",
            "diffusion_pytorch_model-00001-of-00002.safetensors",
            "other.safetensors",
        ],
    );
    touch(&dir, &["diffusion_pytorch_model.safetensors.index.json"]);
    files.sort();
    let groups = group(files).unwrap();
    assert_eq!(groups.len(), 2, "{groups:?}");
    let Group::Set(set) = &groups[0] else {
        panic!("{groups:?}")
    };
    assert_eq!(
        set.stem, "flux-transformer",
        "a generic stem takes the folder's name"
    );
    assert_eq!(
        set.head,
        dir.join("diffusion_pytorch_model-00001-of-00002.safetensors")
    );
    assert_eq!(
        set.files,
        [
            "diffusion_pytorch_model-00001-of-00002.safetensors",
            "diffusion_pytorch_model-00002-of-00002.safetensors",
            "diffusion_pytorch_model.safetensors.index.json",
        ]
    );
    assert_eq!(groups[1], Group::Single(dir.join("other.safetensors")));
}

#[test]
fn a_set_missing_a_shard_is_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let files = touch(
        tmp.path(),
        &["llm-00001-of-00003.gguf", "llm-00003-of-00003.gguf"],
    );
    let err = group(files).unwrap_err();
    assert_eq!(err.missing, ["llm-00002-of-00003.gguf"]);
    assert!(
        err.to_string()
            .contains("is a set of 3 shards, but llm-00002-of-00003.gguf is missing"),
        "{err}"
    );
}

#[test]
fn companions_carry_the_model_stem() {
    let tmp = tempfile::tempdir().unwrap();
    let files = touch(
        tmp.path(),
        &[
            "juggernaut.safetensors",
            "plain.safetensors",
            "model_v1.safetensors",
            "model_v1.5.safetensors",
            "twice.safetensors",
            "twice.ckpt",
        ],
    );
    touch(
        tmp.path(),
        &[
            "juggernaut.yaml",
            "juggernaut.preview.png",
            "juggernaut.civitai.info",
            "juggernaut-v2.yaml",
            "juggernaut.exe",
            "juggernaut.b.yaml",
            "plainer.png",
            "model_v1.5.yaml",
            "twice.yaml",
        ],
    );
    let groups = group(files).unwrap();
    let Group::Set(set) = &groups[0] else {
        panic!("{groups:?}")
    };
    assert_eq!(set.stem, "juggernaut");
    assert_eq!(
        set.files,
        [
            "juggernaut.civitai.info",
            "juggernaut.preview.png",
            "juggernaut.safetensors",
            "juggernaut.yaml",
        ]
    );
    assert_eq!(
        groups[1],
        Group::Single(tmp.path().join("plain.safetensors"))
    );
    // `model_v1.5.yaml` is `model_v1.5`'s config, never `model_v1`'s.
    assert_eq!(
        groups[2],
        Group::Single(tmp.path().join("model_v1.safetensors"))
    );
    let Group::Set(v15) = &groups[3] else {
        panic!("{groups:?}")
    };
    assert_eq!(v15.files, ["model_v1.5.safetensors", "model_v1.5.yaml"]);
    // Claimed by two models: it goes with neither.
    assert_eq!(
        groups[4],
        Group::Single(tmp.path().join("twice.safetensors"))
    );
    assert_eq!(groups[5], Group::Single(tmp.path().join("twice.ckpt")));
}

#[test]
fn a_huge_shard_count_is_not_a_set() {
    assert_eq!(shard_of("notes-1-of-2000000.gguf"), None);
    assert_eq!(
        shard_of("x-00001-of-10000.gguf"),
        Some(("x", 1, 10000, "gguf"))
    );
}
