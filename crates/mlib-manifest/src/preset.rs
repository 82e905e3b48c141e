//! App presets: where each app looks for each model type, relative to the app's root.
//!
//! The tables follow the apps' own defaults (ComfyUI's `folder_paths.py`, A1111/Forge's
//! `modules/paths`, ...). Types are mlib's vocabulary, which is ComfyUI's folder names, so a
//! ComfyUI user's types work everywhere the other app has an equivalent folder. A type an app has
//! no folder for is a validation error unless the manifest gives the app a `folders` entry.

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

/// Declares a preset's types and its type → folder table from one list, so the two can't drift.
macro_rules! table {
    ($types:ident, $table:ident { $($ty:literal => $folder:literal,)* }) => {
        const $types: &[&str] = &[$($ty),*];
        const $table: &[(&str, &str)] = &[$(($ty, $folder)),*];
    };
}

table!(COMFYUI_TYPES, COMFYUI {
    "checkpoints" => "models/checkpoints",
    "configs" => "models/configs",
    "loras" => "models/loras",
    "vae" => "models/vae",
    "text_encoders" => "models/text_encoders",
    // Older name of text_encoders; ComfyUI still reads it.
    "clip" => "models/clip",
    "diffusion_models" => "models/diffusion_models",
    // Older name of diffusion_models; ComfyUI still reads it.
    "unet" => "models/unet",
    "clip_vision" => "models/clip_vision",
    "style_models" => "models/style_models",
    "embeddings" => "models/embeddings",
    "diffusers" => "models/diffusers",
    "vae_approx" => "models/vae_approx",
    "controlnet" => "models/controlnet",
    "t2i_adapter" => "models/t2i_adapter",
    "gligen" => "models/gligen",
    "upscale_models" => "models/upscale_models",
    "latent_upscale_models" => "models/latent_upscale_models",
    "hypernetworks" => "models/hypernetworks",
    "photomaker" => "models/photomaker",
    "classifiers" => "models/classifiers",
    "model_patches" => "models/model_patches",
    "audio_encoders" => "models/audio_encoders",
    // Folders that popular custom nodes register at run time.
    "ipadapter" => "models/ipadapter",
    "animatediff_models" => "models/animatediff_models",
    "animatediff_motion_lora" => "models/animatediff_motion_lora",
    "sams" => "models/sams",
    "ultralytics" => "models/ultralytics",
    "insightface" => "models/insightface",
    "instantid" => "models/instantid",
    "llm" => "models/LLM",
});

table!(A1111_TYPES, A1111 {
    "checkpoints" => "models/Stable-diffusion",
    "loras" => "models/Lora",
    "lycoris" => "models/LyCORIS",
    "vae" => "models/VAE",
    "vae_approx" => "models/VAE-approx",
    "controlnet" => "models/ControlNet",
    // A1111 reads textual-inversion embeddings from the root, not from models/.
    "embeddings" => "embeddings",
    "hypernetworks" => "models/hypernetworks",
    "upscale_models" => "models/ESRGAN",
});

table!(FORGE_TYPES, FORGE {
    "checkpoints" => "models/Stable-diffusion",
    // Forge loads UNet/DiT-only files (Flux, ...) from the checkpoint folder.
    "diffusion_models" => "models/Stable-diffusion",
    "loras" => "models/Lora",
    "lycoris" => "models/LyCORIS",
    "vae" => "models/VAE",
    "vae_approx" => "models/VAE-approx",
    "text_encoders" => "models/text_encoder",
    "controlnet" => "models/ControlNet",
    "embeddings" => "embeddings",
    "hypernetworks" => "models/hypernetworks",
    "upscale_models" => "models/ESRGAN",
});

table!(SDNEXT_TYPES, SDNEXT {
    "checkpoints" => "models/Stable-diffusion",
    "diffusion_models" => "models/UNET",
    "loras" => "models/Lora",
    "vae" => "models/VAE",
    "text_encoders" => "models/CLIP",
    "controlnet" => "models/ControlNet",
    "embeddings" => "models/embeddings",
    "hypernetworks" => "models/hypernetworks",
    "upscale_models" => "models/ESRGAN",
    "diffusers" => "models/Diffusers",
});

table!(FOOOCUS_TYPES, FOOOCUS {
    "checkpoints" => "models/checkpoints",
    "loras" => "models/loras",
    "vae" => "models/vae",
    "text_encoders" => "models/clip",
    "clip_vision" => "models/clip_vision",
    "controlnet" => "models/controlnet",
    "embeddings" => "models/embeddings",
    "upscale_models" => "models/upscale_models",
    "vae_approx" => "models/vae_approx",
});

table!(SWARMUI_TYPES, SWARMUI {
    "checkpoints" => "Models/Stable-Diffusion",
    "diffusion_models" => "Models/diffusion_models",
    "loras" => "Models/Lora",
    "vae" => "Models/VAE",
    "text_encoders" => "Models/clip",
    "clip_vision" => "Models/clip_vision",
    "controlnet" => "Models/controlnet",
    "embeddings" => "Models/Embeddings",
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
        self.table()
            .iter()
            .find(|(ty, _)| *ty == model_type)
            .map(|(_, folder)| *folder)
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

    fn table(&self) -> &'static [(&'static str, &'static str)] {
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
