//! Valid manifests resolve into the public types: defaults, sources, paths, hashes, apps.

mod common;

use std::path::{Path, PathBuf};

use common::ok;
use mlib_manifest::{LinkMode, ModelSelection, Preset, Source, StoreLayout};
use sha2::{Digest, Sha256};

const FULL: &str = r#"
    version: 1
    store: ./store
    layout: flat
    models:
      sdxl-base:
        source: hf://stabilityai/stable-diffusion-xl-base-1.0/sd_xl_base_1.0.safetensors
        revision: main
        sha256: 31E35C80FC4829D14F90153F4C74CD59C90B779F6AFE05A74CD6120B893F7E5B
        blake3: AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262
        type: checkpoints
        family: sdxl
        tags: [sdxl, base]
      flux-dev:
        source: hf://black-forest-labs/FLUX.1-dev
        include: ["*.json", "transformer/*.safetensors"]
        exclude: ["**/*.bin"]
        type: diffusers
        family: flux
      add-detail:
        source: civitai:122359@135867
        type: loras
        file: add_detail.safetensors
      air:
        source: urn:air:sdxl:lora:civitai:328553@368189
        type: loras
        tags: [sdxl]
      upscaler:
        source: https://example.com/4x.pth
        type: upscale_models
      mine:
        source: ./trained/my_lora.safetensors
        type: loras
        tags: [mine]
      shared:
        source: /data/models/shared.safetensors
        type: vae
    apps:
      comfyui:
        preset: comfyui
        root: /workspace/ComfyUI
      forge:
        preset: forge
        root: ../forge
        models: [sdxl, mine]
        link: hardlink
        folders:
          upscale_models: models/RealESRGAN/
          loras: models/MyLoras
      tool:
        root: /opt/tool
        models: [mine]
        link: copy
        folders: { loras: weights/./lora }
"#;

#[test]
fn full_manifest_resolves_every_field() {
    let m = ok(FULL);
    assert_eq!(m.path, Path::new(common::MANIFEST));
    assert_eq!(m.dir, Path::new("/work/proj"));
    assert_eq!(m.version, 1);
    assert_eq!(m.store, Path::new("/work/proj/store"));
    assert_eq!(m.layout, StoreLayout::Flat);
    let names: Vec<_> = m.models.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "sdxl-base",
            "flux-dev",
            "add-detail",
            "air",
            "upscaler",
            "mine",
            "shared"
        ],
        "models keep file order"
    );

    let sdxl = &m.models["sdxl-base"];
    assert_eq!(sdxl.name, "sdxl-base");
    assert_eq!(
        sdxl.source,
        Source::HuggingFace {
            repo: "stabilityai/stable-diffusion-xl-base-1.0".into(),
            path: Some("sd_xl_base_1.0.safetensors".into()),
        }
    );
    assert_eq!(sdxl.revision.as_deref(), Some("main"));
    assert_eq!(
        sdxl.sha256.as_deref(),
        Some("31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"),
        "hashes are lowercased"
    );
    assert_eq!(
        sdxl.blake3.as_deref(),
        Some("af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262")
    );
    assert_eq!(sdxl.model_type, "checkpoints");
    assert_eq!(sdxl.family.as_deref(), Some("sdxl"));
    assert_eq!(sdxl.tags, ["sdxl", "base"]);
    assert_eq!(sdxl.file, None);
    assert_eq!(
        sdxl.file_name().as_deref(),
        Some("sd_xl_base_1.0.safetensors")
    );

    let flux = &m.models["flux-dev"];
    assert_eq!(flux.include, ["*.json", "transformer/*.safetensors"]);
    assert_eq!(flux.exclude, ["**/*.bin"]);
    assert_eq!(
        flux.file_name(),
        None,
        "a whole repo has no single file name"
    );
    assert_eq!(flux.source.to_string(), "hf://black-forest-labs/FLUX.1-dev");

    let civitai = &m.models["add-detail"];
    assert_eq!(
        civitai.source,
        Source::Civitai {
            model_id: Some(122359),
            version_id: 135867
        }
    );
    assert_eq!(
        civitai.file_name().as_deref(),
        Some("add_detail.safetensors")
    );
    assert_eq!(
        m.models["air"].source,
        Source::Civitai {
            model_id: Some(328553),
            version_id: 368189
        }
    );
    assert_eq!(
        m.models["upscaler"].source,
        Source::Url("https://example.com/4x.pth".into())
    );
    assert_eq!(
        m.models["mine"].source,
        Source::Local(PathBuf::from("/work/proj/trained/my_lora.safetensors")),
        "local paths resolve against the manifest's folder"
    );
    assert_eq!(
        m.models["shared"].source,
        Source::Local(PathBuf::from("/data/models/shared.safetensors"))
    );

    let comfy = &m.apps["comfyui"];
    assert_eq!(comfy.name, "comfyui");
    assert_eq!(comfy.preset, Some(Preset::ComfyUI));
    assert_eq!(comfy.root, Path::new("/workspace/ComfyUI"));
    assert_eq!(comfy.models, ModelSelection::All, "all is the default");
    assert_eq!(comfy.link, LinkMode::Auto, "auto is the default");
    assert!(comfy.folders.is_empty());

    let forge = &m.apps["forge"];
    assert_eq!(forge.root, Path::new("/work/proj/../forge"));
    assert_eq!(
        forge.models,
        ModelSelection::Names(vec!["sdxl".into(), "mine".into()])
    );
    assert_eq!(forge.link, LinkMode::Hardlink);
    assert_eq!(forge.folders["loras"], "models/MyLoras");

    let tool = &m.apps["tool"];
    assert_eq!(tool.preset, None);
    assert_eq!(tool.link, LinkMode::Copy);
}

#[test]
fn folders_come_from_overrides_then_the_preset() {
    let m = ok(FULL);
    let forge = &m.apps["forge"];
    // Override of a preset folder, an extension, a preset folder, and no folder at all.
    assert_eq!(
        forge.folder_for("loras"),
        Some(PathBuf::from("/work/proj/../forge/models/MyLoras"))
    );
    assert_eq!(
        forge.folder_for("upscale_models"),
        Some(PathBuf::from("/work/proj/../forge/models/RealESRGAN"))
    );
    assert_eq!(
        forge.folder_for("checkpoints"),
        Some(PathBuf::from("/work/proj/../forge/models/Stable-diffusion"))
    );
    assert_eq!(forge.folder_for("diffusers"), None);

    let comfy = &m.apps["comfyui"];
    assert_eq!(
        comfy.folder_for("diffusers"),
        Some(PathBuf::from("/workspace/ComfyUI/models/diffusers"))
    );

    let tool = &m.apps["tool"];
    assert_eq!(
        tool.folder_for("loras"),
        Some(PathBuf::from("/opt/tool/weights/lora"))
    );
    assert_eq!(
        tool.folder_for("checkpoints"),
        None,
        "custom apps have no preset"
    );
}

#[test]
fn apps_select_by_name_and_by_tag() {
    let m = ok(FULL);
    let forge = &m.apps["forge"];
    let selected: Vec<_> = m
        .models
        .values()
        .filter(|model| forge.selects(model))
        .map(|model| model.name.as_str())
        .collect();
    assert_eq!(selected, ["sdxl-base", "air", "mine"]);
    assert!(
        m.models
            .values()
            .all(|model| m.apps["comfyui"].selects(model))
    );
}

#[test]
fn apps_select_by_family() {
    let m = ok(
        "version: 1\nstore: /s\nmodels:\n  a:\n    source: ./a.safetensors\n    type: loras\n    family: SDXL\n  b:\n    source: ./b.safetensors\n    type: loras\n    family: sd15\n  c:\n    source: ./c.safetensors\n    type: loras\napps:\n  forge:\n    preset: forge\n    root: /f\n    models: [family:sdxl, c]\n",
    );
    let selected: Vec<_> = m
        .models
        .values()
        .filter(|model| m.apps["forge"].selects(model))
        .map(|model| model.name.as_str())
        .collect();
    assert_eq!(selected, ["a", "c"]);
}

#[test]
fn defaults_and_empty_sections() {
    let m = ok("version: 1\nstore: /s\nmodels:\napps: {}\n");
    assert_eq!(m.layout, StoreLayout::Nested);
    assert!(m.models.is_empty());
    assert!(m.apps.is_empty());

    let m = ok("version: 1\nstore: /s\n");
    assert!(m.models.is_empty());
}

#[test]
fn digest_is_the_sha256_of_the_text() {
    let text = common::dedent(FULL);
    let m = mlib_manifest::parse(&text, Path::new(common::MANIFEST), &common::env).unwrap();
    assert_eq!(m.digest, hex::encode(Sha256::digest(text.as_bytes())));
    let edited = text.replace("link: copy", "link: symlink");
    let m2 = mlib_manifest::parse(&edited, Path::new(common::MANIFEST), &common::env).unwrap();
    assert_ne!(m.digest, m2.digest);
    assert_eq!(m2.apps["tool"].link, LinkMode::Symlink);
}

#[test]
fn yaml_anchors_and_quoting_work() {
    let m = ok(r#"
        version: 1
        store: "/s"
        models:
          a: &lora
            source: './a.safetensors'
            type: loras
          b:
            <<: *lora
            source: ./b.safetensors
        "#);
    assert_eq!(m.models["b"].model_type, "loras");
    assert_eq!(
        m.models["b"].source,
        Source::Local(PathBuf::from("/work/proj/b.safetensors"))
    );
}

#[test]
fn names_at_the_limits_are_accepted() {
    let long = "a".repeat(128);
    let m = ok(&format!(
        "version: 1\nstore: /s\nmodels:\n  {long}:\n    source: ./x\n    type: Custom_Type.v2\n    family: sd1.5\n    tags: [0day, x-y_z.w]\n"
    ));
    assert_eq!(m.models[long.as_str()].family.as_deref(), Some("sd1.5"));
}
