//! Version constraints: which versions of an app a model works with (a model's `requires:`,
//! PEP 440 specifiers by app or preset name), and an app's version set by hand (`version:`).
//!
//! A key of `requires:` is a preset name or an app name of the manifest. A preset name
//! constrains every app with that preset ("needs ComfyUI 0.3.40 or newer" is a fact about
//! ComfyUI, whatever the install is called); an app name constrains that app alone (a custom
//! app without a preset, or one install among several). An app must satisfy every key that
//! names it or its preset. A preset no app of the manifest uses is allowed (models are copied
//! between manifests); any other key is an error. Where the version of an app comes from is
//! the planner's business (`mlib_plan::app_version`): `version:` wins over the app's tree.

use std::str::FromStr;

pub use pep440_rs::{Version, VersionSpecifiers};

use crate::diagnostic::DiagnosticKind;
use crate::model::{App, Model};
use crate::rules::{Problem, show};

const SPECIFIER_HINT: &str = "write PEP 440 specifiers separated by commas: `>=0.3.40`, \
                              `>=1.10,<2`, `~=2.0`, `==0.3.*`; leave the app out of `requires` \
                              to allow every version";

/// `text` (a `requires:` value) as PEP 440 specifiers; an error points at the offending
/// comma-separated part. An empty constraint is an error rather than "any version", which
/// leaving the key out says plainly.
pub(crate) fn specifiers(text: &str) -> Result<VersionSpecifiers, Problem> {
    let bad =
        |message: String, hint: String| Problem::new(DiagnosticKind::BadVersion, message, hint);
    if text.trim().is_empty() {
        return Err(bad(
            "the version constraint is empty".into(),
            SPECIFIER_HINT.into(),
        ));
    }
    for piece in text.split(',') {
        let piece = piece.trim();
        if piece.is_empty() {
            return Err(bad(
                format!("{} has an empty part between commas", show(text)),
                SPECIFIER_HINT.into(),
            )
            .at(","));
        }
        if let Err(error) = pep440_rs::VersionSpecifier::from_str(piece) {
            // A bare version is the usual slip: say what it likely meant.
            let hint = match Version::from_str(piece) {
                Ok(_) => format!(
                    "a constraint needs an operator: `>={piece}` for this version and newer, \
                     `=={piece}` for exactly it"
                ),
                Err(_) => SPECIFIER_HINT.into(),
            };
            return Err(bad(
                format!(
                    "{} is not a PEP 440 version specifier: {}",
                    show(piece),
                    lower_first(&error.to_string())
                ),
                hint,
            )
            .at(piece));
        }
    }
    VersionSpecifiers::from_str(text).map_err(|error| {
        bad(
            format!("{} is not a PEP 440 version specifier: {error}", show(text)),
            SPECIFIER_HINT.into(),
        )
    })
}

/// `text` with its first letter in lower case, to continue a sentence.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

/// `text` (an app's `version:`) as a PEP 440 version.
pub(crate) fn version(text: &str) -> Result<Version, Problem> {
    parse_version(text).ok_or_else(|| {
        Problem::new(
            DiagnosticKind::BadVersion,
            format!("`version` {} is not a PEP 440 version", show(text)),
            "write the app's version as it is released, e.g. `version: 0.3.40` or \
             `version: 1.10.1`"
                .into(),
        )
    })
}

/// A version as apps write theirs (`0.3.40`, `v1.10.1`, `1.10.0-RC`), read the PEP 440 way
/// (a leading `v` is allowed, separators and case normalized); `None` if it is not one.
pub fn parse_version(text: &str) -> Option<Version> {
    Version::from_str(text.trim()).ok()
}

impl Model {
    /// The constraints of `requires:` that apply to `app`: the one keyed by its name and the
    /// one keyed by its preset, each as (key, specifiers).
    pub fn requirements_for<'a>(
        &'a self,
        app: &'a App,
    ) -> impl Iterator<Item = (&'a str, &'a VersionSpecifiers)> + 'a {
        let preset = app.preset.map(|p| p.as_str());
        self.requires
            .iter()
            .filter(move |(key, _)| **key == app.name || Some(key.as_str()) == preset)
            .map(|(key, specifiers)| (key.as_str(), specifiers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specifiers_and_versions_read_the_pep_440_way() {
        let s = specifiers(">=0.3.40, <0.4").unwrap();
        assert!(s.contains(&parse_version("0.3.40").unwrap()));
        assert!(!s.contains(&parse_version("0.3.10").unwrap()));
        assert!(!s.contains(&parse_version("0.4.0").unwrap()));
        assert!(
            specifiers("~=2.0")
                .unwrap()
                .contains(&parse_version("2.5").unwrap())
        );
        assert!(
            specifiers("==0.3.*")
                .unwrap()
                .contains(&parse_version("0.3.9").unwrap())
        );
        assert_eq!(parse_version("v1.10.1"), parse_version("1.10.1"));
        assert!(parse_version("1.10.0-RC").is_some_and(|v| v.is_pre()));
        assert!(parse_version("<none>").is_none());
    }

    #[test]
    fn bad_specifiers_point_at_their_part() {
        let p = specifiers(">=0.3.40, >>1").unwrap_err();
        assert_eq!(p.needle.as_deref(), Some(">>1"), "{}", p.message);
        let p = specifiers("0.3.40").unwrap_err();
        assert!(p.hint.contains("`>=0.3.40`"), "{}", p.hint);
        assert!(specifiers("").is_err());
        assert!(specifiers(">=1,").is_err());
        assert!(version("one").is_err());
        assert!(version("0.3.40").is_ok());
    }
}
