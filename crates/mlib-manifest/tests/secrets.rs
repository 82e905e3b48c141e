//! Credentials in URL sources: literal ones are errors that never show their value; `${VAR}`
//! stands in their place and is kept as written.

mod common;

use std::path::Path;

use common::{assert_at, ok, only};
use mlib_manifest::{DiagnosticKind, Source};

fn model(source: &str) -> String {
    format!("version: 1\nstore: /s\nmodels:\n  m:\n    source: {source}\n    type: loras\n")
}

#[test]
fn a_literal_token_in_the_query_is_refused_without_showing_it() {
    let d = only(&model("https://host/x.safetensors?token=abc123&download=1"));
    assert_at(&d, DiagnosticKind::LiteralSecret, 5, 46);
    assert_eq!(d.length, "abc123".len());
    assert_eq!(
        d.message,
        "model `m`: the URL holds a literal credential (`token=***`)"
    );
    assert_eq!(
        d.hint,
        "read it from the environment: `source: \
         https://host/x.safetensors?token=${MY_TOKEN}&download=1` (mlib expands `${VAR}` in a \
         URL's user info and query values only when it makes the request, and never writes the \
         value)"
    );
}

#[test]
fn literal_user_info_and_signed_url_parameters_are_refused() {
    let d = only(&model("https://user:hunter2@host/x.pth"));
    assert_at(&d, DiagnosticKind::LiteralSecret, 5, 26);
    assert_eq!(
        d.message,
        "model `m`: the URL holds a literal credential (`***@`)"
    );
    assert!(
        d.hint
            .contains("`source: https://user:${MY_PASSWORD}@host/x.pth`"),
        "{d:#?}"
    );

    let d = only(&model("https://token-only@host/x.pth"));
    assert!(
        d.hint.contains("`source: https://${MY_TOKEN}@host/x.pth`"),
        "{d:#?}"
    );

    let d = only(&model(
        "https://b.s3.amazonaws.com/x.pth?X-Amz-Credential=AKIA&X-Amz-Signature=f00",
    ));
    assert_eq!(
        d.message,
        "model `m`: the URL holds literal credentials (`X-Amz-Credential=***`, \
         `X-Amz-Signature=***`)"
    );
    assert!(
        !d.message.contains("AKIA") && !d.hint.contains("f00"),
        "{d:#?}"
    );
}

#[test]
fn the_snippet_stars_the_credential() {
    let text = model("'https://host/x.pth?sig=s3cr3t'");
    let err = mlib_manifest::parse(&text, Path::new("models.yaml"), &common::env).unwrap_err();
    let report = format!("{:?}", miette::Report::new(err));
    assert!(!report.contains("s3cr3t"), "{report}");
    assert!(report.contains("sig=******"), "{report}");
}

#[test]
fn variables_stand_in_for_credentials_and_are_kept_as_written() {
    for url in [
        "https://host/x.safetensors?token=${MY_TOKEN}",
        "https://${USER_NAME}:${PASSWORD:-}@host/x.safetensors",
        "https://user:${PASSWORD}@host/x.safetensors",
        "https://host/x.safetensors?Signature=${SIG}&Key-Pair-Id=${KP}&Policy=${P}&v=2",
    ] {
        let m = ok(&model(url));
        assert_eq!(m.models["m"].source, Source::Url(url.to_owned()));
        assert_eq!(m.models["m"].source.to_string(), url);
    }
}

#[test]
fn an_invalid_url_with_a_credential_is_reported_without_it() {
    let text = model("https://user:hunter2@/x.pth?sig=s3cr3t");
    let err = mlib_manifest::parse(&text, Path::new("models.yaml"), &common::env).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.kind, DiagnosticKind::BadSource);
    assert_eq!(
        d.message,
        "model `m`: `https://user:***@/x.pth?sig=***` is not a valid URL: empty host"
    );
    let report = format!("{:?}", miette::Report::new(err));
    assert!(
        !report.contains("hunter2") && !report.contains("s3cr3t"),
        "{report}"
    );
}
