//! Names that come from servers (file lists, `Content-Disposition`, URL paths) become paths on
//! disk, so they are checked here before anything is written; and the URLs we build
//! percent-encode repo paths and revisions segment by segment.

use url::Url;

use crate::error::FetchError;

/// Checks a `/`-separated relative path from a server or manifest: no empty, `.` or `..`
/// components, no absolute path, no backslash, NUL or control characters.
pub(crate) fn safe_rel_path(name: &str, path: &str) -> Result<String, FetchError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path.chars().any(|c| c.is_control())
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.contains(':'));
    if bad {
        return Err(FetchError::UnsafePath {
            name: name.to_string(),
            path: path.to_string(),
        });
    }
    Ok(path.to_string())
}

/// `base` (an endpoint, possibly with a path prefix) with `segments` appended, each
/// percent-encoded as one segment (so a revision `refs/pr/1` becomes `refs%2Fpr%2F1`).
pub(crate) fn endpoint_url(base: &str, segments: &[&str]) -> Result<Url, FetchError> {
    let mut url = Url::parse(base).map_err(|e| FetchError::BadUrl {
        url: crate::secret::redact_url(base),
        reason: e.to_string(),
    })?;
    {
        let mut segs = url.path_segments_mut().map_err(|()| FetchError::BadUrl {
            url: crate::secret::redact_url(base),
            reason: "cannot be a base URL".into(),
        })?;
        segs.pop_if_empty();
        for s in segments {
            segs.push(s);
        }
    }
    Ok(url)
}

/// `base` plus a repo path whose own `/` separators are kept.
pub(crate) fn endpoint_url_with_path(
    base: &str,
    segments: &[&str],
    path: &str,
) -> Result<Url, FetchError> {
    let mut all: Vec<&str> = segments.to_vec();
    all.extend(path.split('/'));
    endpoint_url(base, &all)
}

/// The file name a `Content-Disposition` header carries (`filename*=UTF-8''...` preferred).
pub(crate) fn disposition_filename(header: &str) -> Option<String> {
    let mut plain = None;
    for part in header.split(';').map(str::trim) {
        let Some((key, value)) = part.split_once('=') else {
            continue;
        };
        match key.trim().to_ascii_lowercase().as_str() {
            "filename*" => {
                let encoded = value.trim().split("''").nth(1)?;
                let decoded = percent_decode(encoded);
                return Some(decoded).filter(|d| !d.is_empty());
            }
            "filename" => plain = Some(value.trim().trim_matches('"').to_string()),
            _ => {}
        }
    }
    plain.filter(|p| !p.is_empty())
}

/// The last path segment of a URL, percent-decoded.
pub(crate) fn url_file_name(url: &Url) -> Option<String> {
    let last = url.path_segments()?.next_back()?;
    Some(percent_decode(last)).filter(|s| !s.is_empty())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A lowercase 64-hex sha256 from an ETag-like value (`W/` and quotes stripped), if it is one.
pub(crate) fn sha256_from_etag(value: &str) -> Option<String> {
    let v = value.trim().trim_start_matches("W/").trim_matches('"');
    (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit())).then(|| v.to_ascii_lowercase())
}

/// Files whose content is legitimately text or JSON: the HTML/JSON body check skips them.
pub(crate) fn expects_text(path: &str) -> bool {
    let ext = path.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    matches!(
        ext.as_deref(),
        Some(
            "json"
                | "jsonl"
                | "txt"
                | "md"
                | "html"
                | "htm"
                | "yaml"
                | "yml"
                | "toml"
                | "py"
                | "csv"
                | "xml"
                | "js"
                | "cfg"
                | "ini"
                | "gitattributes"
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["", "/etc/x", "a/../b", "a//b", "./a", "a\\b", "c:x", "a/\0"] {
            assert!(safe_rel_path("m", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            safe_rel_path("m", "unet/x.safetensors").unwrap(),
            "unet/x.safetensors"
        );
    }

    #[test]
    fn urls_encode_segments() {
        let u = endpoint_url_with_path(
            "https://hub.example/mirror/",
            &["org", "repo", "resolve", "refs/pr/1"],
            "dir/a b.json",
        )
        .unwrap();
        assert_eq!(
            u.as_str(),
            "https://hub.example/mirror/org/repo/resolve/refs%2Fpr%2F1/dir/a%20b.json"
        );
    }

    #[test]
    fn disposition_forms() {
        assert_eq!(
            disposition_filename("attachment; filename=\"a.safetensors\"").as_deref(),
            Some("a.safetensors")
        );
        assert_eq!(
            disposition_filename("attachment; filename=x; filename*=UTF-8''%C3%A9.bin").as_deref(),
            Some("é.bin")
        );
        assert_eq!(disposition_filename("inline"), None);
    }

    #[test]
    fn etags() {
        let sha = "A".repeat(64);
        assert_eq!(
            sha256_from_etag(&format!("W/\"{sha}\"")),
            Some("a".repeat(64))
        );
        assert_eq!(sha256_from_etag("\"abc\""), None);
    }
}
