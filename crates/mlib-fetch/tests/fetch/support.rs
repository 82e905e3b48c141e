//! Shared helpers: a fetcher pointed at the test server, models, deterministic bytes, and a
//! reporter that records what it was told.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use mlib_fetch::{FetchConfig, Fetcher, Reporter, Secret};
use mlib_manifest::{Model, Source};
use mlib_testserver::TestServer;
use sha2::{Digest, Sha256};

pub const HF_TOKEN: &str = "hf_SECRETtoken123";
pub const CIVITAI_TOKEN: &str = "civ_SECRETkey456";

/// Fast retries and both tokens set, both services on the server's main host.
pub fn config(server: &TestServer) -> FetchConfig {
    FetchConfig {
        hf_endpoint: server.url(),
        civitai_endpoint: server.url(),
        hf_token: Some(Secret::new(HF_TOKEN)),
        civitai_token: Some(Secret::new(CIVITAI_TOKEN)),
        retries: 3,
        backoff_base: Duration::from_millis(1),
        backoff_max: Duration::from_millis(10),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        ..FetchConfig::default()
    }
}

pub fn fetcher(server: &TestServer) -> Fetcher {
    Fetcher::new(config(server))
}

pub fn model(name: &str, source: Source) -> Model {
    Model {
        name: name.into(),
        source,
        revision: None,
        sha256: None,
        blake3: None,
        model_type: "checkpoints".into(),
        family: None,
        include: vec![],
        exclude: vec![],
        tags: vec![],
        file: None,
        requires: Default::default(),
    }
}

pub fn hf(repo: &str, path: Option<&str>) -> Source {
    Source::HuggingFace {
        repo: repo.into(),
        path: path.map(str::to_string),
    }
}

/// `n` pseudo-random bytes (incompressible, and never mistaken for HTML or JSON).
pub fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(n);
    out[0] = 0x00;
    out
}

pub fn sha256(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Files left in a staging directory.
pub fn staged_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs_err::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Records reporter calls.
#[derive(Default)]
pub struct Events {
    pub lines: Mutex<Vec<String>>,
    pub advanced: Mutex<HashMap<u64, u64>>,
}

impl Events {
    pub fn retries(&self) -> Vec<String> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .filter(|l| l.starts_with("retry"))
            .cloned()
            .collect()
    }

    pub fn all(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }
}

impl Reporter for Events {
    fn start(&self, id: u64, label: &str, total: Option<u64>) {
        self.advanced.lock().unwrap().insert(id, 0);
        self.lines
            .lock()
            .unwrap()
            .push(format!("start {id} {label} {total:?}"));
    }
    fn advance(&self, id: u64, bytes: u64) {
        *self.advanced.lock().unwrap().entry(id).or_default() += bytes;
    }
    fn finish(&self, id: u64) {
        self.lines.lock().unwrap().push(format!("finish {id}"));
    }
    fn retry(&self, label: &str, attempt: u32, reason: &str) {
        self.lines
            .lock()
            .unwrap()
            .push(format!("retry {label} {attempt} {reason}"));
    }
    fn note(&self, id: u64, message: &str) {
        self.lines
            .lock()
            .unwrap()
            .push(format!("note {id} {message}"));
    }
}
