//! A real HTTP/1.1 server on loopback for mlib's tests: static blobs with ranges and faults,
//! the HuggingFace Hub and Civitai protocols, and a second "CDN" host that both redirect to.
//!
//! Why a real server rather than mocks: the download engine's hard parts (redirects across
//! hosts, dropping `Authorization`, resuming with `Range` + `If-Range`, retrying on 503, cut
//! connections) only show up on a socket. The CDN listens on `127.0.0.2` (Linux routes all of
//! 127.0.0.0/8 to `lo`) so a redirect to it really changes host; where that address cannot be
//! bound the CDN is reached as `localhost` instead, still a different host from `127.0.0.1`.
//!
//! Std-only (threads + `TcpListener`): tests start one per test, in milliseconds.
//!
//! ```no_run
//! use mlib_testserver::{Blob, TestServer};
//! let server = TestServer::start();
//! let url = server.add_blob("/files/a.bin", vec![7u8; 1024]);
//! let commit = server.hf_repo("org/model").lfs("model.safetensors", vec![1u8; 4096]).publish();
//! server.set_faults(&commit.file("model.safetensors").cdn_path(), Default::default());
//! assert!(server.requests().is_empty());
//! # let _ = (url, Blob::new(vec![]));
//! ```

mod blob;
mod cache;
mod civitai;
mod hf;
mod http;
mod log;
mod signed;

use std::collections::{BTreeMap, HashMap};
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use blob::{Blob, Credential, Faults};
pub use cache::populate_hf_cache;
pub use civitai::{CivitaiFile, CivitaiVersion, Gate, Refusal};
pub use hf::{HfCommit, HfFile, HfRepoBuilder};
pub use log::Request;
pub use signed::Expiry;

use blob::Served;
use http::{After, Response};

/// State shared by both listeners and every connection thread.
pub(crate) struct State {
    blobs: Mutex<HashMap<String, Arc<Served>>>,
    hf: Mutex<BTreeMap<String, hf::RepoState>>,
    civitai: Mutex<BTreeMap<u64, CivitaiVersion>>,
    /// Path on the main host → where it redirects (302).
    redirects: Mutex<HashMap<String, String>>,
    log: Mutex<Vec<log::Entry>>,
    main_url: String,
    cdn_url: String,
    stop: AtomicBool,
    /// `resolve` answers as the Hub does since 2025: 307 to a relative
    /// `/api/resolve-cache/models/...` on the hub host, which then redirects to the CDN.
    hf_resolve_cache: AtomicBool,
    /// How many more Civitai API requests (`/api/v1/...`) are answered 429 without
    /// `Retry-After`, as a busy API does.
    civitai_api_busy: std::sync::atomic::AtomicU32,
    /// The storage URLs the Civitai download endpoint signed.
    signatures: signed::Signatures,
    /// How many more download-endpoint requests are answered normally before every one
    /// fails with the status (`None`: never fails).
    civitai_download_failing: Mutex<Option<(u32, u16)>>,
}

impl State {
    fn put_blob(&self, path: &str, blob: Blob) {
        self.blobs
            .lock()
            .unwrap()
            .insert(path.to_string(), Arc::new(Served::new(blob)));
    }
}

/// Two listeners (main and CDN) sharing one state; stops when dropped.
pub struct TestServer {
    state: Arc<State>,
    addrs: [SocketAddr; 2],
    threads: Vec<JoinHandle<()>>,
}

impl TestServer {
    /// Binds the main host on `127.0.0.1` and the CDN on `127.0.0.2` (ports chosen by the OS).
    pub fn start() -> TestServer {
        let main = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let (cdn, cdn_host) = match TcpListener::bind("127.0.0.2:0") {
            Ok(l) => (l, "127.0.0.2"),
            Err(_) => (TcpListener::bind("127.0.0.1:0").expect("bind"), "localhost"),
        };
        let (main_addr, cdn_addr) = (main.local_addr().unwrap(), cdn.local_addr().unwrap());
        let state = Arc::new(State {
            blobs: Mutex::default(),
            hf: Mutex::default(),
            civitai: Mutex::default(),
            redirects: Mutex::default(),
            log: Mutex::default(),
            main_url: format!("http://{main_addr}"),
            cdn_url: format!("http://{cdn_host}:{}", cdn_addr.port()),
            stop: AtomicBool::new(false),
            hf_resolve_cache: AtomicBool::new(false),
            civitai_api_busy: std::sync::atomic::AtomicU32::new(0),
            signatures: signed::Signatures::default(),
            civitai_download_failing: Mutex::new(None),
        });
        let threads = [(main, false), (cdn, true)]
            .into_iter()
            .map(|(listener, is_cdn)| {
                let state = state.clone();
                std::thread::spawn(move || accept_loop(listener, is_cdn, state))
            })
            .collect();
        TestServer {
            state,
            addrs: [main_addr, cdn_addr],
            threads,
        }
    }

    /// `http://127.0.0.1:PORT`: the API host (use as `HF_ENDPOINT` / `CIVITAI_ENDPOINT`).
    pub fn url(&self) -> String {
        self.state.main_url.clone()
    }

    /// `http://127.0.0.2:PORT`: the CDN host redirects point to.
    pub fn cdn_url(&self) -> String {
        self.state.cdn_url.clone()
    }

    /// Serves `bytes` at `path` on the main host; returns the full URL.
    pub fn add_blob(&self, path: &str, bytes: impl Into<Vec<u8>>) -> String {
        self.add(path, Blob::new(bytes))
    }

    /// Serves `blob` at `path` (on the CDN host when `path` starts with `/cdn/`, else the main
    /// host), replacing any blob there; returns the full URL.
    pub fn add(&self, path: &str, blob: Blob) -> String {
        assert!(path.starts_with('/'), "blob paths start with /");
        self.state.put_blob(path, blob);
        let base = if path.starts_with("/cdn/") {
            &self.state.cdn_url
        } else {
            &self.state.main_url
        };
        format!("{base}{path}")
    }

    /// Answers requests for `path` on the main host with a 302 to `location` (a full URL, e.g.
    /// a blob on the CDN host); returns the full URL of `path`.
    pub fn add_redirect(&self, path: &str, location: &str) -> String {
        assert!(path.starts_with('/'), "redirect paths start with /");
        let mut redirects = self.state.redirects.lock().unwrap();
        redirects.insert(path.to_string(), location.to_string());
        format!("{}{path}", self.state.main_url)
    }

    /// Replaces the faults of the blob at `path` and resets its fault counters.
    pub fn set_faults(&self, path: &str, faults: Faults) {
        let mut blobs = self.state.blobs.lock().unwrap();
        let served = blobs
            .get(path)
            .unwrap_or_else(|| panic!("no blob at {path}"));
        let blob = served.blob.clone().faults(faults);
        blobs.insert(path.to_string(), Arc::new(Served::new(blob)));
    }

    /// Makes `resolve` of LFS files go through the Hub's relative `/api/resolve-cache/` hop
    /// (the `X-Repo-Commit`/`X-Linked-*` headers on the first answer only).
    pub fn hf_resolve_cache(&self, on: bool) {
        self.state.hf_resolve_cache.store(on, Ordering::SeqCst);
    }

    /// Answers the next `n` Civitai API requests with 429 and no `Retry-After`.
    pub fn civitai_api_busy(&self, n: u32) {
        self.state.civitai_api_busy.store(n, Ordering::SeqCst);
    }

    /// After `ok` more answers, Civitai's download endpoint answers every request with
    /// `status` (a 5xx: the endpoint down while a download needs a new storage URL).
    pub fn civitai_download_fails_after(&self, ok: u32, status: u16) {
        *self.state.civitai_download_failing.lock().unwrap() = Some((ok, status));
    }

    /// Civitai's download endpoint answers normally again.
    pub fn civitai_download_recovers(&self) {
        *self.state.civitai_download_failing.lock().unwrap() = None;
    }

    /// Starts a commit of a HuggingFace repo (`org/name`).
    pub fn hf_repo(&self, repo: &str) -> HfRepoBuilder<'_> {
        HfRepoBuilder::new(self, repo)
    }

    /// Registers a Civitai model version and serves its files from the CDN.
    pub fn civitai_version(&self, version: CivitaiVersion) {
        for (path, blob) in version.blobs() {
            self.state.put_blob(&path, blob);
        }
        self.state
            .civitai
            .lock()
            .unwrap()
            .insert(version.id, version);
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        let log = self.state.log.lock().unwrap();
        log.iter().map(log::Entry::snapshot).collect()
    }

    pub fn clear_requests(&self) {
        self.state.log.lock().unwrap().clear();
    }

    /// Body bytes sent for requests whose path (without query) is `path`.
    pub fn bytes_sent(&self, path: &str) -> u64 {
        self.requests()
            .iter()
            .filter(|r| r.path_only() == path)
            .map(|r| r.bytes_sent)
            .sum()
    }

    /// Body bytes sent for every request.
    pub fn total_bytes_sent(&self) -> u64 {
        self.requests().iter().map(|r| r.bytes_sent).sum()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for addr in self.addrs {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn accept_loop(listener: TcpListener, is_cdn: bool, state: Arc<State>) {
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = serve_connection(stream, is_cdn, &state);
        });
    }
}

fn serve_connection(stream: TcpStream, is_cdn: bool, state: &State) -> std::io::Result<()> {
    // Idle keep-alive connections end on their own, so no thread outlives a test for long.
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let _ = stream.set_nodelay(true);
    let host = stream.local_addr()?.to_string();
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    while let Some(head) = http::read_head(&mut reader)? {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let resp = route(state, &head, is_cdn);
        let sent = Arc::new(AtomicU64::new(0));
        state.log.lock().unwrap().push(log::Entry {
            request: Request {
                method: head.method.clone(),
                path: head.target.clone(),
                host: host.clone(),
                cdn: is_cdn,
                headers: head.headers.clone(),
                status: resp.status,
                bytes_sent: 0,
                at: Instant::now(),
            },
            sent: sent.clone(),
        });
        match http::write_response(&mut writer, &head, resp, &sent)? {
            After::KeepAlive => {}
            After::Close => break,
        }
    }
    Ok(())
}

fn route(state: &State, head: &http::Head, is_cdn: bool) -> Response {
    if head.method.eq_ignore_ascii_case("POST") && !is_cdn {
        return civitai::route_post(state, head)
            .unwrap_or_else(|| Response::text(405, "text/plain", "method not allowed\n"));
    }
    if !head.is_head() && !head.method.eq_ignore_ascii_case("GET") {
        return Response::text(405, "text/plain", "method not allowed\n");
    }
    let path = head.path();
    if !is_cdn && let Some(location) = state.redirects.lock().unwrap().get(path) {
        return Response::redirect(302, location);
    }
    if path.starts_with("/cdn/") == is_cdn {
        let served = state.blobs.lock().unwrap().get(path).cloned();
        if let Some(served) = served {
            return state.signatures.serve(head, &served);
        }
    }
    if !is_cdn {
        if let Some(resp) = hf::route(state, head) {
            return resp;
        }
        if let Some(resp) = civitai::route(state, head) {
            return resp;
        }
    }
    Response::text(404, "text/plain", "not found\n")
}
