//! `mlib force-unlock ID`: release an apply lock whose holder is gone.

use anyhow::Result;

use crate::context::Context;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::GlobalSettings;

pub fn run(global: &GlobalSettings, id: &str, force: bool, printer: &Printer) -> Result<Status> {
    let ctx = Context::load(global, printer)?;
    let holder = mlib_registry::ApplyLock::force_unlock(ctx.state_dir(), id, force)?;
    printer.info(format!(
        "Released lock {} held by pid {} on {} ({}, since {}).",
        holder.id, holder.pid, holder.host, holder.command, holder.since
    ));
    Ok(Status::Success)
}
