//! How a file's bytes got into the store, as plan and apply say it.

use serde::{Deserialize, Serialize};

/// One word per way, the same in human output and `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Transfer {
    /// Renamed into the store: the person's file is the stored copy now (same filesystem).
    Moved,
    /// Cloned (`FICLONE`): no byte copied, and the two copies are independent.
    Reflinked,
    /// A second name for the same inode (a HuggingFace cache blob): no byte copied, and the
    /// two share their bytes and mode.
    Hardlinked,
    /// Read and written again.
    Copied,
}

impl Transfer {
    pub fn label(self) -> &'static str {
        match self {
            Transfer::Moved => "moved",
            Transfer::Reflinked => "reflinked",
            Transfer::Hardlinked => "hardlinked",
            Transfer::Copied => "copied",
        }
    }

    /// Both files of a model together: copied as soon as one of them was.
    pub fn and(self, other: Transfer) -> Transfer {
        if self == other {
            self
        } else {
            Transfer::Copied
        }
    }
}

impl std::fmt::Display for Transfer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}
