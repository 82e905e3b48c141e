//! `mlib relocate`: a store or app tree moved (a drive's new mount point, an app folder moved
//! elsewhere); links and the registry follow it, a dry run changes nothing, a link a user
//! changed is left alone, paths match by whole components, and a second run is harmless.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::assert_run;
use crate::support::{Run, TestEnv, tree};

/// Two models linked into two apps; `store` and `comfyui` are the manifest's paths.
fn manifest(env: &TestEnv, store: &str, comfyui: &str, forge: &str) {
    let base = env.model_file("src/base.safetensors", "base", 4096);
    let lora = env.model_file("src/lora.safetensors", "lora", 2048);
    env.manifest(&format!(
        "version: 1\nstore: {store}\nmodels:\n  base:\n    source: ./src/base.safetensors\n    sha256: {base}\n    type: checkpoints\n    family: sdxl\n  lora:\n    source: ./src/lora.safetensors\n    sha256: {lora}\n    type: loras\n    family: sdxl\napps:\n  comfyui:\n    preset: comfyui\n    root: {comfyui}\n  forge:\n    preset: forge\n    root: {forge}\n"
    ));
}

fn read_link(path: &Path) -> PathBuf {
    std::fs::read_link(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A folder on another filesystem than the test's, so that `auto` makes absolute symlinks
/// between them; `None` where /dev/shm is not one.
fn other_filesystem() -> Option<tempfile::TempDir> {
    let shm = Path::new("/dev/shm");
    let here = std::env::temp_dir().metadata().ok()?;
    if shm.metadata().ok()?.dev() == here.dev() {
        return None;
    }
    Some(tempfile::tempdir_in(shm).unwrap())
}

fn relocate(env: &TestEnv, from: &Path, to: &Path, extra: &[&str]) -> Run {
    let (from, to) = (from.to_str().unwrap(), to.to_str().unwrap());
    let mut args = vec!["relocate", "--from", from, "--to", to];
    args.extend_from_slice(extra);
    env.mlib(&args)
}

#[test]
fn a_store_on_a_drive_with_a_new_mount_point_gets_its_absolute_links_back() {
    let Some(drive) = other_filesystem() else {
        eprintln!("skipped: /dev/shm is not a separate filesystem here");
        return;
    };
    let drive = drive.path().canonicalize().unwrap();
    let (old, new) = (drive.join("mnt-old"), drive.join("mnt-new"));
    std::fs::create_dir_all(&old).unwrap();
    let env = TestEnv::new();
    manifest(
        &env,
        &old.join("store").display().to_string(),
        "./ComfyUI",
        "./forge",
    );
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("absolute symlinks");
    let link = env.path("ComfyUI/models/loras/lora.safetensors");
    assert_eq!(
        read_link(&link),
        old.join("store/loras/sdxl/lora/lora.safetensors")
    );

    // The drive comes back at another mount point; the user updates `store:`.
    std::fs::rename(&old, &new).unwrap();
    manifest(
        &env,
        &new.join("store").display().to_string(),
        "./ComfyUI",
        "./forge",
    );
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("~ relink");

    let before = tree(&env.root);
    let registry = std::fs::read(new.join("store/.mlib/registry.db")).unwrap();
    relocate(&env, &old, &new, &["--dry-run"])
        .success()
        .stderr_has("~ rewrite")
        .stderr_has("Dry run: 4 links to rewrite");
    assert_eq!(tree(&env.root), before, "a dry run changes no link");
    assert_eq!(
        std::fs::read(new.join("store/.mlib/registry.db")).unwrap(),
        registry,
        "a dry run changes no row"
    );

    relocate(&env, &old, &new, &["--auto-approve"])
        .success()
        .stderr_has("Relocate complete: 4 links rewritten");
    assert_eq!(
        read_link(&link),
        new.join("store/loras/sdxl/lora/lora.safetensors")
    );
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(0)
        .stderr_has("No changes.");
    let status = env.mlib(&["status"]);
    status.success();
    assert!(!status.stderr.contains("old location"), "{status}");
    assert!(!status.stderr.contains("not linked"), "{status}");
    // The environment kept its identity (its key includes the store): one, with every link.
    let envs = env.mlib(&["env", "list", "--json"]);
    let envs: Vec<_> = envs
        .events()
        .into_iter()
        .filter(|e| e["type"] == "environment")
        .collect();
    assert_eq!(envs.len(), 1, "{envs:?}");
    assert_eq!(envs[0]["links"], 4);
    assert_eq!(envs[0]["current"], true);

    // Twice is harmless.
    relocate(&env, &old, &new, &["--auto-approve"])
        .success()
        .stderr_has("Nothing to relocate");
    env.mlib(&["apply", "--auto-approve"])
        .success()
        .stderr_has("No changes.");
}

#[test]
fn the_manifest_may_still_name_the_old_store() {
    let Some(drive) = other_filesystem() else {
        eprintln!("skipped: /dev/shm is not a separate filesystem here");
        return;
    };
    let drive = drive.path().canonicalize().unwrap();
    let (old, new) = (drive.join("a"), drive.join("b"));
    std::fs::create_dir_all(&old).unwrap();
    let env = TestEnv::new();
    let old_store = old.join("store").display().to_string();
    manifest(&env, &old_store, "./ComfyUI", "./forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::rename(&old, &new).unwrap();

    // The store's registry is found at the new place, and the user is told to edit `store:`.
    relocate(&env, &old, &new, &["--auto-approve"])
        .success()
        .stderr_has(&format!("models.yaml's `store:` still says {old_store}"))
        .stderr_has("Relocate complete: 4 links rewritten");
    let new_store = new.join("store").display().to_string();
    manifest(&env, &new_store, "./ComfyUI", "./forge");
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn an_app_tree_moved_elsewhere_gets_its_relative_links_recomputed() {
    let env = TestEnv::new();
    manifest(&env, "./store", "./ComfyUI", "./forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    let (old, new) = (env.path("ComfyUI"), env.path("apps/ComfyUI"));
    std::fs::create_dir_all(env.path("apps")).unwrap();
    std::fs::rename(&old, &new).unwrap();
    manifest(&env, "./store", "./apps/ComfyUI", "./forge");
    // The relative links no longer reach the store from one level deeper.
    let link = new.join("models/loras/lora.safetensors");
    assert!(link.symlink_metadata().is_ok() && !link.exists());
    env.mlib(&["plan", "--detailed-exitcode"]).code(2);

    let before = tree(&env.root);
    let dry = relocate(&env, &old, &new, &["--dry-run"]);
    assert_run!(env, "relocate_dry_run", dry);
    assert_eq!(tree(&env.root), before, "a dry run changes nothing");

    let json = relocate(&env, &old, &new, &["--dry-run", "--json"]);
    json.success();
    let events = json.events();
    let summary = events
        .iter()
        .find(|e| e["type"] == "relocate_summary")
        .expect("a summary event");
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["links_rewritten"], 2);
    assert_eq!(summary["rows"]["links_target"], 2);
    assert_eq!(summary["rows"]["environments_apps"], 1);
    assert_eq!(
        events
            .iter()
            .filter(|e| e["type"] == "relocate_link" && e["outcome"] == "rewrite")
            .count(),
        2
    );

    // Without a terminal, and without --auto-approve, nothing happens.
    relocate(&env, &old, &new, &[])
        .code(1)
        .stderr_has("relocate needs approval, and there is no terminal to ask on");
    assert_eq!(tree(&env.root), before);

    relocate(&env, &old, &new, &["--auto-approve"])
        .success()
        .stderr_has("Relocate complete: 2 links rewritten");
    assert!(read_link(&link).is_relative());
    assert_eq!(
        std::fs::read(&link).unwrap(),
        std::fs::read(env.path("src/lora.safetensors")).unwrap()
    );
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    // Forge did not move: its links were not touched.
    assert!(env.path("forge/models/Lora/lora.safetensors").exists());
}

#[test]
fn relative_links_need_nothing_when_store_and_apps_move_together() {
    let env = TestEnv::new();
    let (old, new) = (env.path("lib"), env.path("lib2"));
    std::fs::create_dir_all(&old).unwrap();
    manifest(&env, "./lib/store", "./lib/ComfyUI", "./lib/forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    let link = "ComfyUI/models/loras/lora.safetensors";
    let content = read_link(&old.join(link));
    assert!(content.is_relative());
    std::fs::rename(&old, &new).unwrap();
    manifest(&env, "./lib2/store", "./lib2/ComfyUI", "./lib2/forge");

    let run = relocate(&env, &old, &new, &["--auto-approve"]);
    run.success()
        .stderr_has("Relocate complete: 0 links rewritten");
    assert_eq!(read_link(&new.join(link)), content, "left as it was");
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
    env.mlib(&["status"]).success();
}

#[test]
fn a_link_a_user_replaced_is_left_alone_and_reported() {
    let env = TestEnv::new();
    manifest(&env, "./store", "./ComfyUI", "./forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    let (old, new) = (env.path("ComfyUI"), env.path("apps/ComfyUI"));
    std::fs::create_dir_all(env.path("apps")).unwrap();
    std::fs::rename(&old, &new).unwrap();
    manifest(&env, "./store", "./apps/ComfyUI", "./forge");
    let mine = new.join("models/loras/lora.safetensors");
    std::fs::remove_file(&mine).unwrap();
    std::fs::write(&mine, "the user's own file").unwrap();

    relocate(&env, &old, &new, &["--auto-approve"])
        .success()
        .stderr_has(&format!(
            "! left alone  lora comfyui: {}: is no longer a symlink",
            mine.display()
        ))
        .stderr_has("Relocate complete: 1 link rewritten")
        .stderr_has("1 link left alone");
    assert_eq!(std::fs::read(&mine).unwrap(), b"the user's own file");
    // Its record moved with the tree, so plan reports it where it is now.
    env.mlib(&["plan", "--detailed-exitcode"])
        .code(2)
        .stderr_has("! conflict")
        .stderr_has("models/loras/lora.safetensors");
}

#[test]
fn a_folder_whose_name_starts_like_the_old_one_is_not_moved() {
    let env = TestEnv::new();
    manifest(&env, "./store", "./a/ComfyUI", "./ab/forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    let forge_link = env.path("ab/forge/models/Lora/lora.safetensors");
    let forge_content = read_link(&forge_link);
    std::fs::create_dir_all(env.path("c")).unwrap();
    std::fs::rename(env.path("a"), env.path("c/a")).unwrap();
    manifest(&env, "./store", "./c/a/ComfyUI", "./ab/forge");

    relocate(&env, &env.path("a"), &env.path("c/a"), &["--auto-approve"])
        .success()
        .stderr_has("Relocate complete: 2 links rewritten");
    assert_eq!(read_link(&forge_link), forge_content);
    env.mlib(&["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn bad_folders_are_refused_with_what_to_do() {
    let env = TestEnv::new();
    manifest(&env, "./store", "./ComfyUI", "./forge");
    env.mlib(&["apply", "--auto-approve"]).success();
    relocate(
        &env,
        &env.path("ComfyUI"),
        &env.path("elsewhere"),
        &["--auto-approve"],
    )
    .code(1)
    .stderr_has("no such folder. Move the store or app folder there");
    relocate(
        &env,
        &env.path("ComfyUI"),
        &env.path("ComfyUI/models"),
        &["--auto-approve"],
    )
    .code(1)
    .stderr_has("are one inside the other");
    relocate(
        &env,
        &env.path("ComfyUI"),
        &env.path("ComfyUI"),
        &["--auto-approve"],
    )
    .code(1)
    .stderr_has("are the same folder");
}
