//! The HTTP client: ureq with automatic redirects turned off, so this module decides, hop by
//! hop, which URLs may be fetched (no plain http except loopback or opt-in) and which hop gets
//! `Authorization` (only the origin the token belongs to: HuggingFace and Civitai redirect to
//! CDNs and presigned storage that must never see it).
//!
//! Failures are split into [`Failure::Transient`] (retried with backoff) and
//! [`Failure::Fatal`] here, once, so every caller retries the same way.

use std::io::Read;
use std::time::Duration;

use ureq::http::Response;
use url::Url;

use crate::error::FetchError;
use crate::report::Reporter;
use crate::retry::RetryPolicy;
use crate::secret::{Secret, redact_text, redact_url};

/// An `Authorization` header value and the origin (scheme, host, port) it may be sent to.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The origins it is sent to (one, or Civitai's hosts, which share accounts and API).
    pub origins: Vec<url::Origin>,
    /// The whole header value: `Bearer {token}` or `Basic {base64 of user:password}`.
    pub authorization: Secret,
}

/// Which redirects to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Follow {
    All,
    /// Only to the same origin (HF resolve: the CDN hop carries the headers we need).
    SameOrigin,
    /// Same origin, stopping at the first answer that carries `X-Repo-Commit`: the Hub's
    /// `resolve` answers with its headers and a relative redirect to `/api/resolve-cache/...`,
    /// whose own answer has none of them (a renamed repo's redirect has none either, and is
    /// followed).
    HubResolve,
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) enum Failure {
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    Fatal(FetchError),
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Failure {
        Failure::Fatal(e)
    }
}

/// A response, with the URL that produced it (after redirects).
pub(crate) struct Reply {
    pub url: Url,
    pub resp: Response<ureq::Body>,
}

impl Reply {
    pub fn status(&self) -> u16 {
        self.resp.status().as_u16()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.resp.headers().get(name).and_then(|v| v.to_str().ok())
    }

    /// A short, single-line excerpt of an error body (for messages).
    pub fn detail(self) -> String {
        let buf = self.error_body();
        let text = String::from_utf8_lossy(&buf);
        let text = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| {
                ["message", "error"]
                    .iter()
                    .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
            })
            .unwrap_or_else(|| text.lines().next().unwrap_or("").to_string());
        text.chars().take(200).collect()
    }

    /// The body as JSON, for error answers that carry fields.
    pub fn body_json(self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.error_body()).ok()
    }

    /// The first 4 KiB of an error answer's body (all an error needs; a server may send
    /// a whole page).
    fn error_body(mut self) -> Vec<u8> {
        let mut buf = Vec::new();
        let _ = self
            .resp
            .body_mut()
            .as_reader()
            .take(4096)
            .read_to_end(&mut buf);
        buf
    }

    pub fn json<T: serde::de::DeserializeOwned>(mut self) -> Result<T, FetchError> {
        let url = redact_url(self.url.as_str());
        let bytes = self
            .resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_vec()
            .map_err(|e| FetchError::Protocol {
                url: url.clone(),
                message: format!("reading the response failed: {e}"),
            })?;
        serde_json::from_slice(&bytes).map_err(|e| FetchError::Protocol {
            url,
            message: format!("invalid JSON: {e}"),
        })
    }

    pub fn into_reader(self) -> ureq::BodyReader<'static> {
        self.resp.into_body().into_reader()
    }
}

pub(crate) struct Client {
    agent: ureq::Agent,
    allow_http: bool,
    pub policy: RetryPolicy,
    secrets: Vec<Secret>,
}

impl Client {
    pub fn new(config: &crate::FetchConfig) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(config.user_agent.as_str())
            // Model bytes must arrive as stored: no transparent decompression.
            .accept_encoding("")
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .build()
            .new_agent();
        Client {
            agent,
            allow_http: config.allow_http,
            policy: RetryPolicy::from_config(config),
            secrets: config
                .hf_token
                .iter()
                .chain(config.civitai_token.iter())
                .cloned()
                .collect(),
        }
    }

    /// Redacts both URL credentials and the configured tokens from a message.
    pub fn scrub(&self, text: &str) -> String {
        redact_text(text, &self.secrets.iter().collect::<Vec<_>>())
    }

    /// Parses `url` and applies the scheme policy.
    pub fn parse_url(&self, url: &str) -> Result<Url, FetchError> {
        let parsed = Url::parse(url).map_err(|e| FetchError::BadUrl {
            url: redact_url(url),
            reason: e.to_string(),
        })?;
        self.check_url(&parsed)?;
        Ok(parsed)
    }

    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        match url.scheme() {
            "https" => Ok(()),
            "http" if self.allow_http || is_loopback(url) => Ok(()),
            "http" => Err(FetchError::InsecureUrl {
                url: redact_url(url.as_str()),
            }),
            other => Err(FetchError::BadUrl {
                url: redact_url(url.as_str()),
                reason: format!("unsupported scheme {other}:"),
            }),
        }
    }

    /// Sends a GET or HEAD, following redirects per `follow` (at most 10), attaching
    /// `Authorization` only on hops whose origin is the token's.
    pub fn send(
        &self,
        head: bool,
        url: &Url,
        headers: &[(&str, &str)],
        token: Option<&Token>,
        follow: Follow,
    ) -> Result<Reply, Failure> {
        let mut url = url.clone();
        for _ in 0..=10 {
            self.check_url(&url)?;
            let mut req = if head {
                self.agent.head(url.as_str())
            } else {
                self.agent.get(url.as_str())
            };
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            if let Some(t) = token
                && t.belongs_to(&url)
            {
                req = req.header("Authorization", t.authorization.expose());
            }
            let resp = req.call().map_err(|e| self.transport_failure(&url, e))?;
            let status = resp.status().as_u16();
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let reply = Reply { url, resp };
            let (true, Some(location)) = (matches!(status, 301 | 302 | 303 | 307 | 308), location)
            else {
                return Ok(reply);
            };
            let next = reply.url.join(&location).map_err(|e| {
                Failure::Fatal(FetchError::Protocol {
                    url: redact_url(reply.url.as_str()),
                    message: format!("bad redirect location: {e}"),
                })
            })?;
            let stop = match follow {
                Follow::All => false,
                Follow::SameOrigin => next.origin() != reply.url.origin(),
                Follow::HubResolve => {
                    next.origin() != reply.url.origin() || reply.header("x-repo-commit").is_some()
                }
            };
            if stop {
                return Ok(reply);
            }
            url = next;
        }
        Err(Failure::Fatal(FetchError::Protocol {
            url: redact_url(url.as_str()),
            message: "more than 10 redirects".into(),
        }))
    }

    /// POSTs `body` as JSON to `url`, the token sent only to its own origin; a redirect is
    /// not followed (an API answers a POST itself).
    pub fn post_json(
        &self,
        url: &Url,
        body: &[u8],
        token: Option<&Token>,
    ) -> Result<Reply, Failure> {
        self.check_url(url)?;
        let mut req = self
            .agent
            .post(url.as_str())
            .header("Content-Type", "application/json");
        if let Some(t) = token
            && t.belongs_to(url)
        {
            req = req.header("Authorization", t.authorization.expose());
        }
        let resp = req.send(body).map_err(|e| self.transport_failure(url, e))?;
        Ok(Reply {
            url: url.clone(),
            resp,
        })
    }

    fn transport_failure(&self, url: &Url, e: ureq::Error) -> Failure {
        let reason = self.scrub(&format!("{e}"));
        match e {
            ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_) => Failure::Transient {
                reason,
                retry_after: None,
            },
            _ => Failure::Fatal(FetchError::Network {
                url: redact_url(url.as_str()),
                attempts: 1,
                reason,
            }),
        }
    }

    /// 5xx, 408 and 429 are worth retrying (honouring `Retry-After`); `None` for others.
    pub fn transient_status(&self, reply: &Reply) -> Option<Failure> {
        let status = reply.status();
        if status >= 500 || status == 408 || status == 429 {
            let retry_after = reply
                .header("retry-after")
                .and_then(crate::retry::parse_retry_after);
            // The Hub answers its rate limit with the window's reset in `RateLimit` (IETF
            // draft 9: `"resolvers";r=0;t=89`) and no Retry-After (hub-docs rate-limits.md).
            let reset = reply
                .header("ratelimit")
                .and_then(crate::retry::parse_ratelimit_reset);
            let mut reason = format!("HTTP {status} from {}", redact_url(reply.url.as_str()));
            if let (None, Some(reset)) = (retry_after, reset) {
                let policy = reply
                    .header("ratelimit-policy")
                    .and_then(crate::retry::describe_policy)
                    .map(|p| format!(" ({p})"))
                    .unwrap_or_default();
                reason.push_str(&format!(
                    ": rate limited{policy}; waiting {}s for the window to reset",
                    reset.as_secs()
                ));
            }
            return Some(Failure::Transient {
                reason,
                retry_after: retry_after.or(reset),
            });
        }
        None
    }

    /// Runs `op` until it succeeds, fails fatally, or has failed transiently more than
    /// `retries` times in a row, sleeping with backoff in between. `secrets` (a URL's `${VAR}`
    /// values) never reach the trace of a retry.
    pub fn retrying<T>(
        &self,
        label: &str,
        url: &str,
        secrets: &[Secret],
        reporter: &dyn Reporter,
        mut op: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, FetchError> {
        let mut attempt = 0;
        loop {
            match op() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Transient {
                    reason,
                    retry_after,
                }) => {
                    attempt += 1;
                    if attempt > self.policy.retries {
                        return Err(FetchError::Network {
                            url: redact_url(url),
                            attempts: attempt,
                            reason,
                        });
                    }
                    reporter.retry(label, attempt, &reason);
                    let delay = self.policy.delay(attempt, retry_after);
                    let shown =
                        redact_text(&self.scrub(&reason), &secrets.iter().collect::<Vec<_>>());
                    crate::retry::trace_retry(label, attempt, self.policy.retries, delay, &shown);
                    std::thread::sleep(delay);
                }
            }
        }
    }
}

/// `localhost` and loopback addresses: plain http cannot be intercepted there.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// A bearer token bound to the origin of `endpoint` (`None` without a token or with a bad
/// endpoint).
pub(crate) fn token_for(endpoint: &str, secret: Option<&Secret>) -> Option<Token> {
    let origin = Url::parse(endpoint).ok()?.origin();
    Some(Token {
        origins: vec![origin],
        authorization: Secret::new(format!("Bearer {}", secret?.expose())),
    })
}

/// Civitai's hosts: `civitai.red` (since April 2026) serves the same API and accounts as
/// `civitai.com` (and `.green`), so a key made on one is sent to each, and to no other.
const CIVITAI_HOSTS: &[&str] = &[
    "civitai.com",
    "www.civitai.com",
    "civitai.red",
    "www.civitai.red",
    "civitai.green",
];

/// The Civitai token for `endpoint`, sent to Civitai's other hosts too when the endpoint is
/// one of them (a test or self-hosted endpoint keeps its own origin only).
pub(crate) fn civitai_token_for(endpoint: &str, secret: Option<&Secret>) -> Option<Token> {
    let mut token = token_for(endpoint, secret)?;
    let url = Url::parse(endpoint).ok()?;
    if url.scheme() == "https" && url.host_str().is_some_and(|h| CIVITAI_HOSTS.contains(&h)) {
        for host in CIVITAI_HOSTS {
            if let Ok(other) = Url::parse(&format!("https://{host}/")) {
                let origin = other.origin();
                if !token.origins.contains(&origin) {
                    token.origins.push(origin);
                }
            }
        }
    }
    Some(token)
}

impl Token {
    pub(crate) fn belongs_to(&self, url: &Url) -> bool {
        self.origins.contains(&url.origin())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_civitai_key_goes_to_civitais_hosts_and_nowhere_else() {
        let secret = Secret::new("civ_key");
        let token = civitai_token_for("https://civitai.com", Some(&secret)).unwrap();
        for (url, sent) in [
            ("https://civitai.com/api/v1/models", true),
            ("https://civitai.red/api/download/models/1", true),
            ("https://civitai.green/api/v1/models", true),
            ("http://civitai.red/api/v1/models", false),
            ("https://b2.civitai.com/file", false),
            ("https://civitai.red.evil.example/api", false),
        ] {
            assert_eq!(token.belongs_to(&Url::parse(url).unwrap()), sent, "{url}");
        }
        // A test or self-hosted endpoint keeps its one origin.
        let local = civitai_token_for("http://127.0.0.1:9000", Some(&secret)).unwrap();
        assert_eq!(local.origins.len(), 1);
        assert!(!local.belongs_to(&Url::parse("https://civitai.red/").unwrap()));
    }
}
