//! The `mlib` binary: parse arguments, run one command, map the outcome to an exit code.

mod cli;
mod commands;
mod context;
mod exit;
mod prefetch;
mod printer;
mod progress;
mod remote;
mod render;

use std::process::ExitCode;

use clap::Parser;

/// A no-op plan of a large manifest is hundreds of thousands of small allocations; mimalloc
/// makes it about a quarter faster than glibc's malloc (docs/ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let printer = printer::Printer::new(&cli.global);
    let status = commands::run(cli, &printer);
    ExitCode::from(status.code())
}
