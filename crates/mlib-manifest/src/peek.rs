//! The store's path read off the manifest's text without parsing it, so that work which needs
//! only the store (opening the registry, stat'ing what it records) can start while the
//! manifest is still being parsed.
//!
//! It is a guess and callers treat it as one: it understands only a top-level `store:` line
//! with a plain or simply quoted value, and whoever uses it must compare it with the parsed
//! manifest's `store` and throw the early work away when they differ.

use std::path::{Path, PathBuf};

use crate::expand::expand;

/// The absolute store path a manifest at `path` with this `text` most likely declares, or
/// `None` when its `store:` line is not a simple one-line value.
pub fn peek_store(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<PathBuf> {
    // Lines that start with `store:`, found by one substring search over the text rather
    // than line by line (a manifest of 10,000 models is 50,000 lines), with SIMD: std's
    // search of the whole 1.7 MB delayed the reads that wait for the store's path by 1 ms.
    let mut lines = text
        .strip_prefix("store:")
        .into_iter()
        .chain(memchr::memmem::find_iter(text.as_bytes(), b"\nstore:").map(|at| &text[at + 7..]))
        .map(|rest| {
            let line = rest.split('\n').next().unwrap_or(rest);
            line.strip_suffix('\r').unwrap_or(line)
        });
    let value = lines.next()?;
    if lines.next().is_some() {
        // Twice at the top level: a duplicate key (or several documents) for the parser to
        // report.
        return None;
    }
    let value = one_line_scalar(value)?;
    let expanded = expand(&value, env).ok().filter(|v| !v.is_empty())?;
    let file = crate::absolute(path);
    let dir = file.parent()?;
    Some(crate::resolve::absolute(dir, &expanded))
}

/// The value of `key: value` after the colon, when it is a plain or quoted scalar on one line.
fn one_line_scalar(rest: &str) -> Option<String> {
    let rest = rest.trim();
    let quoted = |q: char| {
        let inner = rest.strip_prefix(q)?;
        let end = inner.find(q)?;
        let after = inner[end + 1..].trim_start();
        // Escapes and doubled quotes are the parser's business.
        let plain_after = after.is_empty() || after.starts_with('#');
        (plain_after && !inner[..end].contains('\\')).then(|| inner[..end].to_string())
    };
    match rest.chars().next()? {
        '"' => quoted('"'),
        '\'' => quoted('\''),
        // Block scalars, anchors, aliases, tags, flow collections: not one plain line.
        '|' | '>' | '&' | '*' | '!' | '{' | '[' | '#' | '%' | '@' | '`' => None,
        _ => {
            let value = match rest.find(" #") {
                Some(comment) => &rest[..comment],
                None => rest,
            };
            Some(value.trim_end().to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peek(text: &str) -> Option<PathBuf> {
        let env = |name: &str| (name == "MODELS").then(|| "/data/models".to_string());
        peek_store(text, Path::new("/proj/models.yaml"), &env)
    }

    #[test]
    fn reads_plain_quoted_relative_and_expanded_values() {
        let cases = [
            ("store: /srv/store\n", "/srv/store"),
            ("version: 1\nstore: ./store  # shared\n", "/proj/store"),
            ("store: \"store dir\"\n", "/proj/store dir"),
            ("store: '/a b' # note\n", "/a b"),
            ("store: ${MODELS}/store\n", "/data/models/store"),
            ("store: ${UNSET:-/x}\n", "/x"),
            (
                "version: 1\r\nstore: /srv/crlf\r\nmodels: {}\r\n",
                "/srv/crlf",
            ),
            ("version: 1\nmodels: {}\nstore: /late", "/late"),
        ];
        for (text, want) in cases {
            assert_eq!(peek(text), Some(PathBuf::from(want)), "{text:?}");
        }
    }

    #[test]
    fn gives_up_on_anything_else() {
        let cases = [
            "version: 1\n",
            "store:\n  /on/next/line\n",
            "store: |\n  /x\n",
            "store: *anchor\n",
            "store: ${UNSET}\n",
            "store: \"a\\tb\"\n",
            "store: /a\nstore: /b\n",
            "version: 1\nstore: /a\nmodels: {}\nstore: /b",
            "models:\n  store: /nested\n",
        ];
        for text in cases {
            assert_eq!(peek(text), None, "{text:?}");
        }
    }
}
