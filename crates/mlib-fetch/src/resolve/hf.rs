//! HuggingFace resolving. A single file is one `HEAD .../resolve/{revision}/{path}` that is not
//! followed to the CDN: its first answer carries the commit (`X-Repo-Commit`), the LFS sha256
//! (`X-Linked-Etag`) and size (`X-Linked-Size`). A folder or whole repo is one revision API
//! call listing every file with sizes and LFS hashes. Small non-LFS files have no sha256
//! anywhere; their hash is computed on first download and recorded in the lock.

use mlib_manifest::Model;
use mlib_manifest::lock::{LockedFile, LockedModel};
use serde::Deserialize;

use crate::Fetcher;
use crate::client::{Failure, Follow, Reply};
use crate::error::FetchError;
use crate::hfcache;
use crate::names::{endpoint_url, endpoint_url_with_path, safe_rel_path, sha256_from_etag};
use crate::report::Reporter;
use crate::resolve::Filter;

/// What the first answer of a `resolve` HEAD says about one file.
struct Head {
    commit: String,
    sha256: Option<String>,
    size: u64,
}

pub(crate) fn resolve(
    f: &Fetcher,
    model: &Model,
    repo: &str,
    path: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<LockedModel, FetchError> {
    let revision = model.revision.as_deref().unwrap_or("main");
    if f.config.offline {
        return offline(f, model, repo, path, revision);
    }
    if let Some(p) = path {
        match head(f, repo, revision, p, reporter) {
            Ok(h) => return single(model, repo, p, h.commit, h.size, h.sha256),
            // Maybe a folder: the listing below says for sure.
            Err(FetchError::EntryNotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    folder(f, model, repo, revision, path, reporter)
}

fn split_repo(repo: &str) -> Vec<&str> {
    repo.split('/').collect()
}

fn head(
    f: &Fetcher,
    repo: &str,
    revision: &str,
    path: &str,
    reporter: &dyn Reporter,
) -> Result<Head, FetchError> {
    let mut segs = split_repo(repo);
    segs.extend(["resolve", revision]);
    let url = endpoint_url_with_path(&f.config.hf_endpoint, &segs, path)?;
    let label = format!("hf://{repo}/{path}");
    f.client.retrying(&label, url.as_str(), &[], reporter, || {
        let reply = f
            .client
            .send(true, &url, &[], f.hf_token.as_ref(), Follow::HubResolve)?;
        if let Some(t) = f.client.transient_status(&reply) {
            return Err(t);
        }
        if reply.header("x-error-code").is_some() || reply.status() >= 400 {
            return Err(Failure::Fatal(status_error(
                f,
                reply,
                repo,
                Some(path),
                revision,
            )));
        }
        let Some(commit) = reply.header("x-repo-commit").map(str::to_string) else {
            return Err(protocol(
                &reply,
                "no X-Repo-Commit header: is HF_ENDPOINT a HuggingFace hub?",
            ));
        };
        let sha256 = reply.header("x-linked-etag").and_then(sha256_from_etag);
        let size = reply
            .header("x-linked-size")
            .or_else(|| {
                (reply.status() < 300)
                    .then(|| reply.header("content-length"))
                    .flatten()
            })
            .and_then(|v| v.trim().parse().ok());
        let Some(size) = size else {
            return Err(protocol(
                &reply,
                "no X-Linked-Size or Content-Length header",
            ));
        };
        Ok(Head {
            commit,
            sha256,
            size,
        })
    })
}

fn protocol(reply: &Reply, message: &str) -> Failure {
    Failure::Fatal(FetchError::Protocol {
        url: crate::secret::redact_url(reply.url.as_str()),
        message: message.into(),
    })
}

/// Maps an HF error answer (`X-Error-Code`, else the status) to a clear error.
pub(crate) fn status_error(
    f: &Fetcher,
    reply: Reply,
    repo: &str,
    path: Option<&str>,
    revision: &str,
) -> FetchError {
    let has_token = f.hf_token.is_some();
    let code = reply.header("x-error-code").map(str::to_string);
    let status = reply.status();
    match code.as_deref() {
        Some("GatedRepo") => FetchError::GatedRepo {
            repo: repo.into(),
            endpoint: f.config.hf_endpoint.clone(),
            has_token,
        },
        Some("RepoNotFound") => FetchError::RepoNotFound {
            repo: repo.into(),
            has_token,
        },
        Some("EntryNotFound") => FetchError::EntryNotFound {
            repo: repo.into(),
            path: path.unwrap_or("(the folder)").into(),
            revision: revision.into(),
        },
        Some("RevisionNotFound") => FetchError::RevisionNotFound {
            repo: repo.into(),
            revision: revision.into(),
        },
        _ if status == 401 => FetchError::RepoNotFound {
            repo: repo.into(),
            has_token,
        },
        _ => FetchError::Http {
            url: crate::secret::redact_url(reply.url.as_str()),
            status,
            detail: f.client.scrub(&reply.detail()),
        },
    }
}

fn single(
    model: &Model,
    repo: &str,
    repo_path: &str,
    commit: String,
    size: u64,
    upstream_sha256: Option<String>,
) -> Result<LockedModel, FetchError> {
    let file_name = model.file.clone().unwrap_or_else(|| {
        repo_path
            .rsplit('/')
            .next()
            .unwrap_or(repo_path)
            .to_string()
    });
    let rel = safe_rel_path(&model.name, &file_name)?;
    if let (Some(pinned), Some(upstream)) = (&model.sha256, &upstream_sha256)
        && pinned != upstream
    {
        return Err(FetchError::PinMismatch {
            name: model.name.clone(),
            source_name: format!("hf://{repo}/{repo_path}@{commit}"),
            algo: "sha256",
            manifest: pinned.clone(),
            upstream: upstream.clone(),
        });
    }
    let mut locked = LockedModel::for_model(model);
    locked.repo = Some(repo.into());
    locked.commit = Some(commit);
    locked.files = vec![LockedFile {
        path: rel,
        url: None,
        repo_path: Some(repo_path.into()),
        file_id: None,
        size,
        sha256: upstream_sha256.or_else(|| model.sha256.clone()),
        blake3: model.blake3.clone(),
    }];
    Ok(locked)
}

#[derive(Deserialize)]
struct RepoInfo {
    sha: Option<String>,
    #[serde(default)]
    siblings: Vec<Sibling>,
    #[serde(default)]
    gated: serde_json::Value,
}

#[derive(Deserialize)]
struct Sibling {
    rfilename: String,
    size: Option<u64>,
    lfs: Option<Lfs>,
}

#[derive(Deserialize)]
struct Lfs {
    sha256: Option<String>,
    size: Option<u64>,
}

/// A listed file selected for the model: path in the repo, size, sha256 if published.
type Selected = (String, u64, Option<String>);

fn folder(
    f: &Fetcher,
    model: &Model,
    repo: &str,
    revision: &str,
    path: Option<&str>,
    reporter: &dyn Reporter,
) -> Result<LockedModel, FetchError> {
    let mut segs = vec!["api", "models"];
    segs.extend(split_repo(repo));
    segs.extend(["revision", revision]);
    let mut url = endpoint_url(&f.config.hf_endpoint, &segs)?;
    url.set_query(Some("blobs=true"));
    let label = format!("hf://{repo}");
    let info: RepoInfo = f.client.retrying(&label, url.as_str(), &[], reporter, || {
        let reply = f
            .client
            .send(false, &url, &[], f.hf_token.as_ref(), Follow::SameOrigin)?;
        if let Some(t) = f.client.transient_status(&reply) {
            return Err(t);
        }
        if reply.status() >= 300 {
            return Err(Failure::Fatal(status_error(f, reply, repo, path, revision)));
        }
        reply.json().map_err(Failure::Fatal)
    })?;
    let commit = match info.sha {
        Some(sha) => sha,
        None => {
            return Err(FetchError::Protocol {
                url: crate::secret::redact_url(url.as_str()),
                message: "the revision answer has no `sha`".into(),
            });
        }
    };
    let files = info
        .siblings
        .into_iter()
        .map(|s| {
            let size = s.lfs.as_ref().and_then(|l| l.size).or(s.size);
            let sha = s.lfs.and_then(|l| l.sha256).map(|h| h.to_ascii_lowercase());
            (s.rfilename, size, sha)
        })
        .collect::<Vec<_>>();
    let mut selected = Vec::new();
    for (repo_path, size, sha) in files {
        let Some(size) = size else {
            return Err(FetchError::Protocol {
                url: crate::secret::redact_url(url.as_str()),
                message: format!("no size for {repo_path} (does the hub support ?blobs=true?)"),
            });
        };
        selected.push((repo_path, size, sha));
    }
    let locked = select(model, repo, path, revision, commit, selected)?;
    let gated = !matches!(
        info.gated,
        serde_json::Value::Null | serde_json::Value::Bool(false)
    );
    if gated && let Some(first) = locked.files.first().and_then(|f| f.repo_path.clone()) {
        // Listing a gated repo is public; downloading is not. Find out now, not mid-apply.
        head(f, repo, revision, &first, reporter)?;
    }
    Ok(locked)
}

/// Keeps the files under `path` that pass the globs, as entries of one folder named after the
/// model's `file`, the source folder or the repo.
fn select(
    model: &Model,
    repo: &str,
    path: Option<&str>,
    revision: &str,
    commit: String,
    files: Vec<Selected>,
) -> Result<LockedModel, FetchError> {
    let filter = Filter::new(model)?;
    let prefix = path.map(|p| format!("{}/", p.trim_end_matches('/')));
    let entry = model.file.clone().unwrap_or_else(|| {
        let base = path.unwrap_or(repo).trim_end_matches('/');
        base.rsplit('/').next().unwrap_or(base).to_string()
    });
    let mut any_under = false;
    let mut out = Vec::new();
    for (repo_path, size, sha256) in files {
        let rel = match &prefix {
            Some(p) => match repo_path.strip_prefix(p.as_str()) {
                Some(rel) => rel.to_string(),
                None => continue,
            },
            None => repo_path.clone(),
        };
        any_under = true;
        if !filter.accepts(&rel) {
            continue;
        }
        out.push(LockedFile {
            path: safe_rel_path(&model.name, &format!("{entry}/{rel}"))?,
            url: None,
            repo_path: Some(repo_path),
            file_id: None,
            size,
            sha256,
            blake3: None,
        });
    }
    if let (Some(p), false) = (path, any_under) {
        return Err(FetchError::EntryNotFound {
            repo: repo.into(),
            path: p.into(),
            revision: revision.into(),
        });
    }
    if out.is_empty() {
        return Err(FetchError::NoFiles {
            name: model.name.clone(),
            source_name: model.source.to_string(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    let mut locked = LockedModel::for_model(model);
    locked.repo = Some(repo.into());
    locked.commit = Some(commit);
    locked.files = out;
    Ok(locked)
}

/// Resolves from the HuggingFace cache alone (offline mode).
fn offline(
    f: &Fetcher,
    model: &Model,
    repo: &str,
    path: Option<&str>,
    revision: &str,
) -> Result<LockedModel, FetchError> {
    let offline = |what: String| FetchError::Offline {
        name: model.name.clone(),
        what,
    };
    let Some(cache) = f.config.hf_cache.as_deref() else {
        return Err(offline(format!(
            "hf://{repo} is not locked and no HuggingFace cache is configured (HF_HUB_CACHE / HF_HOME)"
        )));
    };
    let commit = hfcache::commit_for(cache, repo, revision).ok_or_else(|| {
        offline(format!(
            "revision {revision} of {repo} is not in the HuggingFace cache ({})",
            cache.display()
        ))
    })?;
    let listed = hfcache::list(cache, repo, &commit, path.unwrap_or("")).unwrap_or_default();
    if let (Some(p), [only]) = (path, listed.as_slice())
        && only.repo_path == p
    {
        return single(model, repo, p, commit, only.size, only.sha256.clone());
    }
    if listed.is_empty() {
        return Err(offline(format!(
            "hf://{repo}/{} at {commit} is not in the HuggingFace cache ({})",
            path.unwrap_or(""),
            cache.display()
        )));
    }
    let files = listed
        .into_iter()
        .map(|c| (c.repo_path, c.size, c.sha256))
        .collect();
    select(model, repo, path, revision, commit, files)
}
