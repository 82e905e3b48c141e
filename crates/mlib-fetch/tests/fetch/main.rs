//! mlib-fetch against a real HTTP server on loopback (mlib-testserver): the HuggingFace and
//! Civitai protocols, a separate CDN host, and injected faults. Never the internet.

mod civitai;
mod download;
mod hf;
mod lockfile;
mod policy;
mod signed_urls;
mod support;
