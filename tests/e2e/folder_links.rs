//! Whole-folder links (`link: folder`, `link_folders:`): an app's models folder, or one
//! type's folder, is one link to the store's (flat layout), over an empty, a placeholder-only
//! or a non-empty folder, next to earlier backups.

use crate::assert_run;
use crate::support::{Manifest, TestEnv};

/// A flat store with one checkpoint and one LoRA, and a ComfyUI with these keys.
fn manifest(env: &TestEnv, app: &str) {
    flat()
        .local(env, "base", "checkpoints", 6000)
        .local(env, "detail", "loras", 5000)
        .comfyui(app)
        .write(env);
}

fn flat() -> Manifest {
    Manifest::new().top("layout: flat")
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
    manifest(&env, "link: folder");
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
    manifest(&env, "link: folder");
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
    manifest(&env, "link: folder");
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
    manifest(&env, "link_folders: [loras]");
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
    manifest(&env, "link: folder");
    env.mlib(&["apply", "--auto-approve"]).success();
    flat().local(&env, "base", "checkpoints", 6000).write(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("ComfyUI/models").symlink_metadata().is_err());
    assert!(env.path("store/checkpoints/base.safetensors").is_file());
}

#[test]
fn a_foreign_link_or_file_where_the_folder_link_goes_is_a_conflict() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
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
    let detail = Manifest::new().local(&env, "detail", "loras", 5000);
    detail.clone().comfyui("link: folder").write(&env);
    assert_run!(env, "folder_link_nested_store", env.mlib(&["validate"]));

    // Forge keeps LoRAs in `models/Lora`: its whole models folder cannot be the store's.
    detail
        .top("layout: flat")
        .app(
            "forge",
            "forge",
            "./forge",
            "link: folder\nlink_folders: [loras, nope]",
        )
        .write(&env);
    assert_run!(env, "folder_link_forge_mismatch", env.mlib(&["validate"]));
}

#[test]
fn forges_lora_folder_links_to_the_stores_loras() {
    let env = TestEnv::new();
    flat()
        .local(&env, "detail", "loras", 5000)
        .app("forge", "forge", "./forge", "link_folders: [loras]")
        .write(&env);
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

#[test]
fn a_file_the_app_wrote_through_the_folder_link_is_imported_in_place_even_with_move() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
    env.mlib(&["apply", "--auto-approve"]).success();
    let written = env.path("ComfyUI/models/checkpoints/app.safetensors");
    std::fs::write(&written, crate::support::model_bytes("app", 7000)).unwrap();
    env.mlib(&[
        "import",
        "--move",
        "--type",
        "checkpoints",
        "ComfyUI/models/checkpoints/app.safetensors",
    ])
    .success()
    .stderr_has("it is in the store itself");
    assert!(written.is_file());
    assert!(env.path("store/checkpoints/app.safetensors").is_file());
    env.mlib(&["verify"]).success();
}

#[test]
fn a_model_added_where_the_app_wrote_a_file_moves_that_file_to_quarantine() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
    env.mlib(&["apply", "--auto-approve"]).success();
    // A node downloads a file into the store through the link; then a model of that name
    // is declared.
    env.write(
        "ComfyUI/models/checkpoints/new.safetensors",
        "the app's own download",
    );
    let sha = env.model_file("src/new.safetensors", "new", 3000);
    let text = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        text.replace(
            "apps:\n",
            &format!("  new:\n    source: ./src/new.safetensors\n    sha256: {sha}\n    type: checkpoints\napps:\n"),
        ),
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    let kept: Vec<_> = walk(&env.path("store/.mlib/quarantine"))
        .into_iter()
        .filter(|p| std::fs::read_to_string(p).ok().as_deref() == Some("the app's own download"))
        .collect();
    assert_eq!(kept.len(), 1, "the app's file is kept in quarantine");
    env.mlib(&["verify"]).success();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn an_app_folder_inside_another_manifests_store_is_refused() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
    env.mlib(&["apply", "--auto-approve"]).success();
    // Another manifest, another store, the same app with one link per model: its folders
    // are the first store's folders, through the folder link.
    let text = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "y.yaml",
        text.replace("    link: folder\n", "")
            .replace("store: ./store", "store: ./store-y"),
    );
    env.mlib(&["-f", "y.yaml", "plan"])
        .code(1)
        .stderr_has("lies inside another mlib store");
    env.mlib(&["-f", "y.yaml", "apply", "--auto-approve", "--adopt"])
        .code(1);
    assert!(
        !env.path("store/checkpoints/base.safetensors")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    env.mlib(&["verify"]).success();
}

#[test]
fn switching_from_the_whole_folder_to_type_folders_takes_two_applies() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
    env.mlib(&["apply", "--auto-approve"]).success();
    manifest(&env, "link_folders: [loras]");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("run `mlib apply` again");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/loras")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    assert!(
        env.path("ComfyUI/models/checkpoints/base.safetensors")
            .symlink_metadata()
            .unwrap()
            .is_symlink()
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    env.mlib(&["status"]).success();
}

#[test]
fn a_type_folder_link_whose_store_folder_went_is_made_again() {
    let env = TestEnv::new();
    manifest(&env, "link_folders: [loras]\nlink: copy");
    env.mlib(&["apply", "--auto-approve"]).success();
    let loras = env.path("ComfyUI/models/loras");
    assert!(
        loras.symlink_metadata().unwrap().is_symlink(),
        "a folder link is a symlink whatever the app's mode"
    );
    // The LoRA goes, gc empties the store's folder, and even a gc of foreign files keeps the
    // folder the link points at (an empty folder is nobody's file).
    flat()
        .local(&env, "base", "checkpoints", 6000)
        .comfyui("link_folders: [loras]")
        .write(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    env.mlib(&["gc", "--include-foreign", "--auto-approve"])
        .success();
    assert!(env.path("store/loras").is_dir());
    env.mlib(&["doctor"]).success();
    // Removed by hand: the next plan makes it again.
    std::fs::remove_dir_all(env.path("store/loras")).unwrap();
    env.mlib(&["plan"]).success().stderr_has("~ relink");
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(env.path("store/loras").is_dir());
    env.mlib(&["status"]).success();
}

#[test]
fn two_apps_in_one_tree_cannot_be_linked_two_ways() {
    let env = TestEnv::new();
    flat()
        .local(&env, "base", "checkpoints", 6000)
        .local(&env, "detail", "loras", 5000)
        .comfyui("link: folder")
        .app("other", "comfyui", "./ComfyUI", "")
        .write(&env);
    env.mlib(&["validate"])
        .code(1)
        .stderr_line(&format!(
            "× models.yaml:17:11: app `comfyui` links its folders to the store, and app `other` has the same root {}: its links would be made inside the store",
            env.path("ComfyUI").display()
        ));
}

#[test]
fn a_placeholder_name_with_someones_notes_keeps_the_folder() {
    let env = TestEnv::new();
    manifest(&env, "link: folder");
    fresh_clone_models(&env);
    env.write(
        "ComfyUI/models/checkpoints/Put your notes here.txt",
        "the good lora is X\n",
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read_to_string(
            env.path("ComfyUI/models.backup/checkpoints/Put your notes here.txt")
        )
        .unwrap(),
        "the good lora is X\n"
    );
}
