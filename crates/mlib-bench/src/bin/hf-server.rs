//! Serves one file as a HuggingFace repo, for `bench/hf`: the project's test server (the Hub's
//! `resolve` with `X-Repo-Commit`/`X-Linked-*` headers and a 302 to a CDN host), so `hf download`
//! and `mlib apply` fetch the same bytes over the same protocol from 127.0.0.1.
//!
//! `hf-server FILE REPO PATH` prints the endpoint (`http://127.0.0.1:PORT`, for `HF_ENDPOINT`)
//! on its first line, then the commit, and serves until stdin closes.

use std::io::{BufRead, Write};

use mlib_testserver::TestServer;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, repo, path] = args.as_slice() else {
        return Err("usage: hf-server FILE REPO PATH".into());
    };
    let bytes = std::fs::read(file)?;
    let server = TestServer::start();
    let commit = server.hf_repo(repo).lfs(path, bytes).publish();
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", server.url())?;
    writeln!(out, "{}", commit.commit)?;
    out.flush()?;
    drop(out);
    // Serve until whoever started this closes our stdin (or exits).
    for line in std::io::stdin().lock().lines() {
        line?;
    }
    Ok(())
}
