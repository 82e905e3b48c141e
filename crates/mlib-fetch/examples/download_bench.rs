//! Download throughput on loopback, against `curl -o` to the same disk.
//!
//! ```text
//! cargo run --release -p mlib-fetch --example download_bench -- serve 2048
//!     # prints: URL SIZE SHA256, then serves until killed
//! cargo run --release -p mlib-fetch --example download_bench -- get URL SIZE SHA256 DIR [ranges]
//!     # prints seconds, MB/s and peak RSS of this (client) process
//! ```
//!
//! Server and client are separate processes so the client's peak RSS is its own.

use std::path::PathBuf;
use std::time::Instant;

use mlib_fetch::{FetchConfig, Fetcher, NoReporter};
use mlib_manifest::lock::LockedModel;
use mlib_testserver::{Blob, TestServer};
use sha2::{Digest, Sha256};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("serve") => serve(args[1].parse().expect("size in MiB")),
        Some("get") => get(&args[1..]),
        _ => eprintln!("usage: download_bench serve MIB | get URL SIZE SHA256 DIR [ranges]"),
    }
}

fn serve(mib: usize) {
    // A random MiB repeated: hashing cost does not depend on the content.
    let mut block = vec![0u8; 1 << 20];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for chunk in block.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    let mut data = Vec::with_capacity(mib << 20);
    for _ in 0..mib {
        data.extend_from_slice(&block);
    }
    let sha = hex::encode(Sha256::digest(&data));
    let size = data.len();
    let server = TestServer::start();
    let url = server.add("/bench.safetensors", Blob::new(data));
    println!("{url} {size} {sha}");
    loop {
        std::thread::park();
        let _ = &server;
    }
}

fn get(args: &[String]) {
    let (url, size, sha, dir) = (&args[0], args[1].parse().unwrap(), &args[2], &args[3]);
    let ranges = args.get(4).is_some_and(|a| a == "ranges");
    let locked = LockedModel::for_url(url, "bench.safetensors", size, Some(sha.clone()));
    // `ranges`: parallel ranges from the first byte (no probe of one stream first); else one
    // stream that never switches.
    let f = Fetcher::new(FetchConfig {
        parallel_threshold: if ranges { 0 } else { u64::MAX },
        stream_probe: if ranges {
            std::time::Duration::ZERO
        } else {
            FetchConfig::default().stream_probe
        },
        ..FetchConfig::default()
    });
    let staging = PathBuf::from(dir);
    let start = Instant::now();
    let staged = f
        .fetch("bench", &locked, &staging, &NoReporter)
        .expect("download");
    let secs = start.elapsed().as_secs_f64();
    let rss = fs_err::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        })
        .unwrap_or_else(|| "?".into());
    println!(
        "{} {:.2} s {:.0} MB/s peak RSS {rss} kB",
        if ranges { "ranges" } else { "stream" },
        secs,
        size as f64 / secs / 1e6
    );
    fs_err::remove_file(&staged[0].staged).unwrap();
}
