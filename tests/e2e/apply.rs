//! The main loop: fresh apply, idempotence, removing and remapping, moving the tree,
//! losing the registry.

use std::os::unix::fs::PermissionsExt;

use crate::support::{TestEnv, tree};

/// Two models (a checkpoint pinned by sha256, an unpinned LoRA) linked into ComfyUI and Forge.
pub fn two_models(env: &TestEnv) -> (String, String) {
    let base = env.model_file("src/sdxl_base.safetensors", "base", 4096);
    let lora = env.model_file("src/detail_lora.safetensors", "lora", 2048);
    env.manifest(&manifest_yaml(&base, true, ""));
    (base, lora)
}

pub fn manifest_yaml(base_sha: &str, with_lora: bool, comfy_extra: &str) -> String {
    let lora = if with_lora {
        "  detail:\n    source: ./src/detail_lora.safetensors\n    type: loras\n    family: sdxl\n"
    } else {
        ""
    };
    format!(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/sdxl_base.safetensors\n    sha256: {base_sha}\n    type: checkpoints\n    family: sdxl\n{lora}apps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n{comfy_extra}  forge:\n    preset: forge\n    root: ./forge\n"
    )
}

#[test]
fn fresh_apply_stores_once_and_links_into_every_app() {
    let env = TestEnv::new();
    let (base_sha, _) = two_models(&env);

    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("adding base from ./src/sdxl_base.safetensors");

    let stored = env.path("store/checkpoints/sdxl/base/sdxl_base.safetensors");
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        std::fs::read(env.path("src/sdxl_base.safetensors")).unwrap()
    );
    assert_eq!(
        stored.metadata().unwrap().permissions().mode() & 0o222,
        0,
        "store files are read-only"
    );
    let metadata: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.path("store/checkpoints/sdxl/base/metadata.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(metadata["files"][0]["sha256"], base_sha.as_str());
    assert_eq!(metadata["files"][0]["blake3"].as_str().unwrap().len(), 64);

    for link in [
        "ComfyUI/models/checkpoints/sdxl_base.safetensors",
        "forge/models/Stable-diffusion/sdxl_base.safetensors",
    ] {
        let path = env.path(link);
        let content = std::fs::read_link(&path).unwrap();
        assert!(
            content.is_relative(),
            "{link} should be a relative symlink, is {}",
            content.display()
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            std::fs::read(&stored).unwrap()
        );
    }
    assert!(
        env.path("ComfyUI/models/loras/detail_lora.safetensors")
            .exists()
    );
    assert!(
        env.path("forge/models/Lora/detail_lora.safetensors")
            .exists()
    );
}

#[test]
fn plan_changes_nothing_and_reports_changes_with_exit_code_2() {
    let env = TestEnv::new();
    two_models(&env);
    let before = tree(&env.root);

    let run = env.mlib(&["plan", "--detailed-exitcode"]);
    run.code(2)
        .stderr_has("+ add")
        // Local sources as they are written in the manifest, not as absolute paths.
        .stderr_has("from ./src/sdxl_base.safetensors, 4.0 KiB")
        .stderr_has("+ link")
        .stderr_has("Plan: 2 to add (6.0 KiB), 4 to link, 0 to relink, 0 to unlink.");
    assert_eq!(tree(&env.root), before, "plan must not write anything");
}

#[test]
fn second_apply_is_a_no_op_and_plan_says_no_changes() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let after_first = tree(&env.root);

    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes.");
    assert_eq!(tree(&env.root), after_first);
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes. Store and apps match models.yaml.");
}

#[test]
fn removing_a_model_unlinks_it_everywhere_but_keeps_the_store() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();

    env.manifest(&manifest_yaml(&base, false, ""));
    env.mlib(&["plan"])
        .success()
        .stderr_has("- unlink")
        .stderr_has("2 to unlink");
    env.mlib(&["apply", "--auto-approve"]).success();

    assert!(
        env.path("ComfyUI/models/loras/detail_lora.safetensors")
            .symlink_metadata()
            .is_err()
    );
    assert!(
        env.path("forge/models/Lora/detail_lora.safetensors")
            .symlink_metadata()
            .is_err()
    );
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
    assert!(
        env.path("store/loras/sdxl/detail/detail_lora.safetensors")
            .exists(),
        "unlinking never deletes store files"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn removing_an_app_unlinks_what_mlib_linked_for_it() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let yaml = manifest_yaml(&base, true, "");
    let without_forge = yaml.split("  forge:").next().unwrap().to_string();
    env.manifest(&without_forge);

    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("forge/models/Stable-diffusion/sdxl_base.safetensors")
            .symlink_metadata()
            .is_err()
    );
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
}

#[test]
fn changing_a_folder_mapping_relinks() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();

    env.manifest(&manifest_yaml(
        &base,
        true,
        "    folders:\n      loras: models/my_loras\n",
    ));
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("~ relink")
        .stderr_has("1 to relink");
    env.mlib(&["apply", "--auto-approve"]).success();

    assert!(
        env.path("ComfyUI/models/loras/detail_lora.safetensors")
            .symlink_metadata()
            .is_err()
    );
    let moved = env.path("ComfyUI/models/my_loras/detail_lora.safetensors");
    assert!(std::fs::read_link(&moved).unwrap().is_relative());
    assert!(moved.exists());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn relative_links_resolve_after_the_whole_tree_moves() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let _ = base;

    let moved = env.root.with_file_name(format!(
        "{}-moved",
        env.root.file_name().unwrap().to_string_lossy()
    ));
    std::fs::rename(&env.root, &moved).unwrap();
    let result = std::panic::catch_unwind(|| {
        let link = moved.join("ComfyUI/models/checkpoints/sdxl_base.safetensors");
        assert_eq!(
            std::fs::read(&link).unwrap(),
            std::fs::read(moved.join("src/sdxl_base.safetensors")).unwrap()
        );
        assert!(
            moved
                .join("forge/models/Lora/detail_lora.safetensors")
                .exists()
        );
    });
    std::fs::rename(&moved, &env.root).unwrap();
    result.unwrap();
}

#[test]
fn deleted_registry_is_rebuilt_by_scan_and_plan_shows_no_changes() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(env.path(&format!("store/.mlib/registry.db{suffix}")));
    }

    env.mlib(&["scan"])
        .success()
        .stderr_has("Indexed 2 files of 2 models");
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes.");

    // The links are known again, so removing a model still unlinks it.
    let base =
        crate::support::sha256(&std::fs::read(env.path("src/sdxl_base.safetensors")).unwrap());
    env.manifest(&manifest_yaml(&base, false, ""));
    env.mlib(&["plan"]).success().stderr_has("2 to unlink");
}

#[test]
fn folder_models_are_stored_and_linked_whole() {
    let env = TestEnv::new();
    env.model_file(
        "src/tiny-pipe/unet/diffusion_pytorch_model.safetensors",
        "unet",
        1000,
    );
    env.write("src/tiny-pipe/model_index.json", "{}");
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  pipe:\n    source: ./src/tiny-pipe\n    type: diffusers\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let link = env.path("ComfyUI/models/diffusers/tiny-pipe");
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(
        link.join("unet/diffusion_pytorch_model.safetensors")
            .is_file()
    );
    assert!(link.join("model_index.json").is_file());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn apply_without_a_terminal_needs_approval() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply"]).code(1).stderr_has("--auto-approve");
    assert!(!env.path("store").exists());
}

#[test]
fn json_events_start_with_a_version_message() {
    let env = TestEnv::new();
    two_models(&env);
    let run = env.mlib(&["plan", "--json"]);
    run.success();
    let events = run.events();
    assert_eq!(events[0]["type"], "version");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "planned_change" && e["change"]["action"] == "link")
    );
    let summary = events.last().unwrap();
    assert_eq!(summary["type"], "change_summary");
    assert_eq!(summary["summary"]["link"], 4);
    assert!(
        run.stderr.is_empty(),
        "JSON mode keeps stderr quiet: {}",
        run.stderr
    );
}

#[test]
fn hash_mismatch_leaves_nothing_in_the_store() {
    let env = TestEnv::new();
    env.model_file("src/bad.safetensors", "bad", 3000);
    let wrong = "0".repeat(64);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  bad:\n    source: ./src/bad.safetensors\n    sha256: {wrong}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
    let run = env.mlib(&["apply", "--auto-approve"]);
    run.code(1).stderr_has(&wrong);
    let stored = crate::support::store_files(&env.path("store"));
    assert!(stored.is_empty(), "nothing may reach the store: {stored:?}");
    assert!(
        env.path("ComfyUI/models/loras/bad.safetensors")
            .symlink_metadata()
            .is_err()
    );
}

/// A file of a few MiB goes into the store through the copy's writer thread, with direct I/O
/// (the default) and through the page cache (`MLIB_DIRECT_IO=0`): the same bytes either way,
/// verified against the pinned sha256, with a tail that is not a whole 4 KiB block.
#[test]
fn a_large_local_file_is_stored_whole_with_and_without_direct_io() {
    for direct_io in ["1", "0"] {
        let env = TestEnv::new();
        let size = (3 << 20) + 12_345;
        let sha = env.model_file("src/big.safetensors", "big", size);
        env.manifest(&format!(
            "version: 1\nstore: ./store\nmodels:\n  big:\n    source: ./src/big.safetensors\n    sha256: {sha}\n    type: checkpoints\n    family: sdxl\n"
        ));
        let out = env
            .command()
            .env("MLIB_DIRECT_IO", direct_io)
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap();
        crate::support::Run::from(out).success();
        let stored = std::fs::read(env.path("store/checkpoints/sdxl/big/big.safetensors")).unwrap();
        assert_eq!(stored.len(), size, "MLIB_DIRECT_IO={direct_io}");
        assert!(
            stored == crate::support::model_bytes("big", size),
            "MLIB_DIRECT_IO={direct_io}: the stored bytes differ"
        );
        env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    }
}
