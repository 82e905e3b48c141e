//! Civitai resolving: one call to the model-version API gives the files (id, name, size,
//! primary flag) and their SHA256/BLAKE3. The API is public even for files whose download
//! needs a token, so an auth problem surfaces at download time.
//!
//! `sizeKB` is bytes / 1024 as a double, which is exact (a power-of-two divisor) for any real
//! file size, so `round(sizeKB * 1024)` gives the exact size.

use mlib_manifest::Model;
use mlib_manifest::lock::{LockedFile, LockedModel};
use serde::Deserialize;

use crate::Fetcher;
use crate::client::{Failure, Follow, Reply};
use crate::error::FetchError;
use crate::names::{endpoint_url, safe_rel_path};
use crate::report::Reporter;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Version {
    model_id: Option<u64>,
    base_model: Option<String>,
    model: Option<VersionModel>,
    #[serde(default)]
    files: Vec<File>,
}

#[derive(Deserialize)]
struct VersionModel {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// What Civitai says a model version is: enough to write its manifest entry (`mlib add`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CivitaiInfo {
    pub model_id: Option<u64>,
    /// The model's name on the site.
    pub name: Option<String>,
    /// Civitai's model type (`LORA`, `Checkpoint`, `VAE`...).
    pub model_type: Option<String>,
    /// Civitai's base model (`SDXL 1.0`, `SD 1.5`, `Flux.1 D`...).
    pub base_model: Option<String>,
}

impl CivitaiInfo {
    /// The manifest type (preset folder) for Civitai's model type, where one fits.
    pub fn folder(&self) -> Option<&'static str> {
        Some(
            match self.model_type.as_deref()?.to_ascii_lowercase().as_str() {
                "lora" | "locon" | "dora" | "lycoris" => "loras",
                "checkpoint" => "checkpoints",
                "vae" => "vae",
                "controlnet" => "controlnet",
                "textualinversion" => "embeddings",
                "upscaler" => "upscale_models",
                "hypernetwork" => "hypernetworks",
                "motionmodule" => "animatediff_models",
                _ => return None,
            },
        )
    }

    /// A family name for Civitai's base model (`SDXL 1.0` → `sdxl`, `Flux.1 D` → `flux`).
    pub fn family(&self) -> Option<String> {
        let base: String = self
            .base_model
            .as_deref()?
            .to_ascii_lowercase()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        Some(
            match base.as_str() {
                b if b.starts_with("sdxl") => "sdxl",
                b if b.starts_with("sd15") || b.starts_with("sd1") => "sd15",
                b if b.starts_with("sd2") => "sd2",
                b if b.starts_with("sd3") => "sd3",
                b if b.starts_with("flux") => "flux",
                b if b.starts_with("pony") => "pony",
                b if b.starts_with("illustrious") => "illustrious",
                _ => return None,
            }
            .to_owned(),
        )
    }
}

impl Fetcher {
    /// Looks model version `version_id` up on Civitai (the network; refused offline).
    pub fn civitai_info(
        &self,
        version_id: u64,
        reporter: &dyn Reporter,
    ) -> Result<CivitaiInfo, FetchError> {
        if self.config.offline {
            return Err(FetchError::Offline {
                name: format!("civitai:@{version_id}"),
                what: format!("Civitai model version {version_id} cannot be looked up offline"),
            });
        }
        let version = fetch_version(self, version_id, reporter)?;
        Ok(CivitaiInfo {
            model_id: version.model_id,
            name: version.model.as_ref().and_then(|m| m.name.clone()),
            model_type: version.model.as_ref().and_then(|m| m.kind.clone()),
            base_model: version.base_model,
        })
    }
}

/// A file found on Civitai by its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CivitaiMatch {
    pub version_id: u64,
    pub info: CivitaiInfo,
    /// The file's name on Civitai.
    pub file_name: String,
}

/// How many hashes Civitai's batch lookup takes at once (its `by-hash/index.ts` refuses more
/// than 100).
const BATCH: usize = 100;

impl Fetcher {
    /// Looks many files up on Civitai by their sha256 at once (`POST
    /// /api/v1/model-versions/by-hash` with a JSON array of at most 100 hashes per request,
    /// answered with the versions that have a file of one of them): the matches by the
    /// lowercase sha256. Hashes Civitai does not know are absent. Refused offline.
    pub fn civitai_by_hashes(
        &self,
        sha256s: &[String],
        reporter: &dyn Reporter,
    ) -> Result<std::collections::BTreeMap<String, CivitaiMatch>, FetchError> {
        if self.config.offline {
            return Err(FetchError::Offline {
                name: format!("{} files", sha256s.len()),
                what: "Civitai cannot be asked which models files are while offline".into(),
            });
        }
        let url = endpoint_url(
            &self.config.civitai_endpoint,
            &["api", "v1", "model-versions", "by-hash"],
        )?;
        let mut found = std::collections::BTreeMap::new();
        let mut wanted: Vec<String> = sha256s.iter().map(|h| h.to_ascii_lowercase()).collect();
        wanted.sort();
        wanted.dedup();
        for chunk in wanted.chunks(BATCH) {
            // Civitai keeps hashes in upper case (and upper-cases what it is sent).
            let upper: Vec<String> = chunk.iter().map(|h| h.to_ascii_uppercase()).collect();
            let body = serde_json::to_vec(&upper).map_err(|e| FetchError::Protocol {
                url: url.to_string(),
                message: e.to_string(),
            })?;
            let label = "civitai by hash".to_owned();
            let versions: Vec<VersionWithId> =
                self.client
                    .retrying(&label, url.as_str(), &[], reporter, || {
                        let reply =
                            self.client
                                .post_json(&url, &body, self.civitai_token.as_ref())?;
                        // The API's rate limit is retried (only downloads have a quota).
                        if let Some(t) = self.client.transient_status(&reply) {
                            return Err(t);
                        }
                        if reply.status() >= 300 {
                            return Err(Failure::Fatal(FetchError::Http {
                                url: crate::secret::redact_url(reply.url.as_str()),
                                status: reply.status(),
                                detail: self.client.scrub(&reply.detail()),
                            }));
                        }
                        reply.json().map_err(Failure::Fatal)
                    })?;
            for version in versions {
                for file in &version.version.files {
                    let Some(sha256) = file.hashes.sha256.as_deref() else {
                        continue;
                    };
                    let sha256 = sha256.to_ascii_lowercase();
                    if chunk.contains(&sha256) && !found.contains_key(&sha256) {
                        found.insert(sha256, matched(version.id, &version.version, file));
                    }
                }
            }
        }
        Ok(found)
    }
}

fn matched(version_id: u64, version: &Version, file: &File) -> CivitaiMatch {
    CivitaiMatch {
        version_id,
        file_name: file.name.clone(),
        info: CivitaiInfo {
            model_id: version.model_id,
            name: version.model.as_ref().and_then(|m| m.name.clone()),
            model_type: version.model.as_ref().and_then(|m| m.kind.clone()),
            base_model: version.base_model.clone(),
        },
    }
}

#[derive(Deserialize)]
struct VersionWithId {
    id: u64,
    #[serde(flatten)]
    version: Version,
}

/// The model-version API's answer for `version_id`.
fn fetch_version(
    f: &Fetcher,
    version_id: u64,
    reporter: &dyn Reporter,
) -> Result<Version, FetchError> {
    let url = endpoint_url(
        &f.config.civitai_endpoint,
        &["api", "v1", "model-versions", &version_id.to_string()],
    )?;
    let label = format!("civitai:{version_id}");
    f.client.retrying(&label, url.as_str(), &[], reporter, || {
        let reply = f
            .client
            .send(false, &url, &[], f.civitai_token.as_ref(), Follow::All)?;
        if let Some(t) = f.client.transient_status(&reply) {
            return Err(t);
        }
        if reply.status() >= 300 {
            return Err(Failure::Fatal(status_error(f, reply, version_id)));
        }
        reply.json().map_err(Failure::Fatal)
    })
}

/// Whether an answer of Civitai's download route is worth retrying: as for any server,
/// except a 429 without `Retry-After`, which is its download quota (hours, not seconds):
/// reported at once. The API routes' 429s are retried as any server's.
pub(crate) fn transient(f: &Fetcher, reply: &Reply) -> Option<Failure> {
    if reply.status() == 429 && reply.header("retry-after").is_none() {
        return None;
    }
    f.client.transient_status(reply)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    id: u64,
    name: String,
    #[serde(rename = "sizeKB")]
    size_kb: Option<f64>,
    #[serde(default)]
    primary: bool,
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    hashes: Hashes,
}

#[derive(Deserialize, Default)]
struct Hashes {
    #[serde(rename = "SHA256")]
    sha256: Option<String>,
    #[serde(rename = "BLAKE3")]
    blake3: Option<String>,
}

pub(crate) fn resolve(
    f: &Fetcher,
    model: &Model,
    model_id: Option<u64>,
    version_id: u64,
    reporter: &dyn Reporter,
) -> Result<LockedModel, FetchError> {
    if f.config.offline {
        return Err(FetchError::Offline {
            name: model.name.clone(),
            // In the terms of the Civitai site: which model and version to look up there.
            what: match model_id {
                Some(model_id) => format!(
                    "Civitai model {model_id}, version {version_id} (civitai:{model_id}@{version_id}) is not in the lock, which pins its file id and hashes"
                ),
                None => format!(
                    "Civitai model version {version_id} is not in the lock, which pins its file id and hashes"
                ),
            },
        });
    }
    let version = fetch_version(f, version_id, reporter)?;
    let url = endpoint_url(
        &f.config.civitai_endpoint,
        &["api", "v1", "model-versions", &version_id.to_string()],
    )?;
    if let (Some(expected), Some(actual)) = (model_id, version.model_id)
        && expected != actual
    {
        return Err(FetchError::CivitaiModelMismatch {
            version_id,
            expected,
            actual,
        });
    }
    let file = pick(model, &version.files).ok_or_else(|| FetchError::CivitaiFileNotFound {
        version_id,
        wanted: model.file.clone().unwrap_or_else(|| "a model file".into()),
        available: version.files.iter().map(|f| f.name.clone()).collect(),
    })?;
    let upstream = file.hashes.sha256.as_ref().map(|h| h.to_ascii_lowercase());
    if let (Some(pinned), Some(up)) = (&model.sha256, &upstream)
        && pinned != up
    {
        return Err(FetchError::PinMismatch {
            name: model.name.clone(),
            source_name: format!("civitai version {version_id} ({})", file.name),
            algo: "sha256",
            manifest: pinned.clone(),
            upstream: up.clone(),
        });
    }
    let sha256 = upstream.or_else(|| model.sha256.clone());
    if sha256.is_none() && !f.config.allow_unpinned {
        return Err(FetchError::Unpinned {
            name: model.name.clone(),
            url: format!("civitai model version {version_id}"),
        });
    }
    let Some(size_kb) = file.size_kb else {
        return Err(FetchError::Protocol {
            url: crate::secret::redact_url(url.as_str()),
            message: format!("file {} has no sizeKB", file.name),
        });
    };
    let name = model.file.clone().unwrap_or_else(|| file.name.clone());
    let mut locked = LockedModel::for_model(model);
    locked.version_id = Some(version_id);
    locked.base_model = version.base_model;
    locked.files = vec![LockedFile {
        path: safe_rel_path(&model.name, &name)?,
        url: None,
        repo_path: None,
        file_id: Some(file.id),
        size: (size_kb * 1024.0).round() as u64,
        sha256,
        blake3: file
            .hashes
            .blake3
            .as_ref()
            .map(|h| h.to_ascii_lowercase())
            .or_else(|| model.blake3.clone()),
    }];
    Ok(locked)
}

/// The file named by the manifest's `file`, else the primary file, else the first model file.
/// (A `file` naming no file of the version is a rename of the primary file.)
fn pick<'a>(model: &Model, files: &'a [File]) -> Option<&'a File> {
    if let Some(wanted) = &model.file
        && let Some(f) = files.iter().find(|f| &f.name == wanted)
    {
        return Some(f);
    }
    files
        .iter()
        .find(|f| f.primary)
        .or_else(|| files.iter().find(|f| f.kind.as_deref() == Some("Model")))
        .or_else(|| files.first())
}

/// Maps a Civitai error answer (API or download endpoint) to a clear error.
pub(crate) fn status_error(f: &Fetcher, reply: Reply, version_id: u64) -> FetchError {
    match reply.status() {
        // Civitai's download route answers an early-access version with 403 and
        // `{"error": "Early Access", "deadline": ...}` (its api/download/models route).
        403 => {
            let body = reply.body_json();
            let early = body
                .as_ref()
                .and_then(|b| b.get("error"))
                .and_then(|e| e.as_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("early access"));
            if early {
                let deadline = body
                    .as_ref()
                    .and_then(|b| b.get("deadline"))
                    .and_then(|d| d.as_str())
                    .map(|d| f.client.scrub(d));
                return FetchError::CivitaiEarlyAccess {
                    version_id,
                    deadline,
                };
            }
            FetchError::CivitaiUnauthorized {
                version_id,
                endpoint: f.config.civitai_endpoint.clone(),
                has_token: f.civitai_token.is_some(),
            }
        }
        410 => FetchError::CivitaiArchived { version_id },
        429 => FetchError::CivitaiQuota { version_id },
        401 => FetchError::CivitaiUnauthorized {
            version_id,
            endpoint: f.config.civitai_endpoint.clone(),
            has_token: f.civitai_token.is_some(),
        },
        404 => FetchError::CivitaiNotFound { version_id },
        status => FetchError::Http {
            url: crate::secret::redact_url(reply.url.as_str()),
            status,
            detail: f.client.scrub(&reply.detail()),
        },
    }
}

#[cfg(test)]
mod info_tests {
    use super::CivitaiInfo;

    fn info(model_type: &str, base: &str) -> CivitaiInfo {
        CivitaiInfo {
            model_id: None,
            name: None,
            model_type: Some(model_type.into()),
            base_model: Some(base.into()),
        }
    }

    #[test]
    fn civitai_types_and_base_models_as_the_manifest_writes_them() {
        for (t, base, folder, family) in [
            ("LORA", "SDXL 1.0", Some("loras"), Some("sdxl")),
            ("LoCon", "SD 1.5", Some("loras"), Some("sd15")),
            ("Checkpoint", "Flux.1 D", Some("checkpoints"), Some("flux")),
            ("TextualInversion", "Pony", Some("embeddings"), Some("pony")),
            ("Workflows", "Other", None, None),
        ] {
            let i = info(t, base);
            assert_eq!(i.folder(), folder, "{t}");
            assert_eq!(i.family().as_deref(), family, "{base}");
        }
    }
}
