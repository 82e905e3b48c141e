//! `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$$` and a leading `~`, as in compose files.
//!
//! Only path fields expand (store, state, app roots, local sources): the same manifest then
//! works on a laptop and in a container whose mount points come from the environment. URL
//! sources keep their references until a request is made (see `url_template`). The environment is a
//! callback so tests and the CLI decide where variables come from. A bare `$NAME` is an error
//! rather than literal text, because silently creating a folder called `$HOME` is worse.

use crate::diagnostic::DiagnosticKind;

/// Why a value could not be expanded; `needle` is the offending `${...}` for the caret.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ExpandError {
    pub kind: DiagnosticKind,
    pub message: String,
    pub hint: String,
    pub needle: String,
}

pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands variables, then a leading `~` (so `${DIR:-~/models}` works).
pub(crate) fn expand(value: &str, env: Env) -> Result<String, ExpandError> {
    let expanded = expand_vars(value, env)?;
    expand_tilde(&expanded, env)
}

pub(crate) fn expand_vars(value: &str, env: Env) -> Result<String, ExpandError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(close) = closing_brace(inner) else {
                return Err(ExpandError {
                    kind: DiagnosticKind::BadExpansion,
                    message: format!("`{}` has no closing `}}`", &rest[at..]),
                    hint: "close it: `${VAR}` or `${VAR:-default}`; write `$$` for a literal `$`"
                        .to_owned(),
                    needle: rest[at..].to_owned(),
                });
            };
            let token = &rest[at..at + 2 + close + 1];
            out.push_str(&expand_braced(&inner[..close], token, env)?);
            rest = &inner[close + 1..];
        } else if after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            return Err(ExpandError {
                kind: DiagnosticKind::BadExpansion,
                message: format!("`${name}` is not expanded: only the braced form is"),
                hint: format!("write `${{{name}}}`, or `$$` for a literal `$`"),
                needle: format!("${name}"),
            });
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Index of the `}` that closes a `${`, given the text after the `{`; nested `${...}` in a
/// default value are skipped over.
pub(crate) fn closing_brace(inner: &str) -> Option<usize> {
    let bytes = inner.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'$' if bytes.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if bytes.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Expands the inside of one `${...}`; `token` is the whole `${...}` for messages.
fn expand_braced(body: &str, token: &str, env: Env) -> Result<String, ExpandError> {
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(ExpandError {
            kind: DiagnosticKind::BadExpansion,
            message: format!("`{token}` does not start with a variable name"),
            hint: "write `${VAR}` or `${VAR:-default}` with VAR made of letters, digits and `_`"
                .to_owned(),
            needle: token.to_owned(),
        });
    }
    let value = env(name);
    if rest.is_empty() {
        return value.ok_or_else(|| ExpandError {
            kind: DiagnosticKind::UnsetVariable,
            message: format!("environment variable `{name}` is not set"),
            hint: format!("set `{name}`, or give a default: `${{{name}:-/some/path}}`"),
            needle: token.to_owned(),
        });
    }
    if let Some(default) = rest.strip_prefix(":-") {
        return match value {
            Some(v) if !v.is_empty() => Ok(v),
            _ => expand_vars(default, env),
        };
    }
    if let Some(default) = rest.strip_prefix('-') {
        return match value {
            Some(v) => Ok(v),
            None => expand_vars(default, env),
        };
    }
    Err(ExpandError {
        kind: DiagnosticKind::BadExpansion,
        message: format!("`{token}` is not a supported expansion"),
        hint: format!("write `${{{name}}}` or `${{{name}:-default}}`"),
        needle: token.to_owned(),
    })
}

fn expand_tilde(value: &str, env: Env) -> Result<String, ExpandError> {
    let Some(rest) = value.strip_prefix('~') else {
        return Ok(value.to_owned());
    };
    if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('\\')) {
        let user: String = rest.chars().take_while(|c| *c != '/').collect();
        return Err(ExpandError {
            kind: DiagnosticKind::BadExpansion,
            message: format!("`~{user}` (another user's home) is not expanded"),
            hint: "write the full path, or `~/` for your own home".to_owned(),
            needle: format!("~{user}"),
        });
    }
    let Some(home) = env("HOME")
        .filter(|h| !h.is_empty())
        .or_else(|| env("USERPROFILE").filter(|h| !h.is_empty()))
    else {
        return Err(ExpandError {
            kind: DiagnosticKind::UnsetVariable,
            message: "cannot expand `~`: `HOME` is not set".to_owned(),
            hint: "set `HOME`, or write an absolute path".to_owned(),
            needle: "~".to_owned(),
        });
    };
    let home = if home.len() > 1 {
        home.trim_end_matches(['/', '\\'])
    } else {
        &home
    };
    Ok(format!("{home}{rest}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "HOME" => Some("/home/u".into()),
            "DIR" => Some("/data".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn ok(s: &str) -> String {
        expand(s, &env).unwrap()
    }

    #[test]
    fn expands() {
        assert_eq!(ok("${DIR}/models"), "/data/models");
        assert_eq!(ok("${NOPE:-/x}/m"), "/x/m");
        assert_eq!(ok("${EMPTY:-/x}"), "/x");
        assert_eq!(ok("${EMPTY-/x}"), "");
        assert_eq!(ok("${NOPE-/x}"), "/x");
        assert_eq!(ok("${NOPE:-${DIR}/d}"), "/data/d");
        assert_eq!(ok("${NOPE:-~/models}"), "/home/u/models");
        assert_eq!(ok("~"), "/home/u");
        assert_eq!(ok("~/m"), "/home/u/m");
        assert_eq!(ok("a$$b"), "a$b");
        assert_eq!(ok("cost$5"), "cost$5");
        assert_eq!(ok("a~b"), "a~b");
    }

    #[test]
    fn errors() {
        let err = |s: &str| expand(s, &env).unwrap_err();
        let e = err("${NOPE}/x");
        assert_eq!(e.kind, DiagnosticKind::UnsetVariable);
        assert_eq!(e.needle, "${NOPE}");
        assert!(e.message.contains("NOPE"));
        assert_eq!(err("${DIR").kind, DiagnosticKind::BadExpansion);
        assert_eq!(err("$DIR/x").needle, "$DIR");
        assert_eq!(err("${DIR:?x}").kind, DiagnosticKind::BadExpansion);
        assert_eq!(err("${}").kind, DiagnosticKind::BadExpansion);
        assert_eq!(err("~bob/x").needle, "~bob");
        let no_home = expand("~/x", &|_| None).unwrap_err();
        assert_eq!(no_home.kind, DiagnosticKind::UnsetVariable);
    }
}
