//! Asking before a command removes anything (`rm`, `gc`, `env forget`).

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Result, bail};
use mlib_registry::ApplyLock;

use crate::context::Context;
use crate::printer::Printer;
use crate::settings::ApprovalSettings;

/// How long a removing command waits for an apply on the same store: as long as apply's
/// default `--lock-timeout`.
const LOCK_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether to go ahead after showing what `command` would remove: never on a dry run, after
/// a typed `yes` on a terminal, at once with --auto-approve.
pub fn approved(printer: &Printer, approval: ApprovalSettings, command: &str) -> Result<bool> {
    match approval {
        ApprovalSettings::DryRun => {
            printer.info("Dry run: nothing was changed.");
            Ok(false)
        }
        ApprovalSettings::Approved => Ok(true),
        ApprovalSettings::Ask if !printer.stdin_is_tty => bail!(
            "{command} needs approval, and there is no terminal to ask on: pass --auto-approve, \
             or --dry-run to only see what it would do"
        ),
        ApprovalSettings::Ask => {
            eprint!(
                "\n{} ",
                printer.paint_bold("Go ahead? Only 'yes' is accepted:")
            );
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            if answer.trim() == "yes" {
                Ok(true)
            } else {
                printer.info("Cancelled: nothing was changed.");
                Ok(false)
            }
        }
    }
}

/// The store's apply lock: removing while an apply links the same models would race it.
pub fn lock(ctx: &Context, printer: &Printer) -> Result<ApplyLock> {
    super::apply::acquire_lock_in(ctx.state_dir(), LOCK_TIMEOUT, printer)
}
