//! Plain URL sources with `${VAR}` in their user info or query values, made requestable.
//!
//! The lock and the manifest keep such a URL as written; here, just before requests are made,
//! its references are expanded from [`crate::FetchConfig::variables`], its user info becomes a
//! `Basic` `Authorization` bound to the URL's own origin (the client drops it on a redirect to
//! any other host), and every value that could show up in a message is listed as a secret:
//! each variable's value (as the environment gave it and as it is encoded in the URL), and
//! `user:password` in plain and in base64, as a server may echo them back.

use mlib_manifest::{ExpandedUrl, UrlVarError};
use url::Url;

use crate::Fetcher;
use crate::client::Token;
use crate::error::FetchError;
use crate::secret::{Secret, base64, redact_url};

/// A URL source ready to request. Not `Debug`: `url` may carry credentials.
pub(crate) struct SourceUrl {
    /// Expanded, without user info.
    pub url: Url,
    /// `Basic` credentials from the user info, for `url`'s origin only.
    pub auth: Option<Token>,
    /// Everything no message may show.
    pub secrets: Vec<Secret>,
}

impl SourceUrl {
    /// Expands `template` (the URL as written in the manifest and the lock) for model `name`.
    pub fn expand(f: &Fetcher, name: &str, template: &str) -> Result<SourceUrl, FetchError> {
        let variables = &f.config.variables;
        let expanded =
            mlib_manifest::expand_url(template, &|var| variables.get(var)).map_err(|error| {
                match error {
                    UrlVarError::Unset { variable } => FetchError::UnsetVariable {
                        name: name.to_owned(),
                        variable,
                    },
                    UrlVarError::Malformed { message } => FetchError::BadUrl {
                        url: redact_url(template),
                        reason: message,
                    },
                }
            })?;
        let mut secrets = Vec::new();
        for value in expanded.values.iter().filter(|v| !v.is_empty()) {
            secrets.push(value.clone());
            // As the URL carries it, and as `redact_url` re-encodes a query value.
            secrets.push(ExpandedUrl::encode(value));
            secrets.push(url::form_urlencoded::byte_serialize(value.as_bytes()).collect());
        }
        let redact = |e: FetchError| e.redacted(&to_secrets(&secrets));
        let mut url = f.client.parse_url(&expanded.url).map_err(redact)?;
        let mut auth = None;
        if !url.username().is_empty() || url.password().is_some() {
            let user = decode(url.username());
            let password = decode(url.password().unwrap_or(""));
            let pair = format!("{user}:{password}");
            let encoded = base64(pair.as_bytes());
            auth = Some(Token {
                origins: vec![url.origin()],
                authorization: Secret::new(format!("Basic {encoded}")),
            });
            secrets.extend([pair, encoded]);
            // Sent as the header only: a URL with user info never reaches a request or a log.
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Ok(SourceUrl {
            url,
            auth,
            secrets: to_secrets(&secrets),
        })
    }
}

fn to_secrets(values: &[String]) -> Vec<Secret> {
    values.iter().map(Secret::new).collect()
}

fn decode(text: &str) -> String {
    let bytes: Vec<u8> =
        url::form_urlencoded::parse(format!("x={}", text.replace('+', "%2B")).as_bytes())
            .next()
            .map(|(_, v)| v.into_owned().into_bytes())
            .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}
