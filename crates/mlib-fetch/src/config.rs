//! Fetch settings, read from the same environment variables `huggingface_hub` and Civitai
//! tools use, so a pod that already works with them needs no extra configuration.
//!
//! The environment is passed as a callback (not read from the process) so the CLI can layer
//! flags over it and tests run with a fixed, cleared environment.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::secret::Secret;

/// Everything a [`crate::Fetcher`] needs to know. Build with [`FetchConfig::from_env`] and
/// override fields (flags win over the environment).
#[derive(Debug, Clone)]
pub struct FetchConfig {
    /// `HF_ENDPOINT`, no trailing slash.
    pub hf_endpoint: String,
    /// `HF_TOKEN`, else `HUGGING_FACE_HUB_TOKEN`, else the file `$HF_HOME/token`.
    pub hf_token: Option<Secret>,
    /// The hub cache (`HF_HUB_CACHE`, `$HF_HOME/hub`, `~/.cache/huggingface/hub`), if known.
    pub hf_cache: Option<PathBuf>,
    /// `CIVITAI_ENDPOINT`, no trailing slash.
    pub civitai_endpoint: String,
    /// `CIVITAI_TOKEN`.
    pub civitai_token: Option<Secret>,
    /// Never touch the network (`HF_HUB_OFFLINE=1` or `--offline`).
    pub offline: bool,
    /// Allow plain `http://` to non-loopback hosts (loopback is always allowed).
    pub allow_http: bool,
    /// Allow `https://` sources without a sha256 in the manifest.
    pub allow_unpinned: bool,
    /// Files downloaded at once, across all `fetch` calls on one `Fetcher`.
    pub jobs: usize,
    /// Consecutive failed attempts tolerated per request (a download that makes progress
    /// starts counting again).
    pub retries: u32,
    /// First backoff delay; doubled per attempt, with jitter, up to `backoff_max`.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Cap on a server's `Retry-After`.
    pub max_retry_after: Duration,
    pub connect_timeout: Duration,
    /// A read that stalls longer than this fails the attempt (and is retried).
    pub read_timeout: Duration,
    /// Files at least this large may be downloaded in parallel ranges: they start as one
    /// stream, and move to ranges if that connection is slow (`slow_stream_rate`).
    pub parallel_threshold: u64,
    /// A large file's single connection slower than this (bytes per second), while the
    /// download waits on the network, moves the rest of the file to parallel ranges; 0: never.
    ///
    /// Default 200 MiB/s. Parallel ranges are what make CDNs fast: they cap each connection
    /// far below that (HuggingFace's and Civitai's typically give one connection tens of
    /// MiB/s), so several connections multiply the rate. A LAN mirror or a local server gives
    /// one connection more than that, and there ranges only cost: every chunk is written and
    /// then read back to be hashed in order, ~1.2 s of CPU per 2 GiB (docs/PERFORMANCE.md).
    pub slow_stream_rate: u64,
    /// How long a large file's stream runs before its rate is judged (and then each further
    /// window). `Duration::ZERO`: no single stream, parallel ranges from the start.
    pub stream_probe: Duration,
    /// Size of each range.
    pub chunk_size: u64,
    /// Ranges downloaded at once per file.
    pub range_jobs: usize,
    /// Write sequential downloads (and copies out of the HuggingFace cache) with direct I/O
    /// (`O_DIRECT`, Linux) where the filesystem allows it, bypassing the page cache (see
    /// `mlib_fs::direct`). `MLIB_DIRECT_IO=0` turns it off.
    pub direct_io: bool,
    pub user_agent: String,
    /// Where `${VAR}` in a URL source's user info and query values is looked up, when (and
    /// only when) a request is made. None are set by default; the CLI passes the process
    /// environment.
    pub variables: Variables,
    /// Mirrors tried, in order, after the store and the HuggingFace cache and before each
    /// origin (the manifest's `mirrors:` or `MLIB_MIRRORS`; the CLI decides which).
    pub mirrors: Vec<mlib_manifest::MirrorUrl>,
    /// What `s3://` mirrors are reached with: the `AWS_*` variables and profiles.
    pub aws: crate::mirror::AwsSettings,
}

/// The environment URL sources' `${VAR}` references are read from (see
/// [`FetchConfig::variables`]). Its values are credentials: they are never printed.
#[derive(Clone)]
pub struct Variables(Arc<Lookup>);

type Lookup = dyn Fn(&str) -> Option<String> + Send + Sync;

impl Variables {
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Variables {
        Variables(Arc::new(lookup))
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }
}

impl Default for Variables {
    fn default() -> Variables {
        Variables::new(|_| None)
    }
}

impl fmt::Debug for Variables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Variables")
    }
}

impl Default for FetchConfig {
    fn default() -> FetchConfig {
        FetchConfig {
            hf_endpoint: "https://huggingface.co".into(),
            hf_token: None,
            hf_cache: None,
            civitai_endpoint: "https://civitai.com".into(),
            civitai_token: None,
            offline: false,
            allow_http: false,
            allow_unpinned: false,
            jobs: 4,
            retries: 5,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(20),
            read_timeout: Duration::from_secs(60),
            parallel_threshold: 256 << 20,
            chunk_size: 64 << 20,
            range_jobs: 4,
            slow_stream_rate: 200 << 20,
            stream_probe: Duration::from_secs(1),
            direct_io: true,
            user_agent: format!("mlib/{}", env!("CARGO_PKG_VERSION")),
            variables: Variables::default(),
            mirrors: Vec::new(),
            aws: crate::mirror::AwsSettings::default(),
        }
    }
}

impl FetchConfig {
    /// `MLIB_DIRECT_IO`: on unless `0`, `false`, `no` or `off` (the store's copies follow it
    /// too, so the CLI reads it here for both).
    pub fn direct_io_from_env(env: &dyn Fn(&str) -> Option<String>) -> bool {
        env("MLIB_DIRECT_IO")
            .filter(|v| !v.trim().is_empty())
            .is_none_or(|v| !falsy(&v))
    }

    /// Reads `HF_ENDPOINT`, `HF_TOKEN`, `HUGGING_FACE_HUB_TOKEN`, `HF_HOME`, `HF_HUB_CACHE`,
    /// `HF_HUB_OFFLINE`, `CIVITAI_ENDPOINT`, `CIVITAI_TOKEN` (plus `HOME`/`USERPROFILE` and
    /// `XDG_CACHE_HOME` for the default locations) and `MLIB_DIRECT_IO` (`0`, `false`, `no`
    /// or `off` turn direct I/O off). Empty values count as unset.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> FetchConfig {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let home = get("HOME")
            .or_else(|| get("USERPROFILE"))
            .map(PathBuf::from);
        let cache_home = get("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".cache")));
        let hf_home = get("HF_HOME")
            .map(PathBuf::from)
            .or_else(|| cache_home.map(|c| c.join("huggingface")));
        let hf_token = get("HF_TOKEN")
            .or_else(|| get("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = hf_home.as_ref()?.join("token");
                let text = fs_err::read_to_string(path).ok()?;
                Some(text.trim().to_string()).filter(|t| !t.is_empty())
            })
            .map(|t| Secret::new(t.trim()));
        let hf_cache = get("HF_HUB_CACHE")
            .map(PathBuf::from)
            .or_else(|| hf_home.map(|h| h.join("hub")));
        let defaults = FetchConfig::default();
        FetchConfig {
            hf_endpoint: get("HF_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or(defaults.hf_endpoint.clone()),
            hf_token,
            hf_cache,
            civitai_endpoint: get("CIVITAI_ENDPOINT")
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or(defaults.civitai_endpoint.clone()),
            civitai_token: get("CIVITAI_TOKEN").map(|t| Secret::new(t.trim())),
            offline: get("HF_HUB_OFFLINE").is_some_and(|v| truthy(&v)),
            direct_io: FetchConfig::direct_io_from_env(env),
            aws: crate::mirror::AwsSettings::from_env(env),
            ..defaults
        }
    }
}

/// `huggingface_hub`'s reading of boolean variables.
fn truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// The values that turn a default-on switch off.
fn falsy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> FetchConfig {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        FetchConfig::from_env(&|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_without_environment() {
        let c = config(&[]);
        assert_eq!(c.hf_endpoint, "https://huggingface.co");
        assert_eq!(c.civitai_endpoint, "https://civitai.com");
        assert!(c.hf_token.is_none() && c.hf_cache.is_none() && !c.offline);
        assert!(c.direct_io);
        let c = config(&[("HOME", "/home/u")]);
        assert_eq!(
            c.hf_cache,
            Some(PathBuf::from("/home/u/.cache/huggingface/hub"))
        );
    }

    #[test]
    fn token_precedence_and_locations() {
        let dir = tempfile::tempdir().unwrap();
        let hf_home = dir.path().to_str().unwrap();
        fs_err::write(dir.path().join("token"), "hf_file\n").unwrap();
        let c = config(&[("HF_HOME", hf_home)]);
        assert_eq!(c.hf_token.unwrap().expose(), "hf_file");
        assert_eq!(c.hf_cache, Some(dir.path().join("hub")));
        let c = config(&[("HF_HOME", hf_home), ("HUGGING_FACE_HUB_TOKEN", "hf_old")]);
        assert_eq!(c.hf_token.unwrap().expose(), "hf_old");
        let c = config(&[
            ("HF_HOME", hf_home),
            ("HUGGING_FACE_HUB_TOKEN", "hf_old"),
            ("HF_TOKEN", "hf_new"),
            ("HF_HUB_CACHE", "/cache"),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", "http://mirror/"),
            ("CIVITAI_ENDPOINT", "http://civ/"),
            ("CIVITAI_TOKEN", "c"),
        ]);
        assert_eq!(c.hf_token.unwrap().expose(), "hf_new");
        assert_eq!(c.hf_cache, Some(PathBuf::from("/cache")));
        assert!(c.offline);
        assert_eq!(c.hf_endpoint, "http://mirror");
        assert_eq!(c.civitai_endpoint, "http://civ");
        assert_eq!(c.civitai_token.unwrap().expose(), "c");
        assert!(!config(&[("HF_HUB_OFFLINE", "0")]).offline);
        assert!(!config(&[("MLIB_DIRECT_IO", "0")]).direct_io);
        assert!(!config(&[("MLIB_DIRECT_IO", "off")]).direct_io);
        assert!(config(&[("MLIB_DIRECT_IO", "1")]).direct_io);
        let debug = format!(
            "{:?}",
            config(&[("HF_TOKEN", "hf_x"), ("CIVITAI_TOKEN", "c_y")])
        );
        assert!(!debug.contains("hf_x") && !debug.contains("c_y"), "{debug}");
    }
}
