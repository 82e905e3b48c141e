//! Helpers for `bench/run` (see docs/PERFORMANCE.md). The binaries are what matters:
//!
//! - `lstat-loop PATHS_FILE`: the baseline for `mlib plan`: reads a newline-separated list of
//!   paths and `lstat()`s each one, in a compiled loop, nothing else.
//! - `fs-floor SRC_DIR OUT_DIR`: the first apply's floor: the same file system operations per
//!   model (mkdir, copy, metadata, rename, two symlinks) in a plain loop, then one syncfs.
//! - `plan-phases MANIFEST`: runs the steps `mlib plan` takes on a manifest one at a time
//!   through the library crates and times each, to show where a plan's time goes.
//!
//! Each prints one JSON object on stdout; durations are in milliseconds.

use std::time::Instant;

/// Milliseconds since `start`, as a float.
pub fn ms_since(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

/// A flat JSON object of numbers, in insertion order (no serde needed for this).
#[derive(Default)]
pub struct Report {
    fields: Vec<(String, f64)>,
}

impl Report {
    pub fn add(&mut self, key: &str, value: f64) {
        self.fields.push((key.to_owned(), value));
    }

    pub fn to_json(&self) -> String {
        let body: Vec<String> = self
            .fields
            .iter()
            .map(|(k, v)| {
                if v.fract() == 0.0 && v.abs() < 1e15 {
                    format!("\"{k}\": {}", *v as i64)
                } else {
                    format!("\"{k}\": {v:.6}")
                }
            })
            .collect();
        format!("{{{}}}", body.join(", "))
    }
}
