//! The few lines of a manifest an error's caret snippet shows, cut to the width of a screen.
//!
//! miette prints every line of a snippet whole, so a 10 MB line (a value pasted by mistake, a
//! long flow mapping) would fill the terminal and the logs. Each error therefore gets its own
//! small source: the lines around it, each cut to `width` columns with `…` where text was left
//! out, and the window on the error's line placed so that the caret stays on the offending
//! part. Line numbers and the `file:line:column` header stay those of the whole manifest.
//!
//! Parts marked secret (literal credentials) show as `*`, one per character, so the snippet
//! never prints what the message hides.

use miette::{MietteError, MietteSpanContents, SourceCode, SourceSpan, SpanContents};

use crate::diagnostic::{Diagnostic, Span};

/// Terminal width assumed when the real one is unknown (not a terminal, or a library caller).
pub const DEFAULT_WIDTH: usize = 100;
/// The narrowest window worth drawing, whatever the terminal says.
const MIN_TEXT: usize = 20;
/// A label spanning more lines than this is shown on its first line only.
const MAX_SPAN_LINES: usize = 6;

/// One error's snippet source.
#[derive(Debug)]
pub(crate) struct Excerpt {
    name: String,
    text: String,
    /// 0-based manifest line of the excerpt's first line.
    first_line: usize,
    /// The diagnostic's span, in `text`.
    span: (usize, usize),
    /// The diagnostic's 0-based line and column, for the snippet's header.
    line: usize,
    column: usize,
}

impl Excerpt {
    /// The excerpt of `source` for `diagnostic`, for a terminal `width` columns wide. `secrets`
    /// are byte ranges of `source` never to be shown.
    pub fn new(
        name: &str,
        source: &str,
        diagnostic: &Diagnostic,
        width: usize,
        secrets: &[Span],
    ) -> Excerpt {
        let mut excerpt = Excerpt {
            name: name.to_owned(),
            text: String::new(),
            first_line: diagnostic.line.saturating_sub(2),
            span: (0, 0),
            line: diagnostic.line.saturating_sub(1),
            column: diagnostic.column.saturating_sub(1),
        };
        if diagnostic.line == 0 {
            return excerpt;
        }
        let start = floor_boundary(source, diagnostic.offset.min(source.len()));
        let end = floor_boundary(source, (start + diagnostic.length).min(source.len()));
        let lines = Lines::around(source, start, end);
        let end = lines.label_end;
        // The gutter: ` 12 │ ` and room for miette's multi-line markers.
        let digits = (lines.first_number + lines.ranges.len()).to_string().len();
        let text_width = width.saturating_sub(digits + 8).max(MIN_TEXT);
        let (mut span_start, mut span_end) = (None, None);
        for (index, &(line_start, line_end)) in lines.ranges.iter().enumerate() {
            if index > 0 {
                excerpt.text.push('\n');
            }
            let holds = |at: usize| (line_start..=line_end).contains(&at);
            let focus = if holds(start) { start } else { line_start };
            let (window_start, window_end) =
                window(source, (line_start, line_end), focus, end, text_width);
            if window_start > line_start {
                excerpt.text.push('…');
            }
            let shown_start = excerpt.text.len();
            for (i, c) in source[window_start..window_end].char_indices() {
                let at = window_start + i;
                if at == start && span_start.is_none() {
                    span_start = Some(excerpt.text.len());
                }
                if at == end && span_start.is_some() && span_end.is_none() {
                    span_end = Some(excerpt.text.len());
                }
                let hidden = secrets
                    .iter()
                    .any(|s| s.offset <= at && at < s.offset + s.length);
                excerpt.text.push(if hidden { '*' } else { c });
            }
            // A label end (or start) this line holds outside its window lands on the cut.
            let cut = |at: usize| {
                if at < window_start {
                    shown_start
                } else {
                    excerpt.text.len()
                }
            };
            if holds(start) && span_start.is_none() {
                span_start = Some(cut(start));
            }
            if holds(end) && span_start.is_some() && span_end.is_none() {
                span_end = Some(cut(end));
            }
            if window_end < line_end {
                excerpt.text.push('…');
            }
        }
        let span_start = span_start.unwrap_or(0);
        let span_end = span_end.unwrap_or(span_start).max(span_start);
        excerpt.first_line = lines.first_number;
        excerpt.span = (span_start, span_end - span_start);
        excerpt
    }

    /// The diagnostic's span in this excerpt, for its label.
    pub fn span(&self) -> (usize, usize) {
        self.span
    }
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self
            .text
            .read_span(span, context_lines_before, context_lines_after)?;
        // The header (`file:line:column`) reads the label alone: give it the real place, in
        // characters as every diagnostic counts them.
        let header = context_lines_before == 0 && span.offset() == self.span.0;
        let (line, column) = if header {
            (self.line, self.column)
        } else {
            (inner.line() + self.first_line, inner.column())
        };
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            line,
            column,
            inner.line_count(),
        )))
    }
}

/// The lines an excerpt shows: one before the label, the label's, one after.
struct Lines {
    /// 0-based number of the first.
    first_number: usize,
    /// Byte ranges in the source, without their line ends.
    ranges: Vec<(usize, usize)>,
    /// Where the label ends: on its first line when it spans more than `MAX_SPAN_LINES`.
    label_end: usize,
}

impl Lines {
    fn around(source: &str, start: usize, end: usize) -> Lines {
        let label_line = line_start(source, start);
        let spans_many = source[start..end]
            .match_indices('\n')
            .nth(MAX_SPAN_LINES - 1)
            .is_some();
        let end = if spans_many {
            content_end(source, label_line, line_end(source, start))
        } else {
            end
        };
        let mut first_number = source[..label_line].matches('\n').count();
        let mut ranges = Vec::new();
        if label_line > 0 {
            let previous = line_start(source, label_line - 1);
            ranges.push((previous, content_end(source, previous, label_line - 1)));
            first_number -= 1;
        }
        let mut at = label_line;
        loop {
            let this_end = line_end(source, at);
            ranges.push((at, content_end(source, at, this_end)));
            if this_end >= source.len() {
                break;
            }
            at = this_end + 1;
            if end <= this_end {
                // One line of context after the label.
                if at < source.len() {
                    ranges.push((at, content_end(source, at, line_end(source, at))));
                }
                break;
            }
        }
        Lines {
            first_number,
            ranges,
            label_end: end,
        }
    }
}

/// Where the line holding byte `at` starts.
fn line_start(source: &str, at: usize) -> usize {
    source[..at].rfind('\n').map_or(0, |i| i + 1)
}

/// Where the line starting at `at` ends (its `\n`, or the end of the text).
fn line_end(source: &str, at: usize) -> usize {
    source[at..].find('\n').map_or(source.len(), |i| at + i)
}

/// `end` (a line end) without a `\r` before it.
fn content_end(source: &str, start: usize, end: usize) -> usize {
    if end > start && source.as_bytes()[end - 1] == b'\r' {
        end - 1
    } else {
        end
    }
}

/// The byte range of a line to show in `text_width` columns: the whole line when it fits,
/// else a window holding `focus` (a third of the way in, so some text before the caret shows)
/// with one column kept for each `…`.
fn window(
    source: &str,
    (line_start, line_end): (usize, usize),
    focus: usize,
    label_end: usize,
    text_width: usize,
) -> (usize, usize) {
    let line = &source[line_start..line_end];
    let total = line.chars().count();
    if total <= text_width {
        return (line_start, line_end);
    }
    let focus = focus.clamp(line_start, line_end);
    let focus_column = source[line_start..focus].chars().count();
    let label_columns = source[focus..label_end.clamp(focus, line_end)]
        .chars()
        .count();
    // From the line's start when the caret and some of the label fit before the cut.
    let first = if focus_column + label_columns.min(text_width / 2) + 1 < text_width {
        0
    } else {
        focus_column.saturating_sub(text_width / 3)
    };
    let room = text_width - usize::from(first > 0);
    let last = if first + room >= total {
        total
    } else {
        first + room - 1
    };
    let byte_at = |column: usize| {
        line.char_indices()
            .nth(column)
            .map_or(line_end, |(i, _)| line_start + i)
    };
    (byte_at(first), byte_at(last))
}

fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiagnosticKind;

    fn diagnostic(source: &str, offset: usize, length: usize) -> Diagnostic {
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        Diagnostic {
            kind: DiagnosticKind::Syntax,
            file: "m.yaml".into(),
            message: String::new(),
            line,
            column,
            hint: String::new(),
            offset,
            length,
        }
    }

    fn excerpt(source: &str, needle: &str, length: usize, width: usize) -> Excerpt {
        let offset = source.find(needle).unwrap();
        Excerpt::new(
            "m.yaml",
            source,
            &diagnostic(source, offset, length),
            width,
            &[],
        )
    }

    fn label(e: &Excerpt) -> &str {
        &e.text[e.span.0..e.span.0 + e.span.1]
    }

    #[test]
    fn short_lines_are_shown_whole_with_one_line_around() {
        let source = "version: 1\nstore: /s\nmodels: {}\nextra: 1\n";
        let e = excerpt(source, "/s", 2, 100);
        assert_eq!(e.text, "version: 1\nstore: /s\nmodels: {}");
        assert_eq!(label(&e), "/s");
        assert_eq!((e.first_line, e.line, e.column), (0, 1, 7));
    }

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let long = "a".repeat(1_000_000);
        let source = format!("version: 1\nstore: {long}x{long}\n");
        let e = excerpt(&source, "x", 1, 100);
        let line = e.text.lines().nth(1).unwrap();
        assert!(line.chars().count() <= 100, "{line}");
        assert!(line.starts_with('…') && line.ends_with('…'), "{line}");
        assert_eq!(label(&e), "x");
        // The whole value as the label: underlined up to the cut.
        let e = excerpt(&source, "aaa", 2 * long.len() + 1, 100);
        let line = e.text.lines().nth(1).unwrap();
        assert!(
            line.starts_with("store: aaa") && line.ends_with('…'),
            "{line}"
        );
        assert!(label(&e).starts_with("aaa") && !label(&e).contains('…'));
        assert_eq!((e.line, e.column), (1, 7));
    }

    #[test]
    fn a_label_over_many_lines_shows_its_first_lines() {
        let source = format!("a:\n{}z: 1\n", "  b: 1\n".repeat(1000));
        let e = excerpt(&source, "  b", source.len() - 3, 100);
        assert!(e.text.lines().count() <= MAX_SPAN_LINES + 2, "{}", e.text);
    }

    #[test]
    fn secrets_are_starred() {
        let source = "store: /s\nsource: https://h/x?token=abc123\n";
        let at = source.find("abc123").unwrap();
        let d = diagnostic(source, at, 6);
        let e = Excerpt::new(
            "m.yaml",
            source,
            &d,
            100,
            &[Span {
                offset: at,
                length: 6,
            }],
        );
        assert!(e.text.contains("token=******"), "{}", e.text);
        assert!(!e.text.contains("abc123"));
    }

    #[test]
    fn odd_places_do_not_panic() {
        for source in ["", "x", "\n\n", "é\r\né", "a: [\n"] {
            for offset in 0..=source.len() {
                if source.is_char_boundary(offset) {
                    for width in [0, 1, 30, 100] {
                        let d = diagnostic(source, offset, source.len() - offset);
                        let _ = Excerpt::new("m", source, &d, width, &[]);
                    }
                }
            }
        }
    }
}
