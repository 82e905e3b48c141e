//! `ManifestError`: every diagnostic of one manifest together with its text, so `miette` can
//! draw each one with its caret snippet (as related diagnostics when there are several) and the
//! CLI can still list them as data.
//!
//! Each snippet is drawn from an [`Excerpt`] (the lines around the error, cut to a screen's
//! width), never from the whole text: one line of a manifest can be megabytes long.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use miette::{LabeledSpan, SourceCode};

use crate::diagnostic::{Diagnostic, DiagnosticKind, Sink, Span};
use crate::excerpt::{DEFAULT_WIDTH, Excerpt};

/// Why a manifest could not be used: one or more [`Diagnostic`]s.
///
/// `Display` is a one-line summary (`models.yaml:4:3: unknown key ...` or `models.yaml: 3
/// errors`); render it with `miette` (`{:?}` of a `miette::Report`) to get every error with its
/// `file:line:column`, caret snippet and hint.
pub struct ManifestError {
    path: PathBuf,
    // Boxed: the error stays small to move around.
    source: Box<Source>,
    diagnostics: Vec<Diagnostic>,
    // The same diagnostics with their snippets, for miette's `related()`.
    items: Vec<Item>,
    io: Option<io::Error>,
}

impl ManifestError {
    /// Errors found in `text`, the contents of the manifest at `path`.
    pub(crate) fn new(path: &Path, text: &str, diagnostics: Vec<Diagnostic>) -> Self {
        Self::with_secrets(path, text, diagnostics, Vec::new())
    }

    /// What `sink` collected while checking the manifest at `path`.
    pub(crate) fn from_sink(path: &Path, sink: Sink) -> Self {
        let text = sink.text();
        let (diagnostics, secrets) = sink.into_parts();
        Self::with_secrets(path, text, diagnostics, secrets)
    }

    fn with_secrets(
        path: &Path,
        text: &str,
        mut diagnostics: Vec<Diagnostic>,
        secrets: Vec<Span>,
    ) -> Self {
        for diagnostic in &mut diagnostics {
            diagnostic.file = path.to_path_buf();
        }
        let source = Source {
            name: path.display().to_string(),
            text: text.to_owned(),
            secrets,
        };
        let mut this = ManifestError {
            path: path.to_path_buf(),
            source: Box::new(source),
            diagnostics,
            items: Vec::new(),
            io: None,
        };
        this.set_width(DEFAULT_WIDTH);
        this
    }

    /// Cuts every snippet to a terminal `columns` wide (100 unless set): lines longer than that
    /// are shown in part, with `…` where text was left out and the caret still under the
    /// offending part.
    pub fn set_width(&mut self, columns: usize) {
        let Source {
            name,
            text,
            secrets,
        } = &*self.source;
        self.items = self
            .diagnostics
            .iter()
            .map(|diagnostic| Item {
                diagnostic: diagnostic.clone(),
                excerpt: Excerpt::new(name, text, diagnostic, columns, secrets),
            })
            .collect();
    }

    /// The manifest could not be read at all.
    pub(crate) fn io(path: &Path, error: io::Error) -> Self {
        let message = format!("cannot read the manifest: {error}");
        let hint = if error.kind() == io::ErrorKind::NotFound {
            "check the path (`-f FILE`), or start from models.yaml.example".to_owned()
        } else {
            "check that the file exists and is readable".to_owned()
        };
        let mut this = Self::new(path, "", vec![unplaced(DiagnosticKind::Io, message, hint)]);
        this.io = Some(error);
        this
    }

    /// The manifest is larger than `cap` bytes; `size` is its size when the file says it.
    pub(crate) fn too_large(path: &Path, size: Option<u64>, cap: u64) -> Self {
        let limit = crate::read::human_size(cap);
        let message = match size {
            Some(size) => format!(
                "the manifest is {}; the limit is {limit}",
                crate::read::human_size(size)
            ),
            None => {
                format!("the manifest is larger than the {limit} limit (reading stopped there)")
            }
        };
        let hint = "check that `-f` names the manifest (a models.yaml), not a model or another \
                    file; split a manifest this large into several that share one store";
        Self::new(
            path,
            "",
            vec![unplaced(DiagnosticKind::TooLarge, message, hint)],
        )
    }

    /// The manifest is not UTF-8; the error points at the first invalid byte.
    pub(crate) fn not_utf8(path: &Path, bytes: &[u8], valid_up_to: usize) -> Self {
        let text = String::from_utf8_lossy(bytes);
        let mut sink = Sink::new(&text);
        sink.push(
            DiagnosticKind::Encoding,
            // The prefix is unchanged by the lossy conversion; the bad byte became U+FFFD.
            Span {
                offset: valid_up_to,
                length: '\u{fffd}'.len_utf8(),
            },
            format!("the manifest is not UTF-8 text (invalid byte at offset {valid_up_to})"),
            "save the file as UTF-8",
        );
        Self::from_sink(path, sink)
    }

    /// Every problem found, in file order for semantic problems.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The manifest path as it was given.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The manifest's text, for snippets.
struct Source {
    name: String,
    text: String,
    /// Byte ranges of `text` that snippets must not show (literal credentials).
    secrets: Vec<Span>,
}

fn unplaced(kind: DiagnosticKind, message: String, hint: impl Into<String>) -> Diagnostic {
    Diagnostic {
        kind,
        file: PathBuf::new(),
        message,
        line: 0,
        column: 0,
        hint: hint.into(),
        offset: 0,
        length: 0,
    }
}

impl fmt::Debug for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestError")
            .field("path", &self.path)
            .field("diagnostics", &self.diagnostics)
            .finish()
    }
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.items.as_slice() {
            [only] if only.diagnostic.line > 0 => write!(
                f,
                "{}:{}:{}: {}",
                self.source.name,
                only.diagnostic.line,
                only.diagnostic.column,
                only.diagnostic.message
            ),
            [only] => write!(f, "{}: {}", self.source.name, only.diagnostic.message),
            many => write!(f, "{}: {} errors", self.source.name, many.len()),
        }
    }
}

impl std::error::Error for ManifestError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl miette::Diagnostic for ManifestError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.items.as_slice() {
            [only] => only.code(),
            _ => Some(Box::new("mlib::manifest::invalid")),
        }
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        match self.items.as_slice() {
            [only] => only.help(),
            _ => None,
        }
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        match self.items.as_slice() {
            [only] => Some(&only.excerpt),
            _ => None,
        }
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        match self.items.as_slice() {
            [only] => only.labels(),
            _ => None,
        }
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        match self.items.as_slice() {
            [_] => None,
            many => Some(Box::new(
                many.iter().map(|item| item as &dyn miette::Diagnostic),
            )),
        }
    }
}

/// One diagnostic with its snippet's source, rendered by miette as a related error.
struct Item {
    diagnostic: Diagnostic,
    excerpt: Excerpt,
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.diagnostic.fmt(f)
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for Item {}

impl miette::Diagnostic for Item {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(self.diagnostic.kind.code()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new(&self.diagnostic.hint))
    }

    fn source_code(&self) -> Option<&dyn SourceCode> {
        Some(&self.excerpt)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.diagnostic.line == 0 {
            return None;
        }
        let span = LabeledSpan::new_primary_with_span(
            Some(label(self.diagnostic.kind).to_owned()),
            self.excerpt.span(),
        );
        Some(Box::new(std::iter::once(span)))
    }
}

/// The short text under the caret.
fn label(kind: DiagnosticKind) -> &'static str {
    match kind {
        DiagnosticKind::Io
        | DiagnosticKind::Encoding
        | DiagnosticKind::TooLarge
        | DiagnosticKind::ManifestName
        | DiagnosticKind::Syntax => "here",
        DiagnosticKind::UnknownKey => "unknown key",
        DiagnosticKind::WrongType => "wrong type",
        DiagnosticKind::MissingKey => "missing key",
        DiagnosticKind::DuplicateKey => "duplicate",
        DiagnosticKind::UnsupportedVersion => "unsupported version",
        DiagnosticKind::BadHash => "bad hash",
        DiagnosticKind::BadName => "bad name",
        DiagnosticKind::UnsafePath => "unsafe path",
        DiagnosticKind::UnsafeRoot => "not a folder of its own",
        DiagnosticKind::NestedStore => "overlaps an app's folders",
        DiagnosticKind::BadGlob => "bad glob",
        DiagnosticKind::UnknownSourceScheme => "unknown scheme",
        DiagnosticKind::BadSource => "bad source",
        DiagnosticKind::MisplacedField => "does not apply here",
        DiagnosticKind::UnknownType => "no folder for this type",
        DiagnosticKind::UnknownSelection => "no such model or tag",
        DiagnosticKind::EmptyApp => "no preset and no folders",
        DiagnosticKind::Collision => "same file name",
        DiagnosticKind::FolderLink => "folder link",
        DiagnosticKind::UnsetVariable => "unset variable",
        DiagnosticKind::BadExpansion => "bad expansion",
        DiagnosticKind::LiteralSecret => "literal credential",
        DiagnosticKind::BadVersion => "not PEP 440",
        DiagnosticKind::UnknownApp => "no such app or preset",
        DiagnosticKind::BadMirror => "not a mirror address",
    }
}
