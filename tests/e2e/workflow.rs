//! `mlib plan --workflow`: whether the environment's ComfyUI has every model a workflow loads.

use crate::assert_run;
use crate::support::TestEnv;

fn environment(env: &TestEnv) {
    env.model_file("src/base.safetensors", "base", 4096);
    env.model_file("src/detail.safetensors", "detail", 2048);
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\n    file: sd_xl_base_1.0.safetensors\n  detail:\n    source: ./src/detail.safetensors\n    type: loras-sdxl\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    folders:\n      loras-sdxl: models/loras/sdxl\n",
    );
    // A VAE someone put there by hand.
    env.write("ComfyUI/models/vae/sdxl_vae.safetensors", "vae");
}

const UI: &str = r#"{
  "nodes": [
    {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd_xl_base_1.0.safetensors"]},
    {"id": 10, "type": "LoraLoader", "widgets_values": ["sdxl\\detail.safetensors", 0.8, 0.8]},
    {"id": 7, "type": "VAELoader", "widgets_values": ["sdxl_vae.safetensors"]},
    {"id": 12, "type": "UpscaleModelLoader", "widgets_values": ["4x-UltraSharp.pth"],
     "properties": {"models": [{"name": "4x-UltraSharp.pth", "url": "https://example.com/4x-UltraSharp.pth", "directory": "upscale_models"}]}},
    {"id": 3, "type": "KSampler", "widgets_values": [42, "fixed", 20, 7.0]}
  ],
  "links": []
}"#;

const API: &str = r#"{
  "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
  "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "sdxl/detail.safetensors", "model": ["4", 0], "clip": ["4", 1]}},
  "7": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}}
}"#;

#[test]
fn plan_says_whether_comfyui_can_run_a_workflow_in_either_format() {
    let env = TestEnv::new();
    environment(&env);
    env.write("ui.json", UI);
    env.write("api.json", API);
    assert_run!(
        env,
        "workflow_missing",
        env.mlib(&["plan", "--workflow", "ui.json"])
    );
    env.mlib(&["plan", "--workflow", "api.json"])
        .success()
        .stderr_has("ok       loras/sdxl/detail.safetensors (node 10 LoraLoader): model `detail`")
        .stderr_has("`comfyui` can run it.");
    let json = env.mlib(&["plan", "--workflow", "ui.json", "--json"]);
    json.code(1);
    let needs: Vec<_> = json
        .events()
        .into_iter()
        .filter(|e| e["type"] == "workflow_need")
        .collect();
    assert_eq!(needs.len(), 4);
    env.write("bad.json", "{\"nodes\": 3}");
    env.mlib(&["plan", "--workflow", "bad.json"])
        .code(1)
        .stderr_has("bad.json is not a ComfyUI workflow");
}

#[test]
fn add_from_workflow_adds_what_the_workflow_gives_an_address_for() {
    let env = TestEnv::new();
    let server = mlib_testserver::TestServer::start();
    environment(&env);
    let bytes = crate::support::model_bytes("upscaler", 3000);
    let url = server.add_blob("/files/4x-UltraSharp.pth", bytes.clone());
    let sha = crate::support::sha256(&bytes);
    let workflow = UI
        .replace("https://example.com/4x-UltraSharp.pth", &url)
        .replace(
            "\"directory\": \"upscale_models\"",
            &format!("\"directory\": \"upscale_models\", \"hash\": \"{}\", \"hash_type\": \"SHA256\"", sha.to_uppercase()),
        )
        // A model the workflow gives no address for.
        .replace(
            "{\"id\": 3, \"type\": \"KSampler\"",
            "{\"id\": 8, \"type\": \"ControlNetLoader\", \"widgets_values\": [\"canny.safetensors\"]},\n    {\"id\": 3, \"type\": \"KSampler\"",
        );
    // One more, expected in a subfolder of loras.
    let extra = crate::support::model_bytes("extra", 1500);
    let extra_url = server.add_blob("/files/extra.safetensors", extra.clone());
    let workflow = workflow.replace(
        "{\"id\": 3, \"type\": \"KSampler\"",
        &format!(
            "{{\"id\": 13, \"type\": \"LoraLoaderModelOnly\", \"widgets_values\": [\"flux/extra.safetensors\", 1.0], \"properties\": {{\"models\": [{{\"name\": \"extra.safetensors\", \"url\": \"{extra_url}\", \"hash\": \"{}\", \"hash_type\": \"SHA256\"}}]}}}},\n    {{\"id\": 3, \"type\": \"KSampler\"",
            crate::support::sha256(&extra)
        ),
    );
    env.write("ui.json", workflow);
    let run = |args: &[&str]| crate::support::Run::from(env.command().args(args).output().unwrap());
    run(&["add", "--from-workflow", "ui.json"])
        .success()
        .stderr_has("warning: not added: controlnet/canny.safetensors (node 8 ControlNetLoader): the workflow gives no address for it")
        .stderr_has(&format!("+    sha256: {sha}"))
        .stderr_has("+    type: upscale_models")
        .stderr_has("+      loras-flux: \"models/loras/flux\"")
        .stderr_has("+    type: loras-flux")
        .stderr_has("Added `extra`, `4x-UltraSharp` to models.yaml.");
    run(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/loras/flux/extra.safetensors")
            .exists()
    );
    assert!(
        env.path("ComfyUI/models/upscale_models/4x-UltraSharp.pth")
            .exists()
    );
    run(&["plan", "--workflow", "ui.json"])
        .code(1)
        .stderr_has("ok       upscale_models/4x-UltraSharp.pth (node 12 UpscaleModelLoader): model `4x-UltraSharp`")
        .stderr_has("1 model file missing");
    run(&["add", "--from-workflow", "ui.json"])
        .code(1)
        .stderr_has("Nothing to add");
}

/// Found in review: a model the app's version excludes counted as present.
#[test]
fn a_model_the_apps_version_excludes_does_not_run_a_workflow() {
    let env = TestEnv::new();
    environment(&env);
    env.write("api.json", API);
    let manifest = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.manifest(
        &manifest
            .replace(
                "    type: loras-sdxl\n",
                "    type: loras-sdxl\n    requires: { comfyui: \">=0.3.40\" }\n",
            )
            .replace(
                "    root: ./ComfyUI\n",
                "    root: ./ComfyUI\n    version: \"0.3.10\"\n",
            ),
    );
    env.mlib(&["plan", "--workflow", "api.json"])
        .code(1)
        .stderr_has("loras/sdxl/detail.safetensors");
}
