//! Link modes, layouts and app shapes beyond the default relative symlink.

use std::os::unix::fs::MetadataExt;

use crate::support::{Manifest, TestEnv};

/// One pinned SDXL LoRA and a ComfyUI with these keys; returns its sha256.
fn one_lora(env: &TestEnv, app: &str, top: &str) -> String {
    let sha = env.model_file("src/lora.safetensors", "lora", 5000);
    Manifest::new()
        .top(top)
        .model(
            "lora",
            &format!("source: ./src/lora.safetensors\nsha256: {sha}\ntype: loras\nfamily: sdxl"),
        )
        .comfyui(app)
        .write(env);
    sha
}

#[test]
fn hardlink_mode_shares_the_inode_and_is_idempotent() {
    let env = TestEnv::new();
    one_lora(&env, "link: hardlink", "");
    env.mlib(&["apply", "--auto-approve"]).success();
    let link = env.path("ComfyUI/models/loras/lora.safetensors");
    let stored = env.path("store/loras/sdxl/lora/lora.safetensors");
    assert!(!link.symlink_metadata().unwrap().file_type().is_symlink());
    assert_eq!(
        link.metadata().unwrap().ino(),
        stored.metadata().unwrap().ino()
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn copy_mode_copies_and_switching_mode_relinks() {
    let env = TestEnv::new();
    let sha = one_lora(&env, "link: copy", "");
    env.mlib(&["apply", "--auto-approve"]).success();
    let link = env.path("ComfyUI/models/loras/lora.safetensors");
    let stored = env.path("store/loras/sdxl/lora/lora.safetensors");
    assert_ne!(
        link.metadata().unwrap().ino(),
        stored.metadata().unwrap().ino()
    );
    assert_eq!(crate::support::sha256(&std::fs::read(&link).unwrap()), sha);
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);

    // Switching the app to symlinks replaces mlib's own copy by a link.
    one_lora(&env, "link: symlink", "");
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("~ relink");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
}

#[test]
fn across_filesystems_auto_uses_absolute_symlinks_with_a_warning() {
    let shm = std::path::Path::new("/dev/shm");
    let same_fs = shm
        .metadata()
        .ok()
        .zip(std::env::temp_dir().metadata().ok())
        .is_none_or(|(a, b)| a.dev() == b.dev());
    if same_fs {
        eprintln!("skipped: /dev/shm is not a separate filesystem here");
        return;
    }
    let env = TestEnv::new();
    let app = tempfile::tempdir_in(shm).unwrap();
    let sha = env.model_file("src/lora.safetensors", "lora", 5000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  lora:\n    source: ./src/lora.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: {}\n",
        app.path().display()
    ));
    // Inside a sandbox the links name the store as it is seen in there: the plan says so.
    crate::support::Run::from(
        env.command()
            .args(["plan"])
            .env("FLATPAK_ID", "org.example.Comfy")
            .output()
            .unwrap(),
    )
    .success()
    .stderr_has("mlib runs inside Flatpak, so they name the store as");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("absolute symlinks");
    let link = app.path().join("models/loras/lora.safetensors");
    let content = std::fs::read_link(&link).unwrap();
    assert!(content.is_absolute(), "{}", content.display());
    assert_eq!(crate::support::sha256(&std::fs::read(&link).unwrap()), sha);
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_hardlink_app_on_another_filesystem_is_a_plan_error_with_a_hint() {
    // A hard link cannot cross filesystems. `link: hardlink` is asked for explicitly (the
    // app's files should survive the store going away), so a quiet fallback to symlinks would
    // not be what was asked: the plan refuses and says what to do. `auto` falls back.
    let shm = std::path::Path::new("/dev/shm");
    let other_fs = shm
        .metadata()
        .ok()
        .zip(std::env::temp_dir().metadata().ok())
        .is_some_and(|(a, b)| a.dev() != b.dev());
    if !other_fs {
        eprintln!("skipped: /dev/shm is not a separate filesystem here (see planner::tests)");
        return;
    }
    let env = TestEnv::new();
    let app = tempfile::tempdir_in(shm).unwrap();
    env.model_file("src/lora.safetensors", "lora", 5000);
    let manifest = |link: &str| {
        env.manifest(&format!(
            "version: 1\nstore: ./store\nmodels:\n  lora:\n    source: ./src/lora.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: {}\n    link: {link}\n",
            app.path().display()
        ))
    };
    manifest("hardlink");
    env.mlib(&["plan"]).code(1).stderr_has(&format!(
        "error: app `comfyui` asks for hard links (`link: hardlink`), but its folder {}/models/loras is not on the store's filesystem and mount ({}), so they cannot be made. Use `link: symlink` or `link: auto` for this app, or put the store on the app's filesystem",
        app.path().display(),
        env.path("store").display()
    ));
    env.mlib(&["apply", "--auto-approve"]).code(1);
    assert!(!app.path().join("models/loras/lora.safetensors").exists());

    manifest("auto");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("absolute symlinks");
    let link = app.path().join("models/loras/lora.safetensors");
    assert!(std::fs::read_link(&link).unwrap().is_absolute());
    env.mlib(&["plan", "--detailed-exitcode"]).success();
}

#[test]
fn flat_layout_stores_files_comfyui_style() {
    let env = TestEnv::new();
    one_lora(&env, "", "layout: flat");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("store/loras/lora.safetensors").is_file());
    assert!(env.path("store/loras/.mlib-meta/lora.json").is_file());
    assert!(env.path("ComfyUI/models/loras/lora.safetensors").exists());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_custom_app_gets_only_its_explicit_folders() {
    let env = TestEnv::new();
    let sha = env.model_file("src/lora.safetensors", "lora", 5000);
    env.model_file("src/base.safetensors", "base", 5000);
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  lora:\n    source: ./src/lora.safetensors\n    sha256: {sha}\n    type: loras\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\napps:\n  trainer:\n    root: ./trainer\n    folders:\n      loras: inputs/lora\n"
    ));
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("trainer/inputs/lora/lora.safetensors").exists());
    assert!(!env.path("trainer/inputs/checkpoints").exists());
    assert_eq!(
        crate::support::tree(&env.path("trainer")).len(),
        3,
        "{:?}",
        crate::support::tree(&env.path("trainer"))
    );
}

#[test]
fn status_shows_linked_missing_and_drifted_per_app() {
    let env = TestEnv::new();
    crate::apply::two_models(&env);
    env.mlib(&["status"])
        .code(1)
        .stderr_has("comfyui: 0 linked, 2 missing, 0 drifted");
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_file(env.path("forge/models/Lora/detail_lora.safetensors")).unwrap();
    let run = env.mlib(&["status"]);
    run.code(1)
        .stderr_has("comfyui: 2 linked, 0 missing, 0 drifted")
        .stderr_has("forge: 1 linked, 1 missing, 0 drifted")
        .stderr_has(
            "missing   forge: models/Lora/detail_lora.safetensors (was removed since mlib linked it)",
        );
    let json = env.mlib(&["status", "--json"]);
    let forge = json
        .events()
        .into_iter()
        .find(|e| e["app"] == "forge")
        .unwrap();
    assert_eq!(forge["linked"].as_array().unwrap().len(), 1);
}

#[test]
fn quiet_prints_nothing_on_success() {
    let env = TestEnv::new();
    crate::apply::two_models(&env);
    let run = env.mlib(&["apply", "--auto-approve", "-q"]);
    run.success();
    assert_eq!(run.stderr, "");
}

fn folder_lora(env: &TestEnv, fooocus_link: &str) {
    env.model_file("dl/detail/detail.safetensors", "detail", 3000);
    env.write("dl/detail/detail.preview.png", "png");
    env.write("dl/detail/extra/notes.txt", "notes");
    env.manifest(&format!(
        "version: 1\nstore: ./store\nmodels:\n  detail:\n    source: ./dl/detail\n    type: loras\napps:\n  fooocus:\n    preset: fooocus\n    root: ./Fooocus\n{fooocus_link}  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
    ));
}

/// Fooocus lists its LoRAs with a plain os.walk, which never enters a linked folder: a folder
/// model is linked there as a real folder of per-file links, and as one folder link in
/// ComfyUI, which follows links.
#[test]
fn a_folder_model_is_linked_file_by_file_where_the_app_does_not_enter_linked_folders() {
    let env = TestEnv::new();
    // Linked as one folder symlink (as mlib did before): Fooocus would not list it.
    folder_lora(&env, "    link: symlink\n");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("app `fooocus` does not look inside linked folders");
    let farm = env.path("Fooocus/models/loras/detail");
    assert!(farm.symlink_metadata().unwrap().is_symlink());

    // With `link: auto` (the default) the folder link becomes a folder of links.
    folder_lora(&env, "");
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("- unlink")
        .stderr_has("+ link     detail fooocus: models/loras/detail/extra/notes.txt");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(farm.symlink_metadata().unwrap().is_dir(), "a real folder");
    for file in [
        "detail.safetensors",
        "detail.preview.png",
        "extra/notes.txt",
    ] {
        let link = farm.join(file);
        assert!(link.symlink_metadata().unwrap().is_symlink(), "{file}");
        assert!(link.is_file(), "{file} resolves");
    }
    assert!(
        env.path("ComfyUI/models/loras/detail")
            .symlink_metadata()
            .unwrap()
            .is_symlink(),
        "ComfyUI follows linked folders: one link"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    env.mlib(&["status"]).success();

    // A file of the farm someone replaced is theirs: left alone, reported.
    std::fs::remove_file(farm.join("detail.preview.png")).unwrap();
    env.write(
        "Fooocus/models/loras/detail/detail.preview.png",
        "my own preview",
    );
    env.mlib(&["plan"])
        .success()
        .stderr_has("detail.preview.png was changed since mlib linked it");
    env.mlib(&["apply", "--auto-approve"]).code(1);
    assert_eq!(
        std::fs::read_to_string(farm.join("detail.preview.png")).unwrap(),
        "my own preview"
    );
}

/// A folder link someone else made where the farm goes is never written through.
#[test]
fn a_link_farm_is_never_made_through_a_foreign_folder_link() {
    let env = TestEnv::new();
    folder_lora(&env, "");
    std::fs::create_dir_all(env.path("Fooocus/models/loras")).unwrap();
    std::fs::create_dir_all(env.path("elsewhere")).unwrap();
    std::os::unix::fs::symlink(
        env.path("elsewhere"),
        env.path("Fooocus/models/loras/detail"),
    )
    .unwrap();
    env.mlib(&["apply", "--auto-approve"])
        .stderr_has("a symlink mlib did not make is in the way");
    assert_eq!(std::fs::read_dir(env.path("elsewhere")).unwrap().count(), 0);
}

/// Found in review: gc and rm saw no link in a farm's links (they point inside the entry),
/// and a farm left behind an empty folder that blocked the next link forever.
#[test]
fn a_link_farm_protects_its_model_and_goes_cleanly() {
    let env = TestEnv::new();
    folder_lora(&env, "");
    env.mlib(&["apply", "--auto-approve"]).success();
    let farm = env.path("Fooocus/models/loras/detail");
    assert!(farm.join("detail.safetensors").is_file());

    // Another environment's gc keeps a model a farm links, though this manifest is gone.
    std::fs::rename(env.path("models.yaml"), env.path("away.yaml")).unwrap();
    env.write(
        "other.yaml",
        "version: 1\nstore: ./store\nmodels: {}\napps: {}\n",
    );
    env.mlib(&["gc", "--auto-approve", "-f", "other.yaml"])
        .success();
    assert!(
        farm.join("detail.safetensors").is_file(),
        "still linked: kept"
    );
    std::fs::rename(env.path("away.yaml"), env.path("models.yaml")).unwrap();

    // The app switches to one folder link: the farm goes, the folder link takes its place.
    folder_lora(&env, "    link: symlink\n");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(farm.symlink_metadata().unwrap().is_symlink());
    // And back to a farm, then the model leaves the app: no folder is left behind.
    folder_lora(&env, "");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(farm.symlink_metadata().unwrap().is_dir());
    env.manifest(
        "version: 1\nstore: ./store\nmodels: {}\napps:\n  fooocus:\n    preset: fooocus\n    root: ./Fooocus\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        farm.symlink_metadata().is_err(),
        "emptied farm folders are removed"
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

/// Found in review: the files of a farm could never be adopted (a folder model has no one
/// sha256 to pin).
#[test]
fn copies_where_a_farm_goes_are_adopted_file_by_file() {
    let env = TestEnv::new();
    folder_lora(&env, "");
    for file in [
        "detail.safetensors",
        "detail.preview.png",
        "extra/notes.txt",
    ] {
        let bytes = std::fs::read(env.path(&format!("dl/detail/{file}"))).unwrap();
        env.write(&format!("Fooocus/models/loras/detail/{file}"), bytes);
    }
    env.mlib(&["apply", "--auto-approve"]).code(1);
    env.mlib(&["apply", "--auto-approve", "--adopt"]).success();
    let link = env.path("Fooocus/models/loras/detail/detail.safetensors");
    assert!(link.symlink_metadata().unwrap().is_symlink());
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

/// Found in review: an app's farm and another app's folder link of one model in one shared
/// folder passed the plan and failed in apply.
#[test]
fn a_farm_and_a_folder_link_in_one_shared_folder_are_a_plan_conflict() {
    let env = TestEnv::new();
    env.model_file("dl/detail/detail.safetensors", "detail", 3000);
    std::fs::create_dir_all(env.path("Shared")).unwrap();
    for app in ["ComfyUI", "Fooocus"] {
        std::fs::create_dir_all(env.path(&format!("{app}/models"))).unwrap();
        std::os::unix::fs::symlink(env.path("Shared"), env.path(&format!("{app}/models/loras")))
            .unwrap();
    }
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  detail:\n    source: ./dl/detail\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n  fooocus:\n    preset: fooocus\n    root: ./Fooocus\n",
    );
    env.mlib(&["plan"])
        .success()
        .stderr_has("app `comfyui` of this manifest links the same path");
}

/// Found in review: the files of a farm were never checked against what the app lists.
#[test]
fn a_farms_model_files_are_checked_against_what_the_app_lists() {
    let env = TestEnv::new();
    env.model_file("dl/fl/x.pt", "x", 1000);
    env.write("dl/fl/x.preview.png", "png");
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  fl:\n    source: ./dl/fl\n    type: loras\napps:\n  fooocus:\n    preset: fooocus\n    root: ./Fooocus\n",
    );
    let plan = env.mlib(&["plan"]);
    plan.success()
        .stderr_has("model `fl`: app `fooocus` (Fooocus) does not list `x.pt`");
    assert!(
        !plan.stderr.contains("x.preview.png` in"),
        "{}",
        plan.stderr
    );
}
