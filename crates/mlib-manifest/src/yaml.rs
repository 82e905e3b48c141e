//! The one place YAML is read (serde-saphyr), and the translation of its errors into diagnostics
//! with hints.
//!
//! A YAML or shape error stops deserialization, so it is always a single diagnostic. Repeated
//! mapping keys are passed through to our own map visitor instead of failing here, so duplicate
//! model and app names are reported together with every other semantic error.

use serde_saphyr::{DuplicateKeyPolicy, Error, MessageFormatter, Options, UserMessageFormatter};

use crate::diagnostic::{DiagnosticKind, Sink, Span};
use crate::raw::RawManifest;
use crate::suggest::{closest, list};

/// Deserializes the manifest, or records why it could not be.
pub(crate) fn read(sink: &mut Sink) -> Option<RawManifest> {
    let text = sink.text();
    if text.trim().is_empty() {
        sink.push(
            DiagnosticKind::Syntax,
            Span::default(),
            "the manifest is empty",
            "start with `version: 1` and `store: ~/models`; see models.yaml.example",
        );
        return None;
    }
    // Without places, the common block style is read by the fast subset reader; anything
    // else, and every manifest read with places (to report a problem), by serde-saphyr.
    if !crate::spanned::places()
        && let Some(raw) = crate::block::read::<RawManifest>(text)
    {
        #[cfg(debug_assertions)]
        same_as_saphyr(text, &raw);
        tracing::debug!("manifest read by the block-style reader");
        return Some(raw);
    }
    tracing::debug!(
        "manifest read by serde-saphyr (outside the block-style subset, or read again to place \
         a problem)"
    );
    match serde_saphyr::from_str_with_options::<RawManifest>(text, options()) {
        Ok(raw) => Some(raw),
        Err(error) => {
            report(sink, &error);
            None
        }
    }
}

pub(crate) fn options() -> Options {
    let mut options = Options::default();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    options.with_snippet = false;
    // Comments are still checked as YAML, but their text is not kept: nothing reads it.
    options.emit_comments = false;
    // The parser's default budget (250,000 nodes, 1,000,000 events) refused manifests of more
    // than ~25,000 models. The size limit (`MAX_MANIFEST_BYTES`) already bounds the work; a
    // node or an event takes at least two bytes of text, so these never bind first. The
    // limits on aliases (expansion bombs) and depth stay the parser's.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(crate::MAX_MANIFEST_BYTES as usize / 2);
    budget.max_events = budget.max_events.max(crate::MAX_MANIFEST_BYTES as usize);
    options.budget = Some(budget);
    options
}

/// Debug builds check every manifest the fast reader accepts against serde-saphyr, so that the
/// whole test suite holds the two readers to the same result.
#[cfg(debug_assertions)]
fn same_as_saphyr(text: &str, fast: &RawManifest) {
    match serde_saphyr::from_str_with_options::<RawManifest>(text, options()) {
        Ok(careful) => assert_eq!(
            format!("{fast:?}"),
            format!("{careful:?}"),
            "the block reader and serde-saphyr disagree on:\n{text}"
        ),
        Err(error) => {
            panic!("the block reader accepted what serde-saphyr refuses ({error}):\n{text}")
        }
    }
}

fn report(sink: &mut Sink, error: &Error) {
    let error = error.without_snippet();
    let at = error
        .location()
        .map(|location| sink.span(&location))
        .unwrap_or_default();
    let (kind, message, hint) = describe(error);
    sink.push(kind, at, message, hint);
}

fn describe(error: &Error) -> (DiagnosticKind, String, String) {
    match error {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = match closest(field, expected.iter().copied()) {
                Some(near) => format!(
                    "did you mean `{near}`? Keys allowed here: {}",
                    list(expected.iter().copied())
                ),
                None => format!(
                    "remove it; keys allowed here: {}",
                    list(expected.iter().copied())
                ),
            };
            (
                DiagnosticKind::UnknownKey,
                format!("unknown key `{field}`"),
                hint,
            )
        }
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let hint = match closest(variant, expected.iter().copied()) {
                Some(near) => format!(
                    "did you mean `{near}`? Use one of {}",
                    list(expected.iter().copied())
                ),
                None => format!("use one of {}", list(expected.iter().copied())),
            };
            (
                DiagnosticKind::WrongType,
                format!("unknown value `{variant}`"),
                hint,
            )
        }
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        }
        | Error::SerdeInvalidValue {
            unexpected,
            expected,
            ..
        } => (
            DiagnosticKind::WrongType,
            format!("expected {expected}, found {unexpected}"),
            format!(
                "write {expected} here (see models.yaml.example or schemas/models.schema.json)"
            ),
        ),
        Error::Unexpected { expected, .. } => {
            let expected = humanize(expected);
            (
                DiagnosticKind::WrongType,
                format!("expected {expected} here"),
                format!(
                    "write {expected} here (see models.yaml.example or schemas/models.schema.json)"
                ),
            )
        }
        Error::InvalidScalar { ty, .. } => {
            let expected = humanize(ty);
            (
                DiagnosticKind::WrongType,
                format!("expected {expected} here"),
                format!("write {expected} here; check the indentation of the lines below it too"),
            )
        }
        Error::SerdeMissingField { field, .. } => (
            DiagnosticKind::MissingKey,
            format!("missing required key `{field}`"),
            format!("add `{field}: {}`", example(field)),
        ),
        Error::DuplicateMappingKey { key, .. } => {
            let key = key.as_deref().unwrap_or("?");
            (
                DiagnosticKind::DuplicateKey,
                format!("duplicate key `{key}`"),
                "keep one of them: a key may appear once in a mapping".to_owned(),
            )
        }
        Error::Message { msg, .. } if msg.starts_with("duplicate field") => (
            DiagnosticKind::DuplicateKey,
            msg.replace("duplicate field", "duplicate key"),
            "keep one of them: a key may appear once in a mapping".to_owned(),
        ),
        Error::UnknownAnchor { .. } => (
            DiagnosticKind::Syntax,
            "`*` starts a YAML alias, and no anchor has this name".to_owned(),
            "quote values that start with `*`, e.g. globs: include: [\"*.safetensors\"]".to_owned(),
        ),
        other => {
            let message = UserMessageFormatter.format_message(other).into_owned();
            let hint = if message.contains("tab") {
                "indent with spaces: YAML does not allow tabs for indentation"
            } else {
                "fix the YAML at this place (indentation, a missing `:`, unbalanced quotes or \
             brackets); quote values containing `: ` or starting with `*`, `&`, `!`, `%`, `@`, \
             `>`, `|` (version constraints: `\">=0.3.40\"`)"
            };
            (DiagnosticKind::Syntax, message, hint.to_owned())
        }
    }
}

/// Parser vocabulary in user words.
fn humanize(expected: &str) -> String {
    match expected {
        "string scalar" | "string" => "a string".to_owned(),
        "mapping start" | "mapping" => "a mapping (indented `key: value` lines)".to_owned(),
        "sequence start" | "sequence" => "a list (`[a, b]` or `- a` lines)".to_owned(),
        "u8" | "u16" | "u32" | "u64" | "i8" | "i16" | "i32" | "i64" => "a whole number".to_owned(),
        "bool" => "`true` or `false`".to_owned(),
        other => other.to_owned(),
    }
}

/// A plausible value for a required key, for "add `key: value`" hints.
fn example(field: &str) -> &'static str {
    match field {
        "version" => "1",
        "store" => "~/models",
        "source" => "hf://org/repo/file.safetensors",
        "type" => "checkpoints",
        "root" => "/path/to/the/app",
        _ => "...",
    }
}
