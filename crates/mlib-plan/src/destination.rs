//! Where `mlib plan -o FILE` may save a plan, and why not.
//!
//! Saving replaces FILE, so FILE must be something whose loss costs nothing: a new file, a
//! plan saved before (the normal re-plan loop), or, when asked with `--force`, another regular
//! file. Never the manifest or its lock file (however they are reached: a symlink, `x/../`, a
//! hard link), never a symlink (its target is someone else's file), never a directory, device,
//! FIFO or socket.

use std::fs::FileType;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use mlib_fs::platform;
use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::error::PlanError;

/// What a saved plan must not replace, and whether another existing file may be replaced.
#[derive(Clone, Copy, Debug)]
pub struct PlanDestination<'a> {
    /// The manifest the plan is for.
    pub manifest: &'a Path,
    /// The manifest's lock file(s), whether they exist yet or not.
    pub lock_files: &'a [PathBuf],
    /// Replace an existing regular file even though it is not a saved plan (`--force`).
    pub force: bool,
}

/// Why a plan is not saved at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The path is the manifest (this path, canonical or not).
    Manifest { manifest: PathBuf },
    /// The path is the manifest's lock file.
    LockFile { lock: PathBuf },
    /// The path is a symbolic link (to `target`).
    Symlink { target: PathBuf },
    /// The path is a directory, device, FIFO or socket (`kind`).
    NotRegular { kind: &'static str },
    /// The path is a regular file that is not a saved plan; `json` tells whether it is JSON.
    NotAPlan { json: bool },
    /// The path names no file (empty, or ending in `/` or `..`).
    NoFileName,
    /// The folder the path is in does not exist (or is not a folder).
    NoFolder { dir: PathBuf },
}

impl Refusal {
    /// What is wrong and what to do, after "cannot save the plan to PATH: ".
    pub fn describe(&self, path: &Path) -> String {
        const ELSEWHERE: &str = "Save the plan to another file, e.g. `mlib plan -o plan.json`.";
        match self {
            Refusal::Manifest { manifest } => format!(
                "it is the manifest ({}), which the plan would replace. {ELSEWHERE}",
                manifest.display()
            ),
            Refusal::LockFile { lock } => format!(
                "it is the manifest's lock file ({}), not a place for a plan. {ELSEWHERE}",
                lock.display()
            ),
            Refusal::NoFolder { dir } => format!(
                "there is no folder {} to save it in. Create the folder, or save the plan to \
                 another file.",
                dir.display()
            ),
            Refusal::Symlink { target } => format!(
                "it is a symbolic link (to {}), and a plan is saved only as a regular file, \
                 never through a link. Remove the link or save the plan to another file.",
                target.display()
            ),
            Refusal::NotRegular { kind: "directory" } => format!(
                "it is a directory. Save the plan to a file in it, e.g. `mlib plan -o {}`.",
                path.join("plan.json").display()
            ),
            Refusal::NotRegular { kind } => {
                format!("it is a {kind}, not a regular file. {ELSEWHERE}")
            }
            Refusal::NotAPlan { json } => format!(
                "it is not a plan saved by mlib ({}), and replacing it would lose it. Save the \
                 plan to another file, or pass --force to replace it.",
                if *json {
                    "JSON without the fields of a saved plan"
                } else {
                    "not JSON"
                }
            ),
            Refusal::NoFileName => format!("it does not name a file. {ELSEWHERE}"),
        }
    }
}

impl PlanDestination<'_> {
    /// `Ok` when a plan may be saved at `path` (replacing what is there, if anything),
    /// [`PlanError::Destination`] with the reason when not. Reads, never writes.
    pub fn check(&self, path: &Path) -> Result<(), PlanError> {
        let refuse = |refusal| {
            Err(PlanError::Destination {
                path: path.to_path_buf(),
                refusal,
            })
        };
        if path.file_name().is_none() || platform::ends_with_separator(path) {
            return refuse(match std::fs::metadata(path) {
                Ok(meta) if meta.is_dir() => Refusal::NotRegular { kind: "directory" },
                _ => Refusal::NoFileName,
            });
        }
        if same_file(path, self.manifest) {
            return refuse(Refusal::Manifest {
                manifest: self.manifest.to_path_buf(),
            });
        }
        if let Some(lock) = self.lock_files.iter().find(|lock| same_file(path, lock)) {
            return refuse(Refusal::LockFile { lock: lock.clone() });
        }
        let meta = match fs_err::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
                ) =>
            {
                let dir = mlib_fs::parent_dir(path);
                return match std::fs::metadata(dir) {
                    Ok(meta) if meta.is_dir() => Ok(()),
                    _ => refuse(Refusal::NoFolder {
                        dir: dir.to_path_buf(),
                    }),
                };
            }
            Err(err) => return Err(PlanError::IoPlain(err)),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let target = fs_err::read_link(path).unwrap_or_else(|_| PathBuf::from("?"));
            return refuse(Refusal::Symlink { target });
        }
        if !kind.is_file() {
            return refuse(Refusal::NotRegular {
                kind: kind_name(kind),
            });
        }
        // An empty file (`mktemp`, `touch`) holds nothing to lose.
        if meta.len() == 0 || self.force {
            return Ok(());
        }
        match read_marker(path) {
            Ok(Marker::SavedPlan) => Ok(()),
            Ok(Marker::Json) => refuse(Refusal::NotAPlan { json: true }),
            Ok(Marker::NotJson) => refuse(Refusal::NotAPlan { json: false }),
            Err(source) => Err(PlanError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }
}

/// Whether `a` and `b` are the same file: the same inode (through symlinks and hard links),
/// or, for files that do not exist yet, the same name in the same canonical folder.
fn same_file(a: &Path, b: &Path) -> bool {
    if let (Ok(x), Ok(y)) = (std::fs::metadata(a), std::fs::metadata(b))
        && platform::file_id(&x) == platform::file_id(&y)
    {
        return true;
    }
    fn resolved(path: &Path) -> Option<PathBuf> {
        let name = path.file_name()?;
        let dir = std::fs::canonicalize(mlib_fs::parent_dir(path)).ok()?;
        Some(dir.join(name))
    }
    matches!((resolved(a), resolved(b)), (Some(x), Some(y)) if x == y)
}

fn kind_name(kind: FileType) -> &'static str {
    if kind.is_dir() {
        "directory"
    } else if platform::is_fifo(kind) {
        "FIFO (named pipe)"
    } else if platform::is_socket(kind) {
        "socket"
    } else if platform::is_char_device(kind) {
        "character device"
    } else if platform::is_block_device(kind) {
        "block device"
    } else {
        "special file"
    }
}

enum Marker {
    SavedPlan,
    Json,
    NotJson,
}

/// The fields every saved plan has had, in every format: enough to tell a plan from any other
/// JSON file. The rest of the file is skipped as it streams by, so a large file that is not a
/// plan costs at most one read up to its first byte that is not JSON.
#[derive(Deserialize)]
#[expect(
    dead_code,
    reason = "only whether the fields are there, with these types, counts"
)]
struct PlanFields {
    format: u64,
    manifest: String,
    manifest_digest: String,
    registry_lineage: String,
    registry_serial: u64,
    actions: Vec<IgnoredAny>,
}

fn read_marker(path: &Path) -> io::Result<Marker> {
    // Not through a symlink, and without waiting on a FIFO, should one appear since the lstat.
    let file = platform::open_no_follow(path)?;
    if !file.metadata()?.is_file() {
        return Ok(Marker::NotJson);
    }
    match serde_json::from_reader::<_, PlanFields>(BufReader::new(file)) {
        Ok(_) => Ok(Marker::SavedPlan),
        Err(err) if err.is_io() => Err(io::Error::from(err)),
        Err(err) if err.is_data() => Ok(Marker::Json),
        Err(_) => Ok(Marker::NotJson),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Dir {
        _tmp: tempfile::TempDir,
        root: PathBuf,
        manifest: PathBuf,
        locks: Vec<PathBuf>,
    }

    fn dir() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let manifest = root.join("models.yaml");
        std::fs::write(&manifest, "version: 1\n").unwrap();
        let locks = vec![root.join("models.lock")];
        Dir {
            _tmp: tmp,
            root,
            manifest,
            locks,
        }
    }

    fn check(dir: &Dir, path: &Path, force: bool) -> Result<(), Refusal> {
        let destination = PlanDestination {
            manifest: &dir.manifest,
            lock_files: &dir.locks,
            force,
        };
        match destination.check(path) {
            Ok(()) => Ok(()),
            Err(PlanError::Destination { refusal, .. }) => Err(refusal),
            Err(other) => panic!("{other}"),
        }
    }

    #[test]
    fn a_new_file_an_empty_file_and_a_saved_plan_may_be_replaced() {
        let dir = dir();
        assert_eq!(check(&dir, &dir.root.join("plan.json"), false), Ok(()));
        std::fs::write(dir.root.join("empty"), "").unwrap();
        assert_eq!(check(&dir, &dir.root.join("empty"), false), Ok(()));
        // A plan of format 1 (no checksum) is a plan too.
        let old = r#"{"format": 1, "manifest": "/m.yaml", "manifest_digest": "ab",
            "lock_digest": null, "registry_lineage": "", "registry_serial": 0,
            "adopt": false, "drift": [], "actions": [{"action": "fetch"}]}"#;
        std::fs::write(dir.root.join("old.json"), old).unwrap();
        assert_eq!(check(&dir, &dir.root.join("old.json"), false), Ok(()));
    }

    #[test]
    fn the_manifest_is_refused_however_it_is_named() {
        let dir = dir();
        std::fs::create_dir(dir.root.join("sub")).unwrap();
        std::fs::hard_link(&dir.manifest, dir.root.join("hard.yaml")).unwrap();
        std::os::unix::fs::symlink("models.yaml", dir.root.join("soft.yaml")).unwrap();
        let manifest = Err(Refusal::Manifest {
            manifest: dir.manifest.clone(),
        });
        for name in [
            "models.yaml",
            "sub/../models.yaml",
            "hard.yaml",
            "soft.yaml",
        ] {
            assert_eq!(check(&dir, &dir.root.join(name), true), manifest, "{name}");
        }
    }

    #[test]
    fn the_lock_file_is_refused_even_before_it_exists() {
        let dir = dir();
        let lock = Err(Refusal::LockFile {
            lock: dir.locks[0].clone(),
        });
        assert_eq!(check(&dir, &dir.root.join("models.lock"), true), lock);
        std::fs::create_dir(dir.root.join("sub")).unwrap();
        assert_eq!(
            check(&dir, &dir.root.join("sub/../models.lock"), true),
            lock
        );
        assert_eq!(
            check(&dir, &dir.root.join("sub/models.lock"), false),
            Ok(())
        );
    }

    #[test]
    fn other_files_are_told_apart() {
        let dir = dir();
        let at = |name: &str| dir.root.join(name);
        std::fs::write(at("notes.txt"), "mine").unwrap();
        std::fs::write(at("list.json"), "[1, 2]").unwrap();
        std::fs::write(at("half.json"), r#"{"format": 2, "manifest": "#).unwrap();
        assert_eq!(
            check(&dir, &at("notes.txt"), false),
            Err(Refusal::NotAPlan { json: false })
        );
        assert_eq!(
            check(&dir, &at("list.json"), false),
            Err(Refusal::NotAPlan { json: true })
        );
        assert_eq!(
            check(&dir, &at("half.json"), false),
            Err(Refusal::NotAPlan { json: false })
        );
        assert_eq!(check(&dir, &at("notes.txt"), true), Ok(()));
        std::os::unix::fs::symlink("notes.txt", at("link")).unwrap();
        assert_eq!(
            check(&dir, &at("link"), true),
            Err(Refusal::Symlink {
                target: "notes.txt".into()
            })
        );
        assert_eq!(
            check(&dir, &dir.root, true),
            Err(Refusal::NotRegular { kind: "directory" })
        );
        assert_eq!(
            check(&dir, Path::new("/dev/null"), true),
            Err(Refusal::NotRegular {
                kind: "character device"
            })
        );
        assert_eq!(
            check(&dir, &at("missing/plan.json"), false),
            Err(Refusal::NoFolder { dir: at("missing") })
        );
        assert_eq!(check(&dir, Path::new(""), false), Err(Refusal::NoFileName));
    }
}
