//! Exit codes, as CI and `startup.sh` scripts see them.

/// 0: success (and, for `plan --detailed-exitcode`, no changes); 1: error; 2: changes
/// pending (`plan --detailed-exitcode` only); 130: interrupted.
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
