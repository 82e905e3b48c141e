//! Problems that point into the manifest: every one has a place (line, column, a byte span for
//! the caret snippet), a message saying what is wrong and a hint saying how to fix it.
//!
//! Checks push them into a `Sink` as byte spans; the sink turns those into lines and columns
//! so every check reports places the same way.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;
use serde_saphyr::Location;

/// What kind of problem a [`Diagnostic`] reports; stable, for scripts and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// The manifest could not be read.
    Io,
    /// The manifest is not UTF-8.
    Encoding,
    /// The manifest is larger than mlib reads (`MAX_MANIFEST_BYTES`).
    TooLarge,
    /// Not valid YAML, or YAML that cannot be read as a manifest.
    Syntax,
    UnknownKey,
    WrongType,
    MissingKey,
    DuplicateKey,
    UnsupportedVersion,
    BadHash,
    /// A model, app, type, family or tag name breaks the naming rules.
    BadName,
    /// A path that must stay inside a folder could escape it or is not portable.
    UnsafePath,
    /// A store, state folder or app root that is `/`, a system folder or the home folder.
    UnsafeRoot,
    /// The manifest's file name cannot be used (`*.lock`: its lock file would replace it).
    ManifestName,
    /// The store is, holds, or lies inside one of an app's folders.
    NestedStore,
    BadGlob,
    UnknownSourceScheme,
    /// A source with a known scheme but a malformed rest.
    BadSource,
    /// A field that does not apply to this kind of source.
    MisplacedField,
    /// An app gets a model whose type it has no folder for.
    UnknownType,
    /// An app's `models:` names a model or tag that does not exist.
    UnknownSelection,
    /// A custom app (no preset) without `folders`.
    EmptyApp,
    /// Two models would land at the same file name in the same folder.
    Collision,
    UnsetVariable,
    BadExpansion,
    /// A credential written literally into a URL source.
    LiteralSecret,
    /// A `requires:` constraint that is not PEP 440 specifiers, or an app's `version:` that is
    /// not a PEP 440 version.
    BadVersion,
    /// A `requires:` key that is neither an app of the manifest nor a preset, or that names
    /// both an app and another app's preset.
    UnknownApp,
    /// `link: folder` or `link_folders:` that cannot be made: a nested store, a type the app
    /// has no folder for, or type folders that are not named as the store names them.
    FolderLink,
    /// A `mirrors:` entry that is not an `s3://` or `https://` address mlib can use.
    BadMirror,
}

impl DiagnosticKind {
    /// The kebab-case name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            DiagnosticKind::Io => "io",
            DiagnosticKind::Encoding => "encoding",
            DiagnosticKind::TooLarge => "too-large",
            DiagnosticKind::Syntax => "syntax",
            DiagnosticKind::UnknownKey => "unknown-key",
            DiagnosticKind::WrongType => "wrong-type",
            DiagnosticKind::MissingKey => "missing-key",
            DiagnosticKind::DuplicateKey => "duplicate-key",
            DiagnosticKind::UnsupportedVersion => "unsupported-version",
            DiagnosticKind::BadHash => "bad-hash",
            DiagnosticKind::BadName => "bad-name",
            DiagnosticKind::UnsafePath => "unsafe-path",
            DiagnosticKind::UnsafeRoot => "unsafe-root",
            DiagnosticKind::ManifestName => "manifest-name",
            DiagnosticKind::NestedStore => "nested-store",
            DiagnosticKind::BadGlob => "bad-glob",
            DiagnosticKind::UnknownSourceScheme => "unknown-source-scheme",
            DiagnosticKind::BadSource => "bad-source",
            DiagnosticKind::MisplacedField => "misplaced-field",
            DiagnosticKind::UnknownType => "unknown-type",
            DiagnosticKind::UnknownSelection => "unknown-selection",
            DiagnosticKind::EmptyApp => "empty-app",
            DiagnosticKind::Collision => "collision",
            DiagnosticKind::FolderLink => "folder-link",
            DiagnosticKind::UnsetVariable => "unset-variable",
            DiagnosticKind::BadExpansion => "bad-expansion",
            DiagnosticKind::LiteralSecret => "literal-secret",
            DiagnosticKind::BadVersion => "bad-version",
            DiagnosticKind::UnknownApp => "unknown-app",
            DiagnosticKind::BadMirror => "bad-mirror",
        }
    }

    pub(crate) fn code(self) -> String {
        format!("mlib::manifest::{}", self.as_str().replace('-', "_"))
    }
}

impl fmt::Display for DiagnosticKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub kind: DiagnosticKind,
    /// The manifest, as its path was given to `load`/`parse`.
    pub file: PathBuf,
    /// What is wrong, in one sentence.
    pub message: String,
    /// 1-based; 0 when the problem has no place in the file (it could not be read).
    pub line: usize,
    /// 1-based, counted in characters.
    pub column: usize,
    /// How to fix it.
    pub hint: String,
    /// Byte offset of the offending text in the manifest.
    pub offset: usize,
    /// Byte length of the offending text (0 for a point).
    pub length: usize,
}

/// A byte range of the manifest text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Span {
    pub offset: usize,
    pub length: usize,
}

/// Collects diagnostics while the manifest is checked, turning byte spans into lines and columns.
pub(crate) struct Sink<'a> {
    text: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// Literal credentials found: snippets show them as `*`.
    secrets: Vec<Span>,
}

impl<'a> Sink<'a> {
    pub fn new(text: &'a str) -> Self {
        Sink {
            text,
            diagnostics: Vec::new(),
            secrets: Vec::new(),
        }
    }

    pub fn text(&self) -> &'a str {
        self.text
    }

    pub fn push(
        &mut self,
        kind: DiagnosticKind,
        at: Span,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let (line, column) = line_column(self.text, at.offset);
        self.diagnostics.push(Diagnostic {
            kind,
            // Filled in by `ManifestError::new`, which knows the path.
            file: PathBuf::new(),
            message: shorten_words(&message.into()),
            line,
            column,
            hint: shorten_words(&hint.into()),
            offset: at.offset,
            length: at.length,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Marks `at` as a secret that no snippet may show.
    pub fn secret(&mut self, at: Span) {
        self.secrets.push(at);
    }

    /// The diagnostics in file order (checks run field by field, then across entries), and the
    /// secrets marked.
    pub fn into_parts(mut self) -> (Vec<Diagnostic>, Vec<Span>) {
        self.diagnostics.sort_by_key(|d| d.offset);
        (self.diagnostics, self.secrets)
    }

    /// The byte span a parser location covers, clamped to the text.
    pub fn span(&self, location: &Location) -> Span {
        span_of(self.text, location)
    }

    /// Narrows `span` to the first occurrence of `needle` inside it, so the caret lands on the
    /// offending part of a value (a `${VAR}`, a `..`). Keeps `span` when the text differs (escapes
    /// in a quoted scalar).
    pub fn narrow(&self, span: Span, needle: &str) -> Span {
        let end = (span.offset + span.length).min(self.text.len());
        match self.text.get(span.offset..end).and_then(|s| s.find(needle)) {
            Some(at) if !needle.is_empty() => Span {
                offset: span.offset + at,
                length: needle.len(),
            },
            _ => span,
        }
    }

    /// The 1-based line of a span, for messages that refer to another place ("first defined on
    /// line 4").
    pub fn line_of(&self, span: Span) -> usize {
        line_column(self.text, span.offset).0
    }
}

/// Words longer than this are shortened in messages and hints.
const MAX_WORD: usize = 200;

/// `text` with every word (a run without spaces: a value, a path, a URL quoted in a message)
/// longer than [`MAX_WORD`] characters cut to its start and end around a `…`, so that a
/// megabyte-long value in the manifest never becomes a megabyte-long message.
pub(crate) fn shorten_words(text: &str) -> String {
    if text.len() <= MAX_WORD {
        return text.to_owned();
    }
    let keep = MAX_WORD / 2 - 1;
    let mut out = String::with_capacity(text.len().min(4096));
    for (i, word) in text.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let length = word.chars().count();
        if length <= MAX_WORD {
            out.push_str(word);
        } else {
            out.extend(word.chars().take(keep));
            out.push('…');
            out.extend(word.chars().skip(length - keep));
        }
    }
    out
}

pub(crate) fn span_of(text: &str, location: &Location) -> Span {
    let span = location.span();
    let (offset, length) = match (span.byte_offset(), span.byte_len()) {
        (Some(offset), Some(length)) => (offset as usize, length as usize),
        // Without byte offsets (never for string input), fall back to line and column.
        _ => (
            offset_of(text, location.line() as usize, location.column() as usize),
            0,
        ),
    };
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let length = length.min(text.len() - offset);
    Span { offset, length }
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// 1-based line and character column of a byte offset.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn offset_of(text: &str, line: usize, column: usize) -> usize {
    if line == 0 {
        return 0;
    }
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    text[start..]
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.len(), |(i, _)| start + i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_words_are_shortened_and_short_text_kept() {
        assert_eq!(shorten_words("a `b` c"), "a `b` c");
        let long = format!("the store `{}` is bad", "a".repeat(1000));
        let short = shorten_words(&long);
        assert!(short.starts_with("the store `aaa") && short.ends_with("aaa` is bad"));
        assert!(
            short.contains('…') && short.chars().count() < 230,
            "{short}"
        );
    }
}
