//! Where mlib keeps its state: beside the store, in MLIB_STATE_DIR, or, for a store it may
//! not write, in a per-user folder; a read-only store still gets plans, status and links.

use std::process::Command;

use crate::support::{Run, TestEnv, tree};

fn one_model(env: &TestEnv) {
    env.model_file("src/base.safetensors", "base", 4096);
    env.model_file("src/detail.safetensors", "detail", 2048);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
}

/// How this test makes the store read-only: a read-only bind mount in a private mount
/// namespace when it runs as root (root writes through permission bits), else permission
/// bits. Says which, so a reader of the log knows what was tested.
enum ReadOnly {
    BindMount,
    Chmod,
}

impl ReadOnly {
    fn pick(env: &TestEnv) -> ReadOnly {
        let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
        if !root {
            let status = Command::new("chmod")
                .args(["-R", "a-w"])
                .arg(env.path("store"))
                .status()
                .unwrap();
            assert!(status.success());
            eprintln!("read-only store: chmod -R a-w (not root)");
            return ReadOnly::Chmod;
        }
        let probe = Command::new("unshare")
            .args(["-m", "true"])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            probe,
            "running as root but cannot make a mount namespace: this test needs one (or a non-root user)"
        );
        eprintln!("read-only store: read-only bind mount (root, private mount namespace)");
        ReadOnly::BindMount
    }

    /// Runs mlib with the store read-only.
    fn mlib(&self, env: &TestEnv, args: &[&str], vars: &[(&str, &str)]) -> Run {
        let mut cmd = env.command();
        for (k, v) in vars {
            cmd.env(k, v);
        }
        match self {
            ReadOnly::Chmod => Run::from(cmd.args(args).output().unwrap()),
            ReadOnly::BindMount => {
                let store = env.path("store");
                let script = format!(
                    "mount --bind '{s}' '{s}' && mount -o remount,bind,ro '{s}' && exec \"$@\"",
                    s = store.display()
                );
                let mut wrapped = env.command_for("unshare".as_ref());
                for (k, v) in vars {
                    wrapped.env(k, v);
                }
                wrapped
                    .args(["-m", "sh", "-c", &script, "sh", env!("CARGO_BIN_EXE_mlib")])
                    .args(args);
                Run::from(wrapped.output().unwrap())
            }
        }
    }
}

#[test]
fn a_read_only_store_is_planned_and_linked_with_per_user_state() {
    let env = TestEnv::new();
    one_model(&env);
    // The store's manager fills it (with write access).
    env.mlib(&["apply", "--auto-approve"]).success();
    std::fs::remove_dir_all(env.path("ComfyUI")).unwrap();
    let store_before = tree(&env.path("store"));
    let ro = ReadOnly::pick(&env);

    // Two users of the shared store, each with their own state.
    for user in ["ann", "bob"] {
        let home = env.path(&format!("home-{user}"));
        std::fs::create_dir_all(&home).unwrap();
        let home = home.to_str().unwrap().to_owned();
        let vars = [("HOME", home.as_str())];
        let plan = ro.mlib(&env, &["plan", "--detailed-exitcode"], &vars);
        plan.code(2)
            .stderr_has("note: the store ")
            .stderr_has("is read-only: mlib keeps its state for it in ")
            .stderr_has("+ link     base comfyui: models/checkpoints/base.safetensors");
        assert!(!plan.stderr.contains("move it aside"), "{plan}");
        // Not linked yet: status has findings.
        ro.mlib(&env, &["status"], &vars).code(1);
        // Nothing can be copied into a store one cannot write.
        ro.mlib(
            &env,
            &["import", "src/base.safetensors", "--type", "loras"],
            &vars,
        )
        .code(1)
        .stderr_has("cannot be written by you: import cannot copy into it");
        // Another user's environments are unknown here: nothing may be deleted.
        for removal in [
            &["gc", "--dry-run"][..],
            &["rm", "base", "--force", "--dry-run"],
        ] {
            ro.mlib(&env, removal, &vars)
                .code(1)
                .stderr_has("is read-only: ")
                .stderr_has("cannot delete from it");
        }
        ro.mlib(&env, &["verify"], &vars)
            .success()
            .stderr_has("Verified 1 file of 1 model");
        ro.mlib(&env, &["apply", "--auto-approve"], &vars)
            .success()
            .stderr_has("Apply complete: 1 change made.");
        ro.mlib(&env, &["plan", "--detailed-exitcode"], &vars)
            .success()
            .stderr_has("No changes.");
        let state = env.path(&format!("home-{user}/.local/state/mlib/stores"));
        let folders: Vec<_> = std::fs::read_dir(&state).unwrap().collect();
        assert_eq!(folders.len(), 1, "one state folder per store");
        std::fs::remove_dir_all(env.path("ComfyUI")).unwrap();
    }
    assert_eq!(
        tree(&env.path("store")),
        store_before,
        "the store was written"
    );
}

#[test]
fn an_apply_that_must_write_a_read_only_store_stops_before_changing_anything() {
    let env = TestEnv::new();
    one_model(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    // The manifest now wants a model the store does not have.
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        yaml.replace(
            "apps:",
            "  detail:\n    source: ./src/detail.safetensors\n    type: loras\napps:",
        ),
    );
    std::fs::remove_dir_all(env.path("ComfyUI")).unwrap();
    let ro = ReadOnly::pick(&env);
    let home = env.path("home").to_str().unwrap().to_owned();
    ro.mlib(&env, &["plan"], &[("HOME", &home)])
        .success()
        .stderr_has("warning: the store is read-only: apply cannot add model `detail` to it");
    let run = ro.mlib(&env, &["apply", "--auto-approve"], &[("HOME", &home)]);
    run.code(1)
        .stderr_has(&format!(
            "error: the store {} is read-only, and this apply would have to write into it for: detail (missing). Nothing was changed.",
            env.path("store").display()
        ));
    assert!(!env.path("ComfyUI").exists(), "nothing was linked");
}

#[test]
fn mlib_state_dir_and_the_manifests_state_key_move_the_registry() {
    let env = TestEnv::new();
    one_model(&env);
    let state = env.path("elsewhere/state");
    let run = Run::from(
        env.command()
            .env("MLIB_STATE_DIR", &state)
            .args(["apply", "--auto-approve"])
            .output()
            .unwrap(),
    );
    run.success();
    assert!(state.join("registry.db").is_file());
    assert!(!env.path("store/.mlib/registry.db").exists());
    // --state-dir is the same thing.
    env.mlib(&[
        "plan",
        "--detailed-exitcode",
        "--state-dir",
        state.to_str().unwrap(),
    ])
    .success()
    .stderr_has("No changes.");
    // A state folder belongs to one store.
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write("other.yaml", yaml.replace("./store", "./store2"));
    env.mlib(&[
        "plan",
        "-f",
        "other.yaml",
        "--state-dir",
        state.to_str().unwrap(),
    ])
    .code(1)
    .stderr_has("describes the store ")
    .stderr_has("give each store a state folder of its own");

    // `state:` in the manifest.
    env.write(
        "models.yaml",
        yaml.replace(
            "store: ./store\n",
            "store: ./store\nstate: ./elsewhere/state\n",
        ),
    );
    env.mlib(&["plan", "--detailed-exitcode"])
        .success()
        .stderr_has("No changes.");
}

#[test]
fn a_hard_link_app_over_a_read_only_bind_mount_is_refused_and_auto_gets_symlinks() {
    let env = TestEnv::new();
    one_model(&env);
    env.mlib(&["apply", "--auto-approve"]).success();
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write(
        "models.yaml",
        format!("{yaml}  forge:\n    preset: forge\n    root: ./forge\n    link: hardlink\n"),
    );
    let ro = ReadOnly::pick(&env);
    if matches!(ro, ReadOnly::Chmod) {
        eprintln!("skipped: without a bind mount the store is on the app's mount");
        return;
    }
    let home = env.path("home").to_str().unwrap().to_owned();
    let vars = [("HOME", home.as_str())];
    // One device, two mounts: the kernel refuses the hard link, so `link: hardlink` is a
    // plan error with a hint, and `auto` falls back to symlinks.
    ro.mlib(&env, &["plan"], &vars)
        .code(1)
        .stderr_has("error: app `forge` asks for hard links (`link: hardlink`), but its folder ")
        .stderr_has("Use `link: symlink` or `link: auto` for this app");
    env.write(
        "models.yaml",
        format!("{yaml}  forge:\n    preset: forge\n    root: ./forge\n    link: auto\n"),
    );
    ro.mlib(&env, &["apply", "--auto-approve"], &vars).success();
    assert!(
        env.path("forge/models/Stable-diffusion/base.safetensors")
            .is_symlink()
    );
    ro.mlib(&env, &["plan", "--detailed-exitcode"], &vars)
        .success();
}
