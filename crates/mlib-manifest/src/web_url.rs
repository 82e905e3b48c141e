//! A model page's address, as a person copies it from the browser, as a `source:`.

/// What a copied address becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebSource {
    /// `hf://...`, `civitai:...` or the URL itself.
    pub source: String,
    /// For HuggingFace: the branch, tag or commit in the address, when not `main`.
    pub revision: Option<String>,
}

/// Turns a HuggingFace or Civitai page address into a `source:` (any other address stays as it
/// is); an error says what is missing (a Civitai model page without a version).
pub fn from_web_url(text: &str) -> Result<WebSource, String> {
    let plain = |source: &str| WebSource {
        source: source.to_owned(),
        revision: None,
    };
    let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    else {
        return Ok(plain(text));
    };
    let (host_path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (host, path) = host_path.split_once('/').unwrap_or((host_path, ""));
    let host = host.to_ascii_lowercase();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if host == "huggingface.co" || host == "www.huggingface.co" || host == "hf.co" {
        return Ok(huggingface(&parts).unwrap_or_else(|| plain(text)));
    }
    // civitai.red serves the same models and API as civitai.com since April 2026.
    if [
        "civitai.com",
        "www.civitai.com",
        "civitai.green",
        "civitai.red",
        "www.civitai.red",
    ]
    .contains(&host.as_str())
    {
        return civitai(&parts, query).map(|s| s.unwrap_or_else(|| plain(text)));
    }
    Ok(plain(text))
}

/// `/{org}/{repo}`, `/{org}/{repo}/tree/{rev}`, `/{org}/{repo}/{blob|resolve}/{rev}/{path}`.
fn huggingface(parts: &[&str]) -> Option<WebSource> {
    let (org, repo) = (parts.first()?, parts.get(1)?);
    if ["datasets", "spaces", "api", "docs"].contains(org) {
        return None;
    }
    let revision = |rev: &str| (rev != "main").then(|| rev.to_owned());
    match parts.get(2).copied() {
        None => Some(WebSource {
            source: format!("hf://{org}/{repo}"),
            revision: None,
        }),
        Some("tree") if parts.len() == 4 => Some(WebSource {
            source: format!("hf://{org}/{repo}"),
            revision: revision(parts[3]),
        }),
        Some("blob" | "resolve") if parts.len() >= 5 => Some(WebSource {
            source: format!("hf://{org}/{repo}/{}", parts[4..].join("/")),
            revision: revision(parts[3]),
        }),
        _ => None,
    }
}

/// `/models/{id}[/{slug}]?modelVersionId={v}` and `/api/download/models/{v}`.
fn civitai(parts: &[&str], query: &str) -> Result<Option<WebSource>, String> {
    let version = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("modelVersionId="))
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
    let source = match parts {
        ["api", "download", "models", v, ..] if v.bytes().all(|b| b.is_ascii_digit()) => {
            format!("civitai:@{v}")
        }
        ["models", id, ..] if id.bytes().all(|b| b.is_ascii_digit()) => match version {
            Some(v) => format!("civitai:{id}@{v}"),
            None => {
                return Err(format!(
                    "this Civitai address names model {id} but not one of its versions: choose a version on the page and copy the address again (it then ends with ?modelVersionId=...), or write civitai:{id}@VERSION"
                ));
            }
        },
        _ => return Ok(None),
    };
    Ok(Some(WebSource {
        source,
        revision: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> (String, Option<String>) {
        let s = from_web_url(text).unwrap();
        (s.source, s.revision)
    }

    #[test]
    fn page_addresses_become_sources() {
        let cases = [
            (
                "https://huggingface.co/stabilityai/sdxl-vae/blob/main/sdxl_vae.safetensors",
                "hf://stabilityai/sdxl-vae/sdxl_vae.safetensors",
                None,
            ),
            (
                "https://huggingface.co/org/repo/resolve/v1.0/sub/x.safetensors?download=true",
                "hf://org/repo/sub/x.safetensors",
                Some("v1.0"),
            ),
            ("https://huggingface.co/org/repo", "hf://org/repo", None),
            (
                "https://huggingface.co/org/repo/tree/fp16",
                "hf://org/repo",
                Some("fp16"),
            ),
            (
                "https://civitai.com/models/122359/detail-tweaker-xl?modelVersionId=135867",
                "civitai:122359@135867",
                None,
            ),
            (
                "https://civitai.com/api/download/models/135867?type=Model",
                "civitai:@135867",
                None,
            ),
            (
                "https://civitai.red/models/122359/detail-tweaker-xl?modelVersionId=135867",
                "civitai:122359@135867",
                None,
            ),
            (
                "https://example.com/x.safetensors",
                "https://example.com/x.safetensors",
                None,
            ),
            (
                "https://huggingface.co/datasets/a/b",
                "https://huggingface.co/datasets/a/b",
                None,
            ),
            ("hf://org/repo/x.gguf", "hf://org/repo/x.gguf", None),
        ];
        for (text, source, revision) in cases {
            assert_eq!(
                src(text),
                (source.to_owned(), revision.map(str::to_owned)),
                "{text}"
            );
        }
        let err = from_web_url("https://civitai.com/models/122359/detail-tweaker-xl").unwrap_err();
        assert!(err.contains("civitai:122359@VERSION"), "{err}");
    }
}
