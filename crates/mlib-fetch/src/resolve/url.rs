//! Plain URL sources: the server publishes no hash, so the manifest must pin one (unless
//! `allow_unpinned`); a HEAD gives the size and maybe a file name. Servers that refuse HEAD
//! (presigned S3 URLs are signed for GET only) are asked for one byte instead.

use mlib_manifest::Model;
use mlib_manifest::lock::{LockedFile, LockedModel};

use crate::Fetcher;
use crate::client::{Failure, Follow, Reply};
use crate::error::FetchError;
use crate::names::{disposition_filename, safe_rel_path, url_file_name};
use crate::report::{Redacting, Reporter};
use crate::secret::redact_url;
use crate::source_url::SourceUrl;

pub(crate) fn resolve(
    f: &Fetcher,
    model: &Model,
    url_text: &str,
    reporter: &dyn Reporter,
) -> Result<LockedModel, FetchError> {
    // `${VAR}` in the URL is expanded for the requests only; the lock keeps `url_text`.
    let source = SourceUrl::expand(f, &model.name, url_text)?;
    let reporter = Redacting::new(reporter, &source.secrets);
    resolve_expanded(f, model, url_text, &source, &reporter)
        .map_err(|e| e.redacted(&source.secrets))
}

fn resolve_expanded(
    f: &Fetcher,
    model: &Model,
    url_text: &str,
    source: &SourceUrl,
    reporter: &dyn Reporter,
) -> Result<LockedModel, FetchError> {
    let url = &source.url;
    if model.sha256.is_none() && !f.config.allow_unpinned {
        return Err(FetchError::Unpinned {
            name: model.name.clone(),
            url: redact_url(url_text),
        });
    }
    if f.config.offline {
        return Err(FetchError::Offline {
            name: model.name.clone(),
            what: format!("{} is not in the lock", redact_url(url_text)),
        });
    }
    let token = source.auth.as_ref().or_else(|| f.token_for_url(url));
    let (size, disposition) =
        f.client
            .retrying(&model.name, url.as_str(), &source.secrets, reporter, || {
                let reply = f.client.send(true, url, &[], token, Follow::All)?;
                let reply = if matches!(reply.status(), 403 | 405 | 501) {
                    f.client
                        .send(false, url, &[("Range", "bytes=0-0")], token, Follow::All)?
                } else {
                    reply
                };
                if let Some(t) = f.client.transient_status(&reply) {
                    return Err(t);
                }
                if reply.status() >= 300 {
                    return Err(Failure::Fatal(FetchError::Http {
                        url: redact_url(reply.url.as_str()),
                        status: reply.status(),
                        detail: f.client.scrub(&reply.detail()),
                    }));
                }
                let size = total_size(&reply).ok_or_else(|| {
                    Failure::Fatal(FetchError::Protocol {
                        url: redact_url(reply.url.as_str()),
                        message: "the server does not say how large the file is".into(),
                    })
                })?;
                Ok((
                    size,
                    reply
                        .header("content-disposition")
                        .and_then(disposition_filename),
                ))
            })?;
    let name = model
        .file
        .clone()
        .or(disposition)
        .or_else(|| url_file_name(url))
        .unwrap_or_else(|| format!("{}.bin", model.name));
    let mut locked = LockedModel::for_model(model);
    locked.files = vec![LockedFile {
        path: safe_rel_path(&model.name, &name)?,
        url: Some(url_text.to_string()),
        repo_path: None,
        file_id: None,
        size,
        sha256: model.sha256.clone(),
        blake3: model.blake3.clone(),
    }];
    Ok(locked)
}

/// The full size from `Content-Range: bytes a-b/total` (206) or `Content-Length` (200).
pub(crate) fn total_size(reply: &Reply) -> Option<u64> {
    if reply.status() == 206 {
        return reply
            .header("content-range")
            .and_then(|v| v.rsplit('/').next())
            .and_then(|t| t.trim().parse().ok());
    }
    reply
        .header("content-length")
        .and_then(|v| v.trim().parse().ok())
}
