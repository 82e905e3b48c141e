//! Whole-folder links (`link: folder`, `link_folders:`): an app's models folder, or one
//! type's folder, is one link to the store's (flat layout), over an empty, a placeholder-only
//! or a non-empty folder, next to earlier backups.

use crate::assert_run;
use crate::support::TestEnv;

/// A flat store with one checkpoint and one LoRA, and a ComfyUI whose `app` lines follow.
fn manifest(env: &TestEnv, app: &str) {
    let ckpt = env.model_file("src/base.safetensors", "base", 6000);
    let lora = env.model_file("src/detail.safetensors", "detail", 5000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nlayout: flat\nmodels:\n  base:\n    source: ./src/base.safetensors\n    sha256: {ckpt}\n    type: checkpoints\n  detail:\n    source: ./src/detail.safetensors\n    sha256: {lora}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n{app}"
    ));
}

/// ComfyUI's models folder as a fresh clone has it (Comfy-Org/ComfyUI a125cd84).
fn fresh_clone_models(env: &TestEnv) {
    env.write("ComfyUI/models/checkpoints/put_checkpoints_here", "");
    env.write("ComfyUI/models/loras/put_loras_here", "");
    std::fs::create_dir_all(env.path("ComfyUI/models/vae")).unwrap();
}

#[test]
fn the_whole_models_folder_becomes_one_link_over_a_placeholder_only_folder() {
    let env = TestEnv::new();
    manifest(&env, "    link: folder\n");
    fresh_clone_models(&env);
    assert_run!(
        env,
        "folder_link_over_placeholders_plan",
        env.mlib(&["plan"])
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let models = env.path("ComfyUI/models");
    assert!(models.symlink_metadata().unwrap().is_symlink());
    assert_eq!(
        std::fs::canonicalize(&models).unwrap(),
        std::fs::canonicalize(env.path("store")).unwrap()
    );
    // The app sees the models where it looks for them, through the one link.
    assert!(
        env.path("ComfyUI/models/loras/detail.safetensors")
            .is_file()
    );
    assert!(
        env.path("ComfyUI/models/checkpoints/base.safetensors")
            .is_file()
    );
    assert!(
        !env.path("ComfyUI/models.backup").exists(),
        "placeholders are not kept"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    env.mlib(&["status"]).success();
    env.mlib(&["doctor"]).success();
}

#[test]
fn a_folder_with_content_is_moved_to_a_backup_that_never_replaces_an_earlier_one() {
    let env = TestEnv::new();
    manifest(&env, "    link: folder\n");
    fresh_clone_models(&env);
    env.write("ComfyUI/models/configs/v1-inference.yaml", "model: {}\n");
    env.write("ComfyUI/models.backup/old.txt", "an earlier backup");
    assert_run!(env, "folder_link_over_content_plan", env.mlib(&["plan"]));
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(env.path("ComfyUI/models.backup/old.txt")).unwrap(),
        "an earlier backup"
    );
    assert_eq!(
        std::fs::read_to_string(env.path("ComfyUI/models.backup.1/configs/v1-inference.yaml"))
            .unwrap(),
        "model: {}\n",
        "the person's file is kept, with the placeholders beside it"
    );
    assert!(
        env.path("ComfyUI/models.backup.1/loras/put_loras_here")
            .is_file()
    );
}

#[test]
fn over_nothing_and_with_mlibs_own_links_inside_the_folder_is_linked_and_is_idempotent() {
    let env = TestEnv::new();
    // First one link per model, as `auto` makes them.
    manifest(&env, "");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/loras/detail.safetensors")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    // Then the whole folder: mlib's own links go, the folders they leave are removed.
    manifest(&env, "    link: folder\n");
    let plan = env.mlib(&["plan"]);
    plan.success()
        .stderr_has("- unlink")
        .stderr_has("+ link     folder:*");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(!env.path("ComfyUI/models.backup").exists());
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes");

    // And back: the folder link is removed first, then the models are linked one by one.
    manifest(&env, "");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("run `mlib apply` again");
    assert!(!env.path("ComfyUI/models").exists());
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/loras/detail.safetensors")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(
        env.path("store/loras/detail.safetensors").is_file(),
        "the store keeps its files"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn one_types_folder_links_to_the_stores_and_other_types_keep_one_link_per_model() {
    let env = TestEnv::new();
    manifest(&env, "    link_folders: [loras]\n");
    fresh_clone_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let loras = env.path("ComfyUI/models/loras");
    assert!(loras.symlink_metadata().unwrap().is_symlink());
    assert!(
        env.path("ComfyUI/models/loras/detail.safetensors")
            .is_file()
    );
    let ckpt = env.path("ComfyUI/models/checkpoints/base.safetensors");
    assert!(ckpt.symlink_metadata().unwrap().is_symlink());
    assert!(
        env.path("ComfyUI/models/checkpoints/put_checkpoints_here")
            .is_file(),
        "other folders are left as they are"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);

    // A person's real folder where the link is (someone replaced mlib's link) is kept.
    std::fs::remove_file(&loras).unwrap();
    env.write("ComfyUI/models/loras/mine.safetensors", "my own lora");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read_to_string(env.path("ComfyUI/models/loras.backup/mine.safetensors")).unwrap(),
        "my own lora"
    );
    assert!(loras.symlink_metadata().unwrap().is_symlink());
}

#[test]
fn removing_the_app_unlinks_its_folder_link_and_never_the_store() {
    let env = TestEnv::new();
    manifest(&env, "    link: folder\n");
    env.mlib(&["apply", "--auto-approve"]).success();
    let ckpt = env.model_file("src/base.safetensors", "base", 6000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nlayout: flat\nmodels:\n  base:\n    source: ./src/base.safetensors\n    sha256: {ckpt}\n    type: checkpoints\napps: {{}}\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("ComfyUI/models").symlink_metadata().is_err());
    assert!(env.path("store/checkpoints/base.safetensors").is_file());
}

#[test]
fn a_foreign_link_or_file_where_the_folder_link_goes_is_a_conflict() {
    let env = TestEnv::new();
    manifest(&env, "    link: folder\n");
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    std::fs::create_dir_all(env.path("ComfyUI")).unwrap();
    std::os::unix::fs::symlink(env.path("elsewhere"), env.path("ComfyUI/models")).unwrap();
    env.mlib(&["plan"])
        .success()
        .stderr_has("a symlink mlib did not make is in the way");
    env.mlib(&["apply", "--auto-approve"]).code(1);
    assert_eq!(
        std::fs::read_link(env.path("ComfyUI/models")).unwrap(),
        env.path("elsewhere")
    );
}

#[test]
fn folder_links_need_the_flat_layout_and_folders_named_as_the_store_names_them() {
    let env = TestEnv::new();
    let sha = env.model_file("src/detail.safetensors", "detail", 5000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  detail:\n    source: ./src/detail.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    link: folder\n"
    ));
    assert_run!(env, "folder_link_nested_store", env.mlib(&["validate"]));

    // Forge keeps LoRAs in `models/Lora`: its whole models folder cannot be the store's.
    env.manifest(&format!(
        "version: 1\nstore: ./store\nlayout: flat\nmodels:\n  detail:\n    source: ./src/detail.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  forge:\n    preset: forge\n    root: ./forge\n    link: folder\n    link_folders: [loras, nope]\n"
    ));
    assert_run!(env, "folder_link_forge_mismatch", env.mlib(&["validate"]));
}

#[test]
fn forges_lora_folder_links_to_the_stores_loras() {
    let env = TestEnv::new();
    let sha = env.model_file("src/detail.safetensors", "detail", 5000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nlayout: flat\nmodels:\n  detail:\n    source: ./src/detail.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  forge:\n    preset: forge\n    root: ./forge\n    link_folders: [loras]\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("forge/models/Lora")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(env.path("forge/models/Lora/detail.safetensors").is_file());
}

#[test]
fn ollamas_models_folder_is_served_from_the_store_and_what_it_had_is_kept() {
    let env = TestEnv::new();
    env.write("home/.ollama/models/blobs/sha256-abc", "a pulled layer");
    env.manifest(
        "version: 1\nstore: ./store\nlayout: flat\nmodels: {}\napps:\n  ollama:\n    root: ./home/.ollama\n    folders: { ollama: models }\n    link_folders: [ollama]\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let models = env.path("home/.ollama/models");
    assert_eq!(
        std::fs::canonicalize(&models).unwrap(),
        std::fs::canonicalize(env.path("store/ollama")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(env.path("home/.ollama/models.backup/blobs/sha256-abc")).unwrap(),
        "a pulled layer"
    );
    // What Ollama pulls afterwards lands in the store, and gc keeps what mlib did not put there.
    env.write("home/.ollama/models/blobs/sha256-def", "another layer");
    assert!(env.path("store/ollama/blobs/sha256-def").is_file());
    env.mlib(&["gc", "--auto-approve"]).success();
    assert!(env.path("store/ollama/blobs/sha256-def").is_file());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}
