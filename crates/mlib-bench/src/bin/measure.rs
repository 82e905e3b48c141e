//! Runs one command and reports its wall time, CPU time and peak RSS, precisely.
//!
//! `measure OUT_JSON CMD [ARGS...]` runs CMD (stdin, stdout and stderr inherited), waits for
//! it, writes `{"wall_s": .., "user_s": .., "sys_s": .., "maxrss_kib": .., "code": ..}` to
//! OUT_JSON and exits with CMD's exit code (1 if it was killed by a signal).
//!
//! Why not `os.wait4()` from Python: Linux carries a process's peak RSS across `exec`, so a
//! child forked (or vforked) from a Python interpreter reports at least the interpreter's own
//! RSS as its `ru_maxrss` (`python3 -c 'import os, subprocess; x = bytearray(200 << 20)...'`
//! makes even `true` report 200 MiB). This launcher is a few hundred KiB, so its children's
//! peak RSS is their own. Wall time is taken here, between spawn and wait, so Python's own
//! scheduling does not add to it either.

use std::process::{Command, Stdio};
use std::time::Instant;

use mlib_bench::Report;
use nix::sys::resource::{UsageWho, getrusage};
use nix::sys::time::TimeVal;

fn secs(t: TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args_os().skip(1);
    let usage = "usage: measure OUT_JSON CMD [ARGS...]";
    let out = args.next().ok_or(usage)?;
    let program = args.next().ok_or(usage)?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null());

    let start = Instant::now();
    let status = command.spawn()?.wait()?;
    let wall = start.elapsed().as_secs_f64();
    // This process has exactly one child, now waited for: RUSAGE_CHILDREN is that child.
    let rusage = getrusage(UsageWho::RUSAGE_CHILDREN)?;

    let code = status.code().unwrap_or(1);
    let mut report = Report::default();
    report.add("wall_s", wall);
    report.add("user_s", secs(rusage.user_time()));
    report.add("sys_s", secs(rusage.system_time()));
    report.add("maxrss_kib", rusage.max_rss() as f64);
    report.add("code", code as f64);
    std::fs::write(out, report.to_json())?;
    std::process::exit(code);
}
