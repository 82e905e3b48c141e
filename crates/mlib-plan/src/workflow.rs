//! ComfyUI workflows: which model files a workflow's loader nodes need, and whether an app of
//! the manifest would list each one.
//!
//! Both formats are read: the UI format (`{"nodes": [{"type", "widgets_values", "properties":
//! {"models": [...]}}]}`, what the editor saves) and the API format (`{"ID": {"class_type",
//! "inputs"}}`, what "Export (API)" saves). Newer workflows embed the download address of
//! each model (`properties.models`: name, url, directory); it is returned with the need.

use std::collections::BTreeMap;
use std::path::Path;

use mlib_manifest::{App, Manifest};
use serde_json::Value;

/// The model-loading inputs of ComfyUI's loader nodes: (node class, input name, widget
/// position in the UI format, folder kind). From ComfyUI's `nodes.py` (CheckpointLoaderSimple,
/// CheckpointLoader, unCLIPCheckpointLoader, LoraLoader, LoraLoaderModelOnly, VAELoader,
/// ControlNetLoader, DiffControlNetLoader, UNETLoader, CLIPLoader, DualCLIPLoader,
/// CLIPVisionLoader, StyleModelLoader, GLIGENLoader), `comfy_extras/nodes_sd3.py`
/// (TripleCLIPLoader), `comfy_extras/nodes_upscale_model.py` (UpscaleModelLoader),
/// `comfy_extras/nodes_hypernetwork.py` (HypernetworkLoader), `comfy_extras/nodes_video_model.py`
/// (ImageOnlyCheckpointLoader), and ComfyUI-GGUF's `nodes.py` (UnetLoaderGGUF, CLIPLoaderGGUF,
/// DualCLIPLoaderGGUF). Each input lists a folder of `folder_paths`; the UI stores the file
/// name widgets in the order of the inputs, before any other widget of these nodes.
const LOADERS: &[(&str, &str, usize, Kind)] = &[
    ("CheckpointLoaderSimple", "ckpt_name", 0, Kind::Checkpoints),
    ("CheckpointLoader", "config_name", 0, Kind::Configs),
    ("CheckpointLoader", "ckpt_name", 1, Kind::Checkpoints),
    ("unCLIPCheckpointLoader", "ckpt_name", 0, Kind::Checkpoints),
    (
        "ImageOnlyCheckpointLoader",
        "ckpt_name",
        0,
        Kind::Checkpoints,
    ),
    ("LoraLoader", "lora_name", 0, Kind::Loras),
    ("LoraLoaderModelOnly", "lora_name", 0, Kind::Loras),
    ("VAELoader", "vae_name", 0, Kind::Vae),
    ("ControlNetLoader", "control_net_name", 0, Kind::ControlNet),
    (
        "DiffControlNetLoader",
        "control_net_name",
        0,
        Kind::ControlNet,
    ),
    ("UNETLoader", "unet_name", 0, Kind::DiffusionModels),
    ("UnetLoaderGGUF", "unet_name", 0, Kind::DiffusionModels),
    ("CLIPLoader", "clip_name", 0, Kind::TextEncoders),
    ("CLIPLoaderGGUF", "clip_name", 0, Kind::TextEncoders),
    ("DualCLIPLoader", "clip_name1", 0, Kind::TextEncoders),
    ("DualCLIPLoader", "clip_name2", 1, Kind::TextEncoders),
    ("DualCLIPLoaderGGUF", "clip_name1", 0, Kind::TextEncoders),
    ("DualCLIPLoaderGGUF", "clip_name2", 1, Kind::TextEncoders),
    ("TripleCLIPLoader", "clip_name1", 0, Kind::TextEncoders),
    ("TripleCLIPLoader", "clip_name2", 1, Kind::TextEncoders),
    ("TripleCLIPLoader", "clip_name3", 2, Kind::TextEncoders),
    ("CLIPVisionLoader", "clip_name", 0, Kind::ClipVision),
    ("StyleModelLoader", "style_model_name", 0, Kind::StyleModels),
    ("GLIGENLoader", "gligen_name", 0, Kind::Gligen),
    ("UpscaleModelLoader", "model_name", 0, Kind::UpscaleModels),
    (
        "HypernetworkLoader",
        "hypernetwork_name",
        0,
        Kind::Hypernetworks,
    ),
];

/// A `folder_paths` folder name, and the manifest types (ComfyUI preset) whose folders it lists:
/// ComfyUI lists `unet` and `diffusion_models` together, and `clip` with `text_encoders`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Checkpoints,
    Configs,
    Loras,
    Vae,
    ControlNet,
    DiffusionModels,
    TextEncoders,
    ClipVision,
    StyleModels,
    Gligen,
    UpscaleModels,
    Hypernetworks,
}

impl Kind {
    /// The manifest types whose folders ComfyUI lists for this kind.
    pub fn types(self) -> &'static [&'static str] {
        match self {
            Kind::Checkpoints => &["checkpoints"],
            Kind::Configs => &["configs"],
            Kind::Loras => &["loras"],
            Kind::Vae => &["vae"],
            Kind::ControlNet => &["controlnet", "t2i_adapter"],
            Kind::DiffusionModels => &["diffusion_models", "unet"],
            Kind::TextEncoders => &["text_encoders", "clip"],
            Kind::ClipVision => &["clip_vision"],
            Kind::StyleModels => &["style_models"],
            Kind::Gligen => &["gligen"],
            Kind::UpscaleModels => &["upscale_models"],
            Kind::Hypernetworks => &["hypernetworks"],
        }
    }
}

/// One model file a workflow needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// As the workflow names it: relative to the kind's folder, `/`-separated
    /// (`sdxl/detail.safetensors`).
    pub file: String,
    pub kind: Kind,
    /// `4 CheckpointLoaderSimple`.
    pub node: String,
    /// The download address the workflow embeds for it, if any.
    pub url: Option<String>,
    /// The sha256 the workflow gives for it (`hash` with `hash_type: SHA256`), if any.
    pub sha256: Option<String>,
}

/// Why a workflow cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("{}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a ComfyUI workflow: {why}", path.display())]
    NotAWorkflow {
        path: std::path::PathBuf,
        why: String,
    },
}

/// The largest workflow read (a workflow with embedded images is a few MiB).
const MAX_WORKFLOW_BYTES: u64 = 64 << 20;

/// Reads the workflow at `path` and lists the model files its loader nodes need.
pub fn needs(path: &Path) -> Result<Vec<Need>, WorkflowError> {
    let read = |source| WorkflowError::Read {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(read)?.len();
    let not = |why: String| WorkflowError::NotAWorkflow {
        path: path.to_owned(),
        why,
    };
    if size > MAX_WORKFLOW_BYTES {
        return Err(not(format!(
            "it is larger than {} MiB",
            MAX_WORKFLOW_BYTES >> 20
        )));
    }
    let text = std::fs::read(path).map_err(read)?;
    let json: Value = serde_json::from_slice(&text).map_err(|e| not(e.to_string()))?;
    parse(&json).map_err(not)
}

/// The needs of a workflow already parsed (either format).
pub fn parse(json: &Value) -> Result<Vec<Need>, String> {
    let Value::Object(top) = json else {
        return Err("it is not a JSON object".into());
    };
    let mut urls: BTreeMap<String, Embedded> = BTreeMap::new();
    let mut needs = Vec::new();
    if let Some(Value::Array(nodes)) = top.get("nodes") {
        for node in nodes {
            collect_urls(node.pointer("/properties/models"), &mut urls);
            let class = node.get("type").and_then(Value::as_str).unwrap_or_default();
            let id = node.get("id").map(id_text).unwrap_or_default();
            let widgets = node.get("widgets_values").and_then(Value::as_array);
            for (_, _, index, kind) in LOADERS.iter().filter(|l| l.0 == class) {
                if let Some(file) = widgets.and_then(|w| w.get(*index)).and_then(Value::as_str) {
                    needs.push(need(file, *kind, &id, class));
                }
            }
        }
        collect_urls(top.get("models"), &mut urls);
    } else {
        // API format: every value is a node with `class_type` and `inputs`.
        let mut found_node = false;
        for (id, node) in top {
            let Some(class) = node.get("class_type").and_then(Value::as_str) else {
                continue;
            };
            found_node = true;
            for (_, input, _, kind) in LOADERS.iter().filter(|l| l.0 == class) {
                if let Some(file) = node
                    .pointer(&format!("/inputs/{input}"))
                    .and_then(Value::as_str)
                {
                    needs.push(need(file, *kind, id, class));
                }
            }
        }
        if !found_node {
            return Err("it has neither `nodes` (the UI format) nor nodes with a `class_type` (the API format)".into());
        }
    }
    for need in &mut needs {
        let name = need.file.rsplit('/').next().unwrap_or(&need.file);
        if let Some(embedded) = urls.get(name) {
            need.url = Some(embedded.url.clone());
            need.sha256 = embedded.sha256.clone();
        }
    }
    needs.sort_by(|a, b| (a.kind, &a.file).cmp(&(b.kind, &b.file)));
    needs.dedup_by(|a, b| a.kind == b.kind && a.file == b.file);
    Ok(needs)
}

fn need(file: &str, kind: Kind, id: &str, class: &str) -> Need {
    Need {
        // Saved on Windows, subfolders use `\`.
        file: file.replace('\\', "/"),
        kind,
        node: format!("{id} {class}"),
        url: None,
        sha256: None,
    }
}

fn id_text(id: &Value) -> String {
    match id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What a workflow says about one of its models.
struct Embedded {
    url: String,
    sha256: Option<String>,
}

/// `properties.models` / `models`: `[{"name": "x.safetensors", "url": "https://...",
/// "hash": "...", "hash_type": "SHA256", "directory": "loras"}]`.
fn collect_urls(models: Option<&Value>, into: &mut BTreeMap<String, Embedded>) {
    let Some(Value::Array(models)) = models else {
        return;
    };
    for model in models {
        let text = |key: &str| model.get(key).and_then(Value::as_str);
        let (Some(name), Some(url)) = (text("name"), text("url")) else {
            continue;
        };
        let sha256 = text("hash")
            .filter(|_| text("hash_type").is_some_and(|t| t.eq_ignore_ascii_case("sha256")))
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .map(str::to_ascii_lowercase);
        into.insert(
            name.to_owned(),
            Embedded {
                url: url.to_owned(),
                sha256,
            },
        );
    }
}

/// Whether `app` gets a model whose link ComfyUI lists as `need.file`: which model, if so.
/// A model of a type of the need's kind, linked into that kind's folder or a subfolder of it,
/// whose link name and subfolder together are the name the workflow uses.
/// `lock` gives the file names of URL and Civitai models, which come from the server.
pub fn provided_by<'m>(
    manifest: &'m Manifest,
    lock: &BTreeMap<String, mlib_manifest::lock::LockedModel>,
    app: &App,
    need: &Need,
) -> Option<&'m str> {
    let bases: Vec<std::path::PathBuf> = need
        .kind
        .types()
        .iter()
        .filter_map(|t| app.preset.and_then(|p| p.folder(t)))
        .map(|folder| app.root.join(folder))
        .collect();
    manifest
        .models
        .values()
        .filter(|m| app.selects(m) && crate::app_version::allows(app, m))
        .find(|model| {
            // A single-file model's entry is its one locked file.
            let file = model.file_name().or_else(|| match lock.get(&model.name) {
                Some(locked) if locked.files.len() == 1 => Some(locked.files[0].path.clone()),
                _ => None,
            });
            let (Some(folder), Some(file)) = (app.folder_for(&model.model_type), file) else {
                return false;
            };
            bases.iter().any(|base| {
                folder.starts_with(base)
                    && folder.join(&file).strip_prefix(base).is_ok_and(|listed| {
                        listed.to_string_lossy().replace('\\', "/") == need.file
                    })
            })
        })
        .map(|m| m.name.as_str())
}

/// Whether the file is in one of the kind's folders of `app` on disk now (put there by hand).
pub fn on_disk(app: &App, need: &Need) -> bool {
    need.kind
        .types()
        .iter()
        .filter_map(|t| app.preset.and_then(|p| p.folder(t)))
        .any(|folder| app.root.join(folder).join(&need.file).exists())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_formats_give_the_same_needs() {
        let ui = json!({
            "nodes": [
                {"id": 4, "type": "CheckpointLoaderSimple", "widgets_values": ["sd_xl_base_1.0.safetensors"]},
                {"id": 10, "type": "LoraLoader", "widgets_values": ["sdxl\\detail.safetensors", 1.0, 1.0],
                 "properties": {"models": [{"name": "detail.safetensors", "url": "https://example.com/detail.safetensors", "directory": "loras"}]}},
                {"id": 11, "type": "DualCLIPLoader", "widgets_values": ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux"]},
                {"id": 12, "type": "KSampler", "widgets_values": [42, "fixed", 20]}
            ]
        });
        let api = json!({
            "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
            "10": {"class_type": "LoraLoader", "inputs": {"lora_name": "sdxl/detail.safetensors", "model": ["4", 0]}},
            "11": {"class_type": "DualCLIPLoader", "inputs": {"clip_name1": "clip_l.safetensors", "clip_name2": "t5xxl_fp16.safetensors", "type": "flux"}},
            "12": {"class_type": "KSampler", "inputs": {"seed": 42}}
        });
        let files = |needs: Vec<Need>| -> Vec<(Kind, String)> {
            needs.into_iter().map(|n| (n.kind, n.file)).collect()
        };
        let from_ui = parse(&ui).unwrap();
        assert_eq!(
            from_ui
                .iter()
                .find(|n| n.kind == Kind::Loras)
                .unwrap()
                .url
                .as_deref(),
            Some("https://example.com/detail.safetensors")
        );
        assert_eq!(files(from_ui), files(parse(&api).unwrap()));
        assert_eq!(files(parse(&api).unwrap()).len(), 4);
        assert!(parse(&json!({"a": 1})).is_err());
        assert!(parse(&json!([1, 2])).is_err());
    }
}
