//! An app in a container that sees the store at another path (`container: { store, root }`):
//! its links name the store as the container sees it. The two views are simulated by two
//! roots: `host/` holds the store and the app; `ctr/models` and `ctr/app` stand for the
//! container's mounts of them (symlinks to the host's folders, which a container's bind
//! mounts are to the kernel).

use crate::assert_run;
use crate::support::{Run, TestEnv};

fn manifest(env: &TestEnv, container: &str) -> String {
    let sha = env.model_file("src/detail.safetensors", "detail", 5000);
    env.manifest(&format!(
        "version: 1\nenvironment: pod\nstore: ${{STORE}}\nmodels:\n  detail:\n    source: ./src/detail.safetensors\n    sha256: {sha}\n    type: loras\n    family: sdxl\napps:\n  comfyui:\n    preset: comfyui\n    root: ${{APP}}\n{container}"
    ));
    sha
}

fn mount(env: &TestEnv) {
    std::fs::create_dir_all(env.path("ctr")).unwrap();
    std::os::unix::fs::symlink(env.path("host/store"), env.path("ctr/models")).unwrap();
    std::os::unix::fs::symlink(env.path("host/ComfyUI"), env.path("ctr/app")).unwrap();
}

fn unmount(env: &TestEnv) {
    std::fs::remove_file(env.path("ctr/models")).unwrap();
    std::fs::remove_file(env.path("ctr/app")).unwrap();
}

/// mlib as run on the host, or inside the container (where the store and the app are at the
/// container's paths).
fn mlib(env: &TestEnv, inside: bool, args: &[&str]) -> Run {
    let (store, app) = if inside {
        ("ctr/models", "ctr/app")
    } else {
        ("host/store", "host/ComfyUI")
    };
    Run::from(
        env.command()
            .args(args)
            .env("STORE", env.path(store))
            .env("APP", env.path(app))
            .output()
            .unwrap(),
    )
}

#[test]
fn links_name_the_store_as_the_container_sees_it_and_stay_healthy_on_the_host() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("host/store")).unwrap();
    std::fs::create_dir_all(env.path("host/ComfyUI")).unwrap();
    let container = format!(
        "    container:\n      store: {}\n      root: {}\n",
        env.path("ctr/models").display(),
        env.path("ctr/app").display()
    );
    let sha = manifest(&env, &container);
    mlib(&env, false, &["apply", "--auto-approve"]).success();

    let link = env.path("host/ComfyUI/models/loras/detail.safetensors");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        env.path("ctr/models/loras/sdxl/detail/detail.safetensors"),
        "the link names the store at the container's path"
    );
    // On the host, without the container's mounts, the link dangles; mlib knows it is meant to.
    assert!(std::fs::metadata(&link).is_err());
    mlib(&env, false, &["plan", "--detailed-exitcode"]).code(0);
    mlib(&env, false, &["status"]).success();
    assert_run!(
        env,
        "container_doctor_on_the_host",
        mlib(&env, false, &["doctor"])
    );
    mlib(&env, false, &["doctor", "--fix"]).success();
    assert!(link.symlink_metadata().is_ok(), "doctor --fix keeps it");

    // In the container (its mounts in place), the app reads the model through the link.
    mount(&env);
    let seen = std::fs::read(env.path("ctr/app/models/loras/detail.safetensors")).unwrap();
    assert_eq!(crate::support::sha256(&seen), sha);
    // Applied from inside the container, the same links are what it wants: nothing to do.
    mlib(&env, true, &["plan", "--detailed-exitcode"]).code(0);

    // The container's mount point changes: the links are rewritten to the new path.
    unmount(&env);
    let moved = format!(
        "    container:\n      store: /mnt/models\n      root: {}\n",
        env.path("ctr/app").display()
    );
    manifest(&env, &moved);
    mlib(&env, false, &["plan"])
        .success()
        .stderr_has("~ relink");
    mlib(&env, false, &["apply", "--auto-approve"]).success();
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        std::path::Path::new("/mnt/models/loras/sdxl/detail/detail.safetensors")
    );
    mlib(&env, false, &["plan", "--detailed-exitcode"]).code(0);
}

#[test]
fn a_container_that_is_not_told_where_the_store_is_gets_a_warning() {
    let env = TestEnv::new();
    std::fs::create_dir_all(env.path("host/store")).unwrap();
    manifest(&env, "    container:\n      root: /app/ComfyUI\n");
    mlib(&env, false, &["plan"])
        .success()
        .stderr_has("dangle in the container unless the store is mounted there at that same path; set `container.store`");
    // Without `container:` there is nothing to warn about.
    manifest(&env, "");
    let plan = mlib(&env, false, &["plan"]);
    assert!(!plan.stderr.contains("container"), "{plan}");
}

#[test]
fn container_paths_must_be_absolute() {
    let env = TestEnv::new();
    manifest(&env, "    container:\n      store: models\n");
    let run = mlib(&env, false, &["validate"]);
    run.code(1)
        .stderr_has("`container.store` is `models`, not an absolute path");
}

#[test]
fn an_empty_container_key_is_an_error() {
    let env = TestEnv::new();
    manifest(&env, "    container: {}\n");
    mlib(&env, false, &["validate"])
        .code(1)
        .stderr_has("says neither `store` nor `root`");
}
