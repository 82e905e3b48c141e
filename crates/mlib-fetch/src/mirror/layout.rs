//! How objects are named under a mirror's address (`s3://bucket/prefix`, `https://host/prefix`).
//!
//! ```text
//! {prefix}/sha256/{64 hex}        a file's bytes, named by their sha256 (immutable)
//! {prefix}/models/{64 hex}.json   a model index: the files of one locked model with their
//!                                 hashes, named by the sha256 of the model's identity
//! ```
//!
//! Bytes are named by content, so one object serves every manifest, model name and app that
//! wants those bytes, and pushing twice uploads nothing. The index exists for what the lock
//! cannot say: a file whose sha256 no server published (a diffusers folder's small JSON
//! files on HuggingFace, a URL allowed unpinned) is found through the index of its model,
//! whose name depends only on where the model comes from (repository and commit, Civitai
//! version, URL, and the include/exclude/file selection), never on the manifest's model name.

use mlib_manifest::lock::LockedModel;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The folder of content-addressed blobs.
pub const BLOBS: &str = "sha256";
/// The folder of model indexes.
pub const INDEXES: &str = "models";
/// The index format this mlib writes and reads.
pub const INDEX_FORMAT: u32 = 1;

/// The object name of the bytes whose sha256 is `sha256` (64 lower-case hex digits), relative
/// to the mirror's prefix.
pub fn blob_key(sha256: &str) -> String {
    format!("{BLOBS}/{sha256}")
}

/// The object name of `locked`'s index, relative to the mirror's prefix.
pub fn index_key(locked: &LockedModel) -> String {
    format!("{INDEXES}/{}.json", model_id(locked))
}

/// The sha256 of what identifies a locked model's bytes: its source and what was selected of
/// it, with the resolved commit (not the branch, which moves) and each file's origin. Sizes
/// and hashes are left out: they are what the index tells.
pub fn model_id(locked: &LockedModel) -> String {
    let files: Vec<serde_json::Value> = locked
        .files
        .iter()
        .map(|f| {
            serde_json::json!({
                "path": f.path,
                "url": f.url,
                "repo_path": f.repo_path,
                "file_id": f.file_id,
            })
        })
        .collect();
    let identity = serde_json::json!({
        "source": locked.source,
        "repo": locked.repo,
        "commit": locked.commit,
        "version_id": locked.version_id,
        "include": locked.include,
        "exclude": locked.exclude,
        "file": locked.file,
        "files": files,
    });
    hex::encode(Sha256::digest(identity.to_string().as_bytes()))
}

/// Whether `key` (relative to the prefix) names a blob, and its sha256 if so.
pub fn blob_sha256(key: &str) -> Option<&str> {
    let hex = key.strip_prefix(BLOBS)?.strip_prefix('/')?;
    is_sha256(hex).then_some(hex)
}

pub fn is_sha256(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A model index object: what `mlib mirror push` learned about one locked model from the
/// store (every file's size and hashes), so a manifest whose lock lacks a hash can still be
/// served by the mirror, and `mlib mirror ls` can say which model an object belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelIndex {
    /// [`INDEX_FORMAT`].
    pub format: u32,
    /// The locked source, as the lock spells it (`hf://org/repo`, `civitai:1@2`, a URL with its
    /// `${VAR}`s unexpanded: never a credential).
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The model name in the manifest that pushed it (informational: other manifests may call
    /// it something else).
    pub pushed_as: String,
    pub files: Vec<IndexedFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexedFile {
    /// The file's path inside the model, as in the lock.
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

impl ModelIndex {
    /// Reads an index object; `None` when it is not one this mlib understands (a newer
    /// format, or garbage): the mirror is then simply not used for that model.
    pub fn parse(bytes: &[u8]) -> Option<ModelIndex> {
        let index: ModelIndex = serde_json::from_slice(bytes).ok()?;
        let sound =
            index.format == INDEX_FORMAT && index.files.iter().all(|f| is_sha256(&f.sha256));
        sound.then_some(index)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("an index serializes")
    }

    /// The file at `path`, if the index has it.
    pub fn file(&self, path: &str) -> Option<&IndexedFile> {
        self.files.iter().find(|f| f.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locked(commit: &str) -> LockedModel {
        let mut m = LockedModel::for_url("https://h/x.safetensors", "x.safetensors", 5, None);
        m.commit = Some(commit.into());
        m
    }

    #[test]
    fn blobs_are_named_by_sha256() {
        let sha = "a".repeat(64);
        assert_eq!(blob_key(&sha), format!("sha256/{sha}"));
        assert_eq!(blob_sha256(&blob_key(&sha)), Some(sha.as_str()));
        assert_eq!(blob_sha256("sha256/abc"), None);
        assert_eq!(blob_sha256(&format!("models/{sha}")), None);
        assert_eq!(blob_sha256(&format!("sha256/{}", "A".repeat(64))), None);
    }

    #[test]
    fn the_index_name_follows_the_source_not_the_hashes() {
        let a = locked("c1");
        let mut hashed = a.clone();
        hashed.files[0].sha256 = Some("b".repeat(64));
        hashed.files[0].size = 6;
        hashed.revision = Some("main".into());
        // What the lock learns later (hashes, sizes, the branch asked for) keeps the name.
        assert_eq!(index_key(&a), index_key(&hashed));
        // Another commit or another selection is another model.
        assert_ne!(index_key(&a), index_key(&locked("c2")));
        let mut selected = a.clone();
        selected.include = vec!["*.json".into()];
        assert_ne!(index_key(&a), index_key(&selected));
        let key = index_key(&a);
        assert!(key.starts_with("models/") && key.ends_with(".json") && key.len() == 7 + 64 + 5);
    }

    #[test]
    fn indexes_round_trip_and_refuse_what_they_cannot_read() {
        let index = ModelIndex {
            format: INDEX_FORMAT,
            source: "hf://org/repo".into(),
            commit: Some("c1".into()),
            pushed_as: "pipe".into(),
            files: vec![IndexedFile {
                path: "unet/config.json".into(),
                size: 3,
                sha256: "c".repeat(64),
                blake3: "d".repeat(64),
            }],
        };
        let back = ModelIndex::parse(&index.to_json()).unwrap();
        assert_eq!(back, index);
        assert_eq!(back.file("unet/config.json").unwrap().size, 3);
        assert!(back.file("other").is_none());
        let mut newer = index.clone();
        newer.format = 2;
        assert!(ModelIndex::parse(&newer.to_json()).is_none());
        let mut bad = index;
        bad.files[0].sha256 = "../../etc".into();
        assert!(ModelIndex::parse(&bad.to_json()).is_none());
        assert!(ModelIndex::parse(b"<html>").is_none());
    }
}
