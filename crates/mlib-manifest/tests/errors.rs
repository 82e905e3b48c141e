//! One test per class of manifest error, each checking the exact line and column reported.

mod common;

use common::{assert_at, errors, find, ok, only};
use mlib_manifest::DiagnosticKind as K;

#[test]
fn unknown_keys_suggest_the_closest_key() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            sorce: ./m.safetensors
            type: loras
        "#,
    );
    assert_at(&d, K::UnknownKey, 5, 5);
    assert!(d.message.contains("`sorce`"), "{d:#?}");
    assert!(d.hint.contains("did you mean `source`?"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        model: {}
        "#,
    );
    assert_at(&d, K::UnknownKey, 3, 1);
    assert!(d.hint.contains("did you mean `models`?"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        apps:
          comfy:
            preset: comfyui
            root: /c
            mounts: { store: /models }
        "#,
    );
    assert_at(&d, K::UnknownKey, 7, 5);
    assert!(
        d.hint.contains("`folders`"),
        "lists the allowed keys: {d:#?}"
    );
}

#[test]
fn wrong_types_say_what_was_expected() {
    let d = only("version: one\nstore: /s\n");
    assert_at(&d, K::WrongType, 1, 10);
    assert!(d.message.contains("whole number"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: [loras]
        "#,
    );
    assert_at(&d, K::WrongType, 6, 11);

    let d = only(
        r#"
        version: 1
        store: /s
        apps:
          comfy:
            preset: comfyui
            root: /c
            link: hardlnk
        "#,
    );
    assert_at(&d, K::WrongType, 7, 11);
    assert!(d.hint.contains("did you mean `hardlink`?"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        apps:
          comfy:
            preset: comfyui
            root: /c
            models: sdxl
        "#,
    );
    assert_at(&d, K::WrongType, 7, 13);
    assert!(d.hint.contains("models: [sdxl]"), "{d:#?}");
}

#[test]
fn missing_required_keys() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            type: loras
        "#,
    );
    assert_at(&d, K::MissingKey, 5, 5);
    assert!(d.message.contains("`source`"), "{d:#?}");

    let d = only("store: /s\n");
    assert_at(&d, K::MissingKey, 1, 1);
    assert_eq!(d.hint, "add `version: 1`");
}

#[test]
fn unsupported_version() {
    let d = only("version: 2\nstore: /s\n");
    assert_at(&d, K::UnsupportedVersion, 1, 10);
}

#[test]
fn bad_hashes_are_all_reported() {
    let all = errors(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            sha256: 31e35c80fc4829d14f90153f4c74cd59
            blake3: "sha256:31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5b"
          n:
            source: ./n.safetensors
            type: loras
            sha256: 31e35c80fc4829d14f90153f4c74cd59c90b779f6afe05a74cd6120b893f7e5g
        "#,
    );
    assert_eq!(all.len(), 3, "{all:#?}");
    assert_at(&all[0], K::BadHash, 7, 13);
    assert!(all[0].message.contains("has 32"), "{:#?}", all[0]);
    // The caret goes to the prefix itself.
    assert_at(&all[1], K::BadHash, 8, 14);
    assert!(all[1].message.contains("prefix"), "{:#?}", all[1]);
    assert_at(&all[2], K::BadHash, 12, 76);
    assert!(all[2].message.contains("`g`"), "{:#?}", all[2]);
}

#[test]
fn duplicate_names_point_at_the_second_and_name_the_first() {
    let all = errors(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./a.safetensors
            type: loras
          m:
            source: ./b.safetensors
            type: vae
          M:
            source: ./c.safetensors
            type: vae
        apps:
          comfy:
            preset: comfyui
            root: /c
            folders:
              loras: x/loras
              loras: y/loras
          comfy:
            preset: forge
            root: /f
        "#,
    );
    assert_eq!(all.len(), 4, "{all:#?}");
    assert_at(&all[0], K::DuplicateKey, 7, 3);
    assert!(
        all[0].message.contains("duplicate model name `m`"),
        "{all:#?}"
    );
    assert!(all[0].hint.contains("line 4"), "{all:#?}");
    assert_at(&all[1], K::DuplicateKey, 10, 3);
    assert!(all[1].message.contains("only in case"), "{all:#?}");
    assert_at(&all[2], K::DuplicateKey, 19, 7);
    assert_at(&all[3], K::DuplicateKey, 20, 3);
    assert!(
        all[3].message.contains("duplicate app name `comfy`"),
        "{all:#?}"
    );

    // A key repeated inside one model is caught by the parser.
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./a.safetensors
            source: ./b.safetensors
            type: loras
        "#,
    );
    assert_eq!(d.kind, K::DuplicateKey);
    assert!(d.message.contains("`source`"), "{d:#?}");
    assert_eq!(d.line, 5);
}

#[test]
fn types_unknown_to_a_preset_app() {
    let yaml = r#"
        version: 1
        store: /s
        models:
          flux:
            source: hf://black-forest-labs/FLUX.1-dev
            type: diffusers
          lora:
            source: ./l.safetensors
            type: lora
        apps:
          forge:
            preset: forge
            root: /opt/forge
        "#;
    let all = errors(yaml);
    assert_eq!(all.len(), 2, "{all:#?}");
    assert_at(&all[0], K::UnknownType, 6, 11);
    assert!(all[0].message.contains("app `forge`"), "{all:#?}");
    assert!(
        all[0].hint.contains("`checkpoints`"),
        "lists the preset's types: {all:#?}"
    );
    assert!(all[0].hint.contains("folders: { diffusers:"), "{all:#?}");
    assert_at(&all[1], K::UnknownType, 9, 11);
    assert!(all[1].hint.starts_with("did you mean `loras`?"), "{all:#?}");

    // A folders entry or a selection that leaves the model out resolves it.
    let fixed = yaml.replace(
        "root: /opt/forge",
        "root: /opt/forge
            folders: { diffusers: models/diffusers }
            models: [flux]",
    );
    common::ok(&fixed);

    // A custom app naming a model it has no folder for.
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          vae:
            source: ./v.safetensors
            type: vae
        apps:
          tool:
            root: /t
            folders: { loras: lora }
            models: [vae]
        "#,
    );
    assert_at(&d, K::UnknownType, 11, 14);
    assert!(d.hint.contains("`loras`"), "{d:#?}");
}

#[test]
fn a_retired_type_says_what_to_use() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          face:
            source: ./face_yolov8m.pt
            type: ultralytics
        apps:
          comfyui:
            preset: comfyui
            root: /c
        "#,
    );
    assert_at(&d, K::UnknownType, 6, 11);
    assert!(
        d.hint.starts_with(
            "type `ultralytics` is now `ultralytics_bbox` (detection models) or \
             `ultralytics_segm` (segmentation models)"
        ),
        "{d:#?}"
    );
}

#[test]
fn unsafe_names_and_paths() {
    let all = errors(
        r#"
        version: 1
        store: /s
        models:
          CON:
            source: ./a.safetensors
            type: loras
          ok-name.:
            source: ./b.safetensors
            type: loras
          "a\0b":
            source: ./c.safetensors
            type: loras
            file: ../evil.safetensors
          d:
            source: hf://org/repo
            type: "lo/ras"
            include: ["/etc/*"]
            file: "nul.txt"
          'x\y':
            source: ./e.safetensors
            type: vae
            tags: [COM1, "tab\tbed"]
            family: "sd 15"
        apps:
          app:
            preset: comfyui
            root: /r
            folders:
              loras: ../../etc
              vae: /abs/vae
              checkpoints: "a|b"
              "bad type": x
              embeddings: "x\ty"
        "#,
    );
    let at: Vec<_> = all.iter().map(|d| (d.kind, d.line, d.column)).collect();
    assert_eq!(
        at,
        vec![
            (K::BadName, 4, 3),      // CON
            (K::BadName, 7, 3),      // trailing dot
            (K::BadName, 10, 3),     // NUL
            (K::UnsafePath, 13, 11), // file with ..
            (K::BadName, 16, 14),    // `/` in a type
            (K::UnsafePath, 17, 15), // absolute include
            (K::UnsafePath, 18, 12), // reserved file name with an extension
            (K::BadName, 19, 5),     // `\` in a name
            (K::BadName, 22, 12),    // reserved tag
            (K::BadName, 22, 18),    // control character in a tag
            (K::BadName, 23, 16),    // space in a family
            (K::UnsafePath, 29, 14), // `..` in a folder
            (K::UnsafePath, 30, 12), // absolute folder
            (K::UnsafePath, 31, 22), // NTFS-invalid character
            (K::BadName, 32, 11),    // space in a type key
            (K::UnsafePath, 33, 19), // control character in a folder
        ],
        "{all:#?}"
    );
    for d in &all {
        assert!(!d.hint.is_empty(), "{d:#?}");
    }
    assert!(all[0].message.contains("reserved"), "{:#?}", all[0]);
    assert!(all[2].message.contains("NUL"), "{:#?}", all[2]);
    assert!(all[3].message.contains("not a path"), "{:#?}", all[3]);
    assert!(all[11].message.contains("`..`"), "{:#?}", all[11]);
    assert!(all[12].message.contains("absolute"), "{:#?}", all[12]);

    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            file: /tmp/m.safetensors
        "#,
    );
    assert_at(&d, K::UnsafePath, 7, 11);
    assert!(d.message.contains("absolute"), "{d:#?}");

    let d = only(&format!(
        "version: 1\nstore: /s\nmodels:\n  {}:\n    source: ./m\n    type: loras\n",
        "a".repeat(129)
    ));
    assert_at(&d, K::BadName, 4, 3);
    assert!(d.message.contains("129"), "{d:#?}");
}

#[test]
fn folders_and_files_named_in_other_scripts_are_fine() {
    // Their characters are several bytes each: the Windows device-name check once sliced
    // such a name mid-character and panicked.
    let manifest = ok(r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            file: модель€.safetensors
        apps:
          app:
            root: /r
            folders:
              loras: модели/ab€
        "#);
    assert_eq!(
        manifest.apps["app"].folder_for("loras"),
        Some(std::path::PathBuf::from("/r/модели/ab€"))
    );
}

#[test]
fn selections_must_name_models_or_tags() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            tags: [sdxl]
        apps:
          c:
            preset: comfyui
            root: /r
            models: [m, sdxl, mm]
        "#,
    );
    assert_at(&d, K::UnknownSelection, 12, 23);
    assert!(d.message.contains("`mm`"), "{d:#?}");
    assert_eq!(d.hint, "did you mean `m`?");
}

#[test]
fn a_family_selection_needs_a_model_of_that_family() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            family: sdxl
        apps:
          c:
            preset: comfyui
            root: /r
            models: [family:flux]
        "#,
    );
    assert_at(&d, K::UnknownSelection, 12, 14);
    assert!(
        d.message.contains("no model is declared `family: flux`"),
        "{d:#?}"
    );
    assert_eq!(d.hint, "families in this manifest: sdxl");
}

#[test]
fn unknown_source_schemes() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: s3://bucket/m.safetensors
            type: loras
        "#,
    );
    assert_at(&d, K::UnknownSourceScheme, 5, 13);
    assert!(d.message.contains("`s3:`"), "{d:#?}");
    assert!(d.hint.contains("hf://"), "{d:#?}");
    assert_eq!(d.length, 3, "the caret covers the scheme");

    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: "file:///data/m.safetensors"
            type: loras
        "#,
    );
    assert_at(&d, K::UnknownSourceScheme, 5, 14);
    assert!(d.hint.contains("without `file://`"), "{d:#?}");
}

#[test]
fn malformed_hf_and_civitai_sources() {
    let all = errors(
        r#"
        version: 1
        store: /s
        models:
          a:
            source: hf://org
            type: loras
          b:
            source: civitai:123
            type: loras
          c:
            source: "hf://org/repo@v1.0/x.safetensors"
            type: loras
          d:
            source: urn:air:sdxl:lora:civitai:123
            type: loras
          e:
            source: civitai:abc@1
            type: loras
        "#,
    );
    let at: Vec<_> = all.iter().map(|d| (d.kind, d.line, d.column)).collect();
    assert_eq!(
        at,
        vec![
            (K::BadSource, 5, 13),
            (K::BadSource, 8, 13),
            (K::BadSource, 11, 27),
            (K::BadSource, 14, 13),
            (K::BadSource, 17, 21),
        ],
        "{all:#?}"
    );
    assert!(all[1].message.contains("no version id"), "{all:#?}");
    assert!(all[2].hint.contains("revision: v1.0"), "{all:#?}");
    assert!(all[3].message.contains("no version"), "{all:#?}");
}

#[test]
fn revision_applies_to_hf_only() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: civitai:1@2
            revision: main
            type: loras
        "#,
    );
    assert_at(&d, K::MisplacedField, 6, 15);
}

#[test]
fn files_that_would_collide_in_an_app_folder() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          a:
            source: ./loras/detail.safetensors
            type: loras
          b:
            source: hf://org/repo/Detail.safetensors
            type: loras
          c:
            source: ./other/detail.safetensors
            type: loras
            file: detail-v2.safetensors
          d:
            source: ./ckpt/detail.safetensors
            type: checkpoints
        apps:
          comfy:
            preset: comfyui
            root: /c
          comfy2:
            preset: comfyui
            root: /c2
        "#,
    );
    assert_at(&d, K::Collision, 8, 13);
    assert!(d.message.contains("`a` and `b`"), "{d:#?}");
    assert!(d.message.contains("`models/loras`"), "{d:#?}");
    assert!(d.hint.contains("`file:`"), "{d:#?}");

    // Forge links checkpoints and diffusion models into one folder; a rename collides too.
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          sdxl:
            source: ./sdxl.safetensors
            type: checkpoints
          flux:
            source: ./flux-unet.safetensors
            type: diffusion_models
            file: sdxl.safetensors
        apps:
          forge:
            preset: forge
            root: /f
        "#,
    );
    assert_at(&d, K::Collision, 10, 11);
    assert!(d.message.contains("models/Stable-diffusion"), "{d:#?}");

    // In the flat layout the store itself is {type}/{file}.
    let d = only(
        r#"
        version: 1
        store: /s
        layout: flat
        models:
          a:
            source: ./x/model.safetensors
            type: vae
          b:
            source: ./y/model.safetensors
            type: vae
        "#,
    );
    assert_at(&d, K::Collision, 9, 13);
    assert!(d.message.contains("flat store"), "{d:#?}");
}

#[test]
fn custom_app_without_folders_is_empty() {
    let d = only(
        r#"
        version: 1
        store: /s
        apps:
          tool:
            root: /t
        "#,
    );
    assert_at(&d, K::EmptyApp, 4, 3);
}

#[test]
fn unset_variables_point_at_the_variable() {
    let all = errors(
        r#"
        version: 1
        store: ${MODELS}/${NOPE}
        models:
          m:
            source: ${SRC_DIR}/m.safetensors
            type: loras
        apps:
          comfy:
            preset: comfyui
            root: "~/apps/${APP}"
        "#,
    );
    let at: Vec<_> = all
        .iter()
        .map(|d| (d.kind, d.line, d.column, d.length))
        .collect();
    assert_eq!(
        at,
        vec![
            (K::UnsetVariable, 2, 18, 7),
            (K::UnsetVariable, 5, 13, 10),
            (K::UnsetVariable, 10, 19, 6),
        ],
        "{all:#?}"
    );
    assert!(all[0].message.contains("`NOPE`"), "{all:#?}");
    assert!(all[0].hint.contains("${NOPE:-"), "{all:#?}");
    assert!(all[1].message.contains("`SRC_DIR`"), "{all:#?}");
    assert!(all[2].message.contains("`APP`"), "{all:#?}");

    let d = only("version: 1\nstore: $MODELS/x\n");
    assert_at(&d, K::BadExpansion, 2, 8);
    assert!(d.hint.contains("${MODELS}"), "{d:#?}");
}

#[test]
fn yaml_syntax_errors_are_single_and_placed() {
    let d = only("version: 1\nstore: /s: x\n");
    assert_at(&d, K::Syntax, 2, 10);
    assert!(d.hint.contains("quote"), "{d:#?}");

    let d = only("version: 1\nstore: /s\nmodels:\n\tm: {}\n");
    assert_eq!((d.kind, d.line), (K::Syntax, 4), "{d:#?}");
    assert!(d.hint.contains("spaces"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m
            type: loras
            include: [*.json]
        "#,
    );
    assert_at(&d, K::Syntax, 7, 15);
    assert!(d.hint.contains("quote"), "{d:#?}");

    let d = only("   \n");
    assert_eq!(d.kind, K::Syntax);
    assert!(d.message.contains("empty"), "{d:#?}");
}

#[test]
fn every_semantic_error_is_collected_in_file_order() {
    let all = errors(
        r#"
        version: 3
        store: ${NOPE}
        models:
          "bad name":
            source: ftp://x/y
            type: loras
            sha256: abc
        apps:
          comfy:
            preset: comfyui
            root: /c
            models: [ghost]
          empty:
            root: /e
        "#,
    );
    let kinds: Vec<_> = all.iter().map(|d| d.kind).collect();
    assert_eq!(
        kinds,
        vec![
            K::UnsupportedVersion,
            K::UnsetVariable,
            K::BadName,
            K::UnknownSourceScheme,
            K::BadHash,
            K::UnknownSelection,
            K::EmptyApp,
        ],
        "{all:#?}"
    );
    let lines: Vec<_> = all.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![1, 2, 4, 5, 7, 12, 13]);
    assert_eq!(find(&all, K::BadHash).column, 13);
}
