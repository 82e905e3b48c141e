//! Telling a model file from the HTML login page or JSON error a hub sends when a token is
//! missing: saving one of those as `model.safetensors` only fails later, confusingly.
//!
//! A lone `{` is not enough: a safetensors file starts with its header length as a u64
//! little-endian, whose first byte can be `{` (0x7B). Real JSON is text, and such a length has
//! NUL bytes in its high positions, so JSON is `{` then a quote or `}` with no NUL nearby.

/// What the `Content-Type` says the body is, when it is not a model file.
pub(crate) fn from_content_type(value: Option<&str>) -> Option<&'static str> {
    let v = value?.split(';').next()?.trim().to_ascii_lowercase();
    match v.as_str() {
        "text/html" | "application/xhtml+xml" => Some("an HTML page"),
        "application/json" | "application/problem+json" => Some("a JSON document"),
        _ => None,
    }
}

/// What the first bytes say the body is, when it is not a model file.
pub(crate) fn from_bytes(first: &[u8]) -> Option<&'static str> {
    let start = first.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(first);
    let trimmed: &[u8] = {
        let skip = start.iter().take_while(|b| b.is_ascii_whitespace()).count();
        &start[skip..]
    };
    let head: Vec<u8> = trimmed
        .iter()
        .take(16)
        .map(u8::to_ascii_lowercase)
        .collect();
    if head.starts_with(b"<!doctype") || head.starts_with(b"<html") {
        return Some("an HTML page");
    }
    if trimmed.first() == Some(&b'{') {
        let window = &trimmed[..trimmed.len().min(64)];
        let after = trimmed[1..].iter().find(|b| !b.is_ascii_whitespace());
        if !window.contains(&0) && matches!(after, Some(b'"') | Some(b'}')) {
            return Some("a JSON document");
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_errors_are_recognised() {
        assert_eq!(
            from_bytes(b"\n <!DOCTYPE html><html>"),
            Some("an HTML page")
        );
        assert_eq!(from_bytes(b"<HTML><body>"), Some("an HTML page"));
        assert_eq!(
            from_bytes(b"{\"error\":\"Unauthorized\"}"),
            Some("a JSON document")
        );
        assert_eq!(from_bytes(b"{ }"), Some("a JSON document"));
        assert_eq!(
            from_content_type(Some("text/html; charset=utf-8")),
            Some("an HTML page")
        );
        assert_eq!(from_content_type(Some("application/octet-stream")), None);
    }

    #[test]
    fn safetensors_headers_are_not_json() {
        // Header length 0x227B: bytes 7B 22 00 00 ..., then the JSON header itself.
        let mut st = 0x227Bu64.to_le_bytes().to_vec();
        st.extend_from_slice(b"{\"__metadata__\":{}}");
        assert_eq!(from_bytes(&st), None);
        assert_eq!(from_bytes(b"GGUF\x03\0\0\0"), None);
        assert_eq!(from_bytes(b"PK\x03\x04"), None);
    }
}
