//! `mlib import`: files and folders into the store, pinned in the manifest.

use crate::support::{Manifest, TestEnv, safetensors, store_files};

fn sdxl_lora(env: &TestEnv, rel: &str) {
    safetensors(
        env,
        rel,
        &[(
            "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
            &[8, 768],
        )],
        &[("ss_output_name", rel)],
    );
}

#[test]
fn import_copies_or_moves_into_the_store_and_pins_each_file() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    sdxl_lora(&env, "downloads/what? v2.safetensors");
    sdxl_lora(&env, "downloads/loras/a.safetensors");
    sdxl_lora(&env, "downloads/loras/sub/b.safetensors");
    env.write("downloads/loras/readme.txt", "not a model");
    env.write("downloads/pipe/model_index.json", "{}");
    env.model_file(
        "downloads/pipe/unet/diffusion_pytorch_model.safetensors",
        "unet",
        2000,
    );

    env.mlib(&["import", "downloads/what? v2.safetensors", "--dry-run"])
        .success()
        .stderr_has("+  what-v2:")
        .stderr_has("+    file: \"what_ v2.safetensors\"")
        .stderr_has("Dry run: nothing was written.");
    assert!(store_files(&env.path("store")).is_empty());

    let run = env.mlib(&["import", "downloads/what? v2.safetensors"]);
    run.success().stderr_has("Added `what-v2` to models.yaml.");
    // Reflinked where the filesystem can clone, else copied: said either way.
    assert!(
        run.stderr.contains("  copied what-v2 (") || run.stderr.contains("  reflinked what-v2 ("),
        "{run}"
    );
    assert!(
        env.path("downloads/what? v2.safetensors").exists(),
        "copied, not moved"
    );
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(env.path("downloads/loras/a.safetensors"))
        .unwrap()
        .ino();
    env.mlib(&["import", "downloads/loras", "--move"])
        .success()
        .stderr_has("  moved a (")
        .stderr_has("Added `a`, `b` to models.yaml.");
    assert!(!env.path("downloads/loras/a.safetensors").exists());
    // One filesystem: renamed, not copied (the stored file is the same inode).
    let stored = store_files(&env.path("store"))
        .into_iter()
        .find(|f| f.ends_with("/a.safetensors"))
        .unwrap();
    assert_eq!(
        std::fs::metadata(env.path("store").join(stored))
            .unwrap()
            .ino(),
        inode
    );
    assert!(
        env.path("downloads/loras/readme.txt").exists(),
        "not a model: left alone"
    );
    env.mlib(&["import", "downloads/pipe"])
        .code(1)
        .stderr_has("cannot tell what kind of model these are")
        .stderr_has("--type");
    env.mlib(&["import", "downloads/pipe", "--type", "diffusers"])
        .success();

    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(yaml.contains("family: sdxl"), "{yaml}");
    // Everything is stored already: apply only links (the moved files' sources are gone).
    env.mlib(&["plan"])
        .success()
        .stderr_has("Plan: 0 to add, 4 to link");
    env.mlib(&["apply", "--auto-approve"]).success();
    for link in [
        "ComfyUI/models/loras/what_ v2.safetensors",
        "ComfyUI/models/loras/a.safetensors",
        "ComfyUI/models/loras/b.safetensors",
        "ComfyUI/models/diffusers/pipe/model_index.json",
    ] {
        assert!(env.path(link).exists(), "{link}");
    }
    env.mlib(&["import", "downloads/loras/readme.txt"])
        .code(1)
        .stderr_has("is not a model: it looks like a text file");
}

#[test]
fn enrich_makes_imported_files_civitai_sources_by_their_hash() {
    let env = TestEnv::new();
    let server = mlib_testserver::TestServer::start();
    Manifest::new().comfyui("").write(&env);
    let bytes = crate::support::model_bytes("detail", 2048);
    env.write("downloads/my-detail.safetensors", &bytes);
    env.model_file("downloads/unknown.safetensors", "unknown", 1000);
    let mut version = mlib_testserver::CivitaiVersion::new(122359, 135867)
        .model_type("LORA")
        .base_model("SDXL 1.0")
        .file(1, "add_detail.safetensors", bytes)
        .primary(1);
    version.model_name = "Detail Tweaker XL".into();
    server.civitai_version(version);
    let run = |args: &[&str]| {
        crate::support::Run::from(
            env.command()
                .args(args)
                .env("CIVITAI_ENDPOINT", server.url())
                .output()
                .unwrap(),
        )
    };
    run(&["import", "downloads", "--type", "loras", "--move"]).success();
    run(&["apply", "--auto-approve"]).success();
    run(&["enrich", "--offline"]).code(1).stderr_has("offline");
    run(&["enrich"])
        .success()
        .stderr_has("my-detail: Detail Tweaker XL (LORA, SDXL 1.0)")
        .stderr_has("+    source: \"civitai:122359@135867\"")
        .stderr_has("+    file: \"my-detail.safetensors\"")
        .stderr_has("+    family: sdxl")
        .stderr_has("1 model can now be downloaded again from Civitai");
    // Both files were looked up in one request (Civitai's batch lookup).
    let lookups: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("by-hash"))
        .collect();
    assert_eq!(lookups.len(), 1, "{lookups:?}");
    assert_eq!(lookups[0].method, "POST");
    let lock = std::fs::read_to_string(env.path("models.lock")).unwrap();
    assert!(lock.contains("135867"), "{lock}");
    // The store already holds it: the new family moves its folder, nothing is downloaded.
    run(&["plan"])
        .success()
        .stderr_has("loras/unknown/my-detail → loras/sdxl/my-detail, 2.0 KiB not copied")
        .stderr_has("Plan: 0 to add, 1 to rename");
    run(&["apply", "--auto-approve"]).success();
    run(&["plan", "--detailed-exitcode"]).success();
    assert!(
        server
            .requests()
            .iter()
            .all(|r| !r.path.contains("/api/download/"))
    );
    assert!(
        env.path("ComfyUI/models/loras/my-detail.safetensors")
            .exists()
    );
}

/// Found in review: an imported model's only copy is the store's; another environment's gc
/// must keep it before this manifest's first apply, and another import must not replace it.
#[test]
fn an_imported_model_is_protected_before_the_first_apply() {
    let env = TestEnv::new();
    let manifest = |root: &str| {
        format!(
            "version: 1\nstore: ./store\nmodels: {{}}\napps:\n  comfyui:\n    preset: comfyui\n    root: ./{root}\n"
        )
    };
    env.write("a.yaml", manifest("A"));
    env.write("b.yaml", manifest("B"));
    env.model_file("one/m.safetensors", "one", 1000);
    env.model_file("two/m.safetensors", "two", 1000);
    env.mlib(&[
        "-f",
        "a.yaml",
        "import",
        "one/m.safetensors",
        "--type",
        "loras",
        "--move",
    ])
    .success();
    assert!(!env.path("one/m.safetensors").exists());
    env.mlib(&["-f", "b.yaml", "gc", "--auto-approve"])
        .success()
        .stderr_has("Nothing to collect");
    env.mlib(&[
        "-f",
        "b.yaml",
        "import",
        "two/m.safetensors",
        "--type",
        "loras",
    ])
    .code(1)
    .stderr_has("the store already holds another model as loras/unknown/m")
    .stderr_has("Nothing was copied.");
    env.mlib(&["-f", "a.yaml", "apply", "--auto-approve"])
        .success();
    assert_eq!(
        crate::support::sha256(&std::fs::read(env.path("A/models/loras/m.safetensors")).unwrap()),
        crate::support::sha256(&crate::support::model_bytes("one", 1000))
    );
}

#[test]
fn import_keeps_a_sharded_set_and_a_model_with_its_companions_together() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    // A split GGUF whose second shard is still downloading: refused, nothing stored.
    env.model_file("downloads/qwen-7b-00001-of-00002.gguf", "q1", 100);
    env.mlib(&["import", "downloads", "--type", "llm"])
        .code(1)
        .stderr_has("is a set of 2 shards, but qwen-7b-00002-of-00002.gguf is missing");
    assert!(store_files(&env.path("store")).is_empty());

    env.model_file("downloads/qwen-7b-00002-of-00002.gguf", "q2", 100);
    sdxl_lora(&env, "downloads/detail [v2].safetensors");
    env.write("downloads/detail [v2].preview.png", "png");
    env.write("downloads/detail [v2].civitai.info", "{}");
    env.write("downloads/unrelated.png", "png");
    // Naming one shard imports the whole set.
    env.mlib(&[
        "import",
        "downloads/qwen-7b-00001-of-00002.gguf",
        "--type",
        "llm",
        "--move",
    ])
    .success()
    .stderr_has("2 files kept together in qwen-7b/");
    env.mlib(&["import", "downloads/detail [v2].safetensors", "--move"])
        .success()
        .stderr_has("3 files kept together in detail [v2]/");
    for gone in [
        "downloads/qwen-7b-00001-of-00002.gguf",
        "downloads/detail [v2].preview.png",
    ] {
        assert!(!env.path(gone).exists(), "{gone} was moved");
    }
    assert!(
        env.path("downloads/unrelated.png").exists(),
        "not the model's: left alone"
    );

    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(
        yaml.contains(r#"include: ["qwen-7b-00001-of-00002.gguf", "qwen-7b-00002-of-00002.gguf"]"#),
        "{yaml}"
    );
    assert!(yaml.contains(r#""detail [[]v2[]].preview.png""#), "{yaml}");
    env.mlib(&["plan"])
        .success()
        .stderr_has("Plan: 0 to add, 2 to link");
    env.mlib(&["apply", "--auto-approve"]).success();
    for link in [
        "ComfyUI/models/LLM/qwen-7b/qwen-7b-00001-of-00002.gguf",
        "ComfyUI/models/LLM/qwen-7b/qwen-7b-00002-of-00002.gguf",
        "ComfyUI/models/loras/detail [v2]/detail [v2].safetensors",
        "ComfyUI/models/loras/detail [v2]/detail [v2].preview.png",
        "ComfyUI/models/loras/detail [v2]/detail [v2].civitai.info",
    ] {
        assert!(env.path(link).is_file(), "{link}");
    }
    assert!(
        !env.path("ComfyUI/models/loras/detail [v2]/unrelated.png")
            .exists()
    );
}

#[test]
fn a_local_folder_source_takes_only_what_its_globs_select() {
    let env = TestEnv::new();
    env.model_file("dl/set/a-00001-of-00002.gguf", "a1", 10);
    env.model_file("dl/set/a-00002-of-00002.gguf", "a2", 10);
    env.write("dl/set/notes/readme.txt", "not part of it");
    env.model_file("dl/set/other.gguf", "other", 10);
    env.model_file("dl/lone.gguf", "lone", 10);
    Manifest::new()
        .model("a", "source: ./dl/set\ninclude: [\"a-*.gguf\"]\ntype: llm")
        .model(
            "lone",
            "source: ./dl/lone.gguf\nexclude: [\"*.txt\"]\ntype: llm",
        )
        .comfyui("")
        .write(&env);
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("model `lone`: include/exclude take files out of a folder");
    assert!(
        env.path("ComfyUI/models/LLM/set/a-00002-of-00002.gguf")
            .is_file()
    );
    assert!(!env.path("ComfyUI/models/LLM/set/other.gguf").exists());
    assert!(
        !env.path("ComfyUI/models/LLM/set/notes").exists(),
        "a folder with nothing taken is not made"
    );
    Manifest::new()
        .model("b", "source: ./dl/set\ninclude: [\"*.bin\"]\ntype: llm")
        .comfyui("")
        .write(&env);
    env.mlib(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("none its include/exclude globs take");
}

#[test]
fn a_file_from_the_huggingface_cache_is_imported_as_its_hf_source_and_locked() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    let commit = "0123456789abcdef0123456789abcdef01234567";
    let bytes = crate::support::model_bytes("vae", 3000);
    let oid = crate::support::sha256(&bytes);
    let repo = "hf-cache/models--madebyollin--sdxl-vae-fp16-fix";
    env.write(&format!("{repo}/blobs/{oid}"), &bytes);
    env.write(
        &format!("{repo}/blobs/{}", "f".repeat(64)),
        crate::support::model_bytes("damaged", 3000),
    );
    let snapshot = env.path(&format!("{repo}/snapshots/{commit}"));
    std::fs::create_dir_all(&snapshot).unwrap();
    std::os::unix::fs::symlink(
        format!("../../blobs/{oid}"),
        snapshot.join("sdxl.vae.safetensors"),
    )
    .unwrap();
    // A blob whose bytes are not its LFS oid is refused, and nothing is stored.
    std::os::unix::fs::symlink(
        format!("../../blobs/{}", "f".repeat(64)),
        snapshot.join("broken.safetensors"),
    )
    .unwrap();
    let run = |args: &[&str]| {
        crate::support::Run::from(
            env.command()
                .args(args)
                .env("HF_HUB_CACHE", env.path("nowhere"))
                .output()
                .unwrap(),
        )
    };
    run(&[
        "import",
        &snapshot.join("broken.safetensors").display().to_string(),
        "--type",
        "vae",
    ])
    .code(1)
    .stderr_has("sha256");
    assert!(store_files(&env.path("store")).is_empty());

    run(&[
        "import",
        &snapshot.join("sdxl.vae.safetensors").display().to_string(),
        "--type",
        "vae",
    ])
    .success()
    .stderr_has("+    source: \"hf://madebyollin/sdxl-vae-fp16-fix/sdxl.vae.safetensors\"")
    .stderr_has(&format!("+    revision: \"{commit}\""))
    .stderr_has(&format!("+    sha256: {oid}"));
    let lock = std::fs::read_to_string(env.path("models.lock")).unwrap();
    assert!(lock.contains(commit) && lock.contains(&oid), "{lock}");
    // Moving it out of the cache would leave the cache naming a file that is gone.
    let moved = snapshot.join("sdxl.vae.safetensors").display().to_string();
    run(&["import", &moved, "--type", "vae", "--move"])
        .code(1)
        .stderr_has("is a file of the HuggingFace cache: --move would leave")
        .stderr_has("Nothing was imported.");
    assert!(env.path(&format!("{repo}/blobs/{oid}")).is_file());
    assert!(snapshot.join("sdxl.vae.safetensors").exists());
    // The lock covers it and the store holds it: no network, no cache needed.
    run(&["apply", "--auto-approve", "--locked", "--offline"]).success();
    assert!(
        env.path("ComfyUI/models/vae/sdxl.vae.safetensors")
            .is_file()
    );
}

/// Found in review: two generic shard sets of one folder both wanted the folder's name, and
/// a selection changed after the first apply changed nothing.
#[test]
fn two_sets_of_one_folder_get_two_names_and_a_new_selection_is_copied_again() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    for name in [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "pytorch_model-00001-of-00002.bin",
        "pytorch_model-00002-of-00002.bin",
    ] {
        env.model_file(&format!("dl/flux/{name}"), name, 100);
    }
    env.mlib(&["import", "dl/flux", "--type", "checkpoints"])
        .success();
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(
        yaml.contains("file: \"flux\"") && yaml.contains("file: \"flux-2\""),
        "{yaml}"
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/checkpoints/flux-2/pytorch_model-00002-of-00002.bin")
            .is_file()
    );

    // A local folder model whose globs now take more: copied again, linked with it.
    env.model_file("dl/set/a-1.gguf", "a1", 10);
    env.model_file("dl/set/b-1.gguf", "b1", 10);
    Manifest::new()
        .model("s", "source: ./dl/set\ninclude: [\"a-*\"]\ntype: llm")
        .comfyui("")
        .write(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(!env.path("ComfyUI/models/LLM/set/b-1.gguf").exists());
    Manifest::new()
        .model("s", "source: ./dl/set\ninclude: [\"*.gguf\"]\ntype: llm")
        .comfyui("")
        .write(&env);
    env.mlib(&["plan", "--detailed-exitcode"]).code(2);
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("ComfyUI/models/LLM/set/b-1.gguf").is_file());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);

    // A file gone from the folder (an `import --move` killed half-way) never shrinks the
    // store's copy: it may be the only complete one.
    std::fs::remove_file(env.path("dl/set/a-1.gguf")).unwrap();
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    assert!(env.path("ComfyUI/models/LLM/set/a-1.gguf").is_file());
}

/// One file named twice (its folder and itself, or through a symlinked folder) is imported
/// once: no second entry whose source the first one's move takes away.
#[test]
fn a_file_named_twice_is_imported_and_moved_once() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    sdxl_lora(&env, "downloads/a.safetensors");
    std::os::unix::fs::symlink(env.path("downloads"), env.path("linked")).unwrap();
    env.mlib(&[
        "import",
        "downloads",
        "downloads/a.safetensors",
        "linked/a.safetensors",
        "--move",
    ])
    .success()
    .stderr_has("  moved a (")
    .stderr_has("Added `a` to models.yaml.");
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(!yaml.contains("a-2"), "{yaml}");
    env.mlib(&["plan"])
        .success()
        .stderr_has("Plan: 0 to add, 1 to link");
}

/// A move that fails leaves the file where it was and takes its entry out of the manifest
/// again (it would pin bytes the store does not have): the import can simply run again.
#[test]
fn a_failed_move_takes_its_entry_back_and_the_import_runs_again() {
    let env = TestEnv::new();
    Manifest::new().comfyui("").write(&env);
    sdxl_lora(&env, "downloads/a.safetensors");
    use std::os::unix::fs::PermissionsExt;
    let src = env.path("downloads/a.safetensors");
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o640)).unwrap();
    // Something in the way of the model's folder (a symlink to nowhere): installing fails
    // after the file moved.
    let in_the_way = env.path("store/loras/sdxl/a");
    std::fs::create_dir_all(in_the_way.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink("nowhere", &in_the_way).unwrap();
    let run = env.mlib(&["import", "downloads/a.safetensors", "--move"]);
    run.code(1).stderr_has("cannot move").stderr_has(
        "It is where it was, and models.yaml no longer names it: run the import again.",
    );
    assert!(src.is_file());
    assert_eq!(
        std::fs::metadata(&src).unwrap().permissions().mode() & 0o777,
        0o640,
        "its own mode again"
    );
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(!yaml.contains("a:"), "{yaml}");
    env.mlib(&["plan"]).success();

    std::fs::remove_file(&in_the_way).unwrap();
    env.mlib(&["import", "downloads/a.safetensors", "--move"])
        .success()
        .stderr_has("  moved a (");
    assert!(!src.exists());
    env.mlib(&["plan"])
        .success()
        .stderr_has("Plan: 0 to add, 1 to link");
}
