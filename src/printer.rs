//! The only place that writes to the terminal.
//!
//! Human messages go to stderr, data (JSON events) to stdout, so `mlib plan --json | jq`
//! works and logs stay readable. Messages read fine without colour: colour only adds
//! emphasis.

use std::io::{IsTerminal, Write};

use owo_colors::OwoColorize;
use serde_json::Value;

use crate::cli::ColorChoice;
use crate::settings::OutputSettings;

#[derive(Clone)]
pub struct Printer {
    pub json: bool,
    pub quiet: bool,
    pub verbose: u8,
    pub color: bool,
    /// Progress bars are drawn only on a terminal and when asked for.
    pub progress_bars: bool,
    pub stdin_is_tty: bool,
}

impl Printer {
    /// `settings` say what was asked for (`NO_COLOR` included); the terminal decides the rest.
    pub fn new(settings: &OutputSettings) -> Printer {
        let stderr_tty = std::io::stderr().is_terminal();
        let color = match settings.color {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_tty,
        };
        Printer {
            json: settings.json,
            quiet: settings.quiet,
            verbose: settings.verbose,
            color,
            progress_bars: stderr_tty && settings.progress_bars,
            stdin_is_tty: std::io::stdin().is_terminal(),
        }
    }

    /// A line of human output (suppressed by --quiet and --json).
    pub fn info(&self, line: impl AsRef<str>) {
        if !self.quiet && !self.json {
            eprint_line(line.as_ref());
        }
    }

    /// Detail shown with -v.
    pub fn detail(&self, line: impl AsRef<str>) {
        if self.verbose > 0 && !self.json {
            eprint_line(line.as_ref());
        }
    }

    /// Something worth knowing that is not a problem (`note: ...`); a diagnostic in JSON.
    pub fn note(&self, message: impl AsRef<str>) {
        if self.json {
            self.event(serde_json::json!({"type": "diagnostic", "severity": "note", "message": message.as_ref()}));
        } else if !self.quiet {
            eprintln!("note: {}", message.as_ref());
        }
    }

    pub fn warn(&self, message: impl AsRef<str>) {
        if self.json {
            self.event(serde_json::json!({"type": "diagnostic", "severity": "warning", "message": message.as_ref()}));
        } else if !self.quiet {
            eprintln!("{} {}", self.paint_warn("warning:"), message.as_ref());
        }
    }

    pub fn error(&self, message: impl AsRef<str>) {
        if self.json {
            self.event(serde_json::json!({"type": "diagnostic", "severity": "error", "message": message.as_ref()}));
        } else {
            eprintln!("{} {}", self.paint_error("error:"), message.as_ref());
        }
    }

    /// Data asked for on stdout (`mlib plan -o -`), whatever --quiet says. Unlike an event,
    /// it is the command's result: failing to write it is an error.
    pub fn data(&self, text: &str) -> std::io::Result<()> {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())?;
        out.flush()
    }

    /// One JSON event on stdout (newline-delimited).
    pub fn event(&self, value: Value) {
        let mut out = std::io::stdout().lock();
        // A closed pipe (`mlib plan --json | head`) is not an error worth a panic.
        let _ = writeln!(out, "{value}");
        let _ = out.flush();
    }

    pub fn paint_add(&self, text: &str) -> String {
        if self.color {
            text.green().to_string()
        } else {
            text.to_string()
        }
    }
    pub fn paint_change(&self, text: &str) -> String {
        if self.color {
            text.yellow().to_string()
        } else {
            text.to_string()
        }
    }
    pub fn paint_remove(&self, text: &str) -> String {
        if self.color {
            text.red().to_string()
        } else {
            text.to_string()
        }
    }
    pub fn paint_error(&self, text: &str) -> String {
        if self.color {
            text.red().bold().to_string()
        } else {
            text.to_string()
        }
    }
    pub fn paint_warn(&self, text: &str) -> String {
        if self.color {
            text.yellow().bold().to_string()
        } else {
            text.to_string()
        }
    }
    pub fn paint_bold(&self, text: &str) -> String {
        if self.color {
            text.bold().to_string()
        } else {
            text.to_string()
        }
    }
}

/// `line` and its newline on stderr in one write. `eprintln!` writes them separately (stderr is
/// not buffered), and an apply of 10,000 models prints 50,000 lines: 100,000 system calls
/// where 50,000 do (docs/PERFORMANCE.md). A stderr that cannot be written is not an error
/// worth stopping an apply for.
fn eprint_line(line: &str) {
    let mut text = String::with_capacity(line.len() + 1);
    text.push_str(line);
    text.push('\n');
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}
