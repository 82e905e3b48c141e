//! Whose a link is, in the cases that tripped earlier versions: a link of another environment
//! removed by a user, the same environment under another identity, copies that went stale
//! through another environment, a user's files inside a copied folder, hard links whose
//! bytes changed while another environment healed its own.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{Run, TestEnv};

fn one_lora(env: &TestEnv, file: &str, app_root: &str, link: &str) {
    env.write(
        file,
        format!(
            "version: 1\nstore: ./store\nmodels:\n  lora:\n    source: ./src/lora.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: {app_root}\n    link: {link}\n"
        ),
    );
}

#[test]
fn a_removed_link_of_another_environment_is_not_taken_from_it() {
    let env = TestEnv::new();
    env.model_file("src/lora.safetensors", "lora", 4096);
    one_lora(&env, "a.yaml", "./ComfyUI", "symlink");
    one_lora(&env, "b.yaml", "./ComfyUI", "symlink");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    std::fs::remove_file(env.path("ComfyUI/models/loras/lora.safetensors")).unwrap();
    env.mlib(&["apply", "--auto-approve", "-f", "b.yaml"])
        .code(1)
        .stderr_has(
            "comfyui: models/loras/lora.safetensors: already linked by another environment",
        );
    assert!(!env.path("ComfyUI/models/loras/lora.safetensors").exists());
    // Its own environment makes it again.
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    env.mlib(&["plan", "--detailed-exitcode", "-f", "a.yaml"])
        .success();
}

#[test]
fn the_same_environment_under_another_identity_takes_its_links_over() {
    let env = TestEnv::new();
    env.model_file("src/lora.safetensors", "lora", 4096);
    env.manifest(
        "version: 1\nstore: ${MODELS_DIR:-./store}\nmodels:\n  lora:\n    source: ./src/lora.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    // The variable now says what its default said: another identity, the same links.
    let store = env.path("store");
    let with_var = |args: &[&str]| {
        Run::from(
            env.command()
                .env("MODELS_DIR", &store)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    with_var(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes.");
    with_var(&["apply", "--auto-approve"]).success();
    // A name added to the manifest: the same again.
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write("models.yaml", format!("environment: home\n{yaml}"));
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes.");
    // The manifest moved: its old path is gone, so its links are this one's.
    std::fs::create_dir_all(env.path("repo")).unwrap();
    let moved = std::fs::read_to_string(env.path("models.yaml"))
        .unwrap()
        .replace("environment: home\n", "")
        .replace("./", "../");
    env.write("repo/models.yaml", moved);
    std::fs::remove_file(env.path("models.yaml")).unwrap();
    env.mlib(&["apply", "--auto-approve", "-f", "repo/models.yaml"])
        .success()
        .stderr_has("No changes.");
    // Dropping the model now unlinks it: the link is the new identity's.
    let yaml = std::fs::read_to_string(env.path("repo/models.yaml")).unwrap();
    env.write(
        "repo/models.yaml",
        yaml.replace(
            "  lora:\n    source: ../src/lora.safetensors\n    type: loras\n",
            "",
        ),
    );
    env.mlib(&["apply", "--auto-approve", "-f", "repo/models.yaml"])
        .success()
        .stderr_has("- unlink   lora comfyui: models/loras/lora.safetensors");
}

#[test]
fn a_copy_goes_stale_when_another_environment_replaces_the_model() {
    let env = TestEnv::new();
    env.model_file("src/lora.safetensors", "lora", 4096);
    one_lora(&env, "a.yaml", "./a", "copy");
    one_lora(&env, "b.yaml", "./b", "copy");
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    env.mlib(&["apply", "--auto-approve", "-f", "b.yaml"])
        .success();
    // A new version of the source; only a.yaml is applied.
    env.model_file("src/lora.safetensors", "lora v2", 5000);
    env.mlib(&["apply", "--auto-approve", "-f", "a.yaml"])
        .success();
    env.mlib(&["plan", "--detailed-exitcode", "-f", "b.yaml"])
        .code(2)
        .stderr_has("~ relink   lora comfyui: models/loras/lora.safetensors");
    env.mlib(&["apply", "--auto-approve", "-f", "b.yaml"])
        .success();
    assert_eq!(
        std::fs::read(env.path("b/models/loras/lora.safetensors")).unwrap(),
        std::fs::read(env.path("src/lora.safetensors")).unwrap()
    );
}

#[test]
fn files_a_user_put_in_a_copied_folder_are_never_removed() {
    let env = TestEnv::new();
    env.write("src/sdxl-diff/unet/model.safetensors", "weights");
    env.write("src/sdxl-diff/model_index.json", "{}");
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  diff:\n    source: ./src/sdxl-diff\n    type: diffusers\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    link: copy\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let copy = env.path("ComfyUI/models/diffusers/sdxl-diff");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::set_permissions(copy.join("unet"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(copy.join("unet/MY-NOTES.txt"), "mine").unwrap();
    env.mlib(&["status"])
        .code(1)
        .stderr_has("was modified since mlib copied it");
    // The model is dropped: the folder stays, with the notes.
    env.write(
        "models.yaml",
        "version: 1\nstore: ./store\nmodels: {}\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    link: copy\n",
    );
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("it is no longer wanted, but mlib leaves it in place");
    assert_eq!(
        std::fs::read(copy.join("unet/MY-NOTES.txt")).unwrap(),
        b"mine"
    );
}

#[test]
fn a_hard_link_to_changed_bytes_is_healed_in_every_environment() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 8192);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\napps:\n  forge:\n    preset: forge\n    root: ./users/${WS_USER}/forge\n    link: hardlink\n",
    );
    let as_user = |user: &str, args: &[&str]| {
        Run::from(
            env.command()
                .env("WS_USER", user)
                .args(args)
                .output()
                .unwrap(),
        )
    };
    as_user("ann", &["apply", "--auto-approve"]).success();
    as_user("bob", &["apply", "--auto-approve"]).success();
    let ann = env.path("users/ann/forge/models/Stable-diffusion/base.safetensors");
    let bob = env.path("users/bob/forge/models/Stable-diffusion/base.safetensors");
    // Changed through ann's hard link: the store file and bob's link are the same bytes.
    let mut bytes = std::fs::read(&ann).unwrap();
    bytes[7] ^= 1;
    std::fs::set_permissions(&ann, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(&ann, &bytes).unwrap();
    as_user("ann", &["apply", "--auto-approve"]).success();
    let good = std::fs::read(env.path("src/base.safetensors")).unwrap();
    assert_eq!(std::fs::read(&ann).unwrap(), good);
    // bob's link still holds the changed bytes, now kept in quarantine too: healed as well.
    as_user("bob", &["plan"])
        .success()
        .stderr_has("~ relink   base forge: models/Stable-diffusion/base.safetensors (its changed bytes are kept in quarantine)");
    as_user("bob", &["apply", "--auto-approve"]).success();
    assert_eq!(std::fs::read(&bob).unwrap(), good);
    let stored = env.path("store/checkpoints/unknown/base/base.safetensors");
    assert_eq!(
        bob.metadata().unwrap().ino(),
        stored.metadata().unwrap().ino()
    );
    as_user("bob", &["plan", "--detailed-exitcode"]).success();
}

#[test]
fn an_empty_env_is_no_name_and_a_bad_one_is_refused() {
    let env = TestEnv::new();
    env.model_file("src/lora.safetensors", "lora", 4096);
    one_lora(&env, "models.yaml", "./ComfyUI", "symlink");
    Run::from(
        env.command()
            .env("MLIB_ENV", "")
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap(),
    )
    .success();
    env.mlib(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes.");
    env.mlib(&["plan", "--env", "a/b"])
        .code(1)
        .stderr_has("error: --env / MLIB_ENV: the environment name `a/b` contains `/`");
}
