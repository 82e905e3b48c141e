//! Families that do not fit: a model whose header (or Civitai's base model) says another family
//! than the manifest, and LoRAs an app gets for a family none of its checkpoints has (an SDXL
//! LoRA does nothing useful on an SD 1.5 checkpoint). Warnings, for `mlib validate`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use mlib_manifest::lock::LockedModel;
use mlib_manifest::{Manifest, Model, Source};

/// The family lines whose models work together: `pony`, `illustrious` and `noobai` are SDXL
/// fine-tunes; Flux dev and schnell take the same LoRAs. `None` for names not known here.
pub fn lineage(family: &str) -> Option<&'static str> {
    let f: String = family
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    Some(match f.as_str() {
        _ if f.starts_with("sdxl")
            || ["pony", "illustrious", "noobai"]
                .iter()
                .any(|p| f.starts_with(p)) =>
        {
            "sdxl"
        }
        _ if f.starts_with("sd15") || f.starts_with("sd1") => "sd15",
        _ if f.starts_with("sd2") => "sd2",
        _ if f.starts_with("sd3") => "sd3",
        _ if f.starts_with("flux") => "flux",
        _ => return None,
    })
}

/// One warning, naming the model (and the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyWarning {
    pub model: String,
    pub message: String,
}

/// Checks every model and app of `manifest`; `lock` gives Civitai's base models. Reads the
/// header of each local `.safetensors`/`.gguf` source (never the weights).
pub fn check(manifest: &Manifest, lock: &BTreeMap<String, LockedModel>) -> Vec<FamilyWarning> {
    let mut warnings = Vec::new();
    // What each model is, as far as anything says: declared, else its header.
    let mut known: BTreeMap<&str, &'static str> = BTreeMap::new();
    for model in manifest.models.values() {
        let header = header_family(model);
        let declared = model.family.as_deref();
        if let (Some(declared), Some(header)) = (declared, &header)
            && let (Some(a), Some(b)) = (lineage(declared), lineage(header))
            && a != b
        {
            warnings.push(FamilyWarning {
                model: model.name.clone(),
                message: format!(
                    "model `{}` is declared `family: {declared}`, but its header says {header}",
                    model.name
                ),
            });
        }
        if let (Some(declared), Some(base)) = (
            declared,
            lock.get(&model.name).and_then(|l| l.base_model.as_deref()),
        ) && let (Some(a), Some(b)) = (lineage(declared), lineage(base))
            && a != b
        {
            warnings.push(FamilyWarning {
                model: model.name.clone(),
                message: format!(
                    "model `{}` is declared `family: {declared}`, but Civitai says its base model is {base}",
                    model.name
                ),
            });
        }
        if let Some(family) = declared.or(header.as_deref()).and_then(lineage) {
            known.insert(&model.name, family);
        }
    }
    for app in manifest.apps.values() {
        let selected: Vec<&Model> = manifest
            .models
            .values()
            .filter(|m| app.selects(m))
            .collect();
        let bases: BTreeSet<&str> = selected
            .iter()
            .filter(|m| is_base(&m.model_type))
            .filter_map(|m| known.get(m.name.as_str()).copied())
            .collect();
        if bases.is_empty() {
            continue;
        }
        for lora in selected.iter().filter(|m| is_lora(&m.model_type)) {
            let Some(family) = known.get(lora.name.as_str()) else {
                continue;
            };
            if !bases.contains(family) {
                warnings.push(FamilyWarning {
                    model: lora.name.clone(),
                    message: format!(
                        "app `{}` gets LoRA `{}` ({family}), but none of its checkpoints is {family} ({}): it will not work with them",
                        app.name,
                        lora.name,
                        bases.iter().copied().collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
    }
    warnings
}

fn is_base(model_type: &str) -> bool {
    matches!(model_type, "checkpoints" | "diffusion_models" | "unet")
}

fn is_lora(model_type: &str) -> bool {
    matches!(model_type, "loras" | "lycoris")
}

/// The family a local file's header tells, if it is a file with a header.
fn header_family(model: &Model) -> Option<String> {
    let Source::Local(path) = &model.source else {
        return None;
    };
    let has_header = matches!(
        Path::new(path).extension().and_then(|e| e.to_str()),
        Some("safetensors" | "sft" | "gguf")
    );
    if !has_header || !path.is_file() {
        return None;
    }
    mlib_inspect::inspect(path).ok()?.family
}

#[cfg(test)]
mod tests {
    use super::lineage;

    #[test]
    fn families_that_work_together() {
        for (a, b) in [
            ("sdxl", "SDXL 1.0"),
            ("pony", "sdxl"),
            ("Illustrious", "sdxl"),
            ("sd15", "SD 1.5"),
            ("flux", "flux-dev"),
            ("Flux.1 S", "flux"),
            ("sd3", "SD 3.5"),
        ] {
            assert_eq!(lineage(a), lineage(b), "{a} ~ {b}");
            assert!(lineage(a).is_some(), "{a}");
        }
        assert_ne!(lineage("sd15"), lineage("sdxl"));
        assert_eq!(lineage("wan"), None);
    }
}
