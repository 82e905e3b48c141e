//! `mlib add`: one entry added at the end of `models:`, the rest of the file as it was.

use mlib_testserver::TestServer;

use crate::assert_run;
use crate::support::{Run, TestEnv, model_bytes, safetensors};

const MANIFEST: &str = "# The workshop's models.\nversion: 1\nstore: ./store\n\nmodels:\n  # SDXL base, from the team share\n  base:\n    source: ./src/base.safetensors   # pinned below\n    type: checkpoints\n    tags: [comfyui]\n\n# Apps\napps:\n  comfyui:\n    preset: comfyui\n    root: ./ComfyUI\n    models: [comfyui]\n";

/// A safetensors header of an SDXL LoRA (kohya names), with zeroed weights.
fn sdxl_lora(env: &TestEnv, rel: &str) {
    safetensors(
        env,
        rel,
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
        &[],
    );
}

#[test]
fn add_a_local_file_keeps_the_rest_of_the_manifest_and_reads_its_header() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 4096);
    env.write("models.yaml", MANIFEST);
    sdxl_lora(&env, "downloads/Detail Tweaker XL.safetensors");

    assert_run!(
        env,
        "add_dry_run",
        env.mlib(&[
            "add",
            "downloads/Detail Tweaker XL.safetensors",
            "--app",
            "comfyui",
            "--dry-run"
        ])
    );
    assert_eq!(
        std::fs::read_to_string(env.path("models.yaml")).unwrap(),
        MANIFEST
    );

    env.mlib(&[
        "add",
        "downloads/Detail Tweaker XL.safetensors",
        "--app",
        "comfyui",
    ])
    .success()
    .stderr_has("Added `Detail-Tweaker-XL` to models.yaml.");
    let text = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    assert!(
        text.starts_with(MANIFEST.split("\n# Apps").next().unwrap()),
        "{text}"
    );
    assert!(
        text.ends_with(&MANIFEST[MANIFEST.find("\n# Apps").unwrap()..]),
        "{text}"
    );
    env.mlib(&["apply", "--auto-approve"]).success();
    assert!(
        env.path("ComfyUI/models/loras/Detail Tweaker XL.safetensors")
            .exists()
    );

    // Again: the name is taken.
    env.mlib(&["add", "downloads/Detail Tweaker XL.safetensors"])
        .code(1)
        .stderr_has("already has a model `Detail-Tweaker-XL`: choose another name with --name");
    // A file with no header to read needs --type.
    env.model_file("downloads/old.ckpt", "old", 100);
    env.mlib(&["add", "downloads/old.ckpt"])
        .code(1)
        .stderr_has("say which folder it goes to with --type");
    // A type the app has no folder for makes the manifest invalid: nothing is written.
    env.mlib(&[
        "add",
        "downloads/old.ckpt",
        "--type",
        "no_such_type",
        "--app",
        "comfyui",
    ])
    .code(1)
    .stderr_has("nothing was written");
    env.write(
        "downloads/page.safetensors",
        "<!DOCTYPE html><html>Not found</html>",
    );
    env.mlib(&["add", "downloads/page.safetensors"])
        .code(1)
        .stderr_has("is not a model: it looks like an HTML page");
}

#[test]
fn add_a_copied_huggingface_address_pins_it_in_the_lock() {
    let env = TestEnv::new();
    let server = TestServer::start();
    env.model_file("src/base.safetensors", "base", 4096);
    env.write("models.yaml", MANIFEST);
    server
        .hf_repo("stabilityai/sdxl-vae")
        .lfs("sdxl_vae.safetensors", model_bytes("vae", 3000))
        .publish();
    let add = |args: &[&str]| {
        Run::from(
            env.command()
                .args(args)
                .env("HF_ENDPOINT", server.url())
                .env("CIVITAI_ENDPOINT", server.url())
                .output()
                .unwrap(),
        )
    };
    add(&[
        "add",
        "https://huggingface.co/stabilityai/sdxl-vae/blob/main/sdxl_vae.safetensors",
        "--type",
        "vae",
    ])
    .success()
    .stderr_has("+    source: \"hf://stabilityai/sdxl-vae/sdxl_vae.safetensors\"")
    .stderr_has("resolved sdxl_vae");
    let lock = std::fs::read_to_string(env.path("models.lock")).unwrap();
    assert!(lock.contains("sdxl_vae"), "{lock}");
    add(&[
        "add",
        "https://civitai.com/models/122359/detail-tweaker-xl",
        "--type",
        "loras",
    ])
    .code(1)
    .stderr_has("choose a version on the page");
    // Resolving fails: the manifest is left as it was.
    let before = std::fs::read_to_string(env.path("models.yaml")).unwrap();
    add(&["add", "hf://nobody/nothing/x.safetensors", "--type", "vae"]).code(1);
    assert_eq!(
        std::fs::read_to_string(env.path("models.yaml")).unwrap(),
        before
    );
}

#[test]
fn add_a_civitai_version_takes_its_name_type_and_family_from_civitai() {
    let env = TestEnv::new();
    let server = TestServer::start();
    env.model_file("src/base.safetensors", "base", 4096);
    env.write("models.yaml", MANIFEST);
    let mut version = mlib_testserver::CivitaiVersion::new(122359, 135867)
        .model_type("LORA")
        .base_model("SDXL 1.0")
        .file(1, "add_detail.safetensors", model_bytes("detail", 2048))
        .primary(1);
    version.model_name = "Detail Tweaker XL".into();
    server.civitai_version(version);
    Run::from(
        env.command()
            .args([
                "add",
                "https://civitai.com/models/122359/detail-tweaker-xl?modelVersionId=135867",
                "--app",
                "comfyui",
            ])
            .env("CIVITAI_ENDPOINT", server.url())
            .output()
            .unwrap(),
    )
    .success()
    .stderr_has("+  Detail-Tweaker-XL:")
    .stderr_has("+    source: \"civitai:122359@135867\"")
    .stderr_has("+    type: loras")
    .stderr_has("+    family: sdxl")
    .stderr_has("resolved Detail-Tweaker-XL");
}

/// Found in review: a name YAML reads as another key made add panic.
#[test]
fn add_refuses_a_name_the_manifest_cannot_hold() {
    let env = TestEnv::new();
    env.model_file("src/base.safetensors", "base", 4096);
    env.write("models.yaml", MANIFEST);
    env.model_file("downloads/x.ckpt", "x", 100);
    for bad in ["foo ", "'q'", "\"z\""] {
        env.mlib(&["add", "downloads/x.ckpt", "--type", "loras", "--name", bad])
            .code(1)
            .stderr_has("--name");
    }
    assert_eq!(
        std::fs::read_to_string(env.path("models.yaml")).unwrap(),
        MANIFEST
    );
}
