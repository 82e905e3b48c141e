//! `mlib inspect`: what files are, from their headers, without a manifest.

use crate::assert_run;
use crate::support::{TestEnv, safetensors};

#[test]
fn inspect_tells_kinds_and_families_and_names_error_pages() {
    let env = TestEnv::new();
    safetensors(
        &env,
        "loras/detail.safetensors",
        &[
            (
                "lora_unet_input_blocks_4_1_transformer_blocks_0_attn2_to_k.lora_down.weight",
                &[8, 2048],
            ),
            (
                "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_up.weight",
                &[3072, 8],
            ),
        ],
        &[
            ("ss_base_model_version", "sdxl_base_v1-0"),
            ("ss_network_dim", "8"),
        ],
    );
    safetensors(
        &env,
        "unet/flux1-dev.safetensors",
        &[
            ("double_blocks.0.img_attn.qkv.weight", &[64, 16]),
            ("guidance_in.in_layer.weight", &[16, 16]),
        ],
        &[],
    );
    env.write(
        "loras/broken.safetensors",
        "<!DOCTYPE html><html>Too many requests</html>",
    );
    assert_run!(
        env,
        "inspect",
        env.mlib(&[
            "inspect",
            "loras/detail.safetensors",
            "unet/flux1-dev.safetensors",
            "loras/broken.safetensors",
        ])
    );
    let json = env.mlib(&["inspect", "--json", "loras/detail.safetensors"]);
    json.success();
    let event = &json.events()[1];
    assert_eq!(event["kind"], "lora");
    assert_eq!(event["family"], "sdxl");
    assert_eq!(event["metadata"]["ss_network_dim"], "8");
    env.mlib(&["inspect", "nowhere.safetensors"])
        .code(1)
        .stderr_has("nowhere.safetensors: ");
}

#[test]
fn validate_warns_when_families_do_not_fit() {
    let env = TestEnv::new();
    // An SD 1.5 checkpoint, and an SDXL LoRA declared as SD 1.5.
    safetensors(
        &env,
        "src/base.safetensors",
        &[(
            "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight",
            &[320, 768],
        )],
        &[],
    );
    safetensors(
        &env,
        "src/detail.safetensors",
        &[(
            "lora_te1_text_model_encoder_layers_0_mlp_fc1.lora_down.weight",
            &[8, 768],
        )],
        &[],
    );
    env.manifest(
        "version: 1\nstore: ./store\nmodels:\n  base:\n    source: ./src/base.safetensors\n    type: checkpoints\n  detail:\n    source: ./src/detail.safetensors\n    type: loras\n    family: sd15\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n",
    );
    env.mlib(&["validate"])
        .success()
        .stderr_has("warning: model `detail` is declared `family: sd15`, but its header says sdxl");
    // Declared right, it is the app that does not fit.
    let yaml = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    env.write("models.yaml", yaml.replace("family: sd15", "family: sdxl"));
    let run = env.mlib(&["validate"]);
    run.success().stderr_has(
        "warning: app `comfyui` gets LoRA `detail` (sdxl), but none of its checkpoints is sdxl (sd15): it will not work with them",
    );
    assert!(!run.stderr.contains("header says"), "{run}");
}
