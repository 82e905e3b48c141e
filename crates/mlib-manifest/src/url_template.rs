//! `${VAR}` in URL sources, and credentials written into them.
//!
//! A URL source may need a credential: a token in the query (`?token=...`), a signature, a
//! user and password. Written literally, it would be committed with the manifest and copied
//! into the lock, `metadata.json` and every plan, so a literal credential
//! is an error, and `${VAR}` / `${VAR:-default}` may stand in the URL's user info and query
//! values instead. Those references are kept as written everywhere (the manifest's `Source`,
//! the lock, output) and expanded only when a request is made ([`expand_url`], used by the
//! fetcher), with each value percent-encoded. Elsewhere in a URL (host, path, query names) a
//! reference is an error: a URL path is not a file path, and silently requesting `$%7BX%7D`
//! helps nobody. Only `${...}` is special in a URL: a lone `$` is an ordinary character.

use std::ops::Range;

use crate::diagnostic::DiagnosticKind;
use crate::expand::{self, ExpandError};
use crate::rules::Problem;

/// Query parameter names whose values are credentials (compared ignoring case), besides any
/// `X-Amz-*` and `X-Goog-*` (signed cloud storage URLs).
const SENSITIVE: &[&str] = &[
    "token",
    "access_token",
    "auth",
    "key",
    "api_key",
    "apikey",
    "password",
    "secret",
    "sig",
    "signature",
    "credential",
    // CloudFront signed URLs.
    "key-pair-id",
    "policy",
];

/// Whether the query parameter `name` (decoded) carries a credential.
pub(crate) fn is_sensitive_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SENSITIVE.contains(&name.as_str()) || name.starts_with("x-amz-") || name.starts_with("x-goog-")
}

/// The `${...}` references in `url`, as byte ranges; a malformed one is an error.
fn references(url: &str) -> Result<Vec<Range<usize>>, ExpandError> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = url[from..].find("${").map(|i| from + i) {
        let Some(close) = expand::closing_brace(&url[at + 2..]) else {
            return Err(ExpandError {
                kind: DiagnosticKind::BadExpansion,
                message: format!("`{}` has no closing `}}`", &url[at..]),
                hint: "close it: `${VAR}` or `${VAR:-default}`".to_owned(),
                needle: url[at..].to_owned(),
            });
        };
        let end = at + 2 + close + 1;
        // Syntax only: whether the variables are set is known when the request is made.
        match expand::expand_vars(&url[at..end], &|_| None) {
            Err(error) if error.kind != DiagnosticKind::UnsetVariable => return Err(error),
            _ => found.push(at..end),
        }
        from = end;
    }
    Ok(found)
}

/// A URL with every reference replaced by a placeholder that parses as plain text, so the
/// URL can be checked (and its parts located) without knowing any value.
struct Standin {
    text: String,
    /// Each reference: its range in the URL and its placeholder's in `text`.
    refs: Vec<(Range<usize>, Range<usize>)>,
}

impl Standin {
    fn new(url: &str, references: &[Range<usize>]) -> Standin {
        let mut text = String::with_capacity(url.len());
        let mut refs = Vec::with_capacity(references.len());
        let mut copied = 0;
        for (i, range) in references.iter().enumerate() {
            text.push_str(&url[copied..range.start]);
            let start = text.len();
            text.push_str(&format!("mlibvar{i}x"));
            refs.push((range.clone(), start..text.len()));
            copied = range.end;
        }
        text.push_str(&url[copied..]);
        Standin { text, refs }
    }

    /// Whether `range` of `text` holds a placeholder.
    fn has_reference(&self, range: &Range<usize>) -> bool {
        self.refs
            .iter()
            .any(|(_, p)| p.start < range.end && range.start < p.end)
    }

    /// The URL offset of `text` offset `at` (outside placeholders).
    fn original(&self, at: usize) -> usize {
        let mut shift: isize = 0;
        for (original, placeholder) in &self.refs {
            if placeholder.end <= at {
                shift += original.len() as isize - placeholder.len() as isize;
            }
        }
        (at as isize + shift) as usize
    }
}

/// The parts of an `http(s)://` URL, as byte ranges of its text.
struct Parts {
    /// Before the last `@` of the authority, when there is one.
    userinfo: Option<Range<usize>>,
    /// Host and port.
    host: Range<usize>,
    path: Range<usize>,
    /// Each `name=value` of the query: the name's range and the value's (empty when absent).
    query: Vec<(Range<usize>, Range<usize>)>,
    fragment: Option<Range<usize>>,
}

impl Parts {
    fn of(text: &str) -> Parts {
        let authority_start = text.find("://").map_or(0, |i| i + 3);
        let authority_end = text[authority_start..]
            .find(['/', '?', '#'])
            .map_or(text.len(), |i| authority_start + i);
        let (userinfo, host_start) = match text[authority_start..authority_end].rfind('@') {
            Some(at) => (
                Some(authority_start..authority_start + at),
                authority_start + at + 1,
            ),
            None => (None, authority_start),
        };
        let fragment_start = text[authority_end..].find('#').map(|i| authority_end + i);
        let before_fragment = fragment_start.unwrap_or(text.len());
        let query_start = text[authority_end..before_fragment]
            .find('?')
            .map(|i| authority_end + i);
        let mut query = Vec::new();
        if let Some(q) = query_start {
            let mut at = q + 1;
            for pair in text[q + 1..before_fragment].split('&') {
                let end = at + pair.len();
                query.push(match pair.find('=') {
                    Some(eq) => (at..at + eq, at + eq + 1..end),
                    None => (at..end, end..end),
                });
                at = end + 1;
            }
        }
        Parts {
            userinfo,
            host: host_start..authority_end,
            path: authority_end..query_start.unwrap_or(before_fragment),
            query,
            fragment: fragment_start.map(|f| f..text.len()),
        }
    }
}

/// The URL with each reference stood in by a placeholder, for checking it as a URL; an error
/// when a reference is malformed or stands anywhere but in the user info or a query value.
pub(crate) fn standin(url: &str) -> Result<String, Problem> {
    let references = references(url).map_err(|e| {
        Problem::new(e.kind, format!("in the URL: {}", e.message), e.hint).at(e.needle)
    })?;
    let standin = Standin::new(url, &references);
    let parts = Parts::of(&standin.text);
    let mut misplaced = vec![("host", parts.host.clone()), ("path", parts.path.clone())];
    misplaced.extend(parts.query.iter().map(|(name, _)| ("query", name.clone())));
    misplaced.extend(parts.fragment.clone().map(|f| ("fragment", f)));
    for (part, range) in misplaced {
        let Some((original, _)) = standin
            .refs
            .iter()
            .find(|(_, p)| p.start < range.end && range.start < p.end)
        else {
            continue;
        };
        let reference = &url[original.clone()];
        let place = if part == "query" {
            "a query parameter's name".to_owned()
        } else {
            format!("the {part}")
        };
        return Err(Problem::new(
            DiagnosticKind::BadExpansion,
            format!("`{reference}` is in {place} of the URL, where variables are not expanded"),
            "use `${VAR}` only in the user info (`https://${USER}:${PASSWORD}@host/...`) or a \
             query value (`?token=${TOKEN}`); write the rest of the URL as it is"
                .to_owned(),
        )
        .at(reference));
    }
    Ok(standin.text)
}

/// A credential written literally into a URL.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Literal {
    /// Its byte range in the URL.
    pub range: Range<usize>,
    /// How messages show it, without its value: `token=***`, `***@`.
    pub shown: String,
    /// The variable the hint suggests in its place.
    pub variable: String,
}

/// Every literal credential in `url` (already checked by [`standin`]): the user info, unless
/// what carries the secret (the password, else the user) is a reference, and each sensitive
/// query parameter with a value that holds no reference.
pub(crate) fn literal_credentials(url: &str) -> Vec<Literal> {
    // A malformed reference is reported elsewhere; here it is text like any other.
    let references = references(url).unwrap_or_default();
    let standin = Standin::new(url, &references);
    let text = &standin.text;
    let parts = Parts::of(text);
    let original = |r: &Range<usize>| standin.original(r.start)..standin.original(r.end);
    let mut found = Vec::new();
    if let Some(userinfo) = &parts.userinfo {
        let (user, password) = match text[userinfo.clone()].find(':') {
            Some(colon) => (
                userinfo.start..userinfo.start + colon,
                Some(userinfo.start + colon + 1..userinfo.end),
            ),
            None => (userinfo.clone(), None),
        };
        let (secret, variable) = match password.filter(|p| !p.is_empty()) {
            Some(password) => (password, "MY_PASSWORD"),
            None => (user, "MY_TOKEN"),
        };
        if !secret.is_empty() && !standin.has_reference(&secret) {
            found.push(Literal {
                range: original(&secret),
                shown: "***@".to_owned(),
                variable: variable.to_owned(),
            });
        }
    }
    for (name, value) in &parts.query {
        let decoded = decode(&text[name.clone()]);
        if is_sensitive_param(&decoded) && !value.is_empty() && !standin.has_reference(value) {
            found.push(Literal {
                range: original(value),
                shown: format!("{}=***", &text[name.clone()]),
                variable: format!("MY_{}", variable_name(&decoded)),
            });
        }
    }
    found
}

/// The problem to report for `literals` (not empty) in `url`: the message shows none of the
/// values; the hint is the URL with each replaced by a `${VAR}`.
pub(crate) fn literal_problem(url: &str, literals: &[&Literal]) -> Problem {
    let shown: Vec<String> = literals.iter().map(|l| format!("`{}`", l.shown)).collect();
    let message = if literals.len() == 1 {
        format!("the URL holds a literal credential ({})", shown[0])
    } else {
        format!("the URL holds literal credentials ({})", shown.join(", "))
    };
    let mut fixed = String::with_capacity(url.len());
    let mut copied = 0;
    for literal in literals {
        fixed.push_str(&url[copied..literal.range.start]);
        fixed.push_str(&format!("${{{}}}", literal.variable));
        copied = literal.range.end;
    }
    fixed.push_str(&url[copied..]);
    let hint = format!(
        "read it from the environment: `source: {fixed}` (mlib expands `${{VAR}}` in a URL's \
         user info and query values only when it makes the request, and never writes the value)"
    );
    Problem::new(DiagnosticKind::LiteralSecret, message, hint)
}

/// `url` with each literal credential replaced by `***`, for messages about it.
pub(crate) fn redacted(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut copied = 0;
    for literal in literal_credentials(url) {
        out.push_str(&url[copied..literal.range.start]);
        out.push_str("***");
        copied = literal.range.end;
    }
    out.push_str(&url[copied..]);
    out
}

/// `name` percent- and `+`-decoded, as a server reads a query parameter's name.
fn decode(name: &str) -> String {
    url::form_urlencoded::parse(format!("{name}=").as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_default()
}

/// `X-Amz-Signature` → `X_AMZ_SIGNATURE`.
fn variable_name(param: &str) -> String {
    param
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A URL source with its references expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandedUrl {
    /// The URL to request. Each value is percent-encoded (every byte but letters, digits and
    /// `-._~`), so a token with `&`, `=` or `#` stays one value.
    pub url: String,
    /// The value of each reference, as the environment gave it (before encoding): secrets, to
    /// be kept out of every message.
    pub values: Vec<String>,
}

impl ExpandedUrl {
    /// `value` encoded as [`expand_url`] puts it into the URL.
    pub fn encode(value: &str) -> String {
        encode(value)
    }
}

/// Why a URL source could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlVarError {
    /// A variable the URL needs is not set.
    #[error("environment variable `{variable}` is not set")]
    Unset { variable: String },
    /// A reference is malformed (a lock or saved plan edited by hand).
    #[error("{message}")]
    Malformed { message: String },
}

/// Expands the `${VAR}` and `${VAR:-default}` references of a URL source, looking variables up
/// with `env` (the fetcher does this just before each request; nothing else should).
pub fn expand_url(
    url: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ExpandedUrl, UrlVarError> {
    let references = references(url).map_err(|e| UrlVarError::Malformed { message: e.message })?;
    let mut out = String::with_capacity(url.len());
    let mut values = Vec::with_capacity(references.len());
    let mut copied = 0;
    for range in references {
        out.push_str(&url[copied..range.start]);
        let value = expand::expand_vars(&url[range.clone()], env).map_err(|e| match e.kind {
            DiagnosticKind::UnsetVariable => UrlVarError::Unset {
                variable: reference_name(&e.needle),
            },
            _ => UrlVarError::Malformed { message: e.message },
        })?;
        out.push_str(&encode(&value));
        values.push(value);
        copied = range.end;
    }
    out.push_str(&url[copied..]);
    Ok(ExpandedUrl { url: out, values })
}

/// `VAR` of `${VAR}` or `${VAR:-...}`.
fn reference_name(reference: &str) -> String {
    reference
        .trim_start_matches("${")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "TOKEN" => Some("t&k=#1 é".to_owned()),
            "USER" => Some("u".to_owned()),
            _ => None,
        }
    }

    #[test]
    fn references_expand_percent_encoded_and_their_values_are_returned() {
        let e = expand_url("https://${USER}:${PW:-p@ss}@h/x?token=${TOKEN}&a=$1", &env).unwrap();
        assert_eq!(
            e.url,
            "https://u:p%40ss@h/x?token=t%26k%3D%231%20%C3%A9&a=$1"
        );
        assert_eq!(e.values, ["u", "p@ss", "t&k=#1 é"]);
        assert_eq!(
            expand_url("https://h/x?t=${NOPE}", &env),
            Err(UrlVarError::Unset {
                variable: "NOPE".to_owned()
            })
        );
        assert_eq!(
            expand_url("https://h/x?t=${NOPE:-}", &env).unwrap().url,
            "https://h/x?t="
        );
    }

    #[test]
    fn references_stand_only_in_user_info_and_query_values() {
        for ok in [
            "https://h/x?token=${TOKEN}",
            "https://${U}:${P}@h/x",
            "https://user:${P:-}@h/x?a=1&sig=${S}#frag",
            "https://h/$path?cost=$5",
        ] {
            assert!(standin(ok).is_ok(), "{ok}");
        }
        for (bad, needle) in [
            ("https://${HOST}/x", "${HOST}"),
            ("https://h/${DIR}/x", "${DIR}"),
            ("https://h/x?${NAME}=1", "${NAME}"),
            ("https://h/x#${F}", "${F}"),
        ] {
            let problem = standin(bad).unwrap_err();
            assert_eq!(problem.kind, DiagnosticKind::BadExpansion, "{bad}");
            assert_eq!(problem.needle.as_deref(), Some(needle), "{bad}");
        }
        let problem = standin("https://h/x?t=${T").unwrap_err();
        assert!(problem.message.contains("no closing"), "{problem:?}");
        assert!(standin("https://h/x?t=${1}").is_err());
        assert!(standin("https://h/x?t=${T:-$X}").is_err());
    }

    #[test]
    fn literal_credentials_are_found_and_references_are_not() {
        let shown = |url: &str| -> Vec<String> {
            literal_credentials(url)
                .into_iter()
                .map(|l| l.shown)
                .collect()
        };
        assert_eq!(shown("https://u:pw@h/x"), ["***@"]);
        assert_eq!(shown("https://u@h/x"), ["***@"]);
        assert!(shown("https://u:${PW}@h/x").is_empty());
        assert!(shown("https://${TOKEN}@h/x").is_empty());
        assert_eq!(shown("https://${U}:pw@h/x"), ["***@"]);
        assert_eq!(
            shown("https://h/x?Token=a&download=1&X-Amz-Signature=s&Key-Pair-Id=k&api%5Fkey=z"),
            [
                "Token=***",
                "X-Amz-Signature=***",
                "Key-Pair-Id=***",
                "api%5Fkey=***"
            ]
        );
        assert!(shown("https://h/x?token=${T}&sig=&tokens=1&download=1").is_empty());
        assert_eq!(
            redacted("https://u:pw@h/x?token=t&a=1"),
            "https://u:***@h/x?token=***&a=1"
        );
    }

    #[test]
    fn the_problem_hides_values_and_hints_at_the_variable_form() {
        let url = "https://${U}:hunter2@host/x.safetensors?token=abc&v=1";
        let literals = literal_credentials(url);
        let problem = literal_problem(url, &literals.iter().collect::<Vec<_>>());
        assert_eq!(problem.kind, DiagnosticKind::LiteralSecret);
        assert_eq!(
            problem.message,
            "the URL holds literal credentials (`***@`, `token=***`)"
        );
        assert!(!problem.message.contains("hunter2") && !problem.hint.contains("hunter2"));
        assert!(
            problem.hint.starts_with(
                "read it from the environment: `source: \
                 https://${U}:${MY_PASSWORD}@host/x.safetensors?token=${MY_TOKEN}&v=1`"
            ),
            "{}",
            problem.hint
        );
    }
}
