//! Kind and family from tensor names and shapes.
//!
//! Each rule names the tensor that decides it. Names follow the layouts that model files are
//! published in: the original (Stability's `model.diffusion_model.*`, Black Forest Labs'
//! `double_blocks.*`), diffusers (`down_blocks.*`, `transformer_blocks.*`), and kohya's LoRA
//! naming (`lora_unet_*`, `lora_te*_*`).

use serde::Serialize;

/// What a model file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A full checkpoint: denoiser with its VAE (and usually text encoders).
    Checkpoint,
    /// A denoiser alone (UNet or transformer), as ComfyUI's `diffusion_models`.
    DiffusionModel,
    Lora,
    /// LoRA-like adapters of the LyCORIS family (LoHa, LoKr).
    Lycoris,
    Vae,
    TextEncoder,
    ControlNet,
    Upscaler,
    /// A language model (GGUF with an architecture).
    Llm,
    Unknown,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Checkpoint => "checkpoint",
            Kind::DiffusionModel => "diffusion model",
            Kind::Lora => "LoRA",
            Kind::Lycoris => "LyCORIS",
            Kind::Vae => "VAE",
            Kind::TextEncoder => "text encoder",
            Kind::ControlNet => "ControlNet",
            Kind::Upscaler => "upscaler",
            Kind::Llm => "language model",
            Kind::Unknown => "unknown",
        }
    }
}

/// The tensors, by name and shape (PyTorch order).
struct Names<'a> {
    tensors: Vec<(&'a str, &'a [u64])>,
}

impl<'a> Names<'a> {
    fn any(&self, pattern: &str) -> bool {
        self.tensors.iter().any(|(n, _)| n.contains(pattern))
    }

    fn starts(&self, prefix: &str) -> bool {
        self.tensors.iter().any(|(n, _)| n.starts_with(prefix))
    }

    /// The shape of the first tensor whose name contains every part of `parts`.
    fn shape(&self, parts: &[&str]) -> Option<&'a [u64]> {
        self.tensors
            .iter()
            .find(|(n, _)| parts.iter().all(|p| n.contains(p)))
            .map(|(_, s)| *s)
    }
}

/// Tells what the tensors are: (kind, family).
pub fn classify<'a>(tensors: impl Iterator<Item = (&'a str, &'a [u64])>) -> (Kind, Option<String>) {
    let names = Names {
        tensors: tensors.collect(),
    };
    let family = |f: &str| Some(f.to_owned());
    if names.any("hada_w1") || names.any("lokr_w1") {
        return (Kind::Lycoris, lora_family(&names));
    }
    if names.any("lora_up") || names.any("lora_down") || names.any("lora_A") || names.any("lora_B")
    {
        return (Kind::Lora, lora_family(&names));
    }
    if names.any("control_model.input_hint_block") || names.starts("controlnet_cond_embedding") {
        return (Kind::ControlNet, cross_attention_family(&names));
    }
    if names.starts("controlnet_blocks.") || names.starts("controlnet_x_embedder") {
        return (Kind::ControlNet, family("flux"));
    }
    let with_vae = names.starts("first_stage_model.") || names.starts("vae.");
    // Flux (Black Forest Labs' layout): dev is guidance-distilled, schnell is not.
    if names.any("double_blocks.0.img_attn") {
        let f = if names.any("guidance_in.") {
            "flux-dev"
        } else {
            "flux-schnell"
        };
        return (denoiser(with_vae), family(f));
    }
    if names.any("joint_blocks.0.") {
        return (denoiser(with_vae), family("sd3"));
    }
    if names.any("diffusion_model.input_blocks.") || names.starts("input_blocks.0.0.") {
        // SDXL's UNet takes a pooled text embedding (`label_emb`); its checkpoints hold two
        // text encoders under `conditioner.embedders`.
        let f = if names.any("label_emb.") || names.starts("conditioner.embedders.") {
            family("sdxl")
        } else {
            cross_attention_family(&names)
        };
        return (denoiser(with_vae), f);
    }
    // A VAE, or its decoder alone (TAESD-like approximations ship only that).
    if names.any("decoder.conv_in.weight") {
        // Latent channels: 4 for SD 1.x/2.x/XL's VAE, 16 for SD3's and Flux's.
        let latent = names
            .shape(&["decoder.conv_in.weight"])
            .and_then(|s| s.get(1).copied());
        return (
            Kind::Vae,
            match latent {
                Some(4) => family("sd"),
                Some(16) => family("sd3-flux"),
                _ => None,
            },
        );
    }
    if let Some(shape) = names.shape(&["text_model.encoder.layers.0.self_attn.k_proj.weight"]) {
        // CLIP text encoders by width: ViT-L 768 (SD 1.x, SDXL, Flux), ViT-H 1024 (SD 2.x),
        // ViT-bigG 1280 (SDXL).
        let f = match shape.first() {
            Some(768) => family("clip-l"),
            Some(1024) => family("clip-h"),
            Some(1280) => family("clip-g"),
            _ => None,
        };
        return (Kind::TextEncoder, f);
    }
    if names.any("encoder.block.0.layer.0.SelfAttention") {
        return (Kind::TextEncoder, family("t5"));
    }
    if names.starts("conv_first.") || names.any(".RDB1.") || names.any(".rdb1.") {
        return (Kind::Upscaler, family("esrgan"));
    }
    (Kind::Unknown, None)
}

fn denoiser(with_vae: bool) -> Kind {
    if with_vae {
        Kind::Checkpoint
    } else {
        Kind::DiffusionModel
    }
}

/// SD 1.x and 2.x differ in the width of the text embedding their cross-attention reads:
/// 768 (CLIP ViT-L) or 1024 (OpenCLIP ViT-H); SDXL's is 2048.
fn cross_attention_family(names: &Names) -> Option<String> {
    let dim = names
        .shape(&["attn2.to_k.weight"])
        .or_else(|| names.shape(&["attn2_to_k.lora_down.weight"]))
        .or_else(|| names.shape(&["attn2.to_k.lora_down.weight"]))
        .and_then(|s| s.get(1).copied())?;
    Some(
        match dim {
            768 => "sd15",
            1024 => "sd2",
            2048 => "sdxl",
            _ => return None,
        }
        .to_owned(),
    )
}

/// The family training tools write into a file's metadata: kohya's `ss_base_model_version`
/// (`sd_v1`, `sdxl_base_v1-0`, `flux1`), the model spec's `modelspec.architecture`
/// (`stable-diffusion-xl-v1-base`, `flux-1-dev`). For files whose tensors do not tell.
pub fn family_from_metadata<'a>(
    mut metadata: impl Iterator<Item = (&'a str, &'a str)>,
) -> Option<String> {
    let value = metadata
        .find(|(k, _)| *k == "ss_base_model_version" || *k == "modelspec.architecture")?
        .1
        .to_ascii_lowercase();
    let family = if value.contains("xl") {
        "sdxl"
    } else if value.contains("flux") && value.contains("schnell") {
        "flux-schnell"
    } else if value.contains("flux") && value.contains("dev") {
        "flux-dev"
    } else if value.contains("flux") {
        "flux"
    } else if value.contains("sd3") || value.contains("-v3") {
        "sd3"
    } else if value.contains("v2") {
        "sd2"
    } else if value.contains("v1") {
        "sd15"
    } else {
        return None;
    };
    Some(family.to_owned())
}

/// A LoRA's base, from what it adapts.
fn lora_family(names: &Names) -> Option<String> {
    let family = |f: &str| Some(f.to_owned());
    if names.any("double_blocks")
        || names.any("single_blocks")
        || names.any("single_transformer_blocks")
    {
        return family("flux");
    }
    if names.any("joint_blocks") {
        return family("sd3");
    }
    // kohya's SDXL LoRAs name both text encoders (`lora_te1_`, `lora_te2_`) and use the
    // original UNet's block names (`lora_unet_input_blocks_...`).
    if names.any("lora_te1_") || names.any("lora_te2_") || names.any("lora_unet_input_blocks") {
        return family("sdxl");
    }
    cross_attention_family(names).or_else(|| names.any("lora_te_").then(|| "sd15".to_owned()))
}
