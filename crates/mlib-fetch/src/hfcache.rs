//! Reading the HuggingFace hub cache (`$HF_HUB_CACHE`), which pods often already have: a blob
//! found there costs a local copy instead of a download, and offline mode can resolve a
//! revision from it.
//!
//! Layout (written by `huggingface_hub`): `models--{org}--{name}/blobs/{etag}` (the sha256 for
//! LFS files), `snapshots/{commit}/{path}` (relative symlinks to blobs, or copies where
//! symlinks are unavailable), `refs/{revision}` holding a commit sha. Nothing here trusts the
//! cache blindly: the caller checks size and hashes while copying.

use std::path::{Path, PathBuf};

/// Where a file of the HuggingFace cache came from: enough to write its `hf://` source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheOrigin {
    /// `org/name`.
    pub repo: String,
    /// The snapshot's commit.
    pub commit: String,
    /// The file's path inside the repo.
    pub repo_path: String,
    /// The LFS oid (the sha256) when the snapshot entry links to a blob named by one.
    pub sha256: Option<String>,
}

/// The repo, commit and path of `path` when it is a snapshot entry of a HuggingFace cache
/// (`.../models--{org}--{name}/snapshots/{commit}/{path}`), read from the path alone: no
/// network, no cache variable needed.
pub fn origin_of(path: &Path) -> Option<CacheOrigin> {
    let parts: Vec<String> = path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    // The first `models--*/snapshots/<commit>` from the front: a repo may hold a folder
    // named `snapshots` itself.
    let at = (1..parts.len()).find(|&i| {
        parts[i] == "snapshots"
            && parts[i - 1].starts_with("models--")
            && parts
                .get(i + 1)
                .is_some_and(|c| c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()))
    })?;
    if parts.iter().any(|p| p == ".." || p == ".") {
        return None;
    }
    let repo = parts.get(at.checked_sub(1)?)?.strip_prefix("models--")?;
    // `huggingface_hub` joins the repo id with `--`; an owner never holds `--`.
    let (org, name) = repo.split_once("--")?;
    let commit = parts.get(at + 1)?;
    let is_commit = commit.len() == 40 && commit.bytes().all(|b| b.is_ascii_hexdigit());
    let rest = parts.get(at + 2..).filter(|rest| !rest.is_empty())?;
    if !is_commit || org.is_empty() || name.is_empty() {
        return None;
    }
    let root: PathBuf = parts[..at + 2].iter().collect();
    let sha256 = cached_file(&root, path).and_then(|f| f.sha256);
    Some(CacheOrigin {
        repo: format!("{org}/{name}"),
        commit: commit.to_ascii_lowercase(),
        repo_path: rest.join("/"),
        sha256,
    })
}

/// The cache folder of a repo.
pub(crate) fn repo_dir(cache: &Path, repo: &str) -> PathBuf {
    cache.join(format!("models--{}", repo.replace('/', "--")))
}

/// A cached copy of one file of `repo` at `commit`: the blob named by its sha256 when known,
/// else the snapshot entry (whose content the commit pins).
pub(crate) fn find(
    cache: &Path,
    repo: &str,
    commit: &str,
    repo_path: &str,
    sha256: Option<&str>,
) -> Option<PathBuf> {
    let dir = repo_dir(cache, repo);
    if let Some(sha) = sha256 {
        let blob = dir.join("blobs").join(sha);
        if blob.is_file() {
            return Some(blob);
        }
    }
    let snap = dir.join("snapshots").join(commit).join(repo_path);
    snap.is_file().then_some(snap)
}

/// The commit a revision points to in the cache (a full sha is its own commit).
pub(crate) fn commit_for(cache: &Path, repo: &str, revision: &str) -> Option<String> {
    if revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(revision.to_ascii_lowercase());
    }
    let text = fs_err::read_to_string(repo_dir(cache, repo).join("refs").join(revision)).ok()?;
    Some(text.trim().to_string()).filter(|c| !c.is_empty())
}

/// One file of a cached snapshot.
pub(crate) struct CachedFile {
    /// Path inside the repo.
    pub repo_path: String,
    pub size: u64,
    /// From the blob's name, when the snapshot entry is a link to an LFS blob.
    pub sha256: Option<String>,
}

/// Files of the snapshot `commit` under `prefix` (the whole snapshot when empty); `None`
/// when the snapshot is not cached.
pub(crate) fn list(
    cache: &Path,
    repo: &str,
    commit: &str,
    prefix: &str,
) -> Option<Vec<CachedFile>> {
    let root = repo_dir(cache, repo).join("snapshots").join(commit);
    if !root.is_dir() {
        return None;
    }
    let start = if prefix.is_empty() {
        root.clone()
    } else {
        root.join(prefix)
    };
    let mut out = Vec::new();
    let mut stack = vec![start];
    while let Some(dir) = stack.pop() {
        if dir.is_file() {
            out.push(cached_file(&root, &dir)?);
            continue;
        }
        let Ok(entries) = fs_err::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.is_file() {
                out.push(cached_file(&root, &path)?);
            }
        }
    }
    out.sort_by(|a, b| a.repo_path.cmp(&b.repo_path));
    Some(out)
}

fn cached_file(root: &Path, path: &Path) -> Option<CachedFile> {
    let rel = path.strip_prefix(root).ok()?;
    let repo_path = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    let size = fs_err::metadata(path).ok()?.len();
    let sha256 = fs_err::read_link(path)
        .ok()
        .and_then(|target| target.file_name().map(|n| n.to_string_lossy().into_owned()))
        .and_then(|name| crate::names::sha256_from_etag(&name));
    Some(CachedFile {
        repo_path,
        size,
        sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_entry_tells_its_repo_commit_path_and_lfs_oid() {
        let tmp = tempfile::tempdir().unwrap();
        let commit = "a".repeat(40);
        let oid = "b".repeat(64);
        let repo = tmp.path().join("hub/models--stabilityai--sdxl-vae");
        let snap = repo.join("snapshots").join(&commit);
        std::fs::create_dir_all(snap.join("vae")).unwrap();
        std::fs::create_dir_all(repo.join("blobs")).unwrap();
        std::fs::write(repo.join("blobs").join(&oid), "weights").unwrap();
        std::fs::write(repo.join("blobs").join("c".repeat(40)), "{}").unwrap();
        let entry = snap.join("vae/diffusion_pytorch_model.safetensors");
        std::os::unix::fs::symlink(format!("../../../blobs/{oid}"), &entry).unwrap();
        let small = snap.join("config.json");
        std::os::unix::fs::symlink(format!("../../blobs/{}", "c".repeat(40)), &small).unwrap();

        let origin = origin_of(&entry).unwrap();
        assert_eq!(origin.repo, "stabilityai/sdxl-vae");
        assert_eq!(origin.commit, commit);
        assert_eq!(origin.repo_path, "vae/diffusion_pytorch_model.safetensors");
        assert_eq!(origin.sha256, Some(oid));
        assert_eq!(
            origin_of(&small).unwrap().sha256,
            None,
            "a git sha1 is no sha256"
        );
        // A repo folder named `snapshots` is part of the file's path.
        let inner = snap.join("snapshots/x.safetensors");
        assert_eq!(
            origin_of(&inner).unwrap().repo_path,
            "snapshots/x.safetensors"
        );
        assert_eq!(origin_of(&snap.join("vae/../vae/x.safetensors")), None);
        for not in [
            tmp.path().join("hub/models--x--y/snapshots/main/file"),
            tmp.path()
                .join(format!("hub/datasets--x--y/snapshots/{commit}/file")),
            snap.clone(),
            tmp.path().join("downloads/x.safetensors"),
        ] {
            assert_eq!(origin_of(&not), None, "{}", not.display());
        }
    }
}
