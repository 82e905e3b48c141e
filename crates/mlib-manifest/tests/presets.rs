//! The preset tables match what each app reads (each table's comment in src/preset.rs
//! names the app's source it was read from).

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
                "models/control/controlnet",
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

/// One preset's whole table, row by row: type, folder, the extensions the app lists there
/// (`None`: not listed by extension), whether it descends into linked folders there.
type Table<'a> = &'a [(&'a str, &'a str, Option<&'static [&'static str]>, bool)];

const PT: Option<&[&str]> = Some(&[
    ".ckpt",
    ".pt",
    ".pt2",
    ".bin",
    ".pth",
    ".safetensors",
    ".pkl",
    ".sft",
]);
const PT_GGUF: Option<&[&str]> = Some(&[
    ".ckpt",
    ".pt",
    ".pt2",
    ".bin",
    ".pth",
    ".safetensors",
    ".pkl",
    ".sft",
    ".gguf",
]);

/// Holds `preset`'s table exactly: the same types in the same order, and each row's data.
#[track_caller]
fn holds(preset: Preset, table: Table<'_>) {
    let types: Vec<&str> = table.iter().map(|row| row.0).collect();
    assert_eq!(preset.model_types(), types.as_slice(), "{preset}");
    for &(ty, folder, exts, follows) in table {
        assert_eq!(preset.folder(ty), Some(folder), "{preset} {ty}");
        assert_eq!(preset.listed_extensions(ty), exts, "{preset} {ty}");
        assert_eq!(preset.follows_linked_folders(ty), follows, "{preset} {ty}");
    }
}

#[test]
fn comfyui_table() {
    holds(
        Preset::ComfyUI,
        &[
            ("checkpoints", "models/checkpoints", PT, true),
            ("configs", "models/configs", Some(&[".yaml"]), true),
            ("loras", "models/loras", PT, true),
            ("vae", "models/vae", PT, true),
            ("text_encoders", "models/text_encoders", PT_GGUF, true),
            ("clip", "models/clip", PT_GGUF, true),
            ("diffusion_models", "models/diffusion_models", PT_GGUF, true),
            ("unet", "models/unet", PT_GGUF, true),
            ("clip_vision", "models/clip_vision", PT, true),
            ("style_models", "models/style_models", PT, true),
            ("embeddings", "models/embeddings", PT, true),
            ("diffusers", "models/diffusers", None, true),
            ("vae_approx", "models/vae_approx", PT, true),
            ("controlnet", "models/controlnet", PT, true),
            ("t2i_adapter", "models/t2i_adapter", PT, true),
            ("gligen", "models/gligen", PT, true),
            ("upscale_models", "models/upscale_models", PT, true),
            (
                "latent_upscale_models",
                "models/latent_upscale_models",
                PT,
                true,
            ),
            ("hypernetworks", "models/hypernetworks", PT, true),
            ("photomaker", "models/photomaker", PT, true),
            ("classifiers", "models/classifiers", None, true),
            ("model_patches", "models/model_patches", PT, true),
            ("audio_encoders", "models/audio_encoders", PT, true),
            ("background_removal", "models/background_removal", PT, true),
            (
                "frame_interpolation",
                "models/frame_interpolation",
                PT,
                true,
            ),
            (
                "geometry_estimation",
                "models/geometry_estimation",
                PT,
                true,
            ),
            ("optical_flow", "models/optical_flow", PT, true),
            ("detection", "models/detection", PT, true),
            ("ipadapter", "models/ipadapter", PT, true),
            ("animatediff_models", "models/animatediff_models", PT, true),
            (
                "animatediff_motion_lora",
                "models/animatediff_motion_lora",
                PT,
                true,
            ),
            ("sams", "models/sams", PT, true),
            ("ultralytics_bbox", "models/ultralytics/bbox", PT, true),
            ("ultralytics_segm", "models/ultralytics/segm", PT, true),
            ("insightface", "models/insightface", None, true),
            (
                "insightface_models",
                "models/insightface/models",
                None,
                true,
            ),
            ("instantid", "models/instantid", PT, true),
            ("llm", "models/LLM", None, true),
        ],
    );
}

#[test]
fn a1111_table() {
    let lora: Option<&[&str]> = Some(&[".pt", ".ckpt", ".safetensors"]);
    holds(
        Preset::A1111,
        &[
            (
                "checkpoints",
                "models/Stable-diffusion",
                Some(&[".ckpt", ".safetensors"]),
                true,
            ),
            ("loras", "models/Lora", lora, true),
            ("lycoris", "models/LyCORIS", lora, true),
            (
                "vae",
                "models/VAE",
                Some(&[".ckpt", ".pt", ".safetensors"]),
                true,
            ),
            ("vae_approx", "models/VAE-taesd", Some(&[".pth"]), true),
            (
                "controlnet",
                "models/ControlNet",
                Some(&[".pt", ".pth", ".ckpt", ".safetensors", ".bin"]),
                true,
            ),
            (
                "embeddings",
                "embeddings",
                Some(&[
                    ".pt",
                    ".bin",
                    ".safetensors",
                    ".png",
                    ".webp",
                    ".jxl",
                    ".avif",
                ]),
                true,
            ),
            (
                "hypernetworks",
                "models/hypernetworks",
                Some(&[".pt"]),
                true,
            ),
            (
                "upscale_models",
                "models/ESRGAN",
                Some(&[".pt", ".pth"]),
                true,
            ),
        ],
    );
}

#[test]
fn forge_table() {
    let checkpoint: Option<&[&str]> = Some(&[".ckpt", ".safetensors", ".gguf"]);
    let lora: Option<&[&str]> = Some(&[".pt", ".ckpt", ".safetensors"]);
    let modules: Option<&[&str]> = Some(&[".ckpt", ".pt", ".bin", ".safetensors", ".gguf"]);
    holds(
        Preset::Forge,
        &[
            ("checkpoints", "models/Stable-diffusion", checkpoint, true),
            (
                "diffusion_models",
                "models/Stable-diffusion",
                checkpoint,
                true,
            ),
            ("loras", "models/Lora", lora, true),
            ("lycoris", "models/Lora", lora, true),
            ("vae", "models/VAE", modules, false),
            ("text_encoders", "models/text_encoder", modules, false),
            ("vae_approx", "models/VAE-taesd", Some(&[".pth"]), true),
            (
                "controlnet",
                "models/ControlNet",
                Some(&[".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".patch"]),
                true,
            ),
            (
                "embeddings",
                "embeddings",
                Some(&[
                    ".pt",
                    ".bin",
                    ".safetensors",
                    ".png",
                    ".webp",
                    ".jxl",
                    ".avif",
                ]),
                true,
            ),
            (
                "upscale_models",
                "models/ESRGAN",
                Some(&[".pt", ".pth", ".safetensors"]),
                true,
            ),
        ],
    );
}

#[test]
fn sdnext_table() {
    holds(
        Preset::SdNext,
        &[
            (
                "checkpoints",
                "models/Stable-diffusion",
                Some(&[".safetensors"]),
                true,
            ),
            (
                "diffusion_models",
                "models/UNET",
                Some(&[".safetensors", ".gguf", ".pth"]),
                true,
            ),
            (
                "loras",
                "models/Lora",
                Some(&[".pt", ".ckpt", ".safetensors"]),
                true,
            ),
            ("vae", "models/VAE", Some(&[".safetensors", ".json"]), true),
            (
                "text_encoders",
                "models/Text-encoder",
                Some(&[".safetensors", ".gguf"]),
                true,
            ),
            (
                "controlnet",
                "models/control/controlnet",
                Some(&[".safetensors"]),
                true,
            ),
            (
                "embeddings",
                "models/embeddings",
                Some(&[".safetensors", ".pt"]),
                true,
            ),
            (
                "upscale_models",
                "models/ESRGAN",
                Some(&[".pth", ".pt"]),
                true,
            ),
            ("diffusers", "models/Diffusers", None, true),
            ("ultralytics_bbox", "models/yolo", Some(&[".pt"]), true),
            ("ultralytics_segm", "models/yolo", Some(&[".pt"]), true),
        ],
    );
}

#[test]
fn fooocus_table() {
    let listed: Option<&[&str]> = Some(&[".pth", ".ckpt", ".bin", ".safetensors"]);
    holds(
        Preset::Fooocus,
        &[
            ("checkpoints", "models/checkpoints", listed, false),
            ("loras", "models/loras", listed, false),
            (
                "embeddings",
                "models/embeddings",
                Some(&[".safetensors", ".pt", ".bin"]),
                true,
            ),
            ("vae_approx", "models/vae_approx", None, true),
            ("vae", "models/vae", listed, false),
            ("upscale_models", "models/upscale_models", None, true),
            ("inpaint", "models/inpaint", None, true),
            ("controlnet", "models/controlnet", None, true),
            ("clip_vision", "models/clip_vision", None, true),
            ("prompt_expansion", "models/prompt_expansion", None, true),
            ("safety_checker", "models/safety_checker", None, true),
            ("sams", "models/sam", None, true),
        ],
    );
}

#[test]
fn swarmui_table() {
    let swarm: Option<&[&str]> = Some(&[".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin"]);
    let gguf: Option<&[&str]> = Some(&[
        ".safetensors",
        ".sft",
        ".ckpt",
        ".pt",
        ".pth",
        ".bin",
        ".gguf",
    ]);
    let engine: Option<&[&str]> = Some(&[
        ".safetensors",
        ".sft",
        ".ckpt",
        ".pt",
        ".pth",
        ".bin",
        ".engine",
    ]);
    let engine_gguf: Option<&[&str]> = Some(&[
        ".safetensors",
        ".sft",
        ".ckpt",
        ".pt",
        ".pth",
        ".bin",
        ".engine",
        ".gguf",
    ]);
    holds(
        Preset::SwarmUI,
        &[
            ("checkpoints", "Models/Stable-Diffusion", engine, true),
            (
                "diffusion_models",
                "Models/diffusion_models",
                engine_gguf,
                true,
            ),
            ("unet", "Models/unet", engine_gguf, true),
            ("loras", "Models/Lora", swarm, true),
            ("vae", "Models/VAE", swarm, true),
            ("embeddings", "Models/Embeddings", swarm, true),
            ("controlnet", "Models/controlnet", swarm, true),
            ("model_patches", "Models/model_patches", swarm, true),
            ("text_encoders", "Models/text_encoders", gguf, true),
            ("clip", "Models/clip", gguf, true),
            ("clip_vision", "Models/clip_vision", swarm, true),
            ("upscale_models", "Models/upscale_models", swarm, true),
            (
                "latent_upscale_models",
                "Models/latent_upscale_models",
                swarm,
                true,
            ),
            ("style_models", "Models/style_models", swarm, true),
            ("gligen", "Models/gligen", swarm, true),
            ("ultralytics_bbox", "Models/yolov8", swarm, true),
            ("ultralytics_segm", "Models/yolov8", swarm, true),
            ("ipadapter", "Models/ipadapter", swarm, true),
        ],
    );
}

#[test]
fn extensions_are_matched_with_or_without_the_dot_in_any_case() {
    use Preset::*;
    for (preset, ty, ext, listed) in [
        (ComfyUI, "checkpoints", "sft", Some(true)),
        (ComfyUI, "checkpoints", ".SafeTensors", Some(true)),
        (ComfyUI, "checkpoints", "gguf", Some(false)),
        (ComfyUI, "diffusion_models", ".gguf", Some(true)),
        (ComfyUI, "diffusers", "safetensors", None),
        (ComfyUI, "no-such-type", "safetensors", None),
        (A1111, "checkpoints", "sft", Some(false)),
        (A1111, "upscale_models", "safetensors", Some(false)),
        (A1111, "upscale_models", "pth", Some(true)),
        (Forge, "upscale_models", "safetensors", Some(true)),
        (Forge, "vae", "sft", Some(false)),
        // Forge's VAE and ControlNet lists compare extensions as written (found in review).
        (Forge, "vae", "SafeTensors", Some(false)),
        (Forge, "vae", ".safetensors", Some(true)),
        (Forge, "controlnet", "PTH", Some(false)),
        (Forge, "loras", "SafeTensors", Some(true)),
        (SdNext, "checkpoints", "ckpt", Some(false)),
        (Fooocus, "loras", "pt", Some(false)),
        (Fooocus, "embeddings", "pt", Some(true)),
        (Fooocus, "upscale_models", "pt", None),
        (SwarmUI, "checkpoints", "gguf", Some(false)),
        (SwarmUI, "diffusion_models", "gguf", Some(true)),
        (SwarmUI, "loras", "sft", Some(true)),
    ] {
        assert_eq!(
            preset.lists_extension(ty, ext),
            listed,
            "{preset} {ty} {ext}"
        );
    }
}

#[test]
fn a_type_without_a_folder_is_not_known_to_refuse_links() {
    for preset in Preset::ALL {
        assert!(preset.follows_linked_folders("no-such-type"), "{preset}");
    }
}

#[test]
fn retired_types_say_what_to_use() {
    use Preset::*;
    for preset in [ComfyUI, SdNext, SwarmUI] {
        assert_eq!(preset.folder("ultralytics"), None, "{preset}");
        let why = preset.retired_type("ultralytics").unwrap();
        assert!(why.contains("ultralytics_bbox"), "{why}");
    }
    assert_eq!(A1111.retired_type("ultralytics"), None);
    assert_eq!(Forge.folder("hypernetworks"), None);
    assert!(Forge.retired_type("hypernetworks").is_some());
    assert_eq!(SdNext.folder("hypernetworks"), None);
    assert!(SdNext.retired_type("hypernetworks").is_some());
    assert_eq!(Fooocus.folder("text_encoders"), None);
    assert!(Fooocus.retired_type("text_encoders").is_some());
    assert_eq!(ComfyUI.retired_type("loras"), None);
    for preset in Preset::ALL {
        assert!(preset.checked_against().contains('@'), "{preset}");
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
