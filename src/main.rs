//! The `mlib` binary: parse arguments, resolve them with the environment into settings, run
//! one command, map the outcome to an exit code.

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

/// A no-op plan of a large manifest is hundreds of thousands of small allocations; mimalloc
/// makes it about a quarter faster than glibc's malloc (docs/ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::parse();
    let settings = settings::Settings::resolve(cli, &|name| std::env::var(name).ok());
    trace::init(settings.global.output.trace.as_deref());
    let printer = printer::Printer::new(&settings.global.output);
    let status = commands::run(settings, &printer);
    ExitCode::from(status.code())
}
