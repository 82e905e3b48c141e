//! `mlib relocate --from OLD --to NEW`: the store or an app tree moved; links that pointed
//! under OLD and every registry path under OLD move to NEW (see `mlib_plan::relocate`).
//!
//! The registry is found through the manifest. Its `store:`, `state:` and apps' `root:` still
//! under OLD are read as if they were under NEW already (the user may run relocate before
//! editing the manifest, or the store's `.mlib` would not be found), and each such field is
//! named so the user can update it: relocate never edits the manifest.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result, bail};
use mlib_manifest::Manifest;
use mlib_plan::EnvIdentity;
use mlib_plan::relocate::{LinkRelocation, Outcome, RelocateInput, RelocationReport};
use mlib_registry::{Registry, rebase};
use serde_json::json;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{GlobalSettings, RelocateSettings};

pub fn run(global: &GlobalSettings, args: &RelocateSettings, printer: &Printer) -> Result<Status> {
    let (from, to) = folders(&args.from, &args.to)?;
    let interactive = !args.dry_run && !args.auto_approve;
    if interactive && !printer.stdin_is_tty {
        bail!(
            "relocate needs approval, and there is no terminal to ask on: pass --auto-approve \
             (see what it would change first with --dry-run)"
        );
    }
    let mut manifest = crate::context::load_manifest(global, printer)?;
    let stale = move_manifest_paths(&mut manifest, &from, &to);
    let ctx = Context::from_manifest(manifest, global, printer)?;
    let rekey = rekey(&ctx, global.env_name.as_deref(), &from, &to);

    let path = ctx.state.registry_path();
    if !path.exists() {
        bail!(
            "no link registry at {} (the state of the store {}): nothing to relocate. If the \
             store moved, set `store:` in {} to its new place{}",
            path.display(),
            ctx.store.root().display(),
            ctx.manifest.path.display(),
            if global.state_dir.is_some() {
                ""
            } else {
                ", or give its state folder with --state-dir"
            }
        );
    }
    // A dry run reads, as plan does; the real run writes under the apply lock, as apply does.
    let (registry, _locks) = if args.dry_run {
        let writable = mlib_fs::is_writable(ctx.state_dir());
        let registry = Registry::open_for_reading(&path, writable)
            .with_context(|| format!("cannot read the link registry {}", path.display()))?;
        (registry, Vec::new())
    } else {
        let mut locks = vec![super::apply::acquire_lock_in(
            ctx.state_dir(),
            args.lock_timeout,
            printer,
        )?];
        if ctx.state.is_outside_store() && ctx.state.store_writable {
            locks.push(super::apply::acquire_lock_in(
                &ctx.store.mlib_dir(),
                args.lock_timeout,
                printer,
            )?);
        }
        let registry = Registry::open(&path)
            .with_context(|| format!("cannot open the link registry {}", path.display()))?;
        (registry, locks)
    };
    check_store(&ctx, &registry, &from, &to)?;
    for line in &stale {
        printer.note(line);
    }

    let input = RelocateInput {
        registry: &registry,
        from: &from,
        to: &to,
        rekey: &rekey,
    };
    let preview = mlib_plan::relocate::preview(&input)?;
    if !preview.has_changes() {
        report(printer, &from, &to, &path, &preview, Done::Nothing);
        return Ok(Status::Success);
    }
    if args.dry_run {
        report(printer, &from, &to, &path, &preview, Done::DryRun);
        return Ok(Status::Success);
    }
    if interactive {
        report(printer, &from, &to, &path, &preview, Done::Asking);
        if !super::apply::confirm_with(printer, "Relocate these links and registry rows?")? {
            printer.info("Relocate cancelled.");
            return Ok(Status::Failure);
        }
    }
    let done = mlib_plan::relocate::relocate(&input)?;
    let shown = if interactive {
        Done::Confirmed
    } else {
        Done::Relocated
    };
    report(printer, &from, &to, &path, &done, shown);
    Ok(Status::Success)
}

/// `--from` and `--to` as the registry records paths (physical), after checking them.
fn folders(from: &Path, to: &Path) -> Result<(PathBuf, PathBuf)> {
    let to_real = match to.canonicalize() {
        Ok(real) => real,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => bail!(
            "--to {}: no such folder. Move the store or app folder there (or mount its drive) \
             first, then run `mlib relocate` again; --from need not exist any more",
            to.display()
        ),
        Err(err) => bail!("--to {}: {err}", to.display()),
    };
    if !to_real.is_dir() {
        bail!(
            "--to {} is not a folder: give the folder the store or app tree is in now",
            to.display()
        );
    }
    // The old place may be gone (an unmounted drive): what is left of it is resolved.
    let from_real =
        mlib_plan::paths::physical(from).unwrap_or_else(|_| mlib_plan::paths::normalize(from));
    if from_real == to_real {
        bail!(
            "--from and --to are the same folder ({}): nothing to relocate",
            to_real.display()
        );
    }
    // Paths already under NEW would match OLD again: a second run would move them twice.
    if to_real.starts_with(&from_real) || from_real.starts_with(&to_real) {
        bail!(
            "--from {} and --to {} are one inside the other: relocate moves paths from one \
             folder to a folder outside it",
            from_real.display(),
            to_real.display()
        );
    }
    Ok((from_real, to_real))
}

/// Reads the manifest's paths still under `from` as under `to`; returns a note per field the
/// user should update.
fn move_manifest_paths(manifest: &mut Manifest, from: &Path, to: &Path) -> Vec<String> {
    let file = manifest
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut notes = Vec::new();
    let mut moved = |field: String, path: &mut PathBuf| {
        if let Some(new) = rebase(path, from, to) {
            notes.push(format!(
                "{file}'s {field} still says {}: read as {} for this relocate; update it, or \
                 plan and apply will look there",
                path.display(),
                new.display()
            ));
            *path = new;
        }
    };
    moved("`store:`".into(), &mut manifest.store);
    if let Some(state) = &mut manifest.state {
        moved("`state:`".into(), state);
    }
    for app in manifest.apps.values_mut() {
        moved(format!("app `{}`'s `root:`", app.name), &mut app.root);
    }
    notes
}

/// The environment's key before and after the move, when they differ: an environment without
/// a name is known by its manifest's path and its store, and either may have moved.
fn rekey(ctx: &Context, name: Option<&str>, from: &Path, to: &Path) -> Vec<(String, String)> {
    let mut before = ctx.manifest.clone();
    before.store = rebase(&before.store, to, from).unwrap_or(before.store);
    let manifest = Path::new(&ctx.env.manifest);
    let manifest_before = rebase(manifest, to, from).unwrap_or_else(|| manifest.to_path_buf());
    let old = EnvIdentity::of(&before, &manifest_before.to_string_lossy(), name).key;
    if old == ctx.env.key {
        Vec::new()
    } else {
        vec![(old, ctx.env.key.clone())]
    }
}

/// The registry must describe this store, before or after the move.
fn check_store(ctx: &Context, registry: &Registry, from: &Path, to: &Path) -> Result<()> {
    let Some(registered) = registry.store()? else {
        return Ok(());
    };
    let moved =
        rebase(Path::new(&registered), from, to).unwrap_or_else(|| registered.clone().into());
    // A state folder inside the store follows it wherever it goes.
    if ctx.state.is_outside_store() && moved != ctx.store_root {
        bail!(
            "the registry {} describes the store {registered}, which is neither {} nor under \
             --from {}: give the manifest of that store (-f), or the state folder of this one \
             (--state-dir)",
            registry.path().display(),
            ctx.store_root.display(),
            from.display()
        );
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Done {
    /// Nothing is under OLD.
    Nothing,
    DryRun,
    /// Shown before the confirmation question.
    Asking,
    /// Done after a confirmation: the list was shown already.
    Confirmed,
    Relocated,
}

fn report(
    printer: &Printer,
    from: &Path,
    to: &Path,
    registry: &Path,
    report: &RelocationReport,
    done: Done,
) {
    if printer.json {
        if done == Done::Asking {
            return;
        }
        for link in &report.links {
            let mut event = serde_json::to_value(link).expect("a link serializes");
            event["type"] = json!("relocate_link");
            printer.event(event);
        }
        printer.event(json!({
            "type": "relocate_summary",
            "from": from,
            "to": to,
            "registry": registry,
            "dry_run": done == Done::DryRun,
            "links_rewritten": report.rewrites(),
            "links_left_alone": count(report, |o| matches!(o, Outcome::LeftAlone { .. })),
            "links_missing": count(report, |o| matches!(o, Outcome::Missing)),
            "rows": report.rows,
        }));
        return;
    }
    let rewrites = report.rewrites();
    let rows = report.rows.total();
    if done == Done::Nothing {
        printer.info(format!(
            "Nothing to relocate: no link and no registry path is under {} (registry {}).",
            from.display(),
            registry.display()
        ));
        return;
    }
    if done != Done::Confirmed {
        printer.info(format!(
            "Relocating from {} to {} (registry {}):",
            from.display(),
            to.display(),
            registry.display()
        ));
        for link in &report.links {
            let line = link_line(printer, link);
            match link.outcome {
                Outcome::InPlace => printer.detail(line),
                _ => printer.info(line),
            }
        }
        let columns: Vec<String> = report
            .rows
            .by_column()
            .iter()
            .filter(|(_, n)| *n > 0)
            .map(|(column, n)| format!("{column} {n}"))
            .collect();
        if !columns.is_empty() {
            printer.info(format!("  registry rows: {}", columns.join(", ")));
        }
    }
    let left = count(report, |o| matches!(o, Outcome::LeftAlone { .. }));
    let left = if left > 0 {
        format!(
            " {left} link{} left alone (see `!` above).",
            if left == 1 { "" } else { "s" }
        )
    } else {
        String::new()
    };
    let what = |verb: &str| {
        format!(
            "{rewrites} link{} {verb}, {rows} registry row{} {}",
            if rewrites == 1 { "" } else { "s" },
            if rows == 1 { "" } else { "s" },
            if verb == "to rewrite" {
                "to update"
            } else {
                "updated"
            },
        )
    };
    match done {
        Done::DryRun => printer.info(printer.paint_bold(&format!(
            "\nDry run: {}; nothing was changed.{left}",
            what("to rewrite")
        ))),
        Done::Asking => printer.info(format!("\nRelocate: {}.{left}", what("to rewrite"))),
        Done::Confirmed | Done::Relocated => printer.info(printer.paint_bold(&format!(
            "\nRelocate complete: {}.{left}",
            what("rewritten")
        ))),
        Done::Nothing => {}
    }
}

fn count(report: &RelocationReport, matches: impl Fn(&Outcome) -> bool) -> usize {
    report.links.iter().filter(|l| matches(&l.outcome)).count()
}

fn link_line(printer: &Printer, link: &LinkRelocation) -> String {
    let at = format!("{} {}: {}", link.model, link.app, link.target.display());
    match &link.outcome {
        Outcome::Rewrite { content } => format!(
            "  {} rewrite     {at} -> {}",
            printer.paint_change("~"),
            content.display()
        ),
        Outcome::InPlace => format!("  = in place    {at} ({}, record moves)", link.kind),
        Outcome::Missing => format!(
            "  {} missing     {at}: nothing there; its record moves (`mlib apply` links it again)",
            printer.paint_warn("?")
        ),
        Outcome::LeftAlone { why } => {
            format!("  {} left alone  {at}: {why}", printer.paint_error("!"))
        }
    }
}
