//! `mlib apply`: plan, confirm, and carry the plan out under the store's apply lock.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use mlib_plan::{Action, ApplyContext, ApplyEvents, NoRemote, Plan};
use mlib_registry::ApplyLock;
use serde_json::json;

use crate::cli::ApplyArgs;
use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::render::{self, Targets};

pub fn run(file: &Path, args: &ApplyArgs, printer: &Printer) -> Result<Status> {
    let saved = match &args.plan {
        Some(path) => Some(Plan::load(path)?),
        None => None,
    };
    // A saved plan names its manifest: that is the one it approves.
    let file: PathBuf = saved.as_ref().map_or_else(|| file.to_path_buf(), |p| p.manifest.clone());
    let interactive = saved.is_none() && !args.auto_approve;
    if interactive && !printer.stdin_is_tty {
        bail!(
            "apply needs approval, and there is no terminal to ask on: pass --auto-approve, or apply a plan saved with `mlib plan -o FILE`"
        );
    }

    let ctx = Context::load(&file, printer)?;
    let _lock = acquire_lock(&ctx, args.lock_timeout, printer)?;
    let registry = ctx.open_registry()?;
    let plan = super::planning::compute(&ctx, &registry, true, args.adopt.adopt || saved.as_ref().is_some_and(|p| p.adopt))?;
    if let Some(saved) = &saved {
        saved.check_still_valid(&plan)?;
    }

    let targets = Targets::new(ctx.app_roots());
    if printer.json {
        render::plan_json(printer, &plan);
    } else if saved.is_none() || printer.verbose > 0 {
        render::plan_human(printer, &targets, &plan);
    }

    if plan.has_changes() && interactive && !confirm(printer)? {
        printer.info("Apply cancelled.");
        return Ok(Status::Failure);
    }

    let events = Events {
        printer,
        targets: &targets,
        progress: Mutex::new(Progress::default()),
    };
    let apply_ctx = ApplyContext {
        manifest: &ctx.manifest,
        manifest_id: &ctx.manifest_id,
        store: &ctx.store,
        registry: &registry,
        remote: &NoRemote,
        events: &events,
        jobs: args.jobs,
    };
    let report = mlib_plan::apply(&apply_ctx, &plan)?;

    if printer.json {
        printer.event(json!({
            "type": "apply_summary",
            "done": report.done,
            "failed": report.failed.len(),
            "refused": report.refused,
        }));
    }
    for (action, error) in &report.failed {
        printer.error(format!("{}: {error}", render::action_line(printer, &targets, action).trim()));
    }
    if report.refused > 0 {
        printer.warn(format!(
            "{} conflict{} left untouched (see the `!` lines above)",
            report.refused,
            if report.refused == 1 { "" } else { "s" }
        ));
    }
    if report.ok() {
        if plan.has_changes() {
            printer.info(printer.paint_bold(&format!("Apply complete: {} change{} made.", report.done, if report.done == 1 { "" } else { "s" })));
        }
        Ok(Status::Success)
    } else {
        printer.info(printer.paint_bold(&format!(
            "Apply finished with problems: {} done, {} failed, {} refused.",
            report.done,
            report.failed.len(),
            report.refused
        )));
        Ok(Status::Failure)
    }
}

fn acquire_lock(ctx: &Context, timeout: Duration, printer: &Printer) -> Result<ApplyLock> {
    let dir = ctx.state_dir();
    fs_err::create_dir_all(&dir).with_context(|| format!("cannot create the store's state folder {}", dir.display()))?;
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let mut on_wait = |holder: Option<&mlib_registry::LockHolder>| match holder {
        Some(h) => printer.warn(format!(
            "waiting for lock held by pid {} on {} ({}, since {}; lock id {}); giving up after {}s",
            h.pid,
            h.host,
            h.command,
            h.since,
            h.id,
            timeout.as_secs()
        )),
        None => printer.warn("waiting for the store's apply lock"),
    };
    Ok(ApplyLock::acquire(&dir, &command, timeout, &mut on_wait)?)
}

fn confirm(printer: &Printer) -> Result<bool> {
    eprint!("\n{} ", printer.paint_bold("Apply these changes? Only 'yes' is accepted:"));
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

#[derive(Default)]
struct Progress {
    last_line: Option<Instant>,
    bytes: u64,
}

/// Prints each finished action as it happens, and a plain progress line every few seconds
/// during long copies so logs without a terminal never look hung.
struct Events<'a> {
    printer: &'a Printer,
    targets: &'a Targets,
    progress: Mutex<Progress>,
}

impl ApplyEvents for Events<'_> {
    fn started(&self, action: &Action) {
        if self.printer.json {
            self.printer.event(json!({"type": "apply_start", "change": action}));
        } else if let Action::Fetch(f) = action {
            self.printer.info(format!("  adding {} from {}...", f.model, f.source));
        }
    }

    fn finished(&self, action: &Action, error: Option<&str>) {
        if self.printer.json {
            match error {
                None => self.printer.event(json!({"type": "apply_complete", "change": action})),
                Some(e) => self.printer.event(json!({"type": "apply_errored", "change": action, "error": e})),
            }
        } else if error.is_none() {
            self.printer.detail(render::action_line(self.printer, self.targets, action));
        }
    }

    fn progress(&self, model: &str, bytes: u64) {
        let mut p = self.progress.lock().expect("progress");
        p.bytes += bytes;
        let now = Instant::now();
        let due = p.last_line.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(5));
        if due {
            p.last_line = Some(now);
            if self.printer.json {
                self.printer.event(json!({"type": "progress", "model": model, "bytes": p.bytes}));
            } else {
                self.printer.info(format!("  ... {model}: {} copied so far", render::bytes(p.bytes)));
            }
        }
    }

    fn warning(&self, message: &str) {
        self.printer.warn(message);
    }
}
