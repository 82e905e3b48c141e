//! `${VAR}`, `${VAR:-default}`, `$$` and `~` in path fields, through the public API.

mod common;

use std::path::{Path, PathBuf};

use common::{ok, only};
use mlib_manifest::{DiagnosticKind, Source};

#[test]
fn variables_defaults_and_tilde_expand_in_path_fields() {
    let m = ok(r#"
        version: 1
        store: ${MODELS}/store
        models:
          a:
            source: ~/loras/a.safetensors
            type: loras
          b:
            source: ${LORA_DIR:-./loras}/b.safetensors
            type: loras
          c:
            source: ${EMPTY:-~/fallback}/c$$1.safetensors
            type: loras
        apps:
          comfy:
            preset: comfyui
            root: ${COMFY_ROOT:-~}/ComfyUI
          forge:
            preset: forge
            root: ${MODELS-unused}/forge
        "#);
    assert_eq!(m.store, Path::new("/mnt/models/store"));
    let local = |name: &str| match &m.models[name].source {
        Source::Local(path) => path.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        local("a"),
        PathBuf::from("/home/tester/loras/a.safetensors")
    );
    assert_eq!(local("b"), PathBuf::from("/work/proj/loras/b.safetensors"));
    assert_eq!(
        local("c"),
        PathBuf::from("/home/tester/fallback/c$1.safetensors")
    );
    assert_eq!(m.apps["comfy"].root, Path::new("/home/tester/ComfyUI"));
    assert_eq!(m.apps["forge"].root, Path::new("/mnt/models/forge"));
}

#[test]
fn the_env_callback_is_the_only_source_of_variables() {
    let text = "version: 1\nstore: ${MLIB_TEST_STORE}\n";
    let env = |name: &str| (name == "MLIB_TEST_STORE").then(|| "/from/callback".to_owned());
    let m = mlib_manifest::parse(text, Path::new("/p/models.yaml"), &env).unwrap();
    assert_eq!(m.store, Path::new("/from/callback"));

    let err = mlib_manifest::parse(text, Path::new("/p/models.yaml"), &|_| None).unwrap_err();
    assert_eq!(err.diagnostics()[0].kind, DiagnosticKind::UnsetVariable);
}

#[test]
fn only_path_fields_expand() {
    // `file` is a plain name: `$$` and `${...}` stay as written (and `$` is a valid character).
    // A URL keeps its references as written: they expand only when the request is made.
    let m = ok(r#"
        version: 1
        store: /s
        models:
          a:
            source: https://${X}@example.com/$$/a.safetensors?token=${MODELS}
            type: loras
            file: a$$b.safetensors
        "#);
    assert_eq!(m.models["a"].file.as_deref(), Some("a$$b.safetensors"));
    assert_eq!(
        m.models["a"].source,
        Source::Url("https://${X}@example.com/$$/a.safetensors?token=${MODELS}".into())
    );
    assert_eq!(
        m.models["a"].source.to_string(),
        "https://${X}@example.com/$$/a.safetensors?token=${MODELS}"
    );
}

#[test]
fn a_url_reference_outside_user_info_and_query_values_is_an_error() {
    let d = only(
        "version: 1\nstore: /s\nmodels:\n  a:\n    source: https://example.com/${X}/a.pth\n    type: loras\n",
    );
    common::assert_at(&d, DiagnosticKind::BadExpansion, 5, 33);
    assert_eq!(
        d.message,
        "model `a`: `${X}` is in the path of the URL, where variables are not expanded"
    );
}

#[test]
fn malformed_expansions_are_errors() {
    let d = only("version: 1\nstore: ${MODELS\n");
    common::assert_at(&d, DiagnosticKind::BadExpansion, 2, 8);
    assert!(d.message.contains("no closing"), "{d:#?}");

    let d = only("version: 1\nstore: ${MODELS:?required}\n");
    common::assert_at(&d, DiagnosticKind::BadExpansion, 2, 8);

    let d = only("version: 1\nstore: ~someone/models\n");
    common::assert_at(&d, DiagnosticKind::BadExpansion, 2, 8);

    let d = only("version: 1\nstore: ${EMPTY}\n");
    common::assert_at(&d, DiagnosticKind::BadExpansion, 2, 8);
    assert!(d.message.contains("empty"), "{d:#?}");

    let text = "version: 1\nstore: ~/models\n";
    let err = mlib_manifest::parse(text, Path::new("/p/models.yaml"), &|_| None).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.kind, d.line, d.column),
        (DiagnosticKind::UnsetVariable, 2, 8)
    );
    assert!(d.message.contains("HOME"), "{d:#?}");
}
