//! Parsing `source:` strings: local paths, URLs, `hf://`, `civitai:` and Civitai AIR urns.
//!
//! Parsing is purely syntactic (no network): a malformed source is a validation error that
//! points at the exact problem, so `mlib validate` can run offline in CI.

use crate::diagnostic::DiagnosticKind;
use crate::model::Source;
use crate::rules::{Problem, show};
use crate::url_template;

/// A source as written: remote sources are complete; local paths still need `${VAR}` expansion
/// and resolving against the manifest's directory.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    Remote(Source),
    Local(&'a str),
}

const FORMS: &str = "a local path (`./file.safetensors`, `/abs/path`, `~/path`), `https://...`, \
                     `hf://{org}/{repo}[/path/in/repo]`, `civitai:{model}@{version}` or a Civitai \
                     AIR (`urn:air:{ecosystem}:{type}:civitai:{model}@{version}`)";

pub(crate) fn parse(source: &str) -> Result<Parsed<'_>, Problem> {
    let lower = source.to_ascii_lowercase();
    if source.trim().is_empty() {
        return Err(bad(
            "the source is empty".to_owned(),
            format!("write {FORMS}"),
        ));
    }
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return parse_url(source).map(Parsed::Remote);
    }
    if lower.starts_with("hf://") {
        return parse_hf(&source[5..]).map(Parsed::Remote);
    }
    if lower.starts_with("hf:") {
        return Err(bad(
            format!("{} is missing the `//` of `hf://`", show(source)),
            "write `hf://{org}/{repo}[/path/in/repo]`".to_owned(),
        ));
    }
    if lower.starts_with("civitai:") {
        return parse_civitai(&source[8..]).map(Parsed::Remote);
    }
    let mut parts = source.split(':');
    let bare_air = parts.nth(2) == Some("civitai") && parts.next().is_some();
    if lower.starts_with("urn:") || lower.starts_with("air:") || bare_air {
        return parse_air(source).map(Parsed::Remote);
    }
    if let Some(scheme) = scheme(source) {
        let hint = if scheme.eq_ignore_ascii_case("file") {
            "write the path itself, without `file://`".to_owned()
        } else {
            format!("use {FORMS}; start a local file whose name contains `:` with `./`")
        };
        return Err(Problem::new(
            DiagnosticKind::UnknownSourceScheme,
            format!("unknown source scheme `{scheme}:`"),
            hint,
        )
        .at(format!("{scheme}:")));
    }
    Ok(Parsed::Local(source))
}

fn bad(message: String, hint: String) -> Problem {
    Problem::new(DiagnosticKind::BadSource, message, hint)
}

/// The URI scheme `source` starts with, if any. One letter is a Windows drive (`C:`), not a
/// scheme.
fn scheme(source: &str) -> Option<&str> {
    let (scheme, _) = source.split_once(':')?;
    let valid = scheme.len() >= 2
        && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'));
    valid.then_some(scheme)
}

fn parse_url(source: &str) -> Result<Source, Problem> {
    // Messages quote the URL without its literal credentials (they are an error of their own).
    let shown = url_template::redacted(source);
    let hint = || {
        "write a complete URL such as `https://example.com/models/x.safetensors`; \
                   encode spaces as `%20`"
            .to_owned()
    };
    // `${VAR}` references (user info and query values only) stand in as plain text.
    let standin = url_template::standin(source)?;
    if let Some(c) = standin
        .chars()
        .find(|c| c.is_whitespace() || c.is_control())
    {
        return Err(bad(
            format!("the URL contains {}", show(&c.to_string())),
            hint(),
        ));
    }
    match url::Url::parse(&standin) {
        Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => {
            Ok(Source::Url(source.to_owned()))
        }
        Ok(_) => Err(bad(format!("the URL {} has no host", show(&shown)), hint())),
        Err(error) => Err(bad(
            format!("{} is not a valid URL: {error}", show(&shown)),
            hint(),
        )),
    }
}

fn parse_hf(rest: &str) -> Result<Source, Problem> {
    let form = "write `hf://{org}/{repo}` for a whole repository or `hf://{org}/{repo}/{path}` for \
                one file or folder";
    let mut segments = rest.split('/');
    let org = segments.next().unwrap_or("");
    let Some(repo) = segments.next() else {
        return Err(bad(
            format!("`hf://{rest}` needs both an organisation and a repository"),
            form.to_owned(),
        ));
    };
    if matches!(org, "datasets" | "spaces") {
        return Err(bad(
            format!("`hf://{org}/...` is not a model repository"),
            "mlib fetches model repositories: `hf://{org}/{repo}[/path]`".to_owned(),
        ));
    }
    if let Some((name, revision)) = repo.split_once('@') {
        return Err(bad(
            format!("`@{revision}` in an hf:// source: the revision has its own key"),
            format!("write `source: hf://{org}/{name}...` and `revision: {revision}`"),
        )
        .at(format!("@{revision}")));
    }
    for (what, name) in [("organisation", org), ("repository", repo)] {
        check_hf_name(what, name).map_err(|message| bad(message, form.to_owned()))?;
    }
    let path: Vec<&str> = segments.collect();
    let path = if path.is_empty() {
        None
    } else {
        for segment in &path {
            let problem = if segment.is_empty() {
                Some("has an empty path segment (`//` or a trailing `/`)".to_owned())
            } else if matches!(*segment, "." | "..") {
                Some(format!("has a `{segment}` path segment"))
            } else if segment.contains('\\') || segment.chars().any(char::is_control) {
                Some(format!("has an invalid path segment {}", show(segment)))
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(bad(
                    format!("`hf://{rest}` {problem}"),
                    "write the path of the file or folder as the repository lists it, with single \
                     `/` between folders"
                        .to_owned(),
                ));
            }
        }
        Some(path.join("/"))
    };
    Ok(Source::HuggingFace {
        repo: format!("{org}/{repo}"),
        path,
    })
}

/// HuggingFace's own rules for organisation and repository names.
fn check_hf_name(what: &str, name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(format!("the HuggingFace {what} name is empty"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "the HuggingFace {what} name {} contains {}",
            show(name),
            show(&c.to_string())
        ));
    }
    if name.starts_with(['.', '-']) || name.ends_with(['.', '-']) {
        return Err(format!(
            "the HuggingFace {what} name {} starts or ends with `.` or `-`",
            show(name)
        ));
    }
    if name.contains("--") || name.contains("..") {
        return Err(format!(
            "the HuggingFace {what} name {} contains `--` or `..`",
            show(name)
        ));
    }
    if name.len() > 96 {
        return Err(format!(
            "the HuggingFace {what} name is longer than 96 characters"
        ));
    }
    Ok(())
}

fn parse_civitai(rest: &str) -> Result<Source, Problem> {
    let hint = "write `civitai:{model}@{version}` with the numbers from the model page URL \
                (`civitai.com/models/{model}?modelVersionId={version}`)";
    if rest.starts_with("//") {
        return Err(bad(
            "`civitai://` is not a source form".to_owned(),
            hint.to_owned(),
        ));
    }
    let Some((model, version)) = rest.split_once('@') else {
        return Err(bad(
            format!("`civitai:{rest}` has no version id"),
            hint.to_owned(),
        ));
    };
    let model_id = if model.is_empty() {
        None
    } else {
        Some(number("model id", model, hint)?)
    };
    let version_id = number("version id", version, hint)?;
    Ok(Source::Civitai {
        model_id,
        version_id,
    })
}

fn number(what: &str, digits: &str, hint: &str) -> Result<u64, Problem> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad(
            format!("the Civitai {what} {} is not a number", show(digits)),
            hint.to_owned(),
        )
        .at(digits));
    }
    digits.parse().map_err(|_| {
        bad(
            format!("the Civitai {what} {digits} is too large"),
            hint.to_owned(),
        )
    })
}

/// `urn:air:{ecosystem}:{type}:{source}:{id}@{version}[:{layer}][.{format}]`, with `urn:` and
/// `air:` optional.
fn parse_air(source: &str) -> Result<Source, Problem> {
    let hint = "write `urn:air:{ecosystem}:{type}:civitai:{model}@{version}`, e.g. \
                `urn:air:sdxl:lora:civitai:328553@368189`";
    let mut rest = source;
    for prefix in ["urn:", "air:"] {
        if rest.len() >= prefix.len() && rest[..prefix.len()].eq_ignore_ascii_case(prefix) {
            rest = &rest[prefix.len()..];
        }
    }
    let parts: Vec<&str> = rest.splitn(4, ':').collect();
    let [ecosystem, kind, origin, id] = parts[..] else {
        return Err(bad(
            format!("{} is not a complete AIR", show(source)),
            hint.to_owned(),
        ));
    };
    for (what, part) in [("ecosystem", ecosystem), ("type", kind)] {
        if part.is_empty()
            || !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        {
            return Err(bad(
                format!("the AIR {what} {} is not valid", show(part)),
                hint.to_owned(),
            ));
        }
    }
    if !origin.eq_ignore_ascii_case("civitai") {
        let hint = if origin.eq_ignore_ascii_case("huggingface") {
            "write HuggingFace sources as `hf://{org}/{repo}[/path]`".to_owned()
        } else {
            hint.to_owned()
        };
        return Err(bad(
            format!("AIRs from `{origin}` are not supported, only from `civitai`"),
            hint,
        )
        .at(origin));
    }
    let Some((model, after)) = id.split_once('@') else {
        return Err(bad(
            format!("the AIR {} has no version (`@{{version}}`)", show(source)),
            hint.to_owned(),
        ));
    };
    let digits = after
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(after.len());
    let (version, tail) = after.split_at(digits);
    if !(tail.is_empty() || tail.starts_with([':', '.'])) {
        return Err(bad(
            format!("the AIR version {} is not a number", show(after)),
            hint.to_owned(),
        ));
    }
    Ok(Source::Civitai {
        model_id: Some(number("model id", model, hint)?),
        version_id: number("version id", version, hint)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(s: &str) -> Source {
        match parse(s) {
            Ok(Parsed::Remote(source)) => source,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn fails(s: &str) -> Problem {
        parse(s).expect_err(s)
    }

    #[test]
    fn remote_sources() {
        assert_eq!(
            remote("hf://org/repo/sub/x.safetensors"),
            Source::HuggingFace {
                repo: "org/repo".into(),
                path: Some("sub/x.safetensors".into())
            }
        );
        assert_eq!(
            remote("hf://black-forest-labs/FLUX.1-dev"),
            Source::HuggingFace {
                repo: "black-forest-labs/FLUX.1-dev".into(),
                path: None
            }
        );
        assert_eq!(
            remote("civitai:122359@135867"),
            Source::Civitai {
                model_id: Some(122359),
                version_id: 135867
            }
        );
        assert_eq!(
            remote("civitai:@135867"),
            Source::Civitai {
                model_id: None,
                version_id: 135867
            }
        );
        let air = Source::Civitai {
            model_id: Some(328553),
            version_id: 368189,
        };
        assert_eq!(remote("urn:air:sdxl:lora:civitai:328553@368189"), air);
        assert_eq!(remote("air:sdxl:lora:civitai:328553@368189"), air);
        assert_eq!(remote("sdxl:lora:civitai:328553@368189"), air);
        assert_eq!(
            remote("urn:air:sdxl:lora:civitai:328553@368189.safetensors"),
            air
        );
        assert_eq!(
            remote("https://example.com/x.safetensors?download=1"),
            Source::Url("https://example.com/x.safetensors?download=1".into())
        );
        assert_eq!(
            remote("http://127.0.0.1:8080/x"),
            Source::Url("http://127.0.0.1:8080/x".into())
        );
    }

    #[test]
    fn local_sources() {
        for s in [
            "./x.safetensors",
            "/data/x",
            "~/x",
            "${DIR}/x",
            "x.safetensors",
            "C:\\m\\x",
            "../up/x",
        ] {
            assert_eq!(parse(s), Ok(Parsed::Local(s)), "{s}");
        }
    }

    #[test]
    fn malformed_sources() {
        assert_eq!(
            fails("s3://bucket/x").kind,
            DiagnosticKind::UnknownSourceScheme
        );
        assert_eq!(fails("file:///x").kind, DiagnosticKind::UnknownSourceScheme);
        for s in [
            "hf://org",
            "hf://",
            "hf:org/repo",
            "hf://org/repo@main/x",
            "hf://org/-repo",
            "hf://org/re po",
            "hf://org/repo/",
            "hf://org/repo/../x",
            "hf://datasets/org/x",
            "civitai:123",
            "civitai:abc@1",
            "civitai:1@",
            "civitai://1@2",
            "urn:air:sdxl:lora:civitai:1",
            "urn:air:sdxl:lora:huggingface:1@2",
            "urn:air:sdxl",
            "https://",
            "https://exa mple.com/x",
            "",
        ] {
            assert_eq!(fails(s).kind, DiagnosticKind::BadSource, "{s}");
        }
    }

    #[test]
    fn display_is_canonical() {
        for s in [
            "hf://org/repo",
            "hf://org/repo/a/b.safetensors",
            "civitai:1@2",
            "civitai:@2",
            "https://x.org/a",
        ] {
            assert_eq!(remote(s).to_string(), s);
        }
    }
}
