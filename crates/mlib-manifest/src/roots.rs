//! Folders mlib must never take as a store, a state folder or an app root.
//!
//! mlib creates folders, files and links under each of them (and `mlib gc`, `--adopt` and
//! unlinking remove things there), so `store: /`, `root: /usr` or `root: ~` — a typo, an
//! unset variable with a bad default, a `..` too many — would spread mlib's work over the
//! system or the user's home. The comparison is lexical, on the expanded absolute path, with
//! `.` and `..` resolved and trailing slashes ignored; what a symlink points to is the
//! planner's business.

use std::path::{Component, Path, PathBuf};

/// System folders, refused themselves (a folder of one's own inside them is fine).
const SYSTEM: &[&str] = &[
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/tmp",
    "/usr",
    "/usr/bin",
    "/usr/include",
    "/usr/lib",
    "/usr/libexec",
    "/usr/local",
    "/usr/sbin",
    "/usr/share",
    "/var",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/tmp",
];

/// Kernel and device filesystems: nothing inside them is a folder for models.
const VIRTUAL: &[&str] = &["/proc", "/sys", "/dev"];

/// Shared memory: a folder inside it is a legitimate (RAM-backed) place for models.
const SHARED_MEMORY: &str = "/dev/shm";

/// Why `path` (absolute, expanded) cannot be `what` (``"`store`"``), as a message, or `None`
/// when it can. `home` is `$HOME`.
pub(crate) fn unsafe_root(what: &str, path: &Path, home: Option<&str>) -> Option<String> {
    let path = normalize(path);
    let shown = path.display();
    if path.parent().is_none() {
        return Some(format!("{what} is `{shown}`, the root of the filesystem"));
    }
    if SYSTEM.iter().any(|s| path == Path::new(s)) {
        return Some(format!("{what} is `{shown}`, a system folder"));
    }
    let in_shared_memory = path.starts_with(SHARED_MEMORY) && path != Path::new(SHARED_MEMORY);
    if let Some(system) = VIRTUAL.iter().find(|v| path.starts_with(v))
        && !in_shared_memory
    {
        return Some(format!(
            "{what} `{shown}` is inside `{system}`, a system folder"
        ));
    }
    let home = home
        .filter(|h| Path::new(h).is_absolute())
        .map(|h| normalize(Path::new(h)));
    if home.is_some_and(|home| home == path) {
        return Some(format!("{what} is `{shown}`, your home folder itself"));
    }
    None
}

/// `path` with `.` dropped and `..` taking away the folder before it (never above the root),
/// so `/usr/local/../` is `/usr`.
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(path: &str) -> Option<String> {
        unsafe_root("`store`", Path::new(path), Some("/home/u/"))
    }

    #[test]
    fn the_root_system_folders_and_home_are_refused() {
        let root = "`store` is `/`, the root of the filesystem";
        assert_eq!(check("/").as_deref(), Some(root));
        assert_eq!(check("/srv/../..").as_deref(), Some(root));
        for (path, is) in [
            ("/usr", "/usr"),
            ("/usr/", "/usr"),
            ("/usr/local/.", "/usr/local"),
            ("/usr/local/x/..", "/usr/local"),
            ("/tmp", "/tmp"),
            ("/home", "/home"),
        ] {
            let message = format!("`store` is `{is}`, a system folder");
            assert_eq!(check(path), Some(message), "{path}");
        }
        assert_eq!(
            check("/proc/self/cwd").as_deref(),
            Some("`store` `/proc/self/cwd` is inside `/proc`, a system folder")
        );
        assert_eq!(
            check("/dev/shm").as_deref(),
            Some("`store` `/dev/shm` is inside `/dev`, a system folder")
        );
        assert!(check("/dev/sda1").is_some());
        assert!(check("/sys/fs/x").is_some());
        let home = "`store` is `/home/u`, your home folder itself";
        assert_eq!(check("/home/u").as_deref(), Some(home));
        assert_eq!(check("/home/u/x/..").as_deref(), Some(home));
    }

    #[test]
    fn folders_of_their_own_are_fine() {
        for path in [
            "/home/u/models",
            "/usr/local/share/models",
            "/tmp/x",
            "/dev/shm/models",
            "/srv/models",
            "/workspace",
            "/mnt/models",
        ] {
            assert_eq!(check(path), None, "{path}");
        }
        let home = Path::new("/home/u");
        assert_eq!(unsafe_root("`store`", home, None), None);
        assert_eq!(unsafe_root("`store`", home, Some("relative")), None);
    }
}
