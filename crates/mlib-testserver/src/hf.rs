//! The HuggingFace Hub as mlib sees it: `resolve` (302 to the CDN for LFS files with
//! `X-Repo-Commit`, `X-Linked-Etag`, `X-Linked-Size`; 200 with the bytes for small files), the
//! revision API with siblings, and the `X-Error-Code` errors (gated, repo, entry, revision).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::TestServer;
use crate::blob::Blob;
use crate::http::{Head, Response};

/// One file of a published commit.
#[derive(Clone, Debug)]
pub struct HfFile {
    /// Path inside the repo.
    pub path: String,
    pub size: u64,
    /// sha256 of the content (what `X-Linked-Etag` carries for LFS files).
    pub sha256: String,
    pub blake3: String,
    /// The fake git oid sent as `ETag` for small (non-LFS) files.
    pub git_oid: String,
    /// Stored in LFS (served from the CDN) rather than inline.
    pub lfs: bool,
    pub(crate) data: Arc<[u8]>,
}

impl HfFile {
    /// Where the CDN serves an LFS file (use with [`TestServer::set_faults`]).
    pub fn cdn_path(&self) -> String {
        format!("/cdn/hf/{}", self.sha256)
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

/// What [`HfRepoBuilder::publish`] created.
#[derive(Clone, Debug)]
pub struct HfCommit {
    pub repo: String,
    pub commit: String,
    pub files: Vec<HfFile>,
}

impl HfCommit {
    /// The file at `path`; panics (it is a test helper) when there is none.
    pub fn file(&self, path: &str) -> &HfFile {
        self.files
            .iter()
            .find(|f| f.path == path)
            .unwrap_or_else(|| panic!("no file {path} in commit {}", self.commit))
    }
}

#[derive(Default)]
pub(crate) struct RepoState {
    token: Option<String>,
    refs: BTreeMap<String, String>,
    commits: BTreeMap<String, BTreeMap<String, HfFile>>,
}

/// Builds one commit of a repo; see [`TestServer::hf_repo`].
#[must_use = "call .publish()"]
pub struct HfRepoBuilder<'a> {
    server: &'a TestServer,
    repo: String,
    files: Vec<(String, Vec<u8>, bool)>,
    refs: Vec<String>,
    token: Option<String>,
}

impl<'a> HfRepoBuilder<'a> {
    pub(crate) fn new(server: &'a TestServer, repo: &str) -> Self {
        HfRepoBuilder {
            server,
            repo: repo.to_string(),
            files: Vec::new(),
            refs: Vec::new(),
            token: None,
        }
    }

    /// An LFS file: resolve answers 302 to the CDN with its sha256.
    pub fn lfs(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), bytes.into(), true));
        self
    }

    /// A small file stored in git: resolve answers 200 with the bytes; no sha256 anywhere.
    pub fn small(mut self, path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        self.files.push((path.to_string(), bytes.into(), false));
        self
    }

    /// Points this branch or tag at the new commit (default: `main`).
    pub fn branch(mut self, name: &str) -> Self {
        self.refs.push(name.to_string());
        self
    }

    /// Gates the repo: requests need `Authorization: Bearer {token}`.
    pub fn gated(mut self, token: &str) -> Self {
        self.token = Some(token.to_string());
        self
    }

    /// Creates the commit (replacing nothing: older commits stay reachable by sha).
    pub fn publish(self) -> HfCommit {
        let state = &self.server.state;
        let mut repos = state.hf.lock().unwrap();
        let repo = repos.entry(self.repo.clone()).or_default();
        if self.token.is_some() {
            repo.token = self.token.clone();
        }
        let mut digest = Sha256::new();
        digest.update(self.repo.as_bytes());
        digest.update(repo.commits.len().to_le_bytes());
        let mut files = BTreeMap::new();
        for (path, bytes, lfs) in self.files {
            let sha256 = hex::encode(Sha256::digest(&bytes));
            digest.update(path.as_bytes());
            digest.update(sha256.as_bytes());
            let file = HfFile {
                path: path.clone(),
                size: bytes.len() as u64,
                blake3: blake3::hash(&bytes).to_hex().to_string(),
                git_oid: hex::encode(Sha256::digest([b"blob\0", &bytes[..]].concat()))[..40]
                    .to_string(),
                sha256,
                lfs,
                data: bytes.into(),
            };
            if lfs {
                let blob = Blob::new(file.data.to_vec());
                state.put_blob(&file.cdn_path(), blob);
            }
            files.insert(path, file);
        }
        let commit = hex::encode(digest.finalize())[..40].to_string();
        let refs = if self.refs.is_empty() {
            vec!["main".to_string()]
        } else {
            self.refs
        };
        for r in refs {
            repo.refs.insert(r, commit.clone());
        }
        repo.commits.insert(commit.clone(), files.clone());
        HfCommit {
            repo: self.repo,
            commit,
            files: files.into_values().collect(),
        }
    }
}

fn error(status: u16, code: &str, message: &str) -> Response {
    Response::json(status, &json!({ "error": message }))
        .header("X-Error-Code", code)
        .header("X-Error-Message", message)
}

/// Looks up repo + revision, applying the gate; the error response otherwise.
fn lookup<'r>(
    repos: &'r BTreeMap<String, RepoState>,
    head: &Head,
    repo: &str,
    rev: &str,
) -> Result<(String, &'r BTreeMap<String, HfFile>), Response> {
    let auth = head.header("authorization");
    let Some(state) = repos.get(repo) else {
        let status = if auth.is_some() { 404 } else { 401 };
        return Err(error(status, "RepoNotFound", "Repository not found"));
    };
    if let Some(token) = &state.token
        && auth != Some(format!("Bearer {token}").as_str())
    {
        let status = if auth.is_some() { 403 } else { 401 };
        let msg = format!(
            "Access to model {repo} is restricted. You must have access to it and be authenticated to access it. Please log in."
        );
        return Err(error(status, "GatedRepo", &msg));
    }
    let commit = state
        .refs
        .get(rev)
        .cloned()
        .or_else(|| state.commits.contains_key(rev).then(|| rev.to_string()));
    let Some(commit) = commit else {
        return Err(error(
            404,
            "RevisionNotFound",
            &format!("Invalid rev id: {rev}"),
        ));
    };
    Ok((commit.clone(), &state.commits[&commit]))
}

/// Serves HF routes on the main host; `None` when the path is not an HF one.
pub(crate) fn route(server: &crate::State, head: &Head) -> Option<Response> {
    let path = head.path();
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            percent_encoding::percent_decode_str(seg)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let repos = server.hf.lock().unwrap();
    // The second hop of a resolve: straight to the CDN, none of the Hub's headers.
    if segs.len() >= 7 && segs[0] == "api" && segs[1] == "resolve-cache" && segs[2] == "models" {
        let repo = format!("{}/{}", segs[3], segs[4]);
        let file_path = segs[6..].join("/");
        let found = lookup(&repos, head, &repo, &segs[5])
            .ok()
            .and_then(|(_, files)| files.get(&file_path));
        return Some(match found {
            Some(file) => {
                Response::redirect(302, &format!("{}{}", server.cdn_url, file.cdn_path()))
            }
            None => error(
                404,
                "EntryNotFound",
                &format!("Entry not found: {file_path}"),
            ),
        });
    }
    if segs.len() >= 6 && segs[0] == "api" && segs[1] == "models" && segs[4] == "revision" {
        let repo = format!("{}/{}", segs[2], segs[3]);
        let rev = segs[5..].join("/");
        return Some(match lookup(&repos, head, &repo, &rev) {
            Err(resp) => resp,
            Ok((commit, files)) => revision_json(&repo, &commit, files),
        });
    }
    if segs.len() >= 5 && segs[2] == "resolve" {
        let repo = format!("{}/{}", segs[0], segs[1]);
        let rev = &segs[3];
        let file_path = segs[4..].join("/");
        let (commit, files) = match lookup(&repos, head, &repo, rev) {
            Ok(found) => found,
            Err(resp) => return Some(resp),
        };
        let Some(file) = files.get(&file_path) else {
            return Some(
                error(
                    404,
                    "EntryNotFound",
                    &format!("Entry not found: {file_path}"),
                )
                .header("X-Repo-Commit", &commit),
            );
        };
        let resp = if file.lfs && server.hf_resolve_cache.load(Ordering::SeqCst) {
            Response::redirect(
                307,
                &format!("/api/resolve-cache/models/{repo}/{commit}/{file_path}"),
            )
            .header("X-Linked-Etag", format!("\"{}\"", file.sha256))
            .header("X-Linked-Size", file.size.to_string())
        } else if file.lfs {
            Response::redirect(302, &format!("{}{}", server.cdn_url, file.cdn_path()))
                .header("X-Linked-Etag", format!("\"{}\"", file.sha256))
                .header("X-Linked-Size", file.size.to_string())
                .header("ETag", format!("\"{}\"", file.sha256))
        } else {
            Response::new(200)
                .header("Content-Type", "text/plain; charset=utf-8")
                .header("ETag", format!("\"{}\"", file.git_oid))
                .header("Accept-Ranges", "bytes")
                .body(file.data.to_vec())
        };
        return Some(resp.header("X-Repo-Commit", &commit));
    }
    None
}

fn revision_json(repo: &str, commit: &str, files: &BTreeMap<String, HfFile>) -> Response {
    let siblings: Vec<_> = files
        .values()
        .map(|f| {
            let mut s = json!({ "rfilename": f.path, "size": f.size, "blobId": f.git_oid });
            if f.lfs {
                s["lfs"] = json!({ "sha256": f.sha256, "size": f.size, "pointerSize": 134 });
            }
            s
        })
        .collect();
    Response::json(
        200,
        &json!({ "id": repo, "modelId": repo, "sha": commit, "private": false, "siblings": siblings }),
    )
}
