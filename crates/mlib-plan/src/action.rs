//! The plan's vocabulary: what would change, one item per line of `mlib plan`.
//!
//! Actions are plain data (serde) so a plan can be saved (`plan -o`), shown as JSON events,
//! and compared with a fresh plan when a saved plan is applied.

use std::path::PathBuf;

use mlib_fs::FileStamp;
use serde::{Deserialize, Serialize};

/// Why a model has to be fetched (copied or downloaded) into the store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchReason {
    /// Not in the store yet.
    Missing,
    /// The manifest or lock pins a hash the stored copy does not have.
    HashChanged,
    /// A store file is missing.
    Damaged,
    /// A store file's bytes are not what its metadata.json says (changed through a hard
    /// link, by a person, or by the disk): it goes to quarantine and the model is fetched
    /// again.
    Corrupt,
    /// The local source file changed since it was copied in.
    SourceChanged,
}

/// How a link will be (or was) made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkHow {
    /// A relative symlink (link and store on one filesystem): survives moving the whole tree.
    RelativeSymlink,
    /// An absolute symlink (across filesystems, or asked for): breaks if the store moves.
    AbsoluteSymlink,
    Hardlink,
    Copy,
}

impl LinkHow {
    pub fn is_symlink(self) -> bool {
        matches!(self, LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink)
    }

    pub fn label(self) -> &'static str {
        match self {
            LinkHow::RelativeSymlink => "relative symlink",
            LinkHow::AbsoluteSymlink => "absolute symlink",
            LinkHow::Hardlink => "hardlink",
            LinkHow::Copy => "copy",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fetch {
    pub model: String,
    /// The manifest's source, for display.
    pub source: String,
    pub reason: FetchReason,
    /// Bytes to copy or download, when known without fetching.
    pub bytes: Option<u64>,
    /// Store files (relative to the store root) to move to `.mlib/quarantine/` first: their
    /// bytes are not the model's, and mlib never deletes what it cannot vouch for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quarantine: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub model: String,
    pub app: String,
    /// Where the link goes (inside the app).
    pub target: PathBuf,
    /// The store entry it points at.
    pub source: PathBuf,
    pub how: LinkHow,
    /// The registry row this link replaces (relinks, and links whose row went stale).
    pub replaces: Option<i64>,
    /// For a link that moves (the app's folder mapping changed): where mlib's old link is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_from: Option<PathBuf>,
    /// A hard link whose bytes were changed through it (they are the store file's): replaced
    /// although its stat changed, as long as it is still the inode mlib linked, since those
    /// bytes are kept in quarantine.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub heal: bool,
    /// For a relink in place: what the link there is now, so the plan line can show old →
    /// new (the store entry it points at, or how it is made).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Previous>,
    /// One file of a folder model linked file by file (a link farm) into an app that does not
    /// look inside linked folders: the folders above it are real ones mlib makes, and the
    /// link is never made through a linked folder.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub farm: bool,
    /// A whole-folder link (`link: folder`) where a real folder is now: what becomes of it
    /// first (its placeholders removed, or the folder renamed to a backup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<Box<crate::placeholder::Clear>>,
    /// What the symlink says when it is not `source`: the app runs in a container that sees
    /// the store elsewhere (`container.store`), so the link names the store as it is there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<PathBuf>,
}

/// The registry's `model` of a whole-folder link: `folder:*` for an app's whole models
/// folder, `folder:TYPE` for one type's folder. No model name has a `:`.
pub const FOLDER_LINK_PREFIX: &str = "folder:";

impl Link {
    /// Whether this is one link to a whole store folder rather than to a model.
    pub fn is_folder_link(&self) -> bool {
        self.model.starts_with(FOLDER_LINK_PREFIX)
    }
}

/// What a link being replaced is, as its registry record says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Previous {
    /// The store entry it points at (or was copied from).
    pub source: PathBuf,
    /// `symlink`, `hardlink` or `copy`.
    pub kind: String,
}

/// A model renamed in the manifest, or moved to another type or family: its store folder is
/// renamed (same bytes, same inodes), never copied or downloaded again. Planned only for a
/// model the manifest no longer declares and no other environment links.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rename {
    /// The model's new name (the manifest's).
    pub model: String,
    /// The name its `metadata.json` has now.
    pub from: String,
    /// The model's folder in the store now and afterwards (physical paths).
    pub from_dir: PathBuf,
    pub to_dir: PathBuf,
    /// The bytes that are not copied.
    pub bytes: u64,
    /// The model's store files at their new place, with the stamps and hashes they were
    /// trusted with at the old one (a rename of their folder changes neither): apply indexes
    /// them there, each only if its stamp is still that one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<Verified>,
    /// The old place's index keys, dropped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub old_files: Vec<String>,
}

/// A model an app selects but does not get, because the app's version is not one the model's
/// `requires:` allows. Not a change: the plan shows it so that a missing model is explained
/// (a link made for it earlier is unlinked as any link no longer wanted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub model: String,
    pub app: String,
    /// The `requires:` key that excludes the app (its name or its preset).
    pub key: String,
    /// That key's specifiers (`>=0.3.40`).
    pub requires: String,
    /// The app's version.
    pub found: String,
    /// Where that version was read (`comfyui_version.py`, `git tag v1.10.1`, `version:` in
    /// the manifest).
    pub from: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unlink {
    pub model: String,
    pub app: String,
    pub target: PathBuf,
    pub record: i64,
    /// For a link of a link farm: the farm's folder, removed (with the folders between) once
    /// the link's removal leaves them empty. Only empty folders are removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PathBuf>,
}

/// Replace a user's file by a link, after checking its hash equals the model's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Adopt {
    pub link: Link,
    /// The file's sha256; `None` for a folder that is the model's own local source (nothing
    /// to compare: it is what the model is made of).
    #[serde(default)]
    pub sha256: Option<String>,
    /// The store has no copy yet: the user's file moves into the store.
    pub into_store: bool,
    /// How it gets there, as far as the plan can tell: `moved` (a rename, on the store's
    /// filesystem), else `reflinked` or `copied` (apply says which it did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<mlib_store::Transfer>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub model: String,
    pub app: String,
    pub target: PathBuf,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Fetch(Fetch),
    Rename(Rename),
    Link(Link),
    Relink(Link),
    Unlink(Unlink),
    Adopt(Adopt),
    Conflict(Conflict),
}

impl Action {
    /// The Terraform-style symbol shown in front of the line.
    pub fn symbol(&self) -> char {
        match self {
            Action::Fetch(_) | Action::Link(_) | Action::Adopt(_) => '+',
            Action::Relink(_) | Action::Rename(_) => '~',
            Action::Unlink(_) => '-',
            Action::Conflict(_) => '!',
        }
    }

    pub fn model(&self) -> &str {
        match self {
            Action::Fetch(f) => &f.model,
            Action::Rename(r) => &r.model,
            Action::Link(l) | Action::Relink(l) => &l.model,
            Action::Adopt(a) => &a.link.model,
            Action::Unlink(u) => &u.model,
            Action::Conflict(c) => &c.model,
        }
    }
}

/// Registry housekeeping that changes nothing a user can see, so it is not a "change":
/// recording a correct link the registry lost, forgetting rows of links that are gone, and
/// refreshing the file index.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bookkeeping {
    Record(Link),
    Forget {
        record: i64,
        target: PathBuf,
    },
    /// Record store files verified while planning in the file index.
    Index {
        model: String,
        files: Vec<Verified>,
    },
    /// Make another environment's link record this environment's, before anything else runs:
    /// links an older mlib recorded for this manifest, and links of this environment under
    /// another identity (see `decide::OtherManifest::may_take_over`).
    Claim {
        record: i64,
    },
}

/// A store file whose hashes were verified while planning (by hashing it, or by the stamp
/// its metadata.json recorded), with the stamp it had then: apply indexes it only if the
/// file still has that stamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Relative to the store root, `/`-separated.
    pub path: String,
    pub stamp: FileStamp,
    pub sha256: String,
    pub blake3: String,
}

/// Something found on disk that differs from what mlib left there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drift {
    /// The link in an app folder, or the store file.
    pub target: PathBuf,
    pub model: String,
    /// The app whose link drifted; empty for a store file.
    pub app: String,
    pub what: String,
}

impl Drift {
    /// Drift of a store file rather than of a link.
    pub fn is_store(&self) -> bool {
        self.app.is_empty()
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub fetch: usize,
    pub fetch_bytes: u64,
    /// Fetches whose size is unknown until they run.
    pub fetch_unknown_size: usize,
    pub link: usize,
    pub relink: usize,
    pub unlink: usize,
    pub adopt: usize,
    pub conflict: usize,
    /// Models moved inside the store (renamed, or another type or family).
    #[serde(default)]
    pub rename: usize,
}

impl Summary {
    pub fn of(actions: &[Action]) -> Summary {
        let mut s = Summary::default();
        for action in actions {
            match action {
                Action::Fetch(f) => {
                    s.fetch += 1;
                    match f.bytes {
                        Some(bytes) => s.fetch_bytes += bytes,
                        None => s.fetch_unknown_size += 1,
                    }
                }
                Action::Rename(_) => s.rename += 1,
                Action::Link(_) => s.link += 1,
                Action::Relink(_) => s.relink += 1,
                Action::Unlink(_) => s.unlink += 1,
                Action::Adopt(_) => s.adopt += 1,
                Action::Conflict(_) => s.conflict += 1,
            }
        }
        s
    }

    /// Changes apply would make (conflicts are refused, so they are not changes).
    pub fn changes(&self) -> usize {
        self.fetch + self.rename + self.link + self.relink + self.unlink + self.adopt
    }
}
