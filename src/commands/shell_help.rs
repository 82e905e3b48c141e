//! `mlib completions SHELL` and `mlib man`: generated from the clap definitions, so they
//! never disagree with `--help`.

use anyhow::Result;
use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit::Status;
use crate::printer::Printer;

pub fn completions(shell: clap_complete::Shell, printer: &Printer) -> Result<Status> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mlib", &mut out);
    printer.data(&String::from_utf8_lossy(&out))?;
    Ok(Status::Success)
}

pub fn man(printer: &Printer) -> Result<Status> {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    printer.data(&String::from_utf8_lossy(&out))?;
    Ok(Status::Success)
}
