//! The preset folder tables match what each app reads (REFERENCES.md §2).

mod common;

use std::path::PathBuf;

use mlib_manifest::Preset;

#[test]
fn core_types_per_app() {
    let table = [
        (
            "checkpoints",
            [
                "models/checkpoints",
                "models/Stable-diffusion",
                "models/Stable-diffusion",
                "models/Stable-diffusion",
                "models/checkpoints",
                "Models/Stable-Diffusion",
            ],
        ),
        (
            "loras",
            [
                "models/loras",
                "models/Lora",
                "models/Lora",
                "models/Lora",
                "models/loras",
                "Models/Lora",
            ],
        ),
        (
            "vae",
            [
                "models/vae",
                "models/VAE",
                "models/VAE",
                "models/VAE",
                "models/vae",
                "Models/VAE",
            ],
        ),
        (
            "controlnet",
            [
                "models/controlnet",
                "models/ControlNet",
                "models/ControlNet",
                "models/ControlNet",
                "models/controlnet",
                "Models/controlnet",
            ],
        ),
        (
            "embeddings",
            [
                "models/embeddings",
                "embeddings",
                "embeddings",
                "models/embeddings",
                "models/embeddings",
                "Models/Embeddings",
            ],
        ),
    ];
    for (ty, folders) in table {
        for (preset, folder) in Preset::ALL.iter().zip(folders) {
            assert_eq!(preset.folder(ty), Some(folder), "{preset} {ty}");
        }
    }
}

#[test]
fn app_specific_folders() {
    use Preset::*;
    let cases = [
        (ComfyUI, "text_encoders", Some("models/text_encoders")),
        (ComfyUI, "clip", Some("models/clip")),
        (ComfyUI, "diffusion_models", Some("models/diffusion_models")),
        (ComfyUI, "unet", Some("models/unet")),
        (ComfyUI, "upscale_models", Some("models/upscale_models")),
        (ComfyUI, "vae_approx", Some("models/vae_approx")),
        (ComfyUI, "ipadapter", Some("models/ipadapter")),
        (A1111, "upscale_models", Some("models/ESRGAN")),
        (A1111, "vae_approx", Some("models/VAE-approx")),
        (A1111, "text_encoders", None),
        (A1111, "diffusers", None),
        (Forge, "text_encoders", Some("models/text_encoder")),
        (SdNext, "diffusion_models", Some("models/UNET")),
        (SdNext, "text_encoders", Some("models/CLIP")),
        (SdNext, "upscale_models", Some("models/ESRGAN")),
        (Fooocus, "text_encoders", Some("models/clip")),
        (Fooocus, "clip_vision", Some("models/clip_vision")),
        (Fooocus, "upscale_models", Some("models/upscale_models")),
        (SwarmUI, "diffusion_models", Some("Models/diffusion_models")),
        (SwarmUI, "text_encoders", Some("Models/clip")),
        (SwarmUI, "clip_vision", Some("Models/clip_vision")),
        (SwarmUI, "upscale_models", None),
    ];
    for (preset, ty, folder) in cases {
        assert_eq!(preset.folder(ty), folder, "{preset} {ty}");
    }
}

#[test]
fn comfyui_knows_its_full_folder_list() {
    for ty in [
        "checkpoints",
        "configs",
        "loras",
        "vae",
        "text_encoders",
        "diffusion_models",
        "clip_vision",
        "style_models",
        "embeddings",
        "diffusers",
        "vae_approx",
        "controlnet",
        "gligen",
        "upscale_models",
        "latent_upscale_models",
        "hypernetworks",
        "photomaker",
        "classifiers",
        "model_patches",
        "audio_encoders",
        "clip",
        "unet",
        "ipadapter",
    ] {
        assert_eq!(
            Preset::ComfyUI.folder(ty),
            Some(format!("models/{ty}").as_str()),
            "{ty}"
        );
    }
}

#[test]
fn model_types_and_folders_agree() {
    for preset in Preset::ALL {
        let types = preset.model_types();
        assert!(!types.is_empty());
        for ty in types {
            let folder = preset.folder(ty).unwrap_or_else(|| panic!("{preset} {ty}"));
            assert!(
                !folder.starts_with('/') && !folder.contains(".."),
                "{folder}"
            );
            if preset == Preset::SwarmUI {
                assert!(folder.starts_with("Models/"), "{folder}");
            }
        }
        assert_eq!(preset.folder("no-such-type"), None);
    }
}

#[test]
fn presets_parse_by_their_manifest_names() {
    for preset in Preset::ALL {
        let m = common::ok(&format!(
            "version: 1\nstore: /s\napps:\n  app:\n    preset: {preset}\n    root: /r\n"
        ));
        let app = &m.apps["app"];
        assert_eq!(app.preset, Some(preset));
        assert_eq!(
            app.folder_for("loras"),
            preset.folder("loras").map(|f| PathBuf::from("/r").join(f))
        );
    }
    let names: Vec<_> = Preset::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(
        names,
        ["comfyui", "a1111", "forge", "sdnext", "fooocus", "swarmui"]
    );
}
