//! Version constraints: a model's `requires:` (PEP 440 specifiers by preset or app name) and
//! an app's `version:`, parsed, and refused with their place when they are not PEP 440 or name
//! nothing.

mod common;

use common::{assert_at, ok, only};
use mlib_manifest::{DiagnosticKind as K, parse_version};

#[test]
fn requires_applies_by_preset_and_by_app_name() {
    let m = ok(r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { comfyui: ">=0.3.40", nightly: "<0.5", forge: ">=2" }
        apps:
          stable: { preset: comfyui, root: /c }
          nightly: { preset: comfyui, root: /n, version: v0.4.0 }
          custom: { root: /x, folders: { loras: loras } }
        "#);
    let model = &m.models["m"];
    let keys = |app: &str| -> Vec<(String, String)> {
        model
            .requirements_for(&m.apps[app])
            .map(|(key, s)| (key.to_owned(), s.to_string()))
            .collect()
    };
    assert_eq!(keys("stable"), [("comfyui".into(), ">=0.3.40".into())]);
    assert_eq!(
        keys("nightly"),
        [
            ("comfyui".into(), ">=0.3.40".into()),
            ("nightly".into(), "<0.5".into())
        ]
    );
    assert!(keys("custom").is_empty());
    assert_eq!(m.apps["nightly"].version, parse_version("0.4.0"));
    assert_eq!(m.apps["stable"].version, None);
}

#[test]
fn an_invalid_specifier_is_refused_at_its_part() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { comfyui: ">=0.3.40, >>1" }
        "#,
    );
    assert_at(&d, K::BadVersion, 7, 37);
    assert!(
        d.message.starts_with(
            "model `m`, `requires` for `comfyui`: `>>1` is not a PEP 440 version specifier"
        ),
        "{d:#?}"
    );

    // A bare version: the hint says which operator it likely meant.
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires:
              comfyui: 0.3.40
        "#,
    );
    assert_at(&d, K::BadVersion, 8, 16);
    assert!(d.hint.contains("`>=0.3.40`"), "{d:#?}");

    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { comfyui: "" }
        "#,
    );
    assert_at(&d, K::BadVersion, 7, 26);
}

#[test]
fn an_unknown_requires_key_suggests_an_app_or_preset() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { comfy: ">=0.3.40" }
        apps:
          main: { preset: comfyui, root: /c }
        "#,
    );
    assert_at(&d, K::UnknownApp, 7, 17);
    assert!(d.message.contains("`comfy`"), "{d:#?}");
    assert!(d.hint.starts_with("did you mean `comfyui`?"), "{d:#?}");
    assert!(
        d.hint.contains("an app of this manifest (`main`)"),
        "{d:#?}"
    );

    // A preset no app uses is allowed: models move between manifests.
    ok(r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { forge: ">=2" }
        apps:
          main: { preset: comfyui, root: /c }
        "#);
}

#[test]
fn a_key_naming_an_app_and_another_apps_preset_is_refused() {
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires: { forge: ">=2" }
        apps:
          forge: { preset: comfyui, root: /c }
          webui: { preset: forge, root: /f }
        "#,
    );
    assert_at(&d, K::UnknownApp, 7, 17);
    assert!(d.message.contains("the preset of app `webui`"), "{d:#?}");
}

#[test]
fn an_app_version_that_is_not_pep_440_is_refused() {
    let d = only(
        r#"
        version: 1
        store: /s
        apps:
          comfyui: { preset: comfyui, root: /c, version: latest }
        "#,
    );
    assert_at(&d, K::BadVersion, 4, 50);
    assert!(d.message.contains("`latest`"), "{d:#?}");
}

#[test]
fn versions_written_as_yaml_numbers_keep_their_digits() {
    // `version: 1.10` is a float to YAML; mlib reads the text as written.
    let m = ok(r#"
        version: 1
        store: /s
        apps:
          a1111: { preset: a1111, root: /a, version: 1.10 }
        "#);
    assert_eq!(m.apps["a1111"].version, parse_version("1.10"));
}

#[test]
fn an_unquoted_constraint_is_a_syntax_error_that_says_to_quote_it() {
    // YAML reads a leading `>` as a folded block scalar.
    let d = only(
        r#"
        version: 1
        store: /s
        models:
          m:
            source: ./m.safetensors
            type: loras
            requires:
              comfyui: >=0.3.40
        "#,
    );
    assert_at(&d, K::Syntax, 8, 16);
    assert!(d.hint.contains(r#"`">=0.3.40"`"#), "{d:#?}");
}
