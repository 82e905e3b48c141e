//! Human and JSON renderings of plans, reports and manifest errors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use mlib_plan::{Action, FetchReason, Plan, Summary};
use serde_json::json;

use crate::printer::Printer;

pub fn manifest_error(printer: &Printer, mut err: mlib_manifest::ManifestError) {
    if printer.json {
        for d in err.diagnostics() {
            printer.event(json!({
                "type": "diagnostic",
                "severity": "error",
                "file": d.file.display().to_string(),
                "line": d.line,
                "column": d.column,
                "message": d.message,
                "hint": d.hint,
            }));
        }
        return;
    }
    // Snippets and messages fit the terminal; a long manifest line is shown in part.
    let width = terminal_width();
    err.set_width(width);
    let theme = if printer.color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    // Names like `X-Amz-Signature` or `stable-diffusion-webui` wrap whole, not at a hyphen.
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_word_splitter(textwrap::WordSplitter::NoHyphenation);
    let mut out = String::new();
    match handler.render_report(&mut out, &err) {
        Ok(()) => eprint!("{out}"),
        Err(_) => eprintln!("{err}"),
    }
}

/// The width of the terminal on stderr, or 100 columns when it is not one.
fn terminal_width() -> usize {
    terminal_size::terminal_size_of(std::io::stderr())
        .map_or(mlib_manifest::DEFAULT_WIDTH, |(width, _)| {
            usize::from(width.0).max(40)
        })
}

/// Formats bytes the way people read disk sizes (binary units).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Shows targets as `app: path inside the app`, and local sources relative to the manifest,
/// which is what a reviewer recognises.
pub struct Targets {
    roots: HashMap<String, PathBuf>,
    manifest_dir: PathBuf,
    /// Store paths are shown relative to it (`loras/sdxl/detail/detail.safetensors`).
    store: Option<PathBuf>,
    /// Where a model's download will come from, when mirrors are configured: model name →
    /// "tries mirror s3://team/models first" or, after `plan --check-mirrors`, "from mirror
    /// s3://team/models".
    pub fetch_from: HashMap<String, String>,
    /// Models every file of which is in the HuggingFace cache: how apply will likely take
    /// them into the store (reflinked, hardlinked or copied).
    pub reuse: HashMap<String, mlib_store::Transfer>,
}

impl Targets {
    pub fn new(roots: HashMap<String, PathBuf>, manifest_dir: &Path) -> Targets {
        Targets {
            roots,
            manifest_dir: manifest_dir.to_path_buf(),
            store: None,
            fetch_from: HashMap::new(),
            reuse: HashMap::new(),
        }
    }

    /// Shows store entries relative to `store` (its physical path, as the plan has them).
    pub fn with_store(mut self, store: PathBuf) -> Targets {
        self.store = Some(store);
        self
    }

    /// A store entry inside the store (or in full, when it is elsewhere).
    pub fn store_entry(&self, path: &Path) -> String {
        self.store
            .as_deref()
            .and_then(|root| path.strip_prefix(root).ok())
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// A relink as old → new: where the link moves from and to, else what it points at or
    /// how it is made, else (the same link made again, e.g. a stale copy) just where it is.
    pub fn relink(&self, l: &mlib_plan::action::Link) -> String {
        let here = self.show(&l.app, &l.target);
        if let Some(old) = &l.moved_from {
            let inside = |p: &Path| {
                self.roots
                    .get(&l.app)
                    .and_then(|root| p.strip_prefix(root).ok())
                    .unwrap_or(p)
                    .display()
                    .to_string()
            };
            return format!("{}: {} → {}", l.app, inside(old), inside(&l.target));
        }
        let Some(previous) = &l.previous else {
            return here;
        };
        if previous.source != l.source {
            return format!(
                "{here}: {} → {}",
                self.store_entry(&previous.source),
                self.store_entry(&l.source)
            );
        }
        let kind = match l.how {
            mlib_plan::LinkHow::RelativeSymlink | mlib_plan::LinkHow::AbsoluteSymlink => "symlink",
            mlib_plan::LinkHow::Hardlink => "hardlink",
            mlib_plan::LinkHow::Copy => "copy",
        };
        if previous.kind != kind {
            return format!("{here}: {} → {kind}", previous.kind);
        }
        here
    }

    /// A source as written in a plan line: a local path under the manifest's folder as
    /// `./relative` (as it is usually written in the manifest), anything else unchanged.
    pub fn source(&self, source: &str) -> String {
        match Path::new(source).strip_prefix(&self.manifest_dir) {
            Ok(rel) if Path::new(source).is_absolute() => format!("./{}", rel.display()),
            _ => source.to_string(),
        }
    }

    pub fn show(&self, app: &str, target: &Path) -> String {
        let inside = self
            .roots
            .get(app)
            .and_then(|root| target.strip_prefix(root).ok())
            .unwrap_or(target);
        format!("{app}: {}", inside.display())
    }
}

/// Where a whole-folder link points: the store, or one of its type folders.
fn folder_link_source(l: &mlib_plan::Link) -> String {
    match l.model.strip_prefix(mlib_plan::FOLDER_LINK_PREFIX) {
        Some("*") | None => "the store (one link for every type)".to_owned(),
        Some(ty) => format!("the store's `{ty}` folder (one link)"),
    }
}

/// What becomes of the real folder where a whole-folder link goes.
fn folder_link_clear(targets: &Targets, l: &mlib_plan::Link) -> String {
    use mlib_plan::placeholder::Clear;
    match l.clear.as_deref() {
        None => String::new(),
        Some(Clear::Placeholders { files }) if files.is_empty() => {
            "; the empty folder there is removed first".to_owned()
        }
        Some(Clear::Placeholders { files }) => format!(
            "; the folder there holds only the app's placeholder files ({}), removed first",
            files.len()
        ),
        Some(Clear::Backup { to, because }) => {
            let inside = |path| {
                let shown = targets.show(&l.app, path);
                let prefix = format!("{}: ", l.app);
                shown.strip_prefix(&prefix).unwrap_or(&shown).to_owned()
            };
            format!(
                "; the folder there is moved to {} first: it holds {}",
                inside(to),
                inside(because)
            )
        }
    }
}

pub fn action_line(printer: &Printer, targets: &Targets, action: &Action) -> String {
    let (symbol, verb, model, rest) = match action {
        Action::Fetch(f) => {
            let size = f
                .bytes
                .map(|b| format!(", {}", bytes(b)))
                .unwrap_or_default();
            let why = match f.reason {
                FetchReason::Corrupt => " (the changed store copy goes to quarantine)",
                FetchReason::Damaged => " (the store copy is incomplete)",
                _ => "",
            };
            (
                "+",
                "add",
                &f.model,
                format!(
                    "from {}{size}{why}{}",
                    targets.source(&f.source),
                    // The HuggingFace cache is tried before any mirror.
                    match (
                        targets.reuse.get(&f.model),
                        targets.fetch_from.get(&f.model)
                    ) {
                        (Some(how), _) => format!("; {how} from the HuggingFace cache"),
                        (None, Some(from)) => format!("; {from}"),
                        (None, None) => String::new(),
                    }
                ),
            )
        }
        Action::Rename(r) => (
            "~",
            "rename",
            &r.from,
            format!(
                "→ {} ({} → {}, {} not copied)",
                r.model,
                targets.store_entry(&r.from_dir),
                targets.store_entry(&r.to_dir),
                bytes(r.bytes)
            ),
        ),
        Action::Link(l) if l.is_folder_link() => (
            "+",
            "link",
            &l.model,
            format!(
                "{} → {}{}",
                targets.show(&l.app, &l.target),
                folder_link_source(l),
                folder_link_clear(targets, l)
            ),
        ),
        Action::Link(l) => ("+", "link", &l.model, targets.show(&l.app, &l.target)),
        Action::Relink(l) if l.heal => (
            "~",
            "relink",
            &l.model,
            format!(
                "{} (its changed bytes are kept in quarantine)",
                targets.show(&l.app, &l.target)
            ),
        ),
        Action::Relink(l) => ("~", "relink", &l.model, targets.relink(l)),
        Action::Unlink(u) => ("-", "unlink", &u.model, targets.show(&u.app, &u.target)),
        Action::Adopt(a) => (
            "+",
            "adopt",
            &a.link.model,
            format!(
                "{} ({})",
                targets.show(&a.link.app, &a.link.target),
                match (&a.sha256, a.how) {
                    (Some(_), Some(how)) =>
                        format!("identical file is {how} into the store and becomes a link"),
                    (Some(_), None) => "identical file becomes a link".to_owned(),
                    (None, _) => {
                        "the model's own folder moves into the store and becomes a link".to_owned()
                    }
                }
            ),
        ),
        Action::Conflict(c) => (
            "!",
            "conflict",
            &c.model,
            format!("{}: {}", targets.show(&c.app, &c.target), c.reason),
        ),
    };
    let head = format!("{symbol} {verb:<8}");
    let head = match symbol {
        "+" => printer.paint_add(&head),
        "~" => printer.paint_change(&head),
        "-" => printer.paint_remove(&head),
        _ => printer.paint_error(&head),
    };
    format!("  {head} {} {rest}", printer.paint_bold(model))
}

/// A model an app does not get because of its `requires:` (not a change: no colour).
pub fn skip_line(printer: &Printer, skip: &mlib_plan::Skip) -> String {
    format!(
        "  ~ {:<8} {} {}: requires {} {}, found {} ({})",
        "skip",
        printer.paint_bold(&skip.model),
        skip.app,
        skip.key,
        skip.requires,
        skip.found,
        skip.from
    )
}

/// `manifest`: the manifest's file name, as the "No changes" line names it.
pub fn summary_line(summary: &Summary, manifest: &str) -> String {
    if summary.changes() == 0 && summary.conflict == 0 {
        return format!("No changes. Store and apps match {manifest}.");
    }
    let mut add = format!("{} to add", summary.fetch);
    if summary.fetch > 0 {
        let mut size = bytes(summary.fetch_bytes);
        if summary.fetch_unknown_size > 0 {
            size = format!("{size} + {} of unknown size", summary.fetch_unknown_size);
        }
        add = format!("{add} ({size})");
    }
    let mut parts = vec![
        add,
        format!("{} to link", summary.link),
        format!("{} to relink", summary.relink),
        format!("{} to unlink", summary.unlink),
    ];
    if summary.rename > 0 {
        parts.insert(1, format!("{} to rename", summary.rename));
    }
    if summary.adopt > 0 {
        parts.push(format!("{} to adopt", summary.adopt));
    }
    let mut line = format!("Plan: {}.", parts.join(", "));
    if summary.conflict > 0 {
        let s = if summary.conflict == 1 { "" } else { "s" };
        line.push_str(&format!(
            " {} conflict{s} (refused; see `!` lines).",
            summary.conflict
        ));
    }
    line
}

/// The whole plan for people: drift first, then actions, then the summary.
pub fn plan_human(printer: &Printer, targets: &Targets, plan: &Plan) {
    for warning in &plan.warnings {
        printer.warn(warning);
    }
    if !plan.drift.is_empty() {
        printer.info(printer.paint_bold("Drift since the last apply:"));
        for drift in &plan.drift {
            if drift.is_store() {
                printer.info(format!("  {} {}", printer.paint_change("~"), drift.what));
            } else {
                printer.info(format!(
                    "  {} {}",
                    targets.show(&drift.app, &drift.target),
                    drift.what
                ));
            }
        }
        printer.info("");
    }
    if !plan.actions.is_empty() || !plan.skipped.is_empty() {
        for action in &plan.actions {
            printer.info(action_line(printer, targets, action));
        }
        for skip in &plan.skipped {
            printer.info(skip_line(printer, skip));
        }
        printer.info("");
    }
    printer.info(printer.paint_bold(&summary_line(&plan.summary, &manifest_name(plan))));
}

/// The plan as JSON events: drift, one `planned_change` per action, and the summary.
pub fn plan_json(printer: &Printer, targets: &Targets, plan: &Plan) {
    for drift in &plan.drift {
        printer.event(json!({"type": "resource_drift", "drift": drift}));
    }
    for warning in &plan.warnings {
        printer.event(json!({"type": "diagnostic", "severity": "warning", "message": warning}));
    }
    for action in &plan.actions {
        let mut event = json!({"type": "planned_change", "symbol": action.symbol().to_string(), "change": action});
        if let Action::Fetch(f) = action
            && let Some(how) = targets.reuse.get(&f.model)
        {
            event["reuse"] = json!({"from": "huggingface_cache", "how": how});
        }
        printer.event(event);
    }
    for skip in &plan.skipped {
        printer.event(json!({"type": "skipped_model", "skip": skip}));
    }
    printer.event(json!({
        "type": "change_summary",
        "changes": plan.summary.changes(),
        "summary": plan.summary,
        "message": summary_line(&plan.summary, &manifest_name(plan)),
    }));
}

fn manifest_name(plan: &Plan) -> String {
    plan.manifest.file_name().map_or_else(
        || "the manifest".into(),
        |n| n.to_string_lossy().into_owned(),
    )
}

pub fn version_event(printer: &Printer, command: &str) {
    if printer.json {
        printer.event(json!({
            "type": "version",
            "mlib": env!("CARGO_PKG_VERSION"),
            "ui": "1.0",
            "command": command,
        }));
    }
}
