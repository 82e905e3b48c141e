//! Progress for copies and downloads, drawn three ways:
//!
//! - on a terminal: an indicatif bar per active file plus a total (bytes, rate, ETA);
//! - without one (pod logs, CI): a plain line per file every few seconds and at completion,
//!   so a log never looks hung;
//! - with `--json`: `progress` events, at most one per file per second, and one at completion.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::printer::Printer;
use crate::render::bytes;

const LINE_EVERY: Duration = Duration::from_secs(5);
const JSON_EVERY: Duration = Duration::from_secs(1);

struct File {
    label: String,
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_report: Instant,
    bar: Option<ProgressBar>,
}

pub struct Progress {
    printer: Printer,
    /// The bars, on a terminal; the total bar appears once the plan knows what it fetches.
    bars: Option<MultiProgress>,
    total: Mutex<Option<ProgressBar>>,
    files: Mutex<HashMap<u64, File>>,
}

impl Progress {
    pub fn new(printer: &Printer) -> Progress {
        let bars = printer
            .progress_bars
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Progress {
            printer: printer.clone(),
            bars,
            total: Mutex::new(None),
            files: Mutex::new(HashMap::new()),
        }
    }

    /// Shows the total bar for `total` bytes (nothing when there is nothing to fetch).
    pub fn set_total(&self, total: u64) {
        let Some(multi) = &self.bars else { return };
        if total == 0 {
            return;
        }
        let bar = multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} ETA {eta}",
            )
            .expect("template")
            .progress_chars("=> "),
        );
        bar.set_prefix("total");
        *self.total.lock().expect("total") = Some(bar);
    }

    fn total_bar(&self, f: impl FnOnce(&ProgressBar)) {
        if let Some(bar) = self.total.lock().expect("total").as_ref() {
            f(bar);
        }
    }

    /// Prints a line without tearing the bars.
    pub fn println(&self, line: &str) {
        match &self.bars {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => self.printer.info(line),
        }
    }

    pub fn start(&self, id: u64, label: &str, total: Option<u64>) {
        let now = Instant::now();
        let has_total = self.total.lock().expect("total").is_some();
        let bar = self.bars.as_ref().map(|multi| {
            let bar = if has_total {
                multi.insert_from_back(1, ProgressBar::new(total.unwrap_or(0)))
            } else {
                multi.add(ProgressBar::new(total.unwrap_or(0)))
            };
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
                )
                .expect("template")
                .progress_chars("=> "),
            );
            bar.set_prefix("file");
            bar.set_message(label.to_string());
            bar
        });
        let mut files = self.files.lock().expect("progress");
        if let Some(old) = files.remove(&id) {
            // A restart from zero (the server ignored a range request).
            if let Some(old_bar) = &old.bar {
                self.total_bar(|t| t.set_position(t.position().saturating_sub(old.done)));
                old_bar.finish_and_clear();
            }
        }
        files.insert(
            id,
            File {
                label: label.to_string(),
                total,
                done: 0,
                started: now,
                last_report: now,
                bar,
            },
        );
        if self.printer.json {
            self.printer
                .event(json!({"type": "progress", "file": label, "bytes": 0, "total": total}));
        }
    }

    pub fn advance(&self, id: u64, delta: u64) {
        let mut files = self.files.lock().expect("progress");
        let Some(file) = files.get_mut(&id) else {
            return;
        };
        file.done += delta;
        if let Some(bar) = &file.bar {
            bar.inc(delta);
        }
        self.total_bar(|t| t.inc(delta));
        let now = Instant::now();
        if self.printer.json {
            if now.duration_since(file.last_report) >= JSON_EVERY {
                file.last_report = now;
                self.printer.event(json!({"type": "progress", "file": file.label, "bytes": file.done, "total": file.total}));
            }
        } else if self.bars.is_none() && now.duration_since(file.last_report) >= LINE_EVERY {
            file.last_report = now;
            self.printer
                .info(format!("  {}: {}", file.label, describe(file, now)));
        }
    }

    pub fn finish(&self, id: u64) {
        let Some(file) = self.files.lock().expect("progress").remove(&id) else {
            return;
        };
        let now = Instant::now();
        if let Some(bar) = &file.bar {
            bar.finish_and_clear();
        }
        if self.printer.json {
            self.printer.event(json!({"type": "progress", "file": file.label, "bytes": file.done, "total": file.total, "done": true}));
        } else {
            let elapsed = now.duration_since(file.started).as_secs_f64().max(0.001);
            self.println(&format!(
                "  {}: done, {} in {:.1}s ({}/s)",
                file.label,
                bytes(file.done),
                elapsed,
                bytes((file.done as f64 / elapsed) as u64)
            ));
        }
    }

    /// The file failed: its bar goes, and its line says so (the error itself is reported
    /// with the apply's results). Never "done": a failure read as a finished 0 B download.
    pub fn failed(&self, id: u64) {
        let Some(file) = self.files.lock().expect("progress").remove(&id) else {
            return;
        };
        if let Some(bar) = &file.bar {
            bar.finish_and_clear();
        }
        if self.printer.json {
            self.printer.event(json!({"type": "progress", "file": file.label, "bytes": file.done, "total": file.total, "failed": true}));
        } else {
            self.println(&format!("  {}: failed", file.label));
        }
    }

    pub fn retry(&self, label: &str, attempt: u32, reason: &str) {
        if self.printer.json {
            self.printer.event(
                json!({"type": "retry", "file": label, "attempt": attempt, "reason": reason}),
            );
        } else if !self.printer.quiet {
            self.println(&format!(
                "  {label}: attempt {attempt} failed ({reason}); retrying"
            ));
        }
    }

    pub fn note(&self, id: u64, message: &str) {
        let label = self
            .files
            .lock()
            .expect("progress")
            .get(&id)
            .map(|f| f.label.clone())
            .unwrap_or_default();
        if self.printer.json {
            self.printer
                .event(json!({"type": "note", "file": label, "message": message}));
        } else {
            self.println(&format!("  {label}: {message}"));
        }
    }

    /// A note shown only with `-v` (and in `--json`): "not on mirror s3://team/models".
    pub fn detail(&self, id: u64, message: &str) {
        if self.printer.verbose > 0 || self.printer.json {
            self.note(id, message);
        }
    }

    /// A warning from a download thread, printed above the bars.
    pub fn warn(&self, message: &str) {
        if self.printer.json {
            self.printer.warn(message);
        } else if !self.printer.quiet {
            self.println(&format!(
                "{} {message}",
                self.printer.paint_warn("warning:")
            ));
        }
    }

    pub fn clear(&self) {
        self.total_bar(|t| t.finish_and_clear());
    }
}

fn describe(file: &File, now: Instant) -> String {
    let elapsed = now.duration_since(file.started).as_secs_f64().max(0.001);
    let rate = file.done as f64 / elapsed;
    match file.total {
        Some(total) if total > 0 => {
            let left = total.saturating_sub(file.done) as f64;
            let eta = if rate > 0.0 {
                format!(", ETA {:.0}s", left / rate)
            } else {
                String::new()
            };
            format!(
                "{} of {} ({:.0}%), {}/s{eta}",
                bytes(file.done),
                bytes(total),
                file.done as f64 * 100.0 / total as f64,
                bytes(rate as u64)
            )
        }
        _ => format!("{}, {}/s", bytes(file.done), bytes(rate as u64)),
    }
}

impl mlib_fetch::Reporter for Progress {
    fn start(&self, id: u64, label: &str, total: Option<u64>) {
        Progress::start(self, id, label, total);
    }
    fn advance(&self, id: u64, bytes: u64) {
        Progress::advance(self, id, bytes);
    }
    fn finish(&self, id: u64) {
        Progress::finish(self, id);
    }
    fn failed(&self, id: u64) {
        Progress::failed(self, id);
    }
    fn retry(&self, label: &str, attempt: u32, reason: &str) {
        Progress::retry(self, label, attempt, reason);
    }
    fn note(&self, id: u64, message: &str) {
        Progress::note(self, id, message);
    }
    fn detail(&self, id: u64, message: &str) {
        Progress::detail(self, id, message);
    }
    fn warn(&self, message: &str) {
        Progress::warn(self, message);
    }
}

/// Hashing a store file while planning shows like a copy: a bar, or plain lines.
impl mlib_plan::HashProgress for Progress {
    fn start(&self, id: u64, what: &str, bytes: u64) {
        Progress::start(
            self,
            HASH_ID_BASE + id,
            &format!("verifying {what}"),
            Some(bytes),
        );
    }
    fn advance(&self, id: u64, bytes: u64) {
        Progress::advance(self, HASH_ID_BASE + id, bytes);
    }
    fn finish(&self, id: u64) {
        Progress::finish(self, HASH_ID_BASE + id);
    }
}

/// Ids of files hashed while planning, far from the fetcher's (which count up from zero) and
/// apply's local copies (`1 << 62`).
const HASH_ID_BASE: u64 = 1 << 61;
