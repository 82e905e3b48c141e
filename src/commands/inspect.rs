//! `mlib inspect FILE...`: what model files are, from their headers.

use std::path::PathBuf;

use anyhow::Result;
use serde_json::json;

use crate::exit::Status;
use crate::printer::Printer;
use crate::render;

/// Metadata entries shown without `-v`.
const SHOWN_METADATA: usize = 8;

pub fn run(files: &[PathBuf], printer: &Printer) -> Result<Status> {
    let mut failed = 0;
    for file in files {
        let report = match mlib_inspect::inspect(file) {
            Ok(report) => report,
            Err(err) => {
                failed += 1;
                if printer.json {
                    printer.event(
                        json!({"type": "inspect_error", "file": file, "error": err.to_string()}),
                    );
                } else if matches!(err, mlib_inspect::InspectError::Io { .. }) {
                    // It names the file itself.
                    printer.error(err.to_string());
                } else {
                    printer.error(format!("{}: {err}", file.display()));
                }
                continue;
            }
        };
        if printer.json {
            printer.event(json!({
                "type": "inspected",
                "file": file,
                "format": report.format,
                "kind": report.kind,
                "family": report.family,
                "dtype": report.dtype,
                "parameters": report.parameters,
                "tensors": report.tensors,
                "size": report.size,
                "metadata": report.metadata.iter().map(|(k, v)| (k.clone(), serde_json::Value::from(v.as_str()))).collect::<serde_json::Map<String, serde_json::Value>>(),
            }));
            continue;
        }
        let what = match &report.family {
            Some(family) => format!("{} ({family})", report.kind.as_str()),
            None => report.kind.as_str().to_owned(),
        };
        printer.info(format!(
            "{}: {}, {} · {} · {} parameters in {} tensors · {}",
            printer.paint_bold(&file.display().to_string()),
            report.format,
            what,
            report.dtype.as_deref().unwrap_or("no tensors"),
            parameters(report.parameters),
            report.tensors,
            render::bytes(report.size)
        ));
        let shown = if printer.verbose > 0 {
            report.metadata.len()
        } else {
            SHOWN_METADATA
        };
        for (key, value) in report.metadata.iter().take(shown) {
            printer.info(format!("  {key} = {value}"));
        }
        if report.metadata.len() > shown {
            printer.info(format!(
                "  … {} more metadata entries (-v shows all)",
                report.metadata.len() - shown
            ));
        }
    }
    Ok(if failed == 0 {
        Status::Success
    } else {
        Status::Failure
    })
}

/// 1.2 B, 860 M, 12 K.
fn parameters(n: u64) -> String {
    match n {
        n if n >= 1_000_000_000 => format!("{:.1} B", n as f64 / 1e9),
        n if n >= 1_000_000 => format!("{:.0} M", n as f64 / 1e6),
        n if n >= 1_000 => format!("{:.0} K", n as f64 / 1e3),
        n => n.to_string(),
    }
}
