//! One file per command; `run` maps their outcome to an exit status and prints errors.

mod apply;
mod env;
mod force_unlock;
mod lock;
mod plan;
mod planning;
mod scan;
mod status;
mod update;
mod validate;
mod verify;

use crate::cli::{Cli, Command};
use crate::context::ManifestReported;
use crate::exit::Status;
use crate::printer::Printer;

pub fn run(cli: Cli, printer: &Printer) -> Status {
    let name = match &cli.command {
        Command::Validate => "validate",
        Command::Plan(_) => "plan",
        Command::Apply(_) => "apply",
        Command::Status => "status",
        Command::Verify(_) => "verify",
        Command::Env(_) => "env",
        Command::Scan => "scan",
        Command::Lock(_) => "lock",
        Command::Update(_) => "update",
        Command::ForceUnlock { .. } => "force-unlock",
    };
    crate::render::version_event(printer, name);
    let global = &cli.global;
    let file = global.file.clone();
    let result = match cli.command {
        Command::Validate => validate::run(&file, printer),
        Command::Plan(args) => plan::run(global, &args, printer),
        Command::Apply(args) => apply::run(global, &args, printer),
        Command::Status => status::run(global, printer),
        Command::Verify(args) => verify::run(global, &args, printer),
        Command::Env(crate::cli::EnvCommand::List) => env::list(global, printer),
        Command::Scan => scan::run(global, printer),
        Command::Lock(args) => lock::run(&file, &args, printer),
        Command::Update(args) => update::run(&file, &args, printer),
        Command::ForceUnlock { id, force } => force_unlock::run(global, &id, force, printer),
    };
    match result {
        Ok(status) => status,
        Err(err) => {
            if err.downcast_ref::<ManifestReported>().is_none() {
                printer.error(format!("{err:#}"));
            }
            Status::Failure
        }
    }
}
