//! Asking before a command removes anything (`rm`, `gc`, `env forget`).

use std::time::Duration;

use anyhow::{Result, bail};
use mlib_registry::{ApplyLock, StateOrigin};

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
            let yes = super::apply::confirm_with(printer, "Go ahead?")?;
            if !yes {
                printer.info("Cancelled: nothing was changed.");
            }
            Ok(yes)
        }
    }
}

/// The store's apply lock: removing while an apply links the same models would race it.
pub fn lock(ctx: &Context, printer: &Printer) -> Result<ApplyLock> {
    super::apply::acquire_lock_in(ctx.state_dir(), LOCK_TIMEOUT, printer)
}

/// Deleting from the store needs the registry that knows every environment using it: the
/// store's own. Refused where mlib keeps a per-user state folder (a read-only store, or a
/// store whose `.mlib` folder is another user's), since there the other users' links and
/// manifests are unknown; noted where the state was put elsewhere on purpose.
pub fn check_may_delete(ctx: &Context, printer: &Printer, command: &str) -> Result<()> {
    let store = ctx.store.root().display();
    match ctx.state.origin {
        StateOrigin::Store => Ok(()),
        StateOrigin::ReadOnlyStore => bail!(
            "the store {store} is read-only: {command} cannot delete from it. Ask whoever \
             manages the store to run `mlib {command}` with write access."
        ),
        StateOrigin::ForeignStateFolder => bail!(
            "the registry of the store {store} ({}) belongs to another user, and only it knows \
             which models their environments use: {command} from your own state could delete \
             them. Run `mlib {command}` as the store's owner.",
            ctx.store.mlib_dir().display()
        ),
        StateOrigin::Override | StateOrigin::Manifest => {
            printer.note(format!(
                "{command} knows only the environments recorded in {}: environments that keep \
                 their state elsewhere are not protected",
                ctx.state.dir.display()
            ));
            Ok(())
        }
    }
}
