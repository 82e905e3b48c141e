//! How errors read: the one-line `Display`, and miette's report with every error's
//! `file:line:column`, caret snippet and hint.

mod common;

use std::path::Path;

use mlib_manifest::ManifestError;

const BROKEN: &str = "\
version: 1
store: /s
models:
  m:
    source: s3://bucket/m.safetensors
    type: loras
    sha256: abc
apps:
  comfy:
    preset: comfyui
    root: /c
    models: [m, ghost]
";

fn error(text: &str) -> ManifestError {
    mlib_manifest::parse(text, Path::new("models.yaml"), &common::env).unwrap_err()
}

/// The report as text, without colours, whatever the terminal.
fn render(error: ManifestError) -> String {
    let report = format!("{:?}", miette::Report::new(error));
    let mut plain = String::new();
    let mut chars = report.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Skip an ANSI escape sequence up to its final letter.
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn display_is_a_one_line_summary() {
    let err = error(BROKEN);
    assert_eq!(err.to_string(), "models.yaml: 3 errors");
    assert_eq!(err.diagnostics().len(), 3);
    assert_eq!(err.path(), Path::new("models.yaml"));

    let err = error("version: 2\nstore: /s\n");
    assert_eq!(
        err.to_string(),
        "models.yaml:1:10: manifest version 2 is not supported"
    );
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn report_shows_every_error_with_place_snippet_and_hint() {
    let err = error(BROKEN);
    let diagnostics = err.diagnostics().to_vec();
    let text = render(err);
    let flat = squash(&text);
    for d in &diagnostics {
        let place = format!("models.yaml:{}:{}", d.line, d.column);
        assert!(text.contains(&place), "no {place} in:\n{text}");
        assert!(
            flat.contains(&squash(&d.message)),
            "no message {:?} in:\n{text}",
            d.message
        );
        assert!(
            flat.contains(&squash(&d.hint)),
            "no hint {:?} in:\n{text}",
            d.hint
        );
    }
    // The snippet quotes the offending lines with labels under them.
    assert!(text.contains("source: s3://bucket/m.safetensors"), "{text}");
    assert!(text.contains("unknown scheme"), "{text}");
    assert!(text.contains("bad hash"), "{text}");
    assert!(text.contains("no such model or tag"), "{text}");
    assert!(text.contains("models.yaml: 3 errors"), "{text}");
}

#[test]
fn single_error_report_has_its_snippet_and_help() {
    let text = render(error("version: 1\nstore: /s\nmodles: {}\n"));
    assert!(text.contains("models.yaml:3:1"), "{text}");
    assert!(text.contains("modles: {}"), "{text}");
    assert!(text.contains("did you mean `models`?"), "{text}");
    assert!(text.contains("mlib::manifest::unknown_key"), "{text}");
}

#[test]
fn diagnostics_serialize_for_json_output() {
    let err = error(BROKEN);
    let json = serde_json::to_value(err.diagnostics()).unwrap();
    assert_eq!(json[0]["kind"], "unknown-source-scheme");
    assert_eq!(json[0]["file"], "models.yaml");
    assert_eq!(json[0]["line"], 5);
    assert_eq!(json[0]["column"], 13);
    assert!(json[0]["hint"].as_str().unwrap().contains("hf://"));
    assert_eq!(json[2]["kind"], "unknown-selection");
}

#[test]
fn a_50_mb_line_renders_one_screen_wide_with_its_caret() {
    let text = format!("version: 1\nstore: {}\n", "a".repeat(50_000_000));
    let text = render(error(&text));
    let widest = text.lines().map(|l| l.chars().count()).max().unwrap();
    assert!(widest <= 100, "{widest} columns");
    assert!(text.contains("[models.yaml:2:8]"), "{text}");
    assert!(text.contains(" 2 │ store: aaa"), "{text}");
    assert!(text.contains("╰── unsafe path"), "{text}");
    assert!(text.contains("50000000 bytes"), "{text}");
}
