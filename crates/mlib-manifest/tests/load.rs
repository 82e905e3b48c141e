//! `load` reads real files: paths are placed relative to the manifest's folder, and files that
//! cannot be read are reported as diagnostics too.

mod common;

use std::error::Error as _;

use mlib_manifest::{DiagnosticKind, Source};

#[test]
fn load_resolves_against_the_manifest_folder() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.yaml");
    fs_err::write(
        &path,
        "version: 1\nstore: store\nmodels:\n  m:\n    source: ./in/m.safetensors\n    type: loras\n",
    )
    .unwrap();
    let m = mlib_manifest::load(&path, &common::env).unwrap();
    assert_eq!(m.path, path);
    assert_eq!(m.dir, dir.path());
    assert_eq!(m.store, dir.path().join("store"));
    assert_eq!(
        m.models["m"].source,
        Source::Local(dir.path().join("in").join("m.safetensors"))
    );
}

#[test]
fn missing_file_is_an_io_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.yaml");
    let err = mlib_manifest::load(&path, &common::env).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!((d.kind, d.line), (DiagnosticKind::Io, 0));
    assert!(d.hint.contains("models.yaml.example"), "{d:#?}");
    assert!(err.to_string().contains("nope.yaml"), "{err}");
    assert!(err.source().is_some(), "the io error is the source");
    // Rendering an error without a place must not panic.
    let _ = format!("{:?}", miette::Report::new(err));
}

#[test]
fn non_utf8_file_is_an_encoding_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.yaml");
    fs_err::write(&path, b"version: 1\nstore: /s\xff\n").unwrap();
    let err = mlib_manifest::load(&path, &common::env).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(
        (d.kind, d.line, d.column),
        (DiagnosticKind::Encoding, 2, 10),
        "{d:#?}"
    );
    assert!(d.message.contains("offset 20"), "{err}");
    let _ = format!("{:?}", miette::Report::new(err));
}

#[test]
fn errors_in_a_loaded_file_name_the_path_as_given() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.yaml");
    fs_err::write(&path, "version: 1\nstore: /s\nextra: 1\n").unwrap();
    let err = mlib_manifest::load(&path, &common::env).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("{}:3:1: unknown key `extra`", path.display())
    );
}

#[test]
fn the_lock_file_is_the_manifest_with_the_extension_lock() {
    let text = "version: 1\nstore: /s\n";
    for (manifest, lock) in [
        ("/p/models.yaml", "/p/models.lock"),
        ("/p/small.yaml", "/p/small.lock"),
        ("/p/x.yml", "/p/x.lock"),
        ("/p/foo", "/p/foo.lock"),
        ("/p/a.b.yaml", "/p/a.b.lock"),
    ] {
        let m = mlib_manifest::parse(text, std::path::Path::new(manifest), &common::env).unwrap();
        assert_eq!(m.lock_path(), std::path::Path::new(lock), "{manifest}");
    }
    for name in ["/p/models.lock", "/p/models.LOCK"] {
        let err = mlib_manifest::parse(text, std::path::Path::new(name), &common::env).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!(
            (d.kind, d.line, d.column),
            (DiagnosticKind::ManifestName, 1, 1)
        );
    }
}

/// The YAML parser's default budget (250,000 nodes) refused manifests of more than ~25,000
/// models; within the size limit, a manifest of any number of models is read.
#[test]
fn a_manifest_of_fifty_thousand_models_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("models.yaml");
    let mut text = String::from("version: 1\nstore: store\nmodels:\n");
    for i in 0..50_000 {
        text.push_str(&format!(
            "  m{i}:\n    source: ./in/m{i}.safetensors\n    type: loras\n    family: sdxl\n"
        ));
    }
    fs_err::write(&path, text).unwrap();
    let m = mlib_manifest::load(&path, &common::env).unwrap();
    assert_eq!(m.models.len(), 50_000);
}
