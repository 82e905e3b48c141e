//! The floor of a first apply on this file system: the same file system operations mlib's
//! first apply makes for each model, in a plain single-threaded loop, and nothing else.
//!
//! `fs-floor SRC_DIR OUT_DIR` takes every file under SRC_DIR and, for each: makes a work
//! folder, copies the file into it (read + write), writes a small `metadata.json` next to it,
//! renames the folder into `OUT_DIR/store/`, and makes two relative symlinks to the file (in
//! `OUT_DIR/app-a/` and `OUT_DIR/app-b/`, two apps); then one `syncfs`, as mlib's batch does.
//! No hashing, no registry, no manifest: what is left when all of mlib's own work is gone.
//! Prints `{"files": N, "ms": ...}`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlib_bench::{Report, ms_since};

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            files_under(&entry.path(), out)?;
        } else {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [src, out] = args.as_slice() else {
        return Err("usage: fs-floor SRC_DIR OUT_DIR".into());
    };
    let mut sources = Vec::new();
    files_under(src, &mut sources)?;
    sources.sort();
    let (tmp, store, apps) = (
        out.join("tmp"),
        out.join("store"),
        [out.join("app-a"), out.join("app-b")],
    );
    for dir in [&tmp, &store, &apps[0], &apps[1]] {
        std::fs::create_dir_all(dir)?;
    }
    let metadata = format!(
        "{{\"name\": \"model\", \"files\": [{}]}}\n",
        "0".repeat(600)
    );

    let start = Instant::now();
    for (i, source) in sources.iter().enumerate() {
        let name = source.file_name().ok_or("a source without a name")?;
        let work = tmp.join(format!("w{i}"));
        std::fs::create_dir(&work)?;
        std::fs::copy(source, work.join(name))?;
        std::fs::File::create_new(work.join("metadata.json"))?.write_all(metadata.as_bytes())?;
        let placed = store.join(format!("m{i}"));
        std::fs::rename(&work, &placed)?;
        for app in &apps {
            let text = Path::new("../store").join(format!("m{i}")).join(name);
            std::os::unix::fs::symlink(text, app.join(format!("m{i}-{}", name.to_string_lossy())))?;
        }
    }
    mlib_fs::platform::sync_filesystem(out)?;

    let mut report = Report::default();
    report.add("files", sources.len() as f64);
    report.add("ms", ms_since(start));
    println!("{}", report.to_json());
    Ok(())
}
