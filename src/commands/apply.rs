//! `mlib apply`: plan, confirm, and carry the plan out under the store's apply lock.
//!
//! Under the lock, before planning: what a killed apply left is cleaned up
//! (`mlib_plan::recover`). After confirmation: the environment is recorded, then the plan
//! runs (first taking over the link records it claims).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use mlib_plan::{Action, ApplyContext, ApplyError, ApplyEvents, Plan};
use mlib_registry::{ApplyLock, Registry};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::prefetch::{Prefetched, Purpose};
use crate::printer::Printer;
use crate::progress::Progress;
use crate::remote::CliRemote;
use crate::render::{self, Targets};
use crate::settings::{ApplySettings, GlobalSettings};

pub fn run(global: &GlobalSettings, args: &ApplySettings, printer: &Printer) -> Result<Status> {
    let saved = match &args.plan {
        Some(path) => Some(load_plan(path)?),
        None => None,
    };
    // A saved plan names its manifest: that is the one it approves.
    let file: PathBuf = saved
        .as_ref()
        .map_or_else(|| global.file.clone(), |p| p.manifest.clone());
    let global = &global.with_file(&file);
    let interactive = saved.is_none() && !args.auto_approve;
    if interactive && !printer.stdin_is_tty {
        bail!(
            "apply needs approval, and there is no terminal to ask on: pass --auto-approve, or apply a plan saved with `mlib plan -o FILE`"
        );
    }

    let bundle = match &args.bundle {
        Some(path) => {
            let bundle = mlib_bundle::Bundle::open(path)?;
            super::bundle_apply::place_manifest(&bundle, &file, printer)?;
            Some(bundle)
        }
        None => None,
    };

    let purpose = Purpose::Apply {
        command: lock_command(),
    };
    let (ctx, prefetched) = Context::load_prefetching(global, printer, Some(purpose))?;
    let (_lock, registry, mut observed) = match prefetched {
        Some(Prefetched {
            lock: Some(lock),
            registry,
            observed,
        }) => {
            ctx.bind(&registry)?;
            (lock, registry, Some(observed))
        }
        // Read without the lock (cannot happen for apply) or not at all: start over here.
        _ => {
            let lock = acquire_lock(&ctx, args.lock_timeout, printer)?;
            (lock, ctx.open_registry()?, None)
        }
    };
    // Writers of one store are kept apart by the lock beside its state; a state folder of
    // its own (`state:`, MLIB_STATE_DIR) must not let two applies write the store at once.
    let _store_lock = if ctx.state.is_outside_store() && ctx.state.store_writable {
        Some(acquire_lock_in(
            &ctx.store.mlib_dir(),
            args.lock_timeout,
            printer,
        )?)
    } else {
        None
    };
    if recover(&ctx, &registry, printer)? {
        // What was read early predates the clean-up.
        observed = None;
    }
    // The bundle's models go into the store before planning, so the plan finds nothing to
    // fetch (and the offline fetcher is never asked).
    if let Some(bundle) = &bundle
        && super::bundle_apply::ingest(&ctx, bundle, printer)?
    {
        observed = None;
    }
    let jobs = args
        .jobs
        .unwrap_or_else(|| crate::remote::default_jobs(ctx.store.root()))
        .max(1);
    let progress = Progress::new(printer);
    let request = super::planning::PlanRequest {
        adopt: args.adopt || saved.as_ref().is_some_and(|p| p.adopt),
        remote: args.remote.clone(),
        jobs,
        saved: saved.as_ref().map(|p| &p.resolved),
        progress: Some(&progress),
    };
    let planned = super::planning::compute(&ctx, &registry, true, &request, observed)?;
    let fetch_from = super::planning::fetch_notes(&planned, false, &progress);
    let reuse = super::planning::cache_reuse(&planned, ctx.store.root());
    let super::planning::Planned {
        plan,
        mut resolved,
        fetcher,
    } = planned;
    if let Some(saved) = &saved {
        saved.check_still_valid(&plan)?;
    }
    refuse_store_writes_if_read_only(&ctx, &plan)?;

    let mut targets = ctx.targets();
    targets.fetch_from = fetch_from;
    targets.reuse = reuse;
    if printer.json {
        render::plan_json(printer, &targets, &plan);
    } else if saved.is_none() || printer.verbose > 0 {
        render::plan_human(printer, &targets, &plan);
    }

    if plan.has_changes() && interactive && !confirm(printer)? {
        printer.info("Apply cancelled.");
        return Ok(Status::Failure);
    }
    let env = record_environment(&ctx, &registry)?;
    let lock_path = ctx.manifest.lock_path();
    if resolved.lock_changed {
        // Pin what was resolved before downloading, so a preempted pod resumes the same files.
        resolved.lock.save(&lock_path)?;
        printer.info(format!("Wrote {}.", lock_path.display()));
    }

    progress.set_total(plan.summary.fetch_bytes);
    let events = Events {
        printer,
        targets: &targets,
        manifest: &ctx.manifest,
        progress: &progress,
        local_ids: Mutex::new(HashMap::new()),
    };
    let remote = CliRemote {
        fetcher: &fetcher,
        resolved: &resolved.models,
        progress: &progress,
        learned: Mutex::new(Vec::new()),
    };
    let apply_ctx = ApplyContext {
        manifest: &ctx.manifest,
        env,
        store: &ctx.store,
        registry: &registry,
        remote: &remote,
        events: &events,
        jobs,
    };
    let report = mlib_plan::apply(&apply_ctx, &plan)?;
    progress.clear();
    if remote.record_into(&mut resolved.lock) {
        resolved.lock.save(&lock_path)?;
    }

    if printer.json {
        printer.event(json!({
            "type": "apply_summary",
            "done": report.done,
            "failed": report.failed.len(),
            "refused": report.refused,
        }));
    }
    for (action, error) in &report.failed {
        printer.error(format!(
            "{}: {error}",
            render::action_line(printer, &targets, action).trim()
        ));
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
            printer.info(printer.paint_bold(&format!(
                "Apply complete: {} change{} made.",
                report.done,
                if report.done == 1 { "" } else { "s" }
            )));
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

/// The largest saved plan apply reads: far more than a plan of 10,000 models takes, and a
/// bound, so that `mlib apply /dev/zero` or a model file given by mistake is refused at once
/// instead of read into memory.
const MAX_PLAN_BYTES: u64 = 256 << 20;

/// [`Plan::load`], for regular files of at most [`MAX_PLAN_BYTES`].
fn load_plan(path: &std::path::Path) -> Result<Plan> {
    if let Ok(meta) = std::fs::metadata(path) {
        if !meta.is_file() {
            bail!(
                "{} is not a saved plan: not a regular file (save one with `mlib plan -o FILE`)",
                path.display()
            );
        }
        if meta.len() > MAX_PLAN_BYTES {
            bail!(
                "{} is not a saved plan: it is larger than {} MiB (save one with `mlib plan -o FILE`)",
                path.display(),
                MAX_PLAN_BYTES >> 20
            );
        }
    }
    Ok(Plan::load(path)?)
}

/// Cleans up after a killed apply (see `mlib_plan::recover`); returns whether it found
/// anything to clean.
fn recover(ctx: &Context, registry: &Registry, printer: &Printer) -> Result<bool> {
    let env = registry.environment(&ctx.env.key)?.map(|e| e.id);
    let recovery = mlib_plan::recover::recover(&mlib_plan::recover::RecoverInput {
        registry,
        store: &ctx.store,
        env,
        manifest_dir: &ctx.manifest.dir,
        state_dir: ctx.state_dir(),
        store_writable: ctx.state.store_writable,
    })?;
    if let Some(run) = &recovery.interrupted {
        printer.note(format!(
            "the last apply of this environment ({}, since {}) was interrupted; finishing it",
            run.writer, run.since
        ));
    }
    for path in &recovery.removed {
        printer.detail(format!(
            "removed {} (left by a killed mlib)",
            path.display()
        ));
    }
    if !recovery.removed.is_empty() {
        printer.note(format!(
            "removed {} temporary file{} left by a killed mlib",
            recovery.removed.len(),
            if recovery.removed.len() == 1 { "" } else { "s" }
        ));
    }
    for path in &recovery.kept {
        printer.warn(format!(
            "{} was in a model folder mlib was replacing when it was killed: kept in the quarantine",
            path.display()
        ));
    }
    for path in &recovery.restored {
        printer.note(format!(
            "{} was being moved into the store when mlib was killed: put back where it was",
            path.display()
        ));
    }
    for path in &recovery.moved_kept {
        printer.warn(format!(
            "{} was being moved into the store when mlib was killed, and its place was taken since: kept in the quarantine",
            path.display()
        ));
    }
    Ok(recovery.interrupted.is_some() || !recovery.removed.is_empty())
}

/// A store mlib may not write gets links only: an apply that would have to add bytes to it
/// (or move a changed file aside) stops before changing anything.
fn refuse_store_writes_if_read_only(ctx: &Context, plan: &Plan) -> Result<()> {
    if ctx.state.store_writable {
        return Ok(());
    }
    let writes: Vec<String> = plan
        .actions
        .iter()
        .filter_map(|action| match action {
            Action::Fetch(f) if f.quarantine.is_empty() => Some(format!("{} (missing)", f.model)),
            Action::Fetch(f) => Some(format!("{} (its store copy changed)", f.model)),
            Action::Adopt(a) if a.into_store => Some(format!("{} (adopt)", a.link.model)),
            Action::Rename(r) => Some(format!("{} (renamed from {})", r.model, r.from)),
            _ => None,
        })
        .collect();
    if writes.is_empty() {
        return Ok(());
    }
    let why = if ctx.state.origin == mlib_registry::StateOrigin::ForeignStateFolder {
        format!(
            "mlib cannot write into the store {} (its folder {} is not writable for you)",
            ctx.store.root().display(),
            ctx.store.mlib_dir().display()
        )
    } else {
        format!("the store {} is read-only", ctx.store.root().display())
    };
    bail!(
        "{why}, and this apply would have to write into it for: {}. Nothing was changed.\n\n\
         Ask whoever manages the store to add these models (`mlib apply` with write access), \
         or leave them out of this manifest.",
        writes.join(", ")
    )
}

/// Records that this environment is being applied (the plan's claims then move links an
/// older mlib, or this environment under another identity, recorded to it).
fn record_environment(ctx: &Context, registry: &Registry) -> Result<i64> {
    Ok(registry
        .record_environment(&ctx.env.to_record(&ctx.manifest))?
        .id)
}

fn acquire_lock(ctx: &Context, timeout: Duration, printer: &Printer) -> Result<ApplyLock> {
    acquire_lock_in(ctx.state_dir(), timeout, printer)
}

/// Takes the apply lock kept in `dir` (also used by `relocate`, which writes links and the
/// registry as an apply does).
pub(crate) fn acquire_lock_in(
    dir: &std::path::Path,
    timeout: Duration,
    printer: &Printer,
) -> Result<ApplyLock> {
    fs_err::create_dir_all(dir)
        .with_context(|| format!("cannot create mlib's folder {}", dir.display()))?;
    let command = lock_command();
    // `5m`, `1h30m`, `250ms`: as --lock-timeout is written.
    let patience = jiff::SignedDuration::try_from(timeout)
        .map_or_else(|_| format!("{}s", timeout.as_secs()), |d| format!("{d:#}"));
    let mut on_wait = |holder: Option<&mlib_registry::LockHolder>| {
        match holder {
        Some(h) => printer.warn(format!(
            "waiting for lock held by pid {} on {} ({}, since {}; lock id {}); giving up after {patience}",
            h.pid, h.host, h.command, h.since, h.id,
        )),
        None => printer.warn("waiting for the store's apply lock"),
    }
    };
    Ok(ApplyLock::acquire(dir, &command, timeout, &mut on_wait)?)
}

/// What other applies are told holds the lock: this command line.
fn lock_command() -> String {
    std::env::args().collect::<Vec<_>>().join(" ")
}

fn confirm(printer: &Printer) -> Result<bool> {
    confirm_with(printer, "Apply these changes?")
}

/// Asks `question` on the terminal; only `yes` is a yes.
pub(super) fn confirm_with(printer: &Printer, question: &str) -> Result<bool> {
    eprint!(
        "\n{} ",
        printer.paint_bold(&format!("{question} Only 'yes' is accepted:"))
    );
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(answer.trim() == "yes")
}

/// Prints each finished action as it happens and feeds local copies into the progress
/// display (downloads report to it directly from the fetcher).
struct Events<'a> {
    printer: &'a Printer,
    targets: &'a Targets,
    manifest: &'a mlib_manifest::Manifest,
    progress: &'a Progress,
    local_ids: Mutex<HashMap<String, u64>>,
}

/// Local copies get ids far from the fetcher's, which count up from zero.
const LOCAL_ID_BASE: u64 = 1 << 62;

impl Events<'_> {
    fn is_local(&self, model: &str) -> bool {
        self.manifest
            .models
            .get(model)
            .is_some_and(|m| !mlib_fetch::is_remote(&m.source))
    }
}

impl ApplyEvents for Events<'_> {
    fn started(&self, action: &Action) {
        if self.printer.json {
            self.printer
                .event(json!({"type": "apply_start", "change": action}));
        }
        if let Action::Fetch(f) = action {
            if !self.printer.json {
                let source = self.targets.source(&f.source);
                self.progress
                    .println(&format!("  adding {} from {source}", f.model));
            }
            if self.is_local(&f.model) {
                let mut ids = self.local_ids.lock().expect("ids");
                let id = LOCAL_ID_BASE + ids.len() as u64;
                ids.insert(f.model.clone(), id);
                self.progress.start(id, &f.model, f.bytes);
            }
        }
    }

    fn finished(&self, action: &Action, error: Option<&ApplyError>) {
        if let Action::Fetch(f) = action
            && let Some(id) = self.local_ids.lock().expect("ids").get(&f.model)
        {
            match error {
                None => self.progress.finish(*id),
                Some(_) => self.progress.failed(*id),
            }
        }
        if self.printer.json {
            match error {
                None => self
                    .printer
                    .event(json!({"type": "apply_complete", "change": action})),
                Some(e) => self.printer.event(
                    json!({"type": "apply_errored", "change": action, "error": e.to_string()}),
                ),
            }
        } else if error.is_none() {
            self.printer
                .detail(render::action_line(self.printer, self.targets, action));
        }
    }

    fn progress(&self, model: &str, bytes: u64) {
        if let Some(id) = self.local_ids.lock().expect("ids").get(model) {
            self.progress.advance(*id, bytes);
        }
    }

    fn warning(&self, message: &str) {
        self.printer.warn(message);
    }

    fn transferred(&self, action: &Action, how: mlib_store::Transfer) {
        let Action::Adopt(adopt) = action else {
            return;
        };
        let message = format!("{how} into the store");
        if self.printer.json {
            self.printer.event(json!({
                "type": "note",
                "model": adopt.link.model,
                "how": how,
                "message": message,
            }));
        } else {
            let target = self.targets.show(&adopt.link.app, &adopt.link.target);
            self.progress.println(&format!("  {target}: {message}"));
        }
    }
}
