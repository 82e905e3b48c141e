//! A cache of parsed manifests, so that the commands a provisioning script runs over and over
//! on an unchanged `models.yaml` do not parse and validate it again.
//!
//! Parsing is the largest single cost of a no-op plan of a big manifest (the YAML read, then
//! every check: see docs/PERFORMANCE.md), and its result depends on only three things: the
//! manifest's bytes, the path it was read from (relative paths resolve against its folder) and
//! the environment variables it expands (`${VAR}`, `~`). A cache entry records all three,
//! including the value of each variable that was looked up (or that it was unset), and is used
//! only when every one of them is the same again. Any other difference, a damaged entry, or one
//! written by another version of mlib is a miss: the manifest is parsed as if there were no
//! cache, and the entry is rewritten. Only manifests without errors are cached, so errors are
//! always reported fresh, with their places.
//!
//! One entry per manifest path (`{dir}/{sha256 of the path}.json`), replaced on every
//! change, so the cache never grows beyond one file per manifest. Only callers that change
//! things anyway write entries (`mlib apply`); `mlib plan` and the other read-only commands
//! only read them, so that they never write anything. Writing is best effort: a cache folder
//! that cannot be written only means no cache.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::debug;

use crate::error::ManifestError;
use crate::model::Manifest;

/// Bumped whenever [`Manifest`] changes shape; together with the caller's build identity
/// ([`Cache::build`]) it keeps any mlib from reading an entry another one wrote.
const FORMAT: u32 = 6;

#[derive(Serialize, Deserialize)]
struct Entry {
    format: u32,
    /// [`Cache::build`] of the mlib that wrote it.
    build: String,
    /// The absolute path the manifest was read from.
    path: PathBuf,
    /// sha256 of the manifest's bytes.
    digest: String,
    /// Every environment variable parsing looked up, with the value it had.
    env: Vec<(String, Option<String>)>,
    manifest: Manifest,
}

/// Where the cache is, and whether a miss may write.
#[derive(Debug, Clone, Copy)]
pub struct Cache<'a> {
    pub dir: &'a Path,
    /// Whether a miss writes the new entry (commands that write anyway) or only reads.
    pub update: bool,
    /// What identifies the program parsing (its version and build): an entry written by
    /// another build is a miss, since parsing or validation may have changed meaning.
    pub build: &'a str,
}

/// [`crate::parse`], answered from the cache when the same text at the same path was parsed
/// before with the same values of the variables it uses.
pub fn parse_cached(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
    cache: Cache,
) -> Result<Manifest, ManifestError> {
    let dir = cache.dir;
    let absolute = crate::absolute(path);
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let file = entry_file(dir, &absolute);
    match read_entry(&file, cache.build, &absolute, &digest, env) {
        Ok(manifest) => {
            debug!(manifest = %absolute.display(), entry = %file.display(), "manifest cache hit");
            return Ok(manifest);
        }
        Err(why) => debug!(
            manifest = %absolute.display(),
            entry = %file.display(),
            why = %why,
            "manifest cache miss: parsing"
        ),
    }
    let seen = RefCell::new(Vec::new());
    let recording = |name: &str| {
        let value = env(name);
        let mut seen = seen.borrow_mut();
        if !seen.iter().any(|(n, _)| n == name) {
            seen.push((name.to_string(), value.clone()));
        }
        value
    };
    if !cache.update {
        debug!("the cache entry is not written: only commands that write anyway (apply) do");
        return crate::parse(text, path, env);
    }
    let manifest = crate::parse(text, path, &recording)?;
    let entry = Entry {
        format: FORMAT,
        build: cache.build.to_string(),
        path: absolute,
        digest,
        env: seen.into_inner(),
        manifest,
    };
    write_entry(dir, &file, &entry);
    Ok(entry.manifest)
}

fn entry_file(dir: &Path, manifest: &Path) -> PathBuf {
    let key = Sha256::digest(manifest.as_os_str().as_encoded_bytes());
    dir.join(format!("{}.json", hex::encode(&key[..16])))
}

/// Why a cache entry was not used (for traces: names variables, never their values).
#[derive(Debug)]
enum Miss {
    NoEntry,
    Unreadable(std::io::Error),
    Damaged(serde_json::Error),
    Format(u32),
    Build,
    Path,
    Bytes,
    Variable(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::NoEntry => f.write_str("no entry for this path"),
            Miss::Unreadable(err) => write!(f, "the entry cannot be read: {err}"),
            Miss::Damaged(err) => write!(f, "the entry is damaged: {err}"),
            Miss::Format(format) => write!(f, "the entry's format is {format}, not {FORMAT}"),
            Miss::Build => f.write_str("the entry was written by another mlib build"),
            Miss::Path => f.write_str("the entry is another manifest's"),
            Miss::Bytes => f.write_str("the manifest changed"),
            Miss::Variable(name) => write!(f, "the value of ${name} changed"),
        }
    }
}

fn read_entry(
    file: &Path,
    build: &str,
    path: &Path,
    digest: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, Miss> {
    let bytes = std::fs::read(file).map_err(|err| match err.kind() {
        std::io::ErrorKind::NotFound => Miss::NoEntry,
        _ => Miss::Unreadable(err),
    })?;
    let entry: Entry = serde_json::from_slice(&bytes).map_err(Miss::Damaged)?;
    if entry.format != FORMAT {
        return Err(Miss::Format(entry.format));
    }
    if entry.build != build {
        return Err(Miss::Build);
    }
    if entry.path != path {
        return Err(Miss::Path);
    }
    if entry.digest != digest {
        return Err(Miss::Bytes);
    }
    if let Some((name, _)) = entry.env.iter().find(|(name, value)| env(name) != *value) {
        return Err(Miss::Variable(name.clone()));
    }
    Ok(entry.manifest)
}

/// Writes atomically ([`mlib_fs::write_atomic`]), so a reader never sees half an entry; what a
/// killed writer left in the folder is removed first.
fn write_entry(dir: &Path, file: &Path, entry: &Entry) {
    let Ok(json) = serde_json::to_vec(entry) else {
        return; // e.g. a path that is not UTF-8: simply not cached
    };
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| mlib_fs::temp::remove_stale(dir).map(drop))
        .and_then(|()| mlib_fs::write_atomic(file, &json));
    match written {
        Ok(()) => debug!(entry = %file.display(), "manifest cache entry written"),
        Err(err) => {
            debug!(entry = %file.display(), error = %err, "manifest cache entry not written")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "version: 1\nstore: ${STORE}\nmodels:\n  a:\n    source: ./a.safetensors\n    type: loras\n";

    fn env_with(store: &'static str) -> impl Fn(&str) -> Option<String> {
        move |name: &str| (name == "STORE").then(|| store.to_string())
    }

    fn rw(dir: &Path) -> Cache<'_> {
        Cache {
            dir,
            update: true,
            build: "test 1",
        }
    }

    fn only_entry(dir: &Path) -> PathBuf {
        let files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files.into_iter().next().unwrap()
    }

    #[test]
    fn a_hit_returns_what_parsing_returned_and_reads_no_yaml() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, path) = (tmp.path().join("cache"), tmp.path().join("models.yaml"));
        let parsed = parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        assert_eq!(parsed, crate::parse(TEXT, &path, &env_with("/s1")).unwrap());
        // Swap the cached store for a marker: a hit must return the entry, not a new parse.
        let file = only_entry(&cache);
        let mut entry: Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        // HOME too: whether the store is the home folder depends on it.
        assert_eq!(
            entry.env,
            vec![
                ("STORE".to_string(), Some("/s1".to_string())),
                ("HOME".to_string(), None)
            ]
        );
        entry.manifest.store = PathBuf::from("/from-cache");
        std::fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
        let again = parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        assert_eq!(again.store, PathBuf::from("/from-cache"));
    }

    #[test]
    fn a_changed_variable_text_or_path_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, path) = (tmp.path().join("cache"), tmp.path().join("models.yaml"));
        parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        let other_env = parse_cached(TEXT, &path, &env_with("/s2"), rw(&cache)).unwrap();
        assert_eq!(other_env.store, PathBuf::from("/s2"));
        let edited = TEXT.replace("a.safetensors", "b.safetensors");
        let other_text = parse_cached(&edited, &path, &env_with("/s2"), rw(&cache)).unwrap();
        assert!(
            other_text.models["a"]
                .source
                .to_string()
                .ends_with("b.safetensors")
        );
        let elsewhere = tmp.path().join("sub").join("models.yaml");
        let other_path = parse_cached(TEXT, &elsewhere, &env_with("/s2"), rw(&cache)).unwrap();
        assert_eq!(other_path.path, elsewhere);
        // One entry per manifest path, whatever was parsed before.
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
    }

    #[test]
    fn errors_are_not_cached_and_a_damaged_entry_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, path) = (tmp.path().join("cache"), tmp.path().join("models.yaml"));
        let bad = TEXT.replace("type: loras", "type: loras\n    colour: red");
        assert!(parse_cached(&bad, &path, &env_with("/s1"), rw(&cache)).is_err());
        assert!(!cache.exists());
        parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        std::fs::write(only_entry(&cache), b"{not json").unwrap();
        let parsed = parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        assert_eq!(parsed.store, PathBuf::from("/s1"));
        // The damaged entry was replaced by a good one.
        let text = std::fs::read_to_string(only_entry(&cache)).unwrap();
        assert!(text.contains("\"/s1\""), "{text}");
    }

    #[test]
    fn a_read_only_cache_is_used_but_never_written() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, path) = (tmp.path().join("cache"), tmp.path().join("models.yaml"));
        let read_only = Cache {
            dir: &cache,
            update: false,
            build: "test 1",
        };
        parse_cached(TEXT, &path, &env_with("/s1"), read_only).unwrap();
        assert!(!cache.exists());
        parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        let file = only_entry(&cache);
        let mut entry: Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        entry.manifest.store = PathBuf::from("/from-cache");
        std::fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
        let hit = parse_cached(TEXT, &path, &env_with("/s1"), read_only).unwrap();
        assert_eq!(hit.store, PathBuf::from("/from-cache"));
        let miss = parse_cached(TEXT, &path, &env_with("/s2"), read_only).unwrap();
        assert_eq!(miss.store, PathBuf::from("/s2"));
        let entry: Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(
            entry.manifest.store,
            PathBuf::from("/from-cache"),
            "not rewritten"
        );
    }

    #[test]
    fn another_build_is_a_miss() {
        let tmp = tempfile::tempdir().unwrap();
        let (cache, path) = (tmp.path().join("cache"), tmp.path().join("models.yaml"));
        parse_cached(TEXT, &path, &env_with("/s1"), rw(&cache)).unwrap();
        let file = only_entry(&cache);
        let mut entry: Entry = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        entry.manifest.store = PathBuf::from("/from-cache");
        std::fs::write(&file, serde_json::to_vec(&entry).unwrap()).unwrap();
        let other = Cache {
            build: "test 2",
            ..rw(&cache)
        };
        let parsed = parse_cached(TEXT, &path, &env_with("/s1"), other).unwrap();
        assert_eq!(parsed.store, PathBuf::from("/s1"));
    }

    /// Every field name a cached manifest can hold. When this fails, `Manifest` (or a type
    /// in it) changed shape: bump [`FORMAT`] so no mlib reads an entry with another meaning,
    /// then update the list.
    #[test]
    fn the_cached_shape_is_the_one_format_names() {
        let text = "version: 1\nstore: ./s\nmodels:\n  a:\n    source: hf://org/repo/a.safetensors\n    revision: main\n    sha256: 0000000000000000000000000000000000000000000000000000000000000000\n    type: loras\n    family: sdxl\n    tags: [x]\n    file: b.safetensors\n    requires:\n      comfyui: '>=0.3'\n  c:\n    source: civitai:1@2\n    type: loras\n  d:\n    source: ./d\n    type: diffusers\n    include: ['*.json']\n    exclude: ['*.bin']\n  e:\n    source: https://example.com/e.safetensors\n    type: vae\napps:\n  comfyui:\n    preset: comfyui\n    root: ./c\n    version: 0.3.40\n    link: symlink\n    models: [a]\n    folders:\n      loras: models/loras\n";
        let manifest = crate::parse(text, Path::new("/p/models.yaml"), &|_| None).unwrap();
        fn keys(value: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    for (k, v) in map {
                        // Model and app names are data, not shape.
                        if !["a", "c", "d", "e", "comfyui", "loras"].contains(&k.as_str()) {
                            out.insert(k.clone());
                        }
                        keys(v, out);
                    }
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
                _ => {}
            }
        }
        let mut found = std::collections::BTreeSet::new();
        keys(&serde_json::to_value(&manifest).unwrap(), &mut found);
        let expected = [
            "Civitai",
            "HuggingFace",
            "Local",
            "Names",
            "Url",
            "apps",
            "blake3",
            "container",
            "digest",
            "dir",
            "environment",
            "exclude",
            "family",
            "file",
            "folders",
            "identity_vars",
            "include",
            "layout",
            "link",
            "link_folders",
            "mirrors",
            "model_id",
            "model_type",
            "models",
            "name",
            "path",
            "preset",
            "repo",
            "requires",
            "revision",
            "root",
            "sha256",
            "source",
            "state",
            "store",
            "tags",
            "version",
            "version_id",
        ];
        assert_eq!(
            found.iter().map(String::as_str).collect::<Vec<_>>(),
            expected,
            "Manifest changed shape: bump cache::FORMAT, then update this list"
        );
        assert_eq!(FORMAT, 6);
        // And what is read back is what was written.
        let json = serde_json::to_vec(&manifest).unwrap();
        assert_eq!(serde_json::from_slice::<Manifest>(&json).unwrap(), manifest);
    }

    #[test]
    fn an_unreadable_cache_folder_only_means_no_cache() {
        let tmp = tempfile::tempdir().unwrap();
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, b"").unwrap();
        let path = tmp.path().join("models.yaml");
        let parsed =
            parse_cached(TEXT, &path, &env_with("/s1"), rw(&blocker.join("cache"))).unwrap();
        assert_eq!(parsed.store, PathBuf::from("/s1"));
    }
}
