//! The `mlib` binary: parse arguments, resolve them with the environment into settings, run
//! one command, map the outcome to an exit code.

mod allocator;
mod cli;
mod commands;
mod context;
mod exit;
mod prefetch;
mod printer;
mod progress;
mod remote;
mod render;
mod settings;
mod trace;

use std::process::ExitCode;

fn main() -> ExitCode {
    allocator::tune();
    let cli = cli::parse();
    let settings = settings::Settings::resolve(cli, &|name| std::env::var(name).ok());
    trace::init(settings.global.output.trace.as_deref());
    let printer = printer::Printer::new(&settings.global.output);
    let status = commands::run(settings, &printer);
    ExitCode::from(status.code())
}
