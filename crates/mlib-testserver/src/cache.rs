//! Writes a HuggingFace hub cache exactly as `huggingface_hub` lays it out, so cache reuse is
//! tested against the real structure: `models--{org}--{name}/blobs/{etag}`,
//! `snapshots/{commit}/{path}` as relative symlinks to the blobs, `refs/{branch}`.

use std::io;
use std::path::{Path, PathBuf};

use crate::hf::HfCommit;

/// Puts every file of `commit` (or only `only`, when given) into the cache at `hub` (the
/// `HF_HUB_CACHE` directory) and points `refs/{branch}` at it. Returns the repo's cache folder.
pub fn populate_hf_cache(
    hub: &Path,
    commit: &HfCommit,
    branch: Option<&str>,
    only: Option<&[&str]>,
) -> io::Result<PathBuf> {
    let dir = hub.join(format!("models--{}", commit.repo.replace('/', "--")));
    fs_err::create_dir_all(dir.join("blobs"))?;
    for file in &commit.files {
        if only.is_some_and(|o| !o.contains(&file.path.as_str())) {
            continue;
        }
        let etag = if file.lfs {
            &file.sha256
        } else {
            &file.git_oid
        };
        let blob = dir.join("blobs").join(etag);
        fs_err::write(&blob, file.bytes())?;
        let link = dir.join("snapshots").join(&commit.commit).join(&file.path);
        fs_err::create_dir_all(link.parent().expect("snapshot files have a parent"))?;
        let depth = file.path.matches('/').count() + 2;
        let target = format!("{}blobs/{etag}", "../".repeat(depth));
        link_or_copy(Path::new(&target), &blob, &link)?;
    }
    if let Some(branch) = branch {
        fs_err::create_dir_all(dir.join("refs"))?;
        fs_err::write(dir.join("refs").join(branch), &commit.commit)?;
    }
    Ok(dir)
}

#[cfg(unix)]
fn link_or_copy(target: &Path, _blob: &Path, link: &Path) -> io::Result<()> {
    fs_err::os::unix::fs::symlink(target, link)
}

#[cfg(not(unix))]
fn link_or_copy(_target: &Path, blob: &Path, link: &Path) -> io::Result<()> {
    fs_err::copy(blob, link).map(|_| ())
}
