//! Helpers shared by the integration tests: parse YAML written inline, look at diagnostics.
#![allow(dead_code)]

use std::path::Path;

use mlib_manifest::{Diagnostic, DiagnosticKind, Manifest, ManifestError};

/// Where the test manifests pretend to live.
pub const MANIFEST: &str = "/work/proj/models.yaml";

/// The environment tests see: nothing but these.
pub fn env(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/tester".to_owned()),
        "MODELS" => Some("/mnt/models".to_owned()),
        "EMPTY" => Some(String::new()),
        _ => None,
    }
}

/// Strips the first newline and the common indentation, so manifests can be written indented
/// in the test source; line 1 is the first line after the opening quote.
pub fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in text.lines() {
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    out
}

pub fn parse(yaml: &str) -> Result<Manifest, ManifestError> {
    mlib_manifest::parse(&dedent(yaml), Path::new(MANIFEST), &env)
}

/// The manifest, or a panic showing every diagnostic as miette renders it.
pub fn ok(yaml: &str) -> Manifest {
    match parse(yaml) {
        Ok(manifest) => manifest,
        Err(error) => panic!("{:?}", miette::Report::new(error)),
    }
}

pub fn errors(yaml: &str) -> Vec<Diagnostic> {
    match parse(yaml) {
        Ok(manifest) => panic!("expected errors, got {manifest:#?}"),
        Err(error) => error.diagnostics().to_vec(),
    }
}

/// The one diagnostic `yaml` produces.
pub fn only(yaml: &str) -> Diagnostic {
    let mut all = errors(yaml);
    assert_eq!(all.len(), 1, "expected one diagnostic, got {all:#?}");
    all.remove(0)
}

/// Asserts the kind and the 1-based line and column of `d`, showing it all on failure.
#[track_caller]
pub fn assert_at(d: &Diagnostic, kind: DiagnosticKind, line: usize, column: usize) {
    assert_eq!(
        (d.kind, d.line, d.column),
        (kind, line, column),
        "unexpected diagnostic: {d:#?}"
    );
    assert!(!d.hint.is_empty(), "no hint: {d:#?}");
}

/// The first diagnostic of `kind`, or a panic listing them all.
#[track_caller]
pub fn find(all: &[Diagnostic], kind: DiagnosticKind) -> Diagnostic {
    all.iter()
        .find(|d| d.kind == kind)
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} diagnostic in {all:#?}"))
}
