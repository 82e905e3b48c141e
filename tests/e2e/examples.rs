//! The examples/ a user copies: the pod start script runs, twice, and the container
//! example's manifest is valid.

use crate::support::{Run, TestEnv};

fn startup(env: &TestEnv, bin: &std::path::Path) -> Run {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/runpod/startup.sh");
    Run::from(
        env.command_for("bash".as_ref())
            .arg(script)
            .args(["touch", "app-started"])
            .env("WORKSPACE", env.path("workspace"))
            .env("MLIB_BIN", bin)
            .output()
            .unwrap(),
    )
}

#[test]
fn the_pod_start_script_provisions_then_starts_the_app_and_is_idempotent() {
    let env = TestEnv::new();
    let sha = env.model_file("workspace/files/lora.safetensors", "lora", 4000);
    env.write(
        "workspace/models.yaml",
        format!(
            "version: 1\nstore: ./store\nmodels:\n  lora:\n    source: ./files/lora.safetensors\n    sha256: {sha}\n    type: loras\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n"
        ),
    );
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_mlib"));
    startup(&env, bin).success();
    assert!(
        env.path("workspace/ComfyUI/models/loras/lora.safetensors")
            .is_file()
    );
    assert!(
        env.path("app-started").exists(),
        "the app's command runs after apply"
    );
    std::fs::remove_file(env.path("app-started")).unwrap();
    // A restarted pod: nothing to do, the app starts again.
    startup(&env, bin).success().stderr_has("No changes");
    assert!(env.path("app-started").exists());

    // No binary and nowhere to get it from: a clear error, the app does not start.
    std::fs::remove_file(env.path("app-started")).unwrap();
    startup(&env, &env.path("workspace/bin/mlib"))
        .code(1)
        .stderr_has("set MLIB_URL to download it");
    assert!(!env.path("app-started").exists());
}

#[test]
fn the_container_example_manifests_are_valid() {
    let env = TestEnv::new();
    for example in ["models.yaml", "host-apply.models.yaml"] {
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("examples/docker")
            .join(example);
        env.mlib(&["validate", "-f", &manifest.display().to_string()])
            .success();
    }
}
