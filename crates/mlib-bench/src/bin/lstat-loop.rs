//! The bare baseline for `mlib plan`: `lstat()` every path of a list, nothing more.
//!
//! `lstat-loop PATHS_FILE [PASSES]` reads PATHS_FILE (one path per line), then lstat()s every
//! path PASSES times (default 1) and prints
//! `{"paths": N, "symlinks": N, "missing": N, "read_ms": .., "loop_ms": .., "total_ms": ..}`
//! where `loop_ms` is the first pass (the later ones only show that the cache was warm).

use std::path::PathBuf;
use std::time::Instant;

use mlib_bench::{Report, ms_since};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let mut args = std::env::args_os().skip(1);
    let list = args.next().ok_or("usage: lstat-loop PATHS_FILE [PASSES]")?;
    let passes: usize = match args.next() {
        Some(n) => n.to_str().ok_or("PASSES must be a number")?.parse()?,
        None => 1,
    };
    let text = std::fs::read_to_string(&list)?;
    let paths: Vec<PathBuf> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
        .collect();
    let read_ms = ms_since(start);

    let mut report = Report::default();
    report.add("paths", paths.len() as f64);
    report.add("read_ms", read_ms);
    for pass in 0..passes.max(1) {
        let t = Instant::now();
        let (mut symlinks, mut missing) = (0u64, 0u64);
        for path in &paths {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.file_type().is_symlink() => symlinks += 1,
                Ok(_) => {}
                Err(_) => missing += 1,
            }
        }
        let loop_ms = ms_since(t);
        if pass == 0 {
            report.add("symlinks", symlinks as f64);
            report.add("missing", missing as f64);
            report.add("loop_ms", loop_ms);
        } else {
            report.add(&format!("loop_ms_pass{}", pass + 1), loop_ms);
        }
    }
    report.add("total_ms", ms_since(start));
    println!("{}", report.to_json());
    Ok(())
}
