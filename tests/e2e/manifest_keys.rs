//! Errors about where a manifest puts things and what it names: the store, the state folder,
//! app roots, the environment's name. Each is refused by the real binary with its place.

use crate::support::TestEnv;

#[test]
fn a_bad_environment_name_is_refused_at_its_place() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: ./store\nenvironment: ../up\n");
    env.mlib(&["validate"]).code(1).stderr_line(
        "× models.yaml:3:16: the environment name `../up` contains `/`: a name cannot hold a \
         path separator",
    );
}

#[test]
fn a_store_or_root_that_is_a_system_folder_or_home_is_refused() {
    let env = TestEnv::new();
    env.manifest("version: 1\nstore: /\n");
    env.mlib(&["validate"])
        .code(1)
        .stderr_line("× models.yaml:2:8: `store` is `/`, the root of the filesystem")
        .stderr_has("help: use a folder of its own, e.g. `store: ~/models`");

    env.manifest("version: 1\nstore: ./store\nstate: /usr/\n");
    env.mlib(&["validate"])
        .code(1)
        .stderr_line("× models.yaml:3:8: `state` is `/usr`, a system folder");

    env.manifest(
        "version: 1\nstore: ./store\napps:\n  comfyui:\n    preset: comfyui\n    root: ~/\n",
    );
    let home = env.path("home");
    env.mlib(&["plan"]).code(1).stderr_line(&format!(
        "× models.yaml:6:11: app `comfyui`: `root` is `{}`, your home folder itself",
        home.display()
    ));
}

#[test]
fn a_store_inside_the_apps_model_folders_is_refused_before_anything_is_adopted() {
    let env = TestEnv::new();
    // The store is ComfyUI's models folder: adopting would link a store file to itself.
    env.model_file("ComfyUI/models/loras/a.safetensors", "a", 4096);
    env.manifest(
        "version: 1\nstore: ./ComfyUI/models\nlayout: flat\nmodels:\n  a:\n    source: ./ComfyUI/models/loras/a.safetensors\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    let before = crate::support::tree(&env.root);
    for args in [&["validate"][..], &["apply", "--auto-approve", "--adopt"]] {
        env.mlib(args).code(1).stderr_line(
            "× models.yaml:2:8: app `comfyui`'s folder `models/animatediff_models` (for \
             `animatediff_models`) and 37 more are inside `store`",
        );
    }
    assert_eq!(crate::support::tree(&env.root), before);
}
