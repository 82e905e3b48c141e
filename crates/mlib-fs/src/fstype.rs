//! Which filesystem a path is on, where it matters: SQLite's WAL keeps its index in shared
//! memory (`-shm`, mmap'ed), which NFS and SMB do not share between machines, so a registry
//! there must use a rollback journal instead (<https://www.sqlite.org/wal.html>, "WAL does not
//! work over a network filesystem").

use std::io;
use std::path::Path;

/// `statfs` magic numbers of network filesystems (Linux `include/uapi/linux/magic.h`).
const NETWORK_MAGICS: &[(i64, &str)] = &[
    (0x6969, "NFS"),
    (0x517B, "SMB"),
    (0xFF53_4D42, "CIFS"),
    (0xFE53_4D42, "SMB2"),
    (0x0BD0_0BD0, "Lustre"),
    (0x6B41_4653, "AFS"),
    (0x0102_1997, "9P"),
];

/// The network filesystem `path` is on (`Some("NFS")`...), or `None` for a local one.
pub fn is_network_fs(path: &Path) -> io::Result<Option<&'static str>> {
    let stat = rustix::fs::statfs(path)?;
    Ok(network_fs_name(stat.f_type as i64))
}

fn network_fs_name(magic: i64) -> Option<&'static str> {
    NETWORK_MAGICS
        .iter()
        .find(|(m, _)| *m == magic)
        .map(|(_, name)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_network_magics() {
        assert_eq!(network_fs_name(0x6969), Some("NFS"));
        assert_eq!(network_fs_name(0xFF53_4D42), Some("CIFS"));
        assert_eq!(network_fs_name(0xEF53), None, "ext4");
        assert_eq!(network_fs_name(0x0102_1994), None, "tmpfs");
    }

    #[test]
    fn a_temp_dir_is_local() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(is_network_fs(tmp.path()).unwrap(), None);
    }
}

/// Whether this process may create and change entries in `path`, or, when it does not exist
/// yet, in its nearest existing ancestor (where mlib would create it). A read-only mount
/// answers no, whatever the permission bits say.
pub fn is_writable(path: &Path) -> bool {
    let existing = path
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_ok())
        .unwrap_or(Path::new("."));
    rustix::fs::access(existing, rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(test)]
mod writable_tests {
    use super::*;

    #[test]
    fn a_temp_dir_and_what_would_be_created_in_it_are_writable() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(is_writable(tmp.path()));
        assert!(is_writable(&tmp.path().join("not/yet")));
        assert!(!is_writable(Path::new("/proc/self")));
    }
}

/// The id of the mount `path` (or its nearest existing ancestor) is on, where the system
/// tells (Linux 5.8+). Two folders of one filesystem on different mounts (a read-only bind
/// mount, say) cannot be hard linked across, although they share a device number.
#[cfg(target_os = "linux")]
pub fn mount_id(path: &Path) -> Option<u64> {
    let existing = path
        .ancestors()
        .find(|p| !p.as_os_str().is_empty() && p.symlink_metadata().is_ok())?;
    let statx = rustix::fs::statx(
        rustix::fs::CWD,
        existing,
        rustix::fs::AtFlags::empty(),
        rustix::fs::StatxFlags::MNT_ID,
    )
    .ok()?;
    (statx.stx_mask & rustix::fs::StatxFlags::MNT_ID.bits() != 0).then_some(statx.stx_mnt_id)
}

/// Elsewhere the mount is not told apart (the device number still is).
#[cfg(not(target_os = "linux"))]
pub fn mount_id(_path: &Path) -> Option<u64> {
    None
}

#[cfg(all(test, target_os = "linux"))]
mod mount_tests {
    use super::*;

    #[test]
    fn a_folder_and_what_would_be_created_in_it_share_a_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let here = mount_id(tmp.path());
        assert!(here.is_some(), "Linux 5.8+ tells the mount id");
        assert_eq!(mount_id(&tmp.path().join("not/yet")), here);
        assert_ne!(mount_id(Path::new("/proc/self")), here);
    }
}
