//! Warnings where an app would not list a linked file: an extension the app does not list in
//! that folder, from `mlib validate` (the manifest and the lock) and `mlib plan` (the files it
//! links). Each warning has a manifest that triggers it and one that does not.

use crate::support::TestEnv;

/// A manifest with one local model `m` (`source`, `type`, more keys in `extra`) and the apps
/// `apps` (preset names; each app is named after its preset).
fn manifest(env: &TestEnv, source: &str, model_type: &str, extra: &str, apps: &[&str]) {
    let mut yaml = format!(
        "version: 1\nstore: ./store\nmodels:\n  m:\n    source: {source}\n    type: {model_type}\n{extra}apps:\n"
    );
    for app in apps {
        yaml.push_str(&format!("  {app}:\n    preset: {app}\n    root: ./{app}\n"));
    }
    env.manifest(&yaml);
}

#[track_caller]
fn warnings(run: &crate::support::Run) -> Vec<&str> {
    run.stderr
        .lines()
        .filter(|l| l.starts_with("warning: "))
        .collect()
}

#[test]
fn sft_files_are_listed_by_comfyui_and_swarmui_only() {
    let env = TestEnv::new();
    env.model_file("src/flux-dev.sft", "flux", 3000);
    manifest(
        &env,
        "./src/flux-dev.sft",
        "diffusion_models",
        "",
        &["comfyui", "swarmui", "forge"],
    );
    let validate = env.mlib(&["validate"]);
    crate::assert_run!(env, "listing_sft_validate", validate);
    validate.success();
    assert_eq!(warnings(&validate).len(), 1, "{validate}");
    validate.stderr_has(
        "warning: model `m`: app `forge` (Forge) does not list `flux-dev.sft` in models/Stable-diffusion, where it lists only .ckpt, .safetensors, .gguf: `.sft` is the safetensors format under another name; set `file:` to a name ending in `.safetensors` to link it under a name the app lists",
    );
    let plan = env.mlib(&["plan"]);
    crate::assert_run!(env, "listing_sft_plan", plan);
    plan.success()
        .stderr_has("warning: model `m`: app `forge` (Forge) does not list `flux-dev.sft`");

    // Linked under a `.safetensors` name, every app lists it.
    manifest(
        &env,
        "./src/flux-dev.sft",
        "diffusion_models",
        "    file: flux-dev.safetensors\n",
        &["comfyui", "swarmui", "forge"],
    );
    for command in ["validate", "plan"] {
        let run = env.mlib(&[command]);
        run.success();
        assert!(warnings(&run).is_empty(), "{run}");
    }
}

#[test]
fn gguf_files_go_where_a_gguf_loader_reads() {
    let env = TestEnv::new();
    env.model_file("src/flux-q4.gguf", "gguf", 3000);
    manifest(
        &env,
        "./src/flux-q4.gguf",
        "checkpoints",
        "",
        &["comfyui", "swarmui", "forge", "a1111"],
    );
    let validate = env.mlib(&["validate"]);
    crate::assert_run!(env, "listing_gguf_validate", validate);
    validate.success();
    // Forge lists GGUF checkpoints; A1111, ComfyUI's and SwarmUI's checkpoint folders do not.
    assert_eq!(warnings(&validate).len(), 3, "{validate}");
    validate
        .stderr_has("app `comfyui` (ComfyUI) does not list `flux-q4.gguf` in models/checkpoints")
        .stderr_has("GGUF diffusion models take `type: diffusion_models` (models/diffusion_models)")
        .stderr_has(
            "app `swarmui` (SwarmUI) does not list `flux-q4.gguf` in Models/Stable-Diffusion",
        )
        .stderr_has("app `a1111` (A1111) does not list `flux-q4.gguf` in models/Stable-diffusion, where it lists only .ckpt, .safetensors\n");
    assert!(!validate.stderr.contains("app `forge`"), "{validate}");
    let plan = env.mlib(&["plan"]);
    plan.success();
    assert_eq!(warnings(&plan).len(), 3, "{plan}");

    // As a diffusion model, where ComfyUI-GGUF and SwarmUI load it.
    manifest(
        &env,
        "./src/flux-q4.gguf",
        "diffusion_models",
        "",
        &["comfyui", "swarmui", "forge"],
    );
    for command in ["validate", "plan"] {
        let run = env.mlib(&[command]);
        run.success();
        assert!(warnings(&run).is_empty(), "{run}");
    }
}

#[test]
fn fooocus_lists_no_pt_files_in_its_model_lists() {
    let env = TestEnv::new();
    env.model_file("src/detail.pt", "detail", 2000);
    manifest(
        &env,
        "./src/detail.pt",
        "loras",
        "",
        &["fooocus", "comfyui"],
    );
    let validate = env.mlib(&["validate"]);
    crate::assert_run!(env, "listing_fooocus_pt_validate", validate);
    validate.success().stderr_has(
        "warning: model `m`: app `fooocus` (Fooocus) does not list `detail.pt` in models/loras, where it lists only .pth, .ckpt, .bin, .safetensors\n",
    );
    assert_eq!(warnings(&validate).len(), 1, "{validate}");
    env.mlib(&["plan"])
        .success()
        .stderr_has("app `fooocus` (Fooocus) does not list `detail.pt` in models/loras");

    // A `.pt` embedding is fine: Fooocus opens embeddings by name with .pt among the tries.
    manifest(&env, "./src/detail.pt", "embeddings", "", &["fooocus"]);
    for command in ["validate", "plan"] {
        let run = env.mlib(&[command]);
        run.success();
        assert!(warnings(&run).is_empty(), "{run}");
    }
}

#[test]
fn sdnext_lists_only_safetensors_checkpoints() {
    let env = TestEnv::new();
    env.model_file("src/old.ckpt", "old", 2000);
    manifest(
        &env,
        "./src/old.ckpt",
        "checkpoints",
        "",
        &["sdnext", "a1111"],
    );
    let validate = env.mlib(&["validate"]);
    validate.success().stderr_has(
        "warning: model `m`: app `sdnext` (SD.Next) does not list `old.ckpt` in models/Stable-diffusion, where it lists only .safetensors\n",
    );
    assert_eq!(warnings(&validate).len(), 1, "{validate}");
    env.mlib(&["plan"])
        .success()
        .stderr_has("app `sdnext` (SD.Next) does not list `old.ckpt`");

    env.model_file("src/new.safetensors", "new", 2000);
    manifest(
        &env,
        "./src/new.safetensors",
        "checkpoints",
        "",
        &["sdnext", "a1111"],
    );
    for command in ["validate", "plan"] {
        let run = env.mlib(&[command]);
        run.success();
        assert!(warnings(&run).is_empty(), "{run}");
    }
}

#[test]
fn a1111_lists_no_safetensors_upscalers() {
    let env = TestEnv::new();
    env.model_file("src/4x-UltraSharp.safetensors", "ultra", 2000);
    manifest(
        &env,
        "./src/4x-UltraSharp.safetensors",
        "upscale_models",
        "",
        &["a1111", "forge"],
    );
    let validate = env.mlib(&["validate"]);
    crate::assert_run!(env, "listing_a1111_upscaler_validate", validate);
    validate.success().stderr_has(
        "warning: model `m`: app `a1111` (A1111) does not list `4x-UltraSharp.safetensors` in models/ESRGAN, where it lists only .pt, .pth\n",
    );
    // Forge's ESRGAN folder lists .safetensors.
    assert_eq!(warnings(&validate).len(), 1, "{validate}");
    env.mlib(&["plan"])
        .success()
        .stderr_has("app `a1111` (A1111) does not list `4x-UltraSharp.safetensors`");

    env.model_file("src/4x-UltraSharp.pth", "ultra", 2000);
    manifest(
        &env,
        "./src/4x-UltraSharp.pth",
        "upscale_models",
        "",
        &["a1111", "forge"],
    );
    for command in ["validate", "plan"] {
        let run = env.mlib(&[command]);
        run.success();
        assert!(warnings(&run).is_empty(), "{run}");
    }
}

#[test]
fn folders_the_manifest_chooses_and_unknown_names_are_not_judged() {
    let env = TestEnv::new();
    env.model_file("src/4x-UltraSharp.safetensors", "ultra", 2000);
    // The app's own folder for the type: the user's call, not the preset's.
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  m:\n    source: ./src/4x-UltraSharp.safetensors\n    type: upscale_models\n  remote:\n    source: https://files.example.com/download?id=7\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    type: checkpoints\napps:\n  a1111:\n    preset: a1111\n    root: ./a1111\n    folders: { upscale_models: models/SwinIR }\n  sdnext:\n    preset: sdnext\n    root: ./sdnext\n    models: [remote]\n",
    );
    // The remote model's file name is not known before it is downloaded: skipped, silently.
    let run = env.mlib(&["validate"]);
    run.success();
    assert!(warnings(&run).is_empty(), "{run}");
}

#[test]
fn validate_json_names_model_app_and_file() {
    let env = TestEnv::new();
    env.model_file("src/detail.pt", "detail", 2000);
    manifest(&env, "./src/detail.pt", "loras", "", &["fooocus"]);
    let run = env.mlib(&["validate", "--json"]);
    run.success();
    let events = run.events();
    let warning = events
        .iter()
        .find(|e| e["type"] == "listing_warning")
        .unwrap_or_else(|| panic!("{run}"));
    assert_eq!(warning["model"], "m");
    assert_eq!(warning["app"], "fooocus");
    assert_eq!(warning["file"], "detail.pt");
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("does not list `detail.pt` in models/loras"),
        "{run}"
    );
}
