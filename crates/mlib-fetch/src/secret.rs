//! Tokens never leak into output: they live in [`Secret`], whose `Debug` and `Display` print
//! `***`, and every URL or message that reaches an error goes through [`redact_url`] /
//! [`redact_text`] first (query parameters such as `token=` can carry credentials too).

use std::fmt;

/// A credential (API token). Only [`Secret::expose`] reveals it, for the one header that needs it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Query parameters whose values are credentials (compared case-insensitively, by substring:
/// `X-Amz-Signature`, `access_token`, `api_key`...).
const SENSITIVE: &[&str] = &[
    "token",
    "signature",
    "credential",
    "key",
    "password",
    "secret",
    "sig",
];

/// The URL with credentials replaced by `***`: user info, and sensitive query values.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return redact_query_text(url);
    };
    if !parsed.username().is_empty() {
        let _ = parsed.set_username("***");
    }
    if parsed.password().is_some() {
        let _ = parsed.set_password(Some("***"));
    }
    if parsed.query().is_some() {
        let pairs: Vec<(String, String)> = parsed
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_sensitive(&k) {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        parsed.query_pairs_mut().clear().extend_pairs(pairs);
    }
    parsed.to_string().replace("%2A%2A%2A", "***")
}

/// Whole parameter names that are credentials too (CloudFront's signed-URL `Policy`).
const SENSITIVE_NAMES: &[&str] = &["auth", "policy"];

fn is_sensitive(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    SENSITIVE.iter().any(|s| key.contains(s)) || SENSITIVE_NAMES.contains(&key.as_str())
}

/// For text that is not a parseable URL: redacts `name=value` pairs with sensitive names.
fn redact_query_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match part.split_once('=') {
            Some((k, _)) if is_sensitive(k.rsplit(['?', ' ', '/']).next().unwrap_or(k)) => {
                out.push_str(k);
                out.push_str("=***");
            }
            _ => out.push_str(part),
        }
    }
    out
}

/// Replaces every occurrence of each secret's value in `text`, then redacts URL-ish query
/// parameters: the last line of defence for messages built from server or library errors.
pub fn redact_text(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.0.is_empty() {
            out = out.replace(&s.0, "***");
        }
    }
    out.split(' ')
        .map(|word| {
            if word.contains("://") {
                redact_url(word)
            } else if word.contains('=') {
                redact_query_text(word)
            } else {
                word.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Standard base64 with padding (RFC 4648), for `Authorization: Basic`.
pub(crate) fn base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain}");
        }
    }

    #[test]
    fn secrets_print_stars() {
        let s = Secret::new("hf_abc");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "hf_abc");
    }

    #[test]
    fn urls_lose_credentials() {
        assert_eq!(
            redact_url("https://civitai.com/api/download/models/1?token=abc&type=Model"),
            "https://civitai.com/api/download/models/1?token=***&type=Model"
        );
        assert_eq!(
            redact_url("https://u:p@host/x?X-Amz-Signature=s&X-Amz-Expires=9"),
            "https://***:***@host/x?X-Amz-Signature=***&X-Amz-Expires=9"
        );
        assert_eq!(redact_url("not a url?token=abc"), "not a url?token=***");
        assert_eq!(
            redact_url("https://d.cloudfront.net/x?Policy=p&auth=a&v=1"),
            "https://d.cloudfront.net/x?Policy=***&auth=***&v=1"
        );
    }

    #[test]
    fn text_loses_secret_values() {
        let s = Secret::new("hf_secret");
        let text = redact_text("error hf_secret at http://h/x?api_key=1 and token=z", &[&s]);
        assert_eq!(text, "error *** at http://h/x?api_key=*** and token=***");
    }
}
