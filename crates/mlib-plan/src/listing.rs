//! Files an app would not list: a model linked into an app's preset folder under an extension
//! the app does not list there (`.sft` outside ComfyUI and SwarmUI, `.gguf` where no GGUF
//! loader reads, `.pt` in Fooocus's checkpoints, ...). Warnings, for `mlib validate` (from the
//! manifest and the lock) and `mlib plan` (from the files the plan links).
//!
//! Only folders the preset's table gives are judged: a type the app's `folders:` sends
//! elsewhere is the user's folder, and a file whose name is not known yet (a remote model
//! neither locked nor stored) is skipped.

use std::collections::BTreeMap;
use std::path::Path;

use mlib_manifest::lock::LockedModel;
use mlib_manifest::{App, Manifest, Model, Source};

/// One warning, naming the model, the app and the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListingWarning {
    pub model: String,
    pub app: String,
    pub file: String,
    pub message: String,
}

/// The warning for the file `file` of `model` linked into `app`, if the app would not list it.
/// `file` is the entry's name in the app's folder; folders are not judged (pass files only).
pub fn unlisted(app: &App, model: &Model, file: &str) -> Option<ListingWarning> {
    let preset = app.preset?;
    let ty = model.model_type.as_str();
    let folder = preset.folder(ty)?;
    if app.folders.get(ty).is_some_and(|f| f != folder) {
        return None;
    }
    let ext = Path::new(file).extension()?.to_str()?;
    if preset.lists_extension(ty, ext)? {
        return None;
    }
    let listed = preset.listed_extensions(ty).unwrap_or_default();
    let name = preset.display_name();
    let mut message = format!(
        "model `{}`: app `{}` ({name}) does not list `{file}` in {folder}, where it lists only {}",
        model.name,
        app.name,
        listed.join(", ")
    );
    if let Some(hint) = hint(app, model, ext) {
        message.push_str(": ");
        message.push_str(&hint);
    }
    Some(ListingWarning {
        model: model.name.clone(),
        app: app.name.clone(),
        file: file.to_owned(),
        message,
    })
}

/// What to do instead, where something better than "not listed" can be said.
fn hint(app: &App, model: &Model, ext: &str) -> Option<String> {
    let preset = app.preset?;
    let ty = model.model_type.as_str();
    let ext = ext.to_ascii_lowercase();
    if ext == "sft" && preset.lists_extension(ty, "safetensors") == Some(true) {
        return Some(
            "`.sft` is the safetensors format under another name; set `file:` to a name ending \
             in `.safetensors` to link it under a name the app lists"
                .to_owned(),
        );
    }
    // A GGUF diffusion model declared as a checkpoint, where the app has a folder that loads it.
    if ext == "gguf" && matches!(ty, "checkpoints") {
        for other in ["diffusion_models", "unet"] {
            if preset.lists_extension(other, "gguf") == Some(true)
                && let Some(folder) = preset.folder(other)
            {
                return Some(format!(
                    "GGUF diffusion models take `type: {other}` ({folder})"
                ));
            }
        }
    }
    let elsewhere: Vec<&str> = preset
        .model_types()
        .iter()
        .copied()
        .filter(|other| *other != ty && preset.folder(other) != preset.folder(ty))
        .filter(|other| same_kind(ty, other) && preset.lists_extension(other, &ext) == Some(true))
        .collect();
    (!elsewhere.is_empty()).then(|| {
        format!(
            "{} lists `.{ext}` files as `type: {}`",
            preset.display_name(),
            elsewhere.join("` or `type: ")
        )
    })
}

/// Types that hold the same kind of model under two names.
fn same_kind(a: &str, b: &str) -> bool {
    fn kind(t: &str) -> &str {
        match t {
            "checkpoints" | "diffusion_models" | "unet" => "base",
            "text_encoders" | "clip" => "text",
            other => other,
        }
    }
    kind(a) == kind(b) && a != b
}

/// Checks every app of `manifest` with the file names known without downloading: the model's
/// `file:`, a local file's name, an `hf://` file's name, else the lock's files (`lock`).
pub fn check(manifest: &Manifest, lock: &BTreeMap<String, LockedModel>) -> Vec<ListingWarning> {
    let mut warnings = Vec::new();
    for app in manifest.apps.values() {
        if app.preset.is_none() {
            continue;
        }
        for model in manifest.models.values().filter(|m| app.selects(m)) {
            for file in files(model, lock.get(&model.name)) {
                warnings.extend(unlisted(app, model, &file));
            }
        }
    }
    warnings
}

/// The names of `model`'s single-file entries in an app folder, as far as known now.
fn files(model: &Model, locked: Option<&LockedModel>) -> Vec<String> {
    match &model.source {
        // A folder is a folder model: not judged by extension.
        Source::Local(path) if path.is_dir() => Vec::new(),
        Source::Local(_) => model.file_name().into_iter().collect(),
        Source::HuggingFace { path: Some(_), .. } => model.file_name().into_iter().collect(),
        _ => locked
            .map(|l| {
                l.files
                    .iter()
                    .filter(|f| !f.path.contains('/'))
                    .map(|f| f.path.clone())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::Path;

    use mlib_manifest::lock::{LockedFile, LockedModel};

    use super::check;

    fn manifest(source: &str) -> mlib_manifest::Manifest {
        let yaml = format!(
            "version: 1\nstore: /s\nmodels:\n  m:\n    source: {source}\n    sha256: {}\n    type: upscale_models\napps:\n  a1111:\n    preset: a1111\n    root: /a\n",
            "0".repeat(64)
        );
        mlib_manifest::parse(&yaml, Path::new("/p/models.yaml"), &|_| None).unwrap()
    }

    fn locked(path: &str) -> BTreeMap<String, LockedModel> {
        let mut model = LockedModel::for_model(&manifest("https://h/x").models["m"]);
        model.files = vec![LockedFile {
            path: path.to_owned(),
            url: Some("https://h/x".to_owned()),
            repo_path: None,
            file_id: None,
            size: 1,
            sha256: None,
            blake3: None,
        }];
        BTreeMap::from([("m".to_owned(), model)])
    }

    #[test]
    fn a_remote_file_is_judged_by_its_locked_name_and_skipped_without_one() {
        let m = manifest("https://files.example.com/download?id=7");
        assert!(check(&m, &BTreeMap::new()).is_empty());
        let warnings = check(&m, &locked("4x-UltraSharp.safetensors"));
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert_eq!(warnings[0].file, "4x-UltraSharp.safetensors");
        assert_eq!(warnings[0].app, "a1111");
        assert!(check(&m, &locked("4x-UltraSharp.pth")).is_empty());
        // A file inside a locked folder is the folder model's, not judged by extension.
        assert!(check(&m, &locked("upscalers/4x.safetensors")).is_empty());
    }

    #[test]
    fn a_file_without_an_extension_is_not_judged() {
        let m = manifest("hf://org/repo/weights");
        assert!(check(&m, &BTreeMap::new()).is_empty());
        let m = manifest("hf://org/repo/4x.safetensors");
        assert_eq!(check(&m, &BTreeMap::new()).len(), 1);
    }
}
