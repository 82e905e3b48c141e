//! Civitai as mlib sees it: the model-version API (files, hashes in upper hex, base model),
//! the download endpoint answering 307 to a presigned CDN URL, and the two ways a gated file
//! is refused without a token (401 JSON, or a redirect to an HTML login page).

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::blob::Blob;
use crate::http::{Head, Response};

/// How a version that needs a token refuses an anonymous download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// 401 with a JSON body.
    Json401,
    /// 307 to `/login`, an HTML page answered with 200.
    LoginPage,
}

/// How Civitai refuses a version's download to anyone (token or not), as its download route
/// does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 403 `{"error": "Early Access", "deadline": ...}`.
    EarlyAccess { deadline: String },
    /// 410: the version is archived.
    Archived,
    /// 429 without `Retry-After`: the download quota.
    Quota,
}

/// One file of a model version.
#[derive(Clone, Debug)]
pub struct CivitaiFile {
    pub id: u64,
    pub name: String,
    pub primary: bool,
    /// Lowercase hex (the API sends it upper case).
    pub sha256: String,
    pub blake3: String,
    pub(crate) data: Arc<[u8]>,
}

impl CivitaiFile {
    /// Where the CDN serves it (use with [`crate::TestServer::set_faults`]).
    pub fn cdn_path(&self) -> String {
        format!("/cdn/civitai/{}/{}", self.id, self.name)
    }

    pub fn size(&self) -> u64 {
        self.data.len() as u64
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// A model version; register it with [`crate::TestServer::civitai_version`].
#[derive(Clone, Debug)]
pub struct CivitaiVersion {
    pub id: u64,
    pub model_id: u64,
    pub model_name: String,
    /// `LORA`, `Checkpoint`, `VAE`, ...
    pub model_type: String,
    pub base_model: String,
    pub files: Vec<CivitaiFile>,
    /// The token a download needs, and how it is refused without it.
    pub gate: Option<(String, Gate)>,
    /// Refused to everyone.
    pub refusal: Option<Refusal>,
    /// When the storage URLs its download endpoint signs expire (`None`: never).
    pub expiry: Option<crate::Expiry>,
}

impl CivitaiVersion {
    pub fn new(model_id: u64, id: u64) -> CivitaiVersion {
        CivitaiVersion {
            id,
            model_id,
            model_name: format!("model {model_id}"),
            model_type: "LORA".into(),
            base_model: "SD 1.5".into(),
            files: Vec::new(),
            gate: None,
            refusal: None,
            expiry: None,
        }
    }

    pub fn model_type(mut self, value: &str) -> Self {
        self.model_type = value.into();
        self
    }

    pub fn base_model(mut self, value: &str) -> Self {
        self.base_model = value.into();
        self
    }

    /// Adds a file; the first one added is the primary file until [`Self::primary`] says
    /// otherwise.
    pub fn file(mut self, id: u64, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        let bytes: Vec<u8> = bytes.into();
        self.files.push(CivitaiFile {
            id,
            name: name.into(),
            primary: self.files.is_empty(),
            sha256: hex::encode(Sha256::digest(&bytes)),
            blake3: blake3::hash(&bytes).to_hex().to_string(),
            data: bytes.into(),
        });
        self
    }

    pub fn primary(mut self, file_id: u64) -> Self {
        for f in &mut self.files {
            f.primary = f.id == file_id;
        }
        self
    }

    pub fn refused(mut self, refusal: Refusal) -> Self {
        self.refusal = Some(refusal);
        self
    }

    /// Each download redirect signs a new storage URL that expires as `expiry` says.
    pub fn signed_urls(mut self, expiry: crate::Expiry) -> Self {
        self.expiry = Some(expiry);
        self
    }

    pub fn gated(mut self, token: &str, gate: Gate) -> Self {
        self.gate = Some((token.into(), gate));
        self
    }

    pub(crate) fn blobs(&self) -> Vec<(String, Blob)> {
        self.files
            .iter()
            .map(|f| (f.cdn_path(), Blob::new(f.data.to_vec()).filename(&f.name)))
            .collect()
    }

    fn air(&self) -> String {
        let eco = match self.base_model.as_str() {
            b if b.starts_with("SDXL") || b == "Pony" => "sdxl",
            b if b.starts_with("SD 1") => "sd1",
            b if b.starts_with("Flux") => "flux1",
            _ => "other",
        };
        let kind = self.model_type.to_ascii_lowercase();
        format!("urn:air:{eco}:{kind}:civitai:{}@{}", self.model_id, self.id)
    }

    fn to_json(&self, base: &str) -> serde_json::Value {
        let files: Vec<_> = self
            .files
            .iter()
            .map(|f| {
                let url = if f.primary {
                    format!("{base}/api/download/models/{}", self.id)
                } else {
                    format!("{base}/api/download/models/{}?fileId={}", self.id, f.id)
                };
                json!({
                    "id": f.id,
                    "name": f.name,
                    "sizeKB": f.data.len() as f64 / 1024.0,
                    "type": "Model",
                    "primary": f.primary,
                    "downloadUrl": url,
                    "hashes": {
                        "AutoV2": f.sha256[..10].to_uppercase(),
                        "SHA256": f.sha256.to_uppercase(),
                        "BLAKE3": f.blake3.to_uppercase(),
                    },
                })
            })
            .collect();
        json!({
            "id": self.id,
            "modelId": self.model_id,
            "name": format!("v{}", self.id),
            "baseModel": self.base_model,
            "air": self.air(),
            "model": { "name": self.model_name, "type": self.model_type, "nsfw": false },
            "files": files,
            "downloadUrl": format!("{base}/api/download/models/{}", self.id),
        })
    }
}

const LOGIN_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Sign in | Civitai</title></head>\n<body><h1>Sign in to Civitai</h1></body></html>\n";

/// Serves Civitai's POST routes: the batch lookup by hash (`by-hash/index.ts` in Civitai's
/// source: a JSON array of at most 100 sha256, upper-cased by the server; the answer is the
/// published versions having a file of one of them).
pub(crate) fn route_post(state: &crate::State, head: &Head) -> Option<Response> {
    if head.path() != "/api/v1/model-versions/by-hash" {
        return None;
    }
    if let Some(busy) = api_busy(state) {
        return Some(busy);
    }
    let hashes: Vec<String> = match serde_json::from_slice(&head.body) {
        Ok(hashes) => hashes,
        Err(_) => {
            return Some(Response::json(
                400,
                &json!({ "error": "Request must include an array of SHA256 Hashes." }),
            ));
        }
    };
    if hashes.len() > 100 || hashes.iter().any(|h| h.len() != 64) {
        return Some(Response::json(
            400,
            &json!({ "error": "Request must include an array of SHA256 Hashes. Too many hashes" }),
        ));
    }
    let hashes: Vec<String> = hashes.iter().map(|h| h.to_ascii_lowercase()).collect();
    let versions = state.civitai.lock().unwrap();
    let found: Vec<serde_json::Value> = versions
        .values()
        .filter(|v| v.files.iter().any(|f| hashes.contains(&f.sha256)))
        .map(|v| v.to_json(&state.main_url))
        .collect();
    Some(Response::json(200, &serde_json::Value::Array(found)))
}

/// A 429 without `Retry-After` while the API is set busy.
fn api_busy(state: &crate::State) -> Option<Response> {
    use std::sync::atomic::Ordering;
    let busy = &state.civitai_api_busy;
    let took = busy.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
    took.is_ok()
        .then(|| Response::json(429, &json!({ "error": "Too many requests" })))
}

/// The download endpoint's failure once its normal answers set by
/// [`crate::TestServer::civitai_download_fails_after`] are used up.
fn download_failing(state: &crate::State) -> Option<Response> {
    let mut failing = state.civitai_download_failing.lock().unwrap();
    let (ok, status) = failing.as_mut()?;
    if *ok > 0 {
        *ok -= 1;
        return None;
    }
    Some(Response::json(
        *status,
        &json!({ "error": "Internal Server Error" }),
    ))
}

/// Serves Civitai routes on the main host; `None` when the path is not a Civitai one.
pub(crate) fn route(state: &crate::State, head: &Head) -> Option<Response> {
    let path = head.path();
    if path.starts_with("/api/v1/")
        && let Some(busy) = api_busy(state)
    {
        return Some(busy);
    }
    if path == "/login" {
        return Some(Response::text(200, "text/html; charset=utf-8", LOGIN_PAGE));
    }
    let versions = state.civitai.lock().unwrap();
    // By a file's hash (Civitai answers to any case), as Civitai's public API documents it.
    if let Some(hash) = path.strip_prefix("/api/v1/model-versions/by-hash/") {
        let hash = hash.to_ascii_lowercase();
        let found = versions
            .values()
            .find(|v| v.files.iter().any(|f| f.sha256 == hash));
        return Some(match found {
            Some(v) => Response::json(200, &v.to_json(&state.main_url)),
            None => Response::json(404, &json!({ "error": "Model not found" })),
        });
    }
    if let Some(id) = path.strip_prefix("/api/v1/model-versions/") {
        let found = id.parse::<u64>().ok().and_then(|id| versions.get(&id));
        return Some(match found {
            Some(v) => Response::json(200, &v.to_json(&state.main_url)),
            None => Response::json(
                404,
                &json!({ "error": format!("No model version with id {id}") }),
            ),
        });
    }
    let id = path.strip_prefix("/api/download/models/")?;
    if let Some(failing) = download_failing(state) {
        return Some(failing);
    }
    let Some(version) = id.parse::<u64>().ok().and_then(|id| versions.get(&id)) else {
        return Some(Response::json(
            404,
            &json!({ "error": format!("No model version with id {id}") }),
        ));
    };
    match &version.refusal {
        Some(Refusal::EarlyAccess { deadline }) => {
            return Some(Response::json(
                403,
                &json!({ "error": "Early Access", "deadline": deadline }),
            ));
        }
        Some(Refusal::Archived) => {
            return Some(Response::json(410, &json!({ "error": "Model archived" })));
        }
        Some(Refusal::Quota) => {
            return Some(Response::json(
                429,
                &json!({ "error": "Too many requests" }),
            ));
        }
        None => {}
    }
    if let Some((token, gate)) = &version.gate {
        let bearer = head
            .header("authorization")
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer != Some(token.as_str()) && head.query("token") != Some(token.as_str()) {
            return Some(match gate {
                Gate::Json401 => Response::json(
                    401,
                    &json!({ "error": "Unauthorized", "message": "The creator of this asset requires you to be logged in to download it" }),
                ),
                Gate::LoginPage => Response::redirect(
                    307,
                    &format!(
                        "{}/login?returnUrl=%2Fapi%2Fdownload%2Fmodels%2F{}&reason=download-auth",
                        state.main_url, version.id
                    ),
                ),
            });
        }
    }
    let file = match head.query("fileId") {
        Some(fid) => version.files.iter().find(|f| f.id.to_string() == fid),
        None => version.files.iter().find(|f| f.primary),
    };
    let Some(file) = file else {
        return Some(Response::json(404, &json!({ "error": "File not found" })));
    };
    let signature = match version.expiry {
        Some(expiry) => state.signatures.sign(expiry),
        None => "X-Amz-Expires=86400&X-Amz-Signature=0123abcd".into(),
    };
    let location = format!("{}{}?{signature}", state.cdn_url, file.cdn_path());
    Some(Response::redirect(307, &location))
}
