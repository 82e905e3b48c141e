//! `https://` mirrors: any static server or CDN that answers `GET {base}/{key}` (a bucket
//! served over HTTPS, nginx over a folder `mlib mirror push` filled through S3, ...). Plain
//! GETs and HEADs through the same ureq client as every other request, with no token: a
//! mirror never gets a hub's credentials.

use std::io::Read;

use url::Url;

use super::MirrorError;
use crate::client::{Client, Follow};
use crate::config::FetchConfig;
use crate::report::NoReporter;
use crate::secret::redact_url;

/// The largest index object read: an index lists a model's files, a few KiB.
const MAX_SMALL: u64 = 4 << 20;

pub(crate) struct HttpMirror {
    base: String,
    client: Client,
}

impl HttpMirror {
    pub fn new(base: &str, config: &FetchConfig) -> HttpMirror {
        let mut config = config.clone();
        config.allow_http = true;
        config.hf_token = None;
        config.civitai_token = None;
        config.retries = config.retries.min(2);
        config.backoff_base = config
            .backoff_base
            .min(std::time::Duration::from_millis(200));
        config.backoff_max = config.backoff_max.min(std::time::Duration::from_secs(2));
        HttpMirror {
            base: base.trim_end_matches('/').to_owned(),
            client: Client::new(&config),
        }
    }

    pub fn url(&self, key: &str) -> Result<Url, MirrorError> {
        Url::parse(&format!("{}/{key}", self.base)).map_err(|e| self.failed(e.to_string(), true))
    }

    fn failed(&self, message: String, misconfigured: bool) -> MirrorError {
        MirrorError::Failed {
            mirror: self.base.clone(),
            message,
            misconfigured,
        }
    }

    /// Sends one request (retried on transient failures); `None` on 404/410.
    fn send(&self, head: bool, key: &str) -> Result<Option<crate::client::Reply>, MirrorError> {
        let url = self.url(key)?;
        let reply = self
            .client
            .retrying(key, url.as_str(), &[], &NoReporter, || {
                let reply = self.client.send(head, &url, &[], None, Follow::All)?;
                match self.client.transient_status(&reply) {
                    Some(failure) => Err(failure),
                    None => Ok(reply),
                }
            })
            // Unreachable after retries: the server is down or the address is wrong.
            .map_err(|e| self.failed(e.to_string(), true))?;
        match reply.status() {
            200 => Ok(Some(reply)),
            404 | 410 => Ok(None),
            status => Err(self.failed(
                format!(
                    "HTTP {status} from {}{}",
                    redact_url(reply.url.as_str()),
                    match reply.detail() {
                        d if d.is_empty() => String::new(),
                        d => format!(": {d}"),
                    }
                ),
                matches!(status, 401 | 403),
            )),
        }
    }

    pub fn head(&self, key: &str) -> Result<Option<u64>, MirrorError> {
        let Some(reply) = self.send(true, key)? else {
            return Ok(None);
        };
        let size = reply
            .header("content-length")
            .and_then(|v| v.parse::<u64>().ok());
        match size {
            Some(size) => Ok(Some(size)),
            None => Err(self.failed(
                format!("HEAD {key} answered without a Content-Length"),
                false,
            )),
        }
    }

    pub fn get_small(&self, key: &str) -> Result<Option<Vec<u8>>, MirrorError> {
        let Some(reply) = self.send(false, key)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reply
            .into_reader()
            .take(MAX_SMALL)
            .read_to_end(&mut bytes)
            .map_err(|e| self.failed(format!("reading {key}: {e}"), false))?;
        Ok(Some(bytes))
    }
}
