//! Exit codes, as CI and `startup.sh` scripts see them.
//!
//! Ctrl-C (SIGINT) is not caught: the signal ends mlib at once, as a kill would, and a shell
//! reports it as 130 (128 + 2). Nothing is left half-done that the next apply does not
//! finish (docs/RELIABILITY.md: apply is crash-safe against SIGKILL). Dying by the signal,
//! rather than catching it and exiting with 130, also lets a script that runs mlib stop on
//! Ctrl-C: a shell that sees its child exit normally assumes the child handled the signal,
//! and carries on with the next command.

/// 0: success (and, for `plan --detailed-exitcode`, no changes; for `status` and `doctor`,
/// nothing needs attention); 1: error, or findings (`status`, `doctor`, `verify`, `scan`);
/// 2: changes pending (`plan --detailed-exitcode` only). Clap's usage errors (an unknown flag, a bad
/// value) exit 2 too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Success,
    Failure,
    Changes,
}

impl Status {
    pub fn code(self) -> u8 {
        match self {
            Status::Success => 0,
            Status::Failure => 1,
            Status::Changes => 2,
        }
    }
}
