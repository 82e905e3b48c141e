//! The checked-in JSON schema and the example manifest stay in step with the parser.

use std::path::{Path, PathBuf};

fn repo_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name)
}

#[test]
fn checked_in_schema_matches_the_types() {
    let path = repo_file("schemas/models.schema.json");
    let generated = mlib_manifest::schema();
    if std::env::var_os("MLIB_UPDATE_SCHEMA").is_some() {
        fs_err::write(&path, &generated).unwrap();
        return;
    }
    let checked_in = fs_err::read_to_string(&path)
        .unwrap_or_default()
        .replace("\r\n", "\n");
    assert!(
        checked_in == generated,
        "schemas/models.schema.json is out of date with the manifest types: run \
         `MLIB_UPDATE_SCHEMA=1 cargo test -p mlib-manifest` to rewrite it, then commit it"
    );
}

#[test]
fn schema_describes_the_manifest() {
    let schema: serde_json::Value = serde_json::from_str(&mlib_manifest::schema()).unwrap();
    let props = &schema["properties"];
    for key in ["version", "store", "layout", "models", "apps"] {
        assert!(props.get(key).is_some(), "no `{key}` in the schema");
    }
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(
        schema["required"],
        serde_json::json!(["version", "store"]),
        "version and store are the required top-level keys"
    );
    assert_eq!(props["version"]["const"], 1);
    let model = &schema["definitions"]["Model"];
    assert_eq!(model["additionalProperties"], false);
    assert_eq!(model["required"], serde_json::json!(["source", "type"]));
    assert_eq!(
        model["properties"]["sha256"]["pattern"],
        "^[0-9a-fA-F]{64}$"
    );
    let preset = &schema["definitions"]["Preset"];
    let text = preset.to_string();
    for name in ["comfyui", "a1111", "forge", "sdnext", "fooocus", "swarmui"] {
        assert!(text.contains(name), "preset {name} missing from {text}");
    }
}

fn example_env(name: &str) -> Option<String> {
    (name == "HOME").then(|| "/home/example".to_owned())
}

#[test]
fn example_manifest_is_valid() {
    let path = repo_file("models.yaml.example");
    let manifest = match mlib_manifest::load(&path, &example_env) {
        Ok(manifest) => manifest,
        Err(error) => panic!("{:?}", miette::Report::new(error)),
    };
    assert_eq!(manifest.store, Path::new("/home/example/models"));
    assert!(manifest.models.len() >= 5);
    assert!(manifest.apps.values().any(|a| a.preset.is_none()));
    let text = fs_err::read_to_string(&path).unwrap();
    assert!(text.starts_with("# yaml-language-server: $schema=schemas/models.schema.json\n"));
}

/// Every key the schema knows appears in the example, so the example documents every field.
#[test]
fn example_manifest_shows_every_field() {
    let schema: serde_json::Value = serde_json::from_str(&mlib_manifest::schema()).unwrap();
    let text = fs_err::read_to_string(repo_file("models.yaml.example")).unwrap();
    let mut keys = Vec::new();
    for object in [
        &schema,
        &schema["definitions"]["Model"],
        &schema["definitions"]["App"],
    ] {
        keys.extend(object["properties"].as_object().unwrap().keys().cloned());
    }
    assert!(keys.len() > 15, "{keys:?}");
    for key in keys {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{key}:"))),
            "models.yaml.example does not show `{key}:`"
        );
    }
}
