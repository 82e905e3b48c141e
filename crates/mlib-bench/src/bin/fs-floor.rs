//! The floor of a first apply on this file system: the same file system operations mlib's
//! first apply makes for each model, in a plain single-threaded loop, and nothing else.
//!
//! `fs-floor SRC_DIR OUT_DIR` takes every file under SRC_DIR and, for each: makes a work
//! folder, copies the file into it (read + write), writes a small `metadata.json` next to it,
//! renames the folder into `OUT_DIR/store/`, and makes two relative symlinks to the file (in
//! `OUT_DIR/app-a/` and `OUT_DIR/app-b/`, two apps); then one `syncfs`, as mlib's batch does.
//! No hashing, no registry, no manifest: what is left when all of mlib's own work is gone.
//! Prints `{"files": N, "ms": ...}`.
//!
//! `fs-floor SRC_DIR OUT_DIR MODE` tells whether a step gains from more threads on this file
//! system: MODE `pipelined` does each model's whole sequence on every core (the models split
//! between them); `phased` makes every work folder on every core, then renames them one at a
//! time, then makes the links on every core (the order of mlib's first apply); `joint` makes
//! the work folders on every core, then each model's rename and links on every core. Phased
//! and joint also print each step's milliseconds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use mlib_bench::{Report, ms_since};
use mlib_fs::par::parallel_map;

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

/// One model's three steps, as the first apply makes them.
struct Floor {
    sources: Vec<PathBuf>,
    tmp: PathBuf,
    store: PathBuf,
    apps: [PathBuf; 2],
    metadata: String,
}

type Step = Result<(), String>;

impl Floor {
    fn name(&self, i: usize) -> &std::ffi::OsStr {
        self.sources[i]
            .file_name()
            .expect("a file under SRC_DIR has a name")
    }

    /// A work folder with the copy and its metadata file.
    fn stage(&self, i: usize) -> Step {
        let work = self.tmp.join(format!("w{i}"));
        let run = || -> std::io::Result<()> {
            std::fs::create_dir(&work)?;
            std::fs::copy(&self.sources[i], work.join(self.name(i)))?;
            std::fs::File::create_new(work.join("metadata.json"))?
                .write_all(self.metadata.as_bytes())
        };
        run().map_err(|e| format!("staging {}: {e}", work.display()))
    }

    /// The work folder renamed into the store.
    fn place(&self, i: usize) -> Step {
        std::fs::rename(
            self.tmp.join(format!("w{i}")),
            self.store.join(format!("m{i}")),
        )
        .map_err(|e| format!("renaming model {i}: {e}"))
    }

    /// Its two symlinks.
    fn link(&self, i: usize) -> Step {
        let name = self.name(i);
        for app in &self.apps {
            let text = Path::new("../store").join(format!("m{i}")).join(name);
            let at = app.join(format!("m{i}-{}", name.to_string_lossy()));
            std::os::unix::fs::symlink(text, &at)
                .map_err(|e| format!("linking {}: {e}", at.display()))?;
        }
        Ok(())
    }
}

fn all_ok(results: Vec<Step>) -> Result<(), Box<dyn std::error::Error>> {
    results.into_iter().collect::<Result<(), String>>()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (src, out, mode) = match args.as_slice() {
        [src, out] => (src, out, "serial"),
        [src, out, mode] => (src, out, mode.as_str()),
        _ => return Err("usage: fs-floor SRC_DIR OUT_DIR [serial|pipelined|phased|joint]".into()),
    };
    let out = Path::new(out);
    let mut sources = Vec::new();
    files_under(Path::new(src), &mut sources)?;
    sources.sort();
    let floor = Floor {
        sources,
        tmp: out.join("tmp"),
        store: out.join("store"),
        apps: [out.join("app-a"), out.join("app-b")],
        metadata: format!(
            "{{\"name\": \"model\", \"files\": [{}]}}\n",
            "0".repeat(600)
        ),
    };
    for dir in [&floor.tmp, &floor.store, &floor.apps[0], &floor.apps[1]] {
        std::fs::create_dir_all(dir)?;
    }
    let models: Vec<usize> = (0..floor.sources.len()).collect();
    let mut report = Report::default();

    let start = Instant::now();
    match mode {
        "serial" => {
            for &i in &models {
                floor.stage(i)?;
                floor.place(i)?;
                floor.link(i)?;
            }
        }
        "pipelined" => all_ok(parallel_map(&models, |&i| {
            floor.stage(i)?;
            floor.place(i)?;
            floor.link(i)
        }))?,
        "phased" => {
            all_ok(parallel_map(&models, |&i| floor.stage(i)))?;
            report.add("stage_ms", ms_since(start));
            let placing = Instant::now();
            for &i in &models {
                floor.place(i)?;
            }
            report.add("rename_ms", ms_since(placing));
            let linking = Instant::now();
            all_ok(parallel_map(&models, |&i| floor.link(i)))?;
            report.add("link_ms", ms_since(linking));
        }
        "joint" => {
            all_ok(parallel_map(&models, |&i| floor.stage(i)))?;
            report.add("stage_ms", ms_since(start));
            let placing = Instant::now();
            all_ok(parallel_map(&models, |&i| {
                floor.place(i)?;
                floor.link(i)
            }))?;
            report.add("rename_link_ms", ms_since(placing));
        }
        other => return Err(format!("fs-floor: unknown mode {other:?}").into()),
    }
    mlib_fs::platform::sync_filesystem(out)?;

    report.add("files", models.len() as f64);
    report.add("ms", ms_since(start));
    println!("{}", report.to_json());
    Ok(())
}
