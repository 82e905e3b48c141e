//! Throughput of the store's copy path, to compare with `sha256sum` / `openssl dgst -sha256`.
//!
//! `cargo run --release -p mlib-store --example hash_bench -- FILE [DEST_DIR]`
//! copies FILE into DEST_DIR (default: next to FILE) with sha256+blake3 and fsync, like an
//! import does, then hashes FILE without copying.

use std::path::PathBuf;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let src = PathBuf::from(args.next().ok_or("usage: hash_bench FILE [DEST_DIR]")?);
    let dest_dir = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| src.parent().unwrap_or(".".as_ref()).to_owned());
    let dest = dest_dir.join(".hash_bench.part");
    let size = std::fs::metadata(&src)?.len() as f64;

    let start = Instant::now();
    let mut reader = std::fs::File::open(&src)?;
    let mut writer = std::fs::File::create(&dest)?;
    let hashes = mlib_store::copy_hashing(&mut reader, &mut writer, &mut |_| {})?;
    let copied = start.elapsed();
    writer.sync_all()?;
    let synced = start.elapsed();
    std::fs::remove_file(&dest)?;
    report("copy + sha256 + blake3", size, copied.as_secs_f64());
    report("copy + sha256 + blake3 + fsync", size, synced.as_secs_f64());

    let start = Instant::now();
    let again = mlib_store::hash_file(&src)?;
    report(
        "hash_file (sha256 + blake3)",
        size,
        start.elapsed().as_secs_f64(),
    );
    assert_eq!(hashes, again);
    println!("sha256 {}\nblake3 {}", hashes.sha256, hashes.blake3);
    Ok(())
}

fn report(what: &str, size: f64, secs: f64) {
    println!(
        "{what:32} {secs:6.3} s  {:7.0} MiB/s",
        size / secs / (1 << 20) as f64
    );
}
