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
    #[serde(default)]
    files: Vec<File>,
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
    let url = endpoint_url(
        &f.config.civitai_endpoint,
        &["api", "v1", "model-versions", &version_id.to_string()],
    )?;
    let label = format!("civitai:{version_id}");
    let version: Version = f.client.retrying(&label, url.as_str(), &[], reporter, || {
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
    })?;
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
        401 | 403 => FetchError::CivitaiUnauthorized {
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
