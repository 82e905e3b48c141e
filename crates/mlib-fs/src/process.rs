//! A process, told apart from a later one that got the same pid.
//!
//! Pids are reused, and in a container the same few pids come back on every boot: a GPU pod
//! preempted during `mlib apply` runs its next `mlib apply` as, say, pid 7 again. So a process
//! is its pid *and* its start time (clock ticks after boot, from `/proc/{pid}/stat`), and it is
//! alive only if a process with that pid exists and started at that time.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::platform;

/// A process: pid and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Process {
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/{pid}/stat`, field 22); 0 where the
    /// system does not tell (then only the pid is compared).
    pub start: u64,
}

impl Process {
    /// This process.
    pub fn current() -> Process {
        static CURRENT: OnceLock<Process> = OnceLock::new();
        *CURRENT.get_or_init(|| {
            let pid = std::process::id();
            Process {
                pid,
                start: platform::process_start_time(pid).unwrap_or(0),
            }
        })
    }

    /// Whether this process is still running on this machine. When that cannot be told (no
    /// `/proc`, no permission to ask), it is taken as alive: the caller then leaves its files
    /// alone, which is always safe.
    pub fn is_alive(&self) -> bool {
        if *self == Process::current() {
            return true;
        }
        match platform::process_start_time(self.pid) {
            Some(start) => self.start == 0 || start == self.start,
            // A zombie (killed, not yet reaped by its parent) does nothing any more.
            None if platform::process_is_zombie(self.pid) => false,
            // No /proc entry: gone, or hidden (`hidepid` hides other users' processes). Ask
            // the kernel: only "no such process" means gone.
            None => platform::process_exists(self.pid),
        }
    }
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {}", self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_has_a_start_time() {
        let me = Process::current();
        assert_eq!(me.pid, std::process::id());
        assert!(me.start > 0, "Linux reports a start time");
        assert!(me.is_alive());
    }

    #[test]
    fn a_finished_child_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let start = platform::process_start_time(pid).unwrap_or(1);
        child.wait().unwrap();
        assert!(!Process { pid, start }.is_alive());
    }

    #[test]
    fn a_killed_child_not_yet_reaped_is_not_alive() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id();
        let start = platform::process_start_time(pid).unwrap();
        assert!(Process { pid, start }.is_alive());
        child.kill().unwrap();
        // Until `wait`, the child is a zombie.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!Process { pid, start }.is_alive());
        child.wait().unwrap();
    }

    #[test]
    fn the_same_pid_with_another_start_time_is_another_process() {
        let me = Process::current();
        let earlier = Process {
            pid: me.pid,
            start: me.start - 1,
        };
        assert!(!earlier.is_alive());
    }
}
