//! The no-op fast path: the manifest read by the block-style reader, and the store reads that
//! start before the manifest is parsed. Both must be invisible: the same plans, the same
//! errors.

use crate::apply::{manifest_yaml, two_models};
use crate::support::{TestEnv, tree};

#[test]
fn an_edit_is_seen_at_once_and_nothing_is_kept_between_runs() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes");
    env.manifest(&manifest_yaml(&"0".repeat(64), true, ""));
    env.mlib(&["plan", "--detailed-exitcode"]).code(2);
    // Every run parses the manifest: there is no cache folder to go stale.
    assert!(!env.path("home/.cache").exists());
}

#[test]
fn a_changed_variable_is_seen_at_once() {
    let env = TestEnv::new();
    env.model_file("src/a.safetensors", "a", 1024);
    env.manifest(
        "version: 1\nstore: ${STORE_DIR}\nmodels:\n  a:\n    source: ./src/a.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    let run = |store: &str, args: &[&str]| {
        let out = env
            .command()
            .env("STORE_DIR", env.path(store))
            .args(args)
            .output()
            .unwrap();
        crate::support::Run::from(out)
    };
    run("store1", &["apply", "--auto-approve"]).success();
    run("store1", &["plan", "--detailed-exitcode"]).code(0);
    // Same bytes, another value of the variable: another store, which has nothing yet.
    run("store2", &["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("Plan: 1 to add");
    assert!(!env.path("store2").exists(), "plan creates nothing");
}

#[test]
fn errors_are_reported_every_time() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ./store\nmodels:\n  a:\n    source: ./a.safetensors\n    type: loras\n    colour: red\n");
    for _ in 0..2 {
        env.mlib(&["plan"]).code(1).stderr_has("models.yaml:7:5");
    }
}

#[test]
fn a_store_line_the_early_reads_cannot_follow_still_plans_right() {
    // `store:` on the next line is valid YAML that the store-path guess does not read: the
    // command must fall back to reading the store after parsing, with the same result.
    let env = TestEnv::new();
    let (base_sha, _) = two_models(&env);
    let yaml = manifest_yaml(&base_sha, true, "").replace("store: ./store", "store:\n  ./store");
    env.manifest(&yaml);
    env.mlib(&["apply", "--auto-approve"]).success();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes");
    std::fs::remove_file(env.path("ComfyUI/models/loras/detail_lora.safetensors")).unwrap();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("1 to link");
}

#[test]
fn a_store_guess_that_is_wrong_is_thrown_away() {
    // A plain scalar may go on over the next line: `store: ./store` followed by an indented
    // `2` is the store `./store 2`. The guess reads `./store`, which exists and has a
    // registry; its reads must not leak into the plan of the store the manifest names.
    let env = TestEnv::new();
    let (base_sha, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let yaml = manifest_yaml(&base_sha, true, "").replace("store: ./store", "store: ./store\n  2");
    env.manifest(&yaml);
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("Plan: 2 to add");
    // The links in place point into the other store: conflicts, left alone.
    env.mlib(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("a symlink mlib did not make is in the way (-> ../../../store/")
        .stderr_has("Apply finished with problems: 2 done, 0 failed, 4 refused.");
    assert!(env.path("store 2/checkpoints/sdxl/base").is_dir());
}

#[test]
fn apply_reads_early_only_under_the_lock() {
    // A link deleted while apply waits for the lock must be seen: apply reads the store only
    // once it holds the lock (a snapshot taken before would say "No changes").
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let holder = mlib_registry::ApplyLock::acquire(
        &env.path("store/.mlib"),
        "test holder",
        std::time::Duration::ZERO,
        &mut |_| {},
    )
    .unwrap();
    let child = env
        .command()
        .args(["apply", "--auto-approve", "--lock-timeout", "60"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    let link = env.path("ComfyUI/models/loras/detail_lora.safetensors");
    std::fs::remove_file(&link).unwrap();
    drop(holder);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 to link"), "{stderr}");
    assert!(link.symlink_metadata().is_ok(), "relinked");
}

#[test]
fn the_early_reads_are_used_when_they_can_be() {
    let env = TestEnv::new();
    two_models(&env);
    let early = "Read the store and its registry while the manifest was parsed.";
    // No registry yet: nothing to read early.
    let first = env.mlib(&["-v", "apply", "--auto-approve"]);
    first.success();
    assert!(!first.stderr.contains(early), "{first}");
    env.mlib(&["-v", "plan"]).success().stderr_has(early);
    env.mlib(&["-v", "apply", "--auto-approve"])
        .success()
        .stderr_has(early);
}

#[test]
fn two_apps_sharing_a_folder_cannot_both_have_a_path() {
    // Two apps rooted at the same place, each given a different model with the same file
    // name: the first app gets the path, the second gets a conflict that says why.
    let env = TestEnv::new();
    env.model_file("src/x/model.safetensors", "x", 1000);
    env.model_file("src/y/model.safetensors", "y", 1000);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  x:\n    source: ./src/x/model.safetensors\n    type: loras\n  y:\n    source: ./src/y/model.safetensors\n    type: loras\napps:\n  a:\n    preset: comfyui\n    root: ./ComfyUI\n    models: [x]\n  b:\n    preset: comfyui\n    root: ./ComfyUI\n    models: [y]\n",
    );
    let plan = env.mlib(&["plan", "--detailed-exitcode"]);
    plan.code(2)
        .stderr_has("app `a` of this manifest links the same path");
    assert!(plan.stderr.contains("+ link"), "{plan}");
    env.mlib(&["apply", "--auto-approve"])
        .code(1)
        .stderr_has("1 conflict left untouched");
    let link = env.path("ComfyUI/models/loras/model.safetensors");
    assert_eq!(
        std::fs::read(&link).unwrap(),
        crate::support::model_bytes("x", 1000),
        "the first app's model"
    );
}

#[test]
fn a_manifest_with_errors_leaves_the_store_as_it_was() {
    let env = TestEnv::new();
    let (base_sha, _) = two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let before = tree(&env.path("store"));
    let bad =
        manifest_yaml(&base_sha, true, "").replace("type: loras", "type: loras\n    colour: red");
    env.manifest(&bad);
    env.mlib(&["apply", "--auto-approve"]).code(1);
    env.mlib(&["plan"]).code(1);
    assert_eq!(tree(&env.path("store")), before);
}

/// A model pinned by sha256 is judged by its hash: while the index vouches for the store
/// copy, its source is not looked at (a no-op plan of pinned models makes no `stat` of their
/// sources), so a source drive that is gone changes nothing. Once the store copy changes,
/// the ordinary path runs again: the copy is hashed, found damaged, and the missing source
/// is an error, as it always was.
#[test]
fn a_pinned_model_whose_source_is_gone_stays_as_it_is() {
    let env = TestEnv::new();
    two_models(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(env.path("src/sdxl_base.safetensors")).unwrap();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes");

    // The message says what is wrong with the store's copy, not that there is none.
    crate::integrity::flip_byte(&env.path("store/checkpoints/sdxl/base/sdxl_base.safetensors"));
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(1)
        .stderr_has("its source")
        .stderr_has("does not exist, and the store's copy is damaged");
    // A file of it gone: incomplete. The model's folder gone: the store does not have it.
    std::fs::remove_file(env.path("store/checkpoints/sdxl/base/sdxl_base.safetensors")).unwrap();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(1)
        .stderr_has("does not exist, and the store's copy is incomplete");
    std::fs::remove_dir_all(env.path("store/checkpoints/sdxl/base")).unwrap();
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(1)
        .stderr_has("does not exist, and the store does not have the model");
}
