//! App presets: where each app looks for each model type, relative to the app's root, which
//! file extensions it lists there, and whether it descends into linked folders there.
//!
//! Every table below was read off the app's own source; the comment above each table names
//! the repository and the commit that was read, and each row's comment gives the file and line
//! that define the folder (and, where they differ, the lines that list it). Types are mlib's
//! vocabulary, which is ComfyUI's folder names, so a ComfyUI user's types work everywhere the
//! other app has an equivalent folder. A type an app has no folder for is a validation error
//! unless the manifest gives the app a `folders` entry.
//!
//! Words used in the comments:
//! - *follows links*: the app's listing descends into a symbolic link to a folder inside the
//!   type's folder (Python's `os.walk(..., followlinks=True)`, `glob(..., recursive=True)`,
//!   `os.scandir` with `is_dir()`/`stat()`, .NET's directory enumeration on Unix). *Does not
//!   follow*: a plain `os.walk(...)`, which lists such a link among the folders and never looks
//!   inside, so neither a linked folder model nor the files in it show up.
//! - *fixed names*: the app opens files it names itself (`taesd_decoder.pth`, ...) rather than
//!   listing the folder; no extension check applies.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A known app and its folder table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// ComfyUI: folders under `models/`.
    ComfyUI,
    /// AUTOMATIC1111 stable-diffusion-webui.
    A1111,
    /// stable-diffusion-webui-forge.
    Forge,
    /// SD.Next.
    SdNext,
    /// Fooocus: folders under `models/`.
    Fooocus,
    /// SwarmUI: everything under `Models/`.
    SwarmUI,
}

/// The extensions an app lists in one folder (lowercase, with the dot), or `None` where it does
/// not list by extension (folder models, fixed file names) or where that is not known.
type Exts = Option<&'static [&'static str]>;

/// One row of a preset's table.
struct Row {
    ty: &'static str,
    folder: &'static str,
    exts: Exts,
    follows: bool,
}

/// The app descends into linked folders here.
const FOLLOWS: bool = true;
/// The app lists this folder with a plain `os.walk`: a linked folder inside is not looked into.
const NO_LINKS: bool = false;

/// Declares a preset's types and its table from one list, so the two can't drift.
macro_rules! table {
    ($types:ident, $table:ident { $($ty:literal => $folder:literal, $exts:expr, $follows:expr;)* }) => {
        const $types: &[&str] = &[$($ty),*];
        const $table: &[Row] = &[$(Row { ty: $ty, folder: $folder, exts: $exts, follows: $follows }),*];
    };
}

// ComfyUI: Comfy-Org/ComfyUI at a125cd84b054 (2025-10-12), folder_paths.py. Every folder lists
// `supported_pt_extensions` (folder_paths.py:12) and follows links (`os.walk(...,
// followlinks=True)`, folder_paths.py:257). Folders added to folder_paths.py after that commit
// (latent_upscale_models, background_removal, frame_interpolation, geometry_estimation,
// optical_flow, detection) were not read at a commit here: they come from the pull requests
// that added them (Comfy-Org/ComfyUI #12747 background_removal, #13878 geometry_estimation) and
// the listings of later folder_paths.py copies, all with `supported_pt_extensions`.
const COMFY_PT: Exts = Some(&[
    ".ckpt",
    ".pt",
    ".pt2",
    ".bin",
    ".pth",
    ".safetensors",
    ".pkl",
    ".sft",
]);
// The same, plus `.gguf`: city96/ComfyUI-GGUF at 795e4515 (2025-12-18), nodes.py:19-32, lists
// `.gguf` in the diffusion_models and text_encoders folders (unet_gguf, clip_gguf). Without
// that custom node ComfyUI lists no `.gguf` at all.
const COMFY_PT_GGUF: Exts = Some(&[
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

table!(COMFYUI_TYPES, COMFYUI {
    "checkpoints" => "models/checkpoints", COMFY_PT, FOLLOWS; // folder_paths.py:23
    "configs" => "models/configs", Some(&[".yaml"]), FOLLOWS; // folder_paths.py:24
    "loras" => "models/loras", COMFY_PT, FOLLOWS; // folder_paths.py:26
    "vae" => "models/vae", COMFY_PT, FOLLOWS; // folder_paths.py:27
    "text_encoders" => "models/text_encoders", COMFY_PT_GGUF, FOLLOWS; // folder_paths.py:28
    // Older name of text_encoders; ComfyUI still reads it (folder_paths.py:28).
    "clip" => "models/clip", COMFY_PT_GGUF, FOLLOWS;
    "diffusion_models" => "models/diffusion_models", COMFY_PT_GGUF, FOLLOWS; // folder_paths.py:29
    // Older name of diffusion_models; ComfyUI still reads it (folder_paths.py:29).
    "unet" => "models/unet", COMFY_PT_GGUF, FOLLOWS;
    "clip_vision" => "models/clip_vision", COMFY_PT, FOLLOWS; // folder_paths.py:30
    "style_models" => "models/style_models", COMFY_PT, FOLLOWS; // folder_paths.py:31
    "embeddings" => "models/embeddings", COMFY_PT, FOLLOWS; // folder_paths.py:32
    // Folder models (extension `folder`), folder_paths.py:33.
    "diffusers" => "models/diffusers", None, FOLLOWS;
    "vae_approx" => "models/vae_approx", COMFY_PT, FOLLOWS; // folder_paths.py:34
    "controlnet" => "models/controlnet", COMFY_PT, FOLLOWS; // folder_paths.py:36
    // Read as a second controlnet folder (folder_paths.py:36).
    "t2i_adapter" => "models/t2i_adapter", COMFY_PT, FOLLOWS;
    "gligen" => "models/gligen", COMFY_PT, FOLLOWS; // folder_paths.py:37
    "upscale_models" => "models/upscale_models", COMFY_PT, FOLLOWS; // folder_paths.py:39
    "latent_upscale_models" => "models/latent_upscale_models", COMFY_PT, FOLLOWS; // later folder_paths.py
    "hypernetworks" => "models/hypernetworks", COMFY_PT, FOLLOWS; // folder_paths.py:43
    "photomaker" => "models/photomaker", COMFY_PT, FOLLOWS; // folder_paths.py:45
    // Extension set `{""}` (folder_paths.py:47): only names without an extension.
    "classifiers" => "models/classifiers", None, FOLLOWS;
    "model_patches" => "models/model_patches", COMFY_PT, FOLLOWS; // folder_paths.py:49
    "audio_encoders" => "models/audio_encoders", COMFY_PT, FOLLOWS; // folder_paths.py:51
    "background_removal" => "models/background_removal", COMFY_PT, FOLLOWS; // later folder_paths.py (#12747)
    "frame_interpolation" => "models/frame_interpolation", COMFY_PT, FOLLOWS; // later folder_paths.py
    "geometry_estimation" => "models/geometry_estimation", COMFY_PT, FOLLOWS; // later folder_paths.py (#13878)
    "optical_flow" => "models/optical_flow", COMFY_PT, FOLLOWS; // later folder_paths.py
    "detection" => "models/detection", COMFY_PT, FOLLOWS; // later folder_paths.py
    // Folders that popular custom nodes register at run time, listed through folder_paths.
    // cubiq/ComfyUI_IPAdapter_plus at 9d076a3d (2025-02-26), IPAdapterPlus.py:36-40.
    "ipadapter" => "models/ipadapter", COMFY_PT, FOLLOWS;
    // Kosinkadink/ComfyUI-AnimateDiff-Evolved at d8d163cd (2026-03-29),
    // animatediff/utils_model.py:343-351.
    "animatediff_models" => "models/animatediff_models", COMFY_PT, FOLLOWS;
    "animatediff_motion_lora" => "models/animatediff_motion_lora", COMFY_PT, FOLLOWS;
    // ltdrdata/ComfyUI-Impact-Pack at 727295b5 (2024-10-24), modules/impact/impact_pack.py:49.
    "sams" => "models/sams", COMFY_PT, FOLLOWS;
    // ltdrdata/ComfyUI-Impact-Subpack at 5b4e5505 (2025-07-03), modules/subpack_nodes.py:9-10
    // and 23-24: the detector loader offers `bbox/...` and `segm/...` only, so a model directly
    // in models/ultralytics is never offered (the retired type `ultralytics`).
    "ultralytics_bbox" => "models/ultralytics/bbox", COMFY_PT, FOLLOWS;
    "ultralytics_segm" => "models/ultralytics/segm", COMFY_PT, FOLLOWS;
    // Files such as ReActor's inswapper_128.onnx, opened by name.
    "insightface" => "models/insightface", None, FOLLOWS;
    // insightface's FaceAnalysis(name, root=models/insightface) loads root/models/NAME:
    // cubiq/ComfyUI_InstantID at 1ef34ef5 (2024-09-30), InstantID.py:29 and 217. Folder models
    // (antelopev2, buffalo_l) go here.
    "insightface_models" => "models/insightface/models", None, FOLLOWS;
    // cubiq/ComfyUI_InstantID, InstantID.py:22-27.
    "instantid" => "models/instantid", COMFY_PT, FOLLOWS;
    // Read by several language-model nodes (kijai/ComfyUI-Florence2 and others), each with its
    // own extensions: not checked.
    "llm" => "models/LLM", None, FOLLOWS;
});

// AUTOMATIC1111: AUTOMATIC1111/stable-diffusion-webui at c8a5322d1f97 (2024-02-26, between
// v1.8.0-RC and v1.8.0), read from that repository's history as it is merged into Forge's; the
// repository itself was too large to fetch here. Folders under models/ are `models_path`.
// `shared.walk_files` follows links (modules/util.py:38); so does `glob(..., recursive=True)`.
table!(A1111_TYPES, A1111 {
    // modules/sd_models.py:21-22; listed with .ckpt and .safetensors (sd_models.py:155).
    "checkpoints" => "models/Stable-diffusion", Some(&[".ckpt", ".safetensors"]), FOLLOWS;
    // extensions-builtin/Lora/preload.py:7, listed in networks.py:575.
    "loras" => "models/Lora", Some(&[".pt", ".ckpt", ".safetensors"]), FOLLOWS;
    // extensions-builtin/Lora/preload.py:8 (--lyco-dir-backcompat), listed in networks.py:576.
    "lycoris" => "models/LyCORIS", Some(&[".pt", ".ckpt", ".safetensors"]), FOLLOWS;
    // modules/sd_vae.py:11, globbed for .ckpt, .pt and .safetensors (sd_vae.py:79-81).
    "vae" => "models/VAE", Some(&[".ckpt", ".pt", ".safetensors"]), FOLLOWS;
    // TAESD, ComfyUI's vae_approx files: modules/sd_vae_taesd.py:94 and 113 open fixed names
    // (taesd_decoder.pth, taesdxl_decoder.pth, ...). models/VAE-approx holds only A1111's own
    // model.pt and vaeapprox-sdxl.pt (modules/sd_vae_approx.py), so it is no vae_approx folder.
    "vae_approx" => "models/VAE-taesd", Some(&[".pth"]), FOLLOWS;
    // The sd-webui-controlnet extension: Mikubill/sd-webui-controlnet at 56cec5b2 (2024-07-25),
    // scripts/global_state.py:13-14, walked with os.scandir and stat() (global_state.py:26-36).
    "controlnet" => "models/ControlNet", Some(&[".pt", ".pth", ".ckpt", ".safetensors", ".bin"]), FOLLOWS;
    // Textual inversion reads the root's embeddings/, not models/ (modules/cmd_args.py:33),
    // os.walk(followlinks=True) (textual_inversion.py:195); .pt, .bin, .safetensors and
    // embeddings saved in images (textual_inversion.py:161-179).
    "embeddings" => "embeddings", Some(&[".pt", ".bin", ".safetensors", ".png", ".webp", ".jxl", ".avif"]), FOLLOWS;
    // modules/cmd_args.py:35, globbed for **/*.pt (modules/hypernetworks/hypernetwork.py:313).
    "hypernetworks" => "models/hypernetworks", Some(&[".pt"]), FOLLOWS;
    // modules/cmd_args.py:53, listed with .pt and .pth only (modules/esrgan_model.py:15).
    // models/RealESRGAN only swaps in local copies of RealESRGAN's built-in models
    // (modules/realesrgan_model.py:18-27): other files there are never listed.
    "upscale_models" => "models/ESRGAN", Some(&[".pt", ".pth"]), FOLLOWS;
});

// Forge: lllyasviel/stable-diffusion-webui-forge at dfdcbab685e5 (2025-06-26). Folders under
// models/ are `models_path`; `shared.walk_files` follows links (modules/util.py:38).
// Hypernetworks are left out: Forge still lists models/hypernetworks, but its hypernetwork page
// is commented out (modules/ui_extra_networks.py:711-714) and nothing installs the attention
// hook that would apply one (modules/hypernetworks/hypernetwork.py:380).
const FORGE_MODULES: Exts = Some(&[".ckpt", ".pt", ".bin", ".safetensors", ".gguf"]);
table!(FORGE_TYPES, FORGE {
    // modules/sd_models.py:27-28, listed with .ckpt, .safetensors and .gguf (sd_models.py:171).
    "checkpoints" => "models/Stable-diffusion", Some(&[".ckpt", ".safetensors", ".gguf"]), FOLLOWS;
    // Forge loads UNet/DiT-only files (Flux, ...) from the checkpoint folder.
    "diffusion_models" => "models/Stable-diffusion", Some(&[".ckpt", ".safetensors", ".gguf"]), FOLLOWS;
    // extensions-builtin/sd_forge_lora/preload.py:7, listed in networks.py:131.
    "loras" => "models/Lora", Some(&[".pt", ".ckpt", ".safetensors"]), FOLLOWS;
    // Forge reads LyCORIS from the LoRA folder only: --lyco-dir-backcompat is still declared
    // (sd_forge_lora/preload.py:8) but never read, so models/LyCORIS is not listed.
    "lycoris" => "models/Lora", Some(&[".pt", ".ckpt", ".safetensors"]), FOLLOWS;
    // The "VAE / Text Encoder" dropdown: modules_forge/main_entry.py:151-152, listed by a plain
    // os.walk (main_entry.py:130-137, no followlinks) for the names at main_entry.py:146.
    "vae" => "models/VAE", FORGE_MODULES, NO_LINKS;
    "text_encoders" => "models/text_encoder", FORGE_MODULES, NO_LINKS;
    // Fixed names (taesd_decoder.pth, taef1_decoder.pth, ...), modules/sd_vae_taesd.py:120, 147.
    "vae_approx" => "models/VAE-taesd", Some(&[".pth"]), FOLLOWS;
    // modules_forge/shared.py:29; extensions-builtin/sd_forge_controlnet/lib_controlnet/
    // global_state.py:10, walked with os.scandir and stat() (global_state.py:13-25).
    "controlnet" => "models/ControlNet", Some(&[".pt", ".pth", ".ckpt", ".safetensors", ".bin", ".patch"]), FOLLOWS;
    // modules/cmd_args.py:36; modules/textual_inversion/textual_inversion.py:192 (followlinks)
    // and 155-177 for the extensions.
    "embeddings" => "embeddings", Some(&[".pt", ".bin", ".safetensors", ".png", ".webp", ".jxl", ".avif"]), FOLLOWS;
    // modules/cmd_args.py:56, listed with .pt, .pth and .safetensors (modules/esrgan_model.py:16).
    "upscale_models" => "models/ESRGAN", Some(&[".pt", ".pth", ".safetensors"]), FOLLOWS;
});

// SD.Next: vladmandic/sdnext at 058a7f0cf326 (2026-07-23), folders from the "System Paths"
// options in modules/ui_definitions.py:434-449. Its file cache follows links
// (modules/files_cache.py:154-180: `entry.is_dir()` follows them). There is no hypernetwork
// loader (only a hidden --hypernetwork-dir flag, modules/cmd_args.py:161), and models/CLIP is
// the captioning models' cache (ui_definitions.py:454, modules/caption/openclip.py:117).
table!(SDNEXT_TYPES, SDNEXT {
    // ui_definitions.py:434; .safetensors only (modules/sd_checkpoint.py:141-142).
    "checkpoints" => "models/Stable-diffusion", Some(&[".safetensors"]), FOLLOWS;
    // ui_definitions.py:440; modules/sd_unet.py:138.
    "diffusion_models" => "models/UNET", Some(&[".safetensors", ".gguf", ".pth"]), FOLLOWS;
    // ui_definitions.py:442; modules/lora/lora_load.py:230.
    "loras" => "models/Lora", Some(&[".pt", ".ckpt", ".safetensors"]), FOLLOWS;
    // ui_definitions.py:439; globbed for **/*.safetensors (and .json) in modules/sd_vae.py:84-87.
    "vae" => "models/VAE", Some(&[".safetensors", ".json"]), FOLLOWS;
    // ui_definitions.py:441; modules/model_te.py:181.
    "text_encoders" => "models/Text-encoder", Some(&[".safetensors", ".gguf"]), FOLLOWS;
    // ui_definitions.py:447 is models/control; ControlNets are listed from its controlnet/
    // subfolder, .safetensors files and folders with a config.json, not recursively
    // (modules/control/units/controlnet.py:148-151).
    "controlnet" => "models/control/controlnet", Some(&[".safetensors"]), FOLLOWS;
    // ui_definitions.py:446; .safetensors and .pt (modules/textual_inversion.py:17-20).
    "embeddings" => "models/embeddings", Some(&[".safetensors", ".pt"]), FOLLOWS;
    // ui_definitions.py:449; .pth and .pt (modules/upscaler.py:63-70).
    "upscale_models" => "models/ESRGAN", Some(&[".pth", ".pt"]), FOLLOWS;
    // ui_definitions.py:435: folders with a model_index.json, or HuggingFace cache folders
    // (modules/modelloader.py:117-140).
    "diffusers" => "models/Diffusers", None, FOLLOWS;
    // ui_definitions.py:448: YOLO detection and segmentation models, `.pt` files directly in
    // the folder (modules/detailer/helper.py:16-22).
    "ultralytics_bbox" => "models/yolo", Some(&[".pt"]), FOLLOWS;
    "ultralytics_segm" => "models/yolo", Some(&[".pt"]), FOLLOWS;
});

// Fooocus: lllyasviel/Fooocus at 59f183ab9b8e (2025-01-24), folders from modules/config.py:191-203.
// Checkpoints, LoRAs and VAEs are listed by modules/extra_utils.py:12-28, a plain os.walk (no
// followlinks), for the extensions of modules/config.py:800-802 (no `.pt`; `.fooocus.patch`
// never matches, the check compares only the last extension). The other folders are opened
// by the fixed names Fooocus downloads (modules/config.py:820-997, launch.py:100-140). Fooocus
// has no text-encoder setting.
const FOOOCUS_LISTED: Exts = Some(&[".pth", ".ckpt", ".bin", ".safetensors"]);
table!(FOOOCUS_TYPES, FOOOCUS {
    "checkpoints" => "models/checkpoints", FOOOCUS_LISTED, NO_LINKS; // config.py:191
    "loras" => "models/loras", FOOOCUS_LISTED, NO_LINKS; // config.py:192
    // config.py:193; named in prompts and opened with .safetensors, .pt or .bin
    // (ldm_patched/modules/sd1_clip.py:284-300).
    "embeddings" => "models/embeddings", Some(&[".safetensors", ".pt", ".bin"]), FOLLOWS;
    "vae_approx" => "models/vae_approx", None, FOLLOWS; // config.py:194, fixed names
    "vae" => "models/vae", FOOOCUS_LISTED, NO_LINKS; // config.py:195
    "upscale_models" => "models/upscale_models", None, FOLLOWS; // config.py:196, fixed names
    "inpaint" => "models/inpaint", None, FOLLOWS; // config.py:197, fixed names
    "controlnet" => "models/controlnet", None, FOLLOWS; // config.py:198, fixed names
    "clip_vision" => "models/clip_vision", None, FOLLOWS; // config.py:199, fixed names
    // config.py:200: the folder model models/prompt_expansion/fooocus_expansion.
    "prompt_expansion" => "models/prompt_expansion", None, FOLLOWS;
    "safety_checker" => "models/safety_checker", None, FOLLOWS; // config.py:202, fixed names
    "sams" => "models/sam", None, FOLLOWS; // config.py:203, fixed names
});

// SwarmUI: mcmonkeyprojects/SwarmUI at 062407c7bb48 (2026-08-21). Its own model lists
// (src/Core/Program.cs:499-513, folders from src/Core/Settings.cs:316-334) take the extensions
// of src/Text2Image/T2IModel.cs:55-58 and recurse into every folder, links included
// (src/Text2Image/T2IModelHandler.cs:762-789; .NET follows linked folders on Unix). Folders
// only its ComfyUI backend uses are listed by ComfyUIBackendExtension.InternalListModelsFor
// (src/BuiltinExtensions/ComfyUIBackend/ComfyUIBackendExtension.cs:150-166) with the same
// extensions. `.gguf` is offered only where a GGUF loader exists (the UNet and text-encoder
// loaders, WorkflowGeneratorModelSupport.cs:819-863 and 968); a `.gguf` in Stable-Diffusion is
// refused with "need to go in the special 'diffusion_models' folder"
// (WorkflowGeneratorModelSupport.cs:1114-1116).
const SWARM: Exts = Some(&[".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin"]);
const SWARM_GGUF: Exts = Some(&[
    ".safetensors",
    ".sft",
    ".ckpt",
    ".pt",
    ".pth",
    ".bin",
    ".gguf",
]);
const SWARM_ENGINE: Exts = Some(&[
    ".safetensors",
    ".sft",
    ".ckpt",
    ".pt",
    ".pth",
    ".bin",
    ".engine",
]);
const SWARM_ENGINE_GGUF: Exts = Some(&[
    ".safetensors",
    ".sft",
    ".ckpt",
    ".pt",
    ".pth",
    ".bin",
    ".engine",
    ".gguf",
]);
table!(SWARMUI_TYPES, SWARMUI {
    "checkpoints" => "Models/Stable-Diffusion", SWARM_ENGINE, FOLLOWS; // Settings.cs:316
    // Program.cs:499-501: read into the same model list as Stable-Diffusion.
    "diffusion_models" => "Models/diffusion_models", SWARM_ENGINE_GGUF, FOLLOWS;
    "unet" => "Models/unet", SWARM_ENGINE_GGUF, FOLLOWS; // Program.cs:501
    "loras" => "Models/Lora", SWARM, FOLLOWS; // Settings.cs:319
    "vae" => "Models/VAE", SWARM, FOLLOWS; // Settings.cs:322
    "embeddings" => "Models/Embeddings", SWARM, FOLLOWS; // Settings.cs:325
    "controlnet" => "Models/controlnet", SWARM, FOLLOWS; // Settings.cs:328
    "model_patches" => "Models/model_patches", SWARM, FOLLOWS; // Settings.cs:328
    // Settings.cs:331: text_encoders first (where downloads go), then clip.
    "text_encoders" => "Models/text_encoders", SWARM_GGUF, FOLLOWS;
    "clip" => "Models/clip", SWARM_GGUF, FOLLOWS;
    "clip_vision" => "Models/clip_vision", SWARM, FOLLOWS; // Settings.cs:334
    // ComfyUIBackendExtension.cs:129-133.
    "upscale_models" => "Models/upscale_models", SWARM, FOLLOWS;
    "latent_upscale_models" => "Models/latent_upscale_models", SWARM, FOLLOWS;
    "style_models" => "Models/style_models", SWARM, FOLLOWS;
    "gligen" => "Models/gligen", SWARM, FOLLOWS;
    // The YOLO detection and segmentation models of `<segment:yolo-...>`, one folder.
    "ultralytics_bbox" => "Models/yolov8", SWARM, FOLLOWS;
    "ultralytics_segm" => "Models/yolov8", SWARM, FOLLOWS;
    // Passed to the ComfyUI backend as its ipadapter folder (ComfyUISelfStartBackend.cs:74).
    "ipadapter" => "Models/ipadapter", SWARM, FOLLOWS;
});

impl Preset {
    /// Every preset, in the order the docs list them.
    pub const ALL: [Preset; 6] = [
        Preset::ComfyUI,
        Preset::A1111,
        Preset::Forge,
        Preset::SdNext,
        Preset::Fooocus,
        Preset::SwarmUI,
    ];

    /// The folder (relative to the app's root, `/`-separated) for `model_type`, if the app has one.
    pub fn folder(&self, model_type: &str) -> Option<&'static str> {
        self.row(model_type).map(|row| row.folder)
    }

    /// The model types this preset has a folder for.
    pub fn model_types(&self) -> &'static [&'static str] {
        match self {
            Preset::ComfyUI => COMFYUI_TYPES,
            Preset::A1111 => A1111_TYPES,
            Preset::Forge => FORGE_TYPES,
            Preset::SdNext => SDNEXT_TYPES,
            Preset::Fooocus => FOOOCUS_TYPES,
            Preset::SwarmUI => SWARMUI_TYPES,
        }
    }

    /// The extensions (lowercase, with the dot) the app lists in `model_type`'s folder, or
    /// `None` where it has no folder for the type or does not list it by extension: folder
    /// models (`diffusers`), folders whose files the app opens by fixed names (Fooocus's
    /// `upscale_models`, ...), and folders read by several custom nodes with their own rules.
    pub fn listed_extensions(&self, model_type: &str) -> Option<&'static [&'static str]> {
        self.row(model_type)?.exts
    }

    /// Whether the app lists a file with extension `ext` (`"gguf"` or `".gguf"`, any case) in
    /// `model_type`'s folder: `Some(false)` when the file would be linked where the app never
    /// shows it, `None` when that is not known (see [`Preset::listed_extensions`]).
    pub fn lists_extension(&self, model_type: &str, ext: &str) -> Option<bool> {
        let exts = self.listed_extensions(model_type)?;
        let ext = ext.trim_start_matches('.');
        let exact = self.extension_case_matters(model_type);
        Some(exts.iter().any(|listed| {
            let listed = &listed[1..];
            if exact {
                listed == ext
            } else {
                listed.eq_ignore_ascii_case(ext)
            }
        }))
    }

    /// Where the app compares extensions as written (`x.SafeTensors` is not listed). Forge at
    /// dfdcbab6: the VAE / text-encoder dropdown tests `file.endswith(ext)`
    /// (modules_forge/main_entry.py:134) and ControlNet `splitext(...)[1] in CN_MODEL_EXTS`
    /// (extensions-builtin/sd_forge_controlnet/lib_controlnet/global_state.py:21); everywhere
    /// else in the tables the apps lower-case the name first or mlib does not know.
    fn extension_case_matters(&self, model_type: &str) -> bool {
        matches!(
            (self, model_type),
            (Preset::Forge, "vae" | "text_encoders" | "controlnet")
        )
    }

    /// Whether the app descends into a symbolic link to a folder that sits inside
    /// `model_type`'s folder.
    ///
    /// `false` where the app lists the folder with a plain `os.walk` (no `followlinks=True`):
    /// it sees such a link as a folder but never looks inside, so a folder model linked as one
    /// symlink (a diffusers folder, a subfolder of LoRAs) is invisible to it. There, linking a
    /// folder model needs a real folder whose files are links (a link farm). Today that is
    /// Fooocus's `checkpoints`, `loras` and `vae` and Forge's `vae` and `text_encoders` (its
    /// "VAE / Text Encoder" dropdown).
    ///
    /// `true` everywhere else, and for a type the preset has no folder for (a `folders:` entry
    /// is the user's own folder: nothing is known against links there). Links to files are
    /// listed by every app, and so is the type's folder itself when it is a link (each app
    /// opens its folders by path, which follows the link): this is only about links to
    /// folders *inside* the type's folder.
    pub fn follows_linked_folders(&self, model_type: &str) -> bool {
        self.row(model_type).is_none_or(|row| row.follows)
    }

    /// Why a type this preset once had (or that another preset has) is not in its table, with
    /// what to use instead; `None` when there is nothing more to say than "unknown type".
    pub fn retired_type(&self, model_type: &str) -> Option<&'static str> {
        Some(match (self, model_type) {
            (_, "ultralytics") if self.folder("ultralytics_bbox").is_some() => {
                "type `ultralytics` is now `ultralytics_bbox` (detection models) or \
                 `ultralytics_segm` (segmentation models): ComfyUI's detector loader offers \
                 only models/ultralytics/bbox and models/ultralytics/segm"
            }
            (Preset::Forge, "hypernetworks") => {
                "Forge does not load hypernetworks (its hypernetwork page is disabled and \
                 nothing applies one)"
            }
            (Preset::SdNext, "hypernetworks") => "SD.Next has no hypernetwork loader",
            (Preset::Fooocus, "text_encoders" | "clip") => "Fooocus has no text-encoder setting",
            _ => return None,
        })
    }

    /// The app's repository and the commit its table was read from.
    pub fn checked_against(&self) -> &'static str {
        match self {
            Preset::ComfyUI => "Comfy-Org/ComfyUI@a125cd84b054 (2025-10-12)",
            Preset::A1111 => "AUTOMATIC1111/stable-diffusion-webui@c8a5322d1f97 (2024-02-26)",
            Preset::Forge => "lllyasviel/stable-diffusion-webui-forge@dfdcbab685e5 (2025-06-26)",
            Preset::SdNext => "vladmandic/sdnext@058a7f0cf326 (2026-07-23)",
            Preset::Fooocus => "lllyasviel/Fooocus@59f183ab9b8e (2025-01-24)",
            Preset::SwarmUI => "mcmonkeyprojects/SwarmUI@062407c7bb48 (2026-08-21)",
        }
    }

    /// The app's name as people write it.
    pub fn display_name(&self) -> &'static str {
        match self {
            Preset::ComfyUI => "ComfyUI",
            Preset::A1111 => "A1111",
            Preset::Forge => "Forge",
            Preset::SdNext => "SD.Next",
            Preset::Fooocus => "Fooocus",
            Preset::SwarmUI => "SwarmUI",
        }
    }

    /// The name used in manifests.
    pub fn as_str(&self) -> &'static str {
        match self {
            Preset::ComfyUI => "comfyui",
            Preset::A1111 => "a1111",
            Preset::Forge => "forge",
            Preset::SdNext => "sdnext",
            Preset::Fooocus => "fooocus",
            Preset::SwarmUI => "swarmui",
        }
    }

    fn row(&self, model_type: &str) -> Option<&'static Row> {
        self.table().iter().find(|row| row.ty == model_type)
    }

    fn table(&self) -> &'static [Row] {
        match self {
            Preset::ComfyUI => COMFYUI,
            Preset::A1111 => A1111,
            Preset::Forge => FORGE,
            Preset::SdNext => SDNEXT,
            Preset::Fooocus => FOOOCUS,
            Preset::SwarmUI => SWARMUI,
        }
    }
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
