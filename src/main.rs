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

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let printer = printer::Printer::new(&cli.global);
    let status = commands::run(cli, &printer);
    ExitCode::from(status.code())
}
