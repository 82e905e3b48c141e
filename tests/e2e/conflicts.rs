//! Never lose user data: what is in a link's way is reported, never replaced, unless it is
//! provably identical (`--adopt`).

use crate::apply::two_models;
use crate::support::{TestEnv, model_bytes};

#[test]
fn a_users_file_in_the_way_is_a_conflict_and_stays_byte_for_byte() {
    let env = TestEnv::new();
    two_models(&env);
    let theirs = model_bytes("someone else's lora", 1234);
    env.write("ComfyUI/models/loras/detail_lora.safetensors", &theirs);

    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("! conflict")
        .stderr_has("1 conflict");
    let run = env.mlib(&["apply", "--auto-approve"]);
    run.code(1).stderr_has("conflict");

    let path = env.path("ComfyUI/models/loras/detail_lora.safetensors");
    assert!(!path.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&path).unwrap(), theirs);
    // Everything else was still applied.
    assert!(
        env.path("forge/models/Lora/detail_lora.safetensors")
            .exists()
    );
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
}

#[test]
fn adopt_refuses_a_different_file() {
    let env = TestEnv::new();
    two_models(&env);
    let theirs = model_bytes("different", 4096);
    env.write("ComfyUI/models/checkpoints/sdxl_base.safetensors", &theirs);
    env.mlib(&["apply", "--auto-approve", "--adopt"])
        .code(1)
        .stderr_has("differs from the model");
    assert_eq!(
        std::fs::read(env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")).unwrap(),
        theirs
    );
}

#[test]
fn adopt_replaces_an_identical_file_by_a_link() {
    let env = TestEnv::new();
    two_models(&env);
    let original = std::fs::read(env.path("src/sdxl_base.safetensors")).unwrap();
    env.write(
        "ComfyUI/models/checkpoints/sdxl_base.safetensors",
        &original,
    );

    env.mlib(&["plan", "--adopt"])
        .success()
        .stderr_has("+ adopt");
    env.mlib(&["apply", "--auto-approve", "--adopt"]).success();

    let path = env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors");
    assert!(path.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&path).unwrap(), original);
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

/// On the store's filesystem the user's identical file becomes the store's copy by rename:
/// no byte copied, the same inode, and plan and apply say "moved".
#[test]
fn adopt_moves_an_identical_file_into_the_store_on_one_filesystem() {
    use std::os::unix::fs::MetadataExt;
    let env = TestEnv::new();
    two_models(&env);
    let original = std::fs::read(env.path("src/sdxl_base.safetensors")).unwrap();
    let theirs = env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors");
    env.write(
        "ComfyUI/models/checkpoints/sdxl_base.safetensors",
        &original,
    );
    let inode = std::fs::metadata(&theirs).unwrap().ino();

    crate::assert_run!(env, "plan_adopt_moves", env.mlib(&["plan", "--adopt"]));
    let json = env.mlib(&["--json", "plan", "--adopt"]);
    json.success();
    assert!(json.stdout.contains(r#""how":"moved""#), "{json}");
    env.mlib(&["apply", "--auto-approve", "--adopt"])
        .success()
        .stderr_has("comfyui: models/checkpoints/sdxl_base.safetensors: moved into the store");

    let stored = env.path("store/checkpoints/sdxl/base/sdxl_base.safetensors");
    assert_eq!(
        std::fs::metadata(&stored).unwrap().ino(),
        inode,
        "renamed, not copied"
    );
    assert!(theirs.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&theirs).unwrap(), original);
    assert!(
        env.path("src/sdxl_base.safetensors").is_file(),
        "the source is left alone"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_link_someone_replaced_is_not_removed() {
    let env = TestEnv::new();
    let (base, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    // The user swaps mlib's link for a file of their own.
    let path = env.path("forge/models/Lora/detail_lora.safetensors");
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, b"my own file").unwrap();

    env.manifest(&crate::apply::manifest_yaml(&base, false, ""));
    env.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(std::fs::read(&path).unwrap(), b"my own file");
    assert!(
        env.path("ComfyUI/models/loras/detail_lora.safetensors")
            .symlink_metadata()
            .is_err()
    );
}

#[test]
fn a_deleted_link_is_drift_and_is_made_again() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")).unwrap();

    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("Drift since the last apply:")
        .stderr_has("was removed since mlib linked it");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/checkpoints/sdxl_base.safetensors")
            .exists()
    );
}
