//! One file per command; `run` maps their outcome to an exit status and prints errors.

mod add;
mod apply;
mod approval;
mod bundle;
mod bundle_apply;
mod doctor;
mod du;
mod enrich;
mod env;
mod force_unlock;
mod gc;
mod import;
mod init;
mod inspect;
mod lock;
mod mirror;
mod plan;
mod planning;
mod relocate;
mod rm;
mod scan;
mod shell_help;
mod status;
mod update;
mod upkeep;
mod validate;
mod verify;
mod workflow;

use crate::context::ManifestReported;
use crate::exit::Status;
use crate::printer::Printer;
use crate::settings::{CommandSettings, Settings};

pub fn run(settings: Settings, printer: &Printer) -> Status {
    crate::render::version_event(printer, settings.command.name());
    let global = &settings.global;
    let result = match &settings.command {
        CommandSettings::Validate => validate::run(global, printer),
        CommandSettings::Plan(plan) => plan::run(global, plan, printer),
        CommandSettings::Apply(apply) => apply::run(global, apply, printer),
        CommandSettings::Status => status::run(global, printer),
        CommandSettings::Verify(verify) => verify::run(global, verify, printer),
        CommandSettings::EnvList => env::list(global, printer),
        CommandSettings::BundleCreate(create) => bundle::create(global, create, printer),
        CommandSettings::BundleLs { file } => bundle::ls(file, printer),
        CommandSettings::EnvForget(forget) => env::forget(global, forget, printer),
        CommandSettings::Rm(rm) => rm::run(global, rm, printer),
        CommandSettings::Gc(gc) => gc::run(global, gc, printer),
        CommandSettings::MirrorPush(args) => mirror::push(global, args, printer),
        CommandSettings::MirrorLs(args) => mirror::ls(global, args, printer),
        CommandSettings::Du { sort } => du::run(global, *sort, printer),
        CommandSettings::Doctor { fix } => doctor::run(global, *fix, printer),
        CommandSettings::Inspect { files } => inspect::run(files, printer),
        CommandSettings::Init(init) => init::run(global, init, printer),
        CommandSettings::Add(add) => add::run(global, add, printer),
        CommandSettings::Import(import) => import::run(global, import, printer),
        CommandSettings::Enrich {
            models,
            dry_run,
            remote,
        } => enrich::run(global, models, *dry_run, remote, printer),
        CommandSettings::Scan => scan::run(global, printer),
        CommandSettings::Lock(remote) => lock::run(global, remote, printer),
        CommandSettings::LockCheck => lock::check(global, printer),
        CommandSettings::Update(update) => update::run(global, update, printer),
        CommandSettings::Relocate(relocate) => relocate::run(global, relocate, printer),
        CommandSettings::ForceUnlock { id, force } => {
            force_unlock::run(global, id, *force, printer)
        }
        CommandSettings::Completions(shell) => shell_help::completions(*shell, printer),
        CommandSettings::Man => shell_help::man(printer),
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
