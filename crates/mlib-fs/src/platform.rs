//! The operating system in one place.
//!
//! Everything mlib asks of the operating system that std does not offer on every platform is
//! here, as small functions that say what mlib needs and why: which file a name is (device
//! and inode), its times to the nanosecond, links and permission bits, special file types,
//! direct I/O, folders held open for lookups, filesystems and devices, and processes. The
//! rest of mlib calls these and never `std::os::unix` or `rustix` (tests aside), so porting
//! to another system means giving each function here a version for it.
//!
//! Written for Unix and tested on Linux; the Linux-only parts (direct I/O, mount ids, sysfs,
//! `/proc`) fall back where they are missing. docs/ARCHITECTURE.md ("The operating system
//! in one place") says how each function maps on Windows.

use std::fs::{File, FileType, Metadata, Permissions};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

// ---------------------------------------------------------------------------------------------
// Which file, and when it changed.

/// Which file a name leads to, whatever the name: two paths (hard links of one file, a
/// symlink and its target, `a/../b` and `b`) reach the same file exactly when their ids are
/// equal. On Unix, the device and the inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileId {
    pub device: u64,
    pub inode: u64,
}

/// The identity of the file `meta` describes.
pub fn file_id(meta: &Metadata) -> FileId {
    FileId {
        device: device(meta),
        inode: inode(meta),
    }
}

/// The device (filesystem) the file is on: a hard link can only be made within one.
pub fn device(meta: &Metadata) -> u64 {
    meta.dev()
}

/// The file's number on its device: a rename keeps it, a new file put in place of the old one
/// (a store file fetched again) gets another, which is how a stale copy is told.
pub fn inode(meta: &Metadata) -> u64 {
    meta.ino()
}

/// How many names the file has: a hard link's bytes live on while one of them is left.
pub fn link_count(meta: &Metadata) -> u64 {
    meta.nlink()
}

/// When the file's bytes last changed, in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &Metadata) -> i64 {
    nanos(meta.mtime(), meta.mtime_nsec())
}

/// When anything about the file last changed (its bytes, size, permissions or number of
/// names), in nanoseconds since the Unix epoch. Unlike the mtime it cannot be set back from
/// user space, which is why a file stamp trusts it.
pub fn ctime_ns(meta: &Metadata) -> i64 {
    nanos(meta.ctime(), meta.ctime_nsec())
}

/// Seconds and nanoseconds as nanoseconds since the epoch (saturating far from it).
fn nanos(secs: i64, nsecs: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsecs)
}

// ---------------------------------------------------------------------------------------------
// Stats relative to an open folder.

/// What a stat says, as far as mlib looks: the same whether it came from a [`Metadata`]
/// ([`Stat::of`]) or from a lookup in an [`OpenDir`], which makes no `Metadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub device: u64,
    pub inode: u64,
    pub size: u64,
    /// Nanoseconds since the Unix epoch ([`mtime_ns`]).
    pub mtime_ns: i64,
    /// Nanoseconds since the Unix epoch ([`ctime_ns`]).
    pub ctime_ns: i64,
    /// [`link_count`].
    pub link_count: u64,
    pub kind: FileKind,
}

/// The kinds of file mlib tells apart when planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    /// A device, FIFO or socket.
    Other,
}

impl Stat {
    pub fn of(meta: &Metadata) -> Stat {
        let t = meta.file_type();
        let kind = if t.is_symlink() {
            FileKind::Symlink
        } else if t.is_dir() {
            FileKind::Dir
        } else if t.is_file() {
            FileKind::File
        } else {
            FileKind::Other
        };
        Stat {
            device: device(meta),
            inode: inode(meta),
            size: meta.len(),
            mtime_ns: mtime_ns(meta),
            ctime_ns: ctime_ns(meta),
            link_count: link_count(meta),
            kind,
        }
    }

    // `stat`'s field types differ between platforms (u64 here, u32 or i32 elsewhere).
    #[allow(clippy::unnecessary_cast)]
    fn from_raw(st: &rustix::fs::Stat) -> Stat {
        use rustix::fs::FileType as Raw;
        let kind = match Raw::from_raw_mode(st.st_mode as _) {
            Raw::RegularFile => FileKind::File,
            Raw::Directory => FileKind::Dir,
            Raw::Symlink => FileKind::Symlink,
            _ => FileKind::Other,
        };
        Stat {
            device: st.st_dev as u64,
            inode: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: nanos(st.st_mtime as i64, st.st_mtime_nsec as i64),
            ctime_ns: nanos(st.st_ctime as i64, st.st_ctime_nsec as i64),
            link_count: st.st_nlink as u64,
            kind,
        }
    }
}

/// A folder held open so that names in it are looked up from it (`fstatat`) instead of from
/// the root: for a full path the kernel walks every component again, and a plan stats tens of
/// thousands of paths in a handful of folders.
#[derive(Debug)]
pub struct OpenDir(OwnedFd);

/// `O_PATH` where there is one: enough to resolve names under the folder, and needs no read
/// permission on it.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
const DIR_FLAGS: OFlags = OFlags::PATH.union(OFlags::DIRECTORY).union(OFlags::CLOEXEC);
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::CLOEXEC);

impl OpenDir {
    /// Opens the folder `dir` for lookups (holds one file descriptor until dropped).
    pub fn open(dir: &Path) -> io::Result<OpenDir> {
        Ok(OpenDir(rustix::fs::open(dir, DIR_FLAGS, Mode::empty())?))
    }

    /// Stats `rel` (relative to this folder); with `follow`, a symlink at `rel` itself is
    /// followed (`stat`), without it the link is looked at (`lstat`).
    pub fn stat(&self, rel: &Path, follow: bool) -> io::Result<Stat> {
        let flags = if follow {
            AtFlags::empty()
        } else {
            AtFlags::SYMLINK_NOFOLLOW
        };
        Ok(Stat::from_raw(&rustix::fs::statat(&self.0, rel, flags)?))
    }
}

// ---------------------------------------------------------------------------------------------
// Links, permissions, kinds of file, names.

/// Makes a symbolic link at `at` whose content is `content` (a relative content is resolved
/// from `at`'s folder). Unix makes no difference between links to files and to folders.
pub fn symlink(content: &Path, at: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(content, at)
}

/// Gives the owner read, write and search permission on `path` (a symlink is not followed
/// when looking) unless it has them all already: a read-only folder (a copy of a store
/// folder) must be made writable before what is in it can be removed.
pub fn make_owner_rwx(path: &Path) -> io::Result<()> {
    let mut perms = path.symlink_metadata()?.permissions();
    if perms.mode() & 0o700 != 0o700 {
        perms.set_mode(perms.mode() | 0o700);
        std::fs::set_permissions(path, perms)?;
    }
    Ok(())
}

/// Makes `path` read-only for everyone (mode 0444): store files are, so that an app or a
/// person writing through a link cannot silently change bytes other apps share.
pub fn make_read_only(path: &Path) -> io::Result<()> {
    fs_err::set_permissions(path, Permissions::from_mode(0o444))
}

/// A file's permission bits (`0o644`), to give them back later ([`set_permission_bits`]):
/// a person's file that mlib made read-only and then put back gets its own mode again.
pub fn permission_bits(meta: &Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Sets `path`'s permission bits to `bits` (from [`permission_bits`]).
pub fn set_permission_bits(path: &Path, bits: u32) -> io::Result<()> {
    fs_err::set_permissions(path, Permissions::from_mode(bits & 0o7777))
}

/// A named pipe: opening it for reading waits for a writer.
pub fn is_fifo(t: FileType) -> bool {
    t.is_fifo()
}

/// A Unix domain socket: cannot be opened at all.
pub fn is_socket(t: FileType) -> bool {
    t.is_socket()
}

/// A character device (`/dev/null`, a terminal).
pub fn is_char_device(t: FileType) -> bool {
    t.is_char_device()
}

/// A block device (a disk or a partition).
pub fn is_block_device(t: FileType) -> bool {
    t.is_block_device()
}

/// Whether `path` ends in a separator (`plans/`): it then names a folder, never a file,
/// although [`Path::file_name`] still sees its last component.
pub fn ends_with_separator(path: &Path) -> bool {
    path.as_os_str().as_bytes().ends_with(b"/")
}

// ---------------------------------------------------------------------------------------------
// Opening, writing, durability.

/// Opens `path` for reading, but neither through a symlink at `path` itself (that fails) nor
/// waiting for a writer should it be a FIFO: for reading a file that was checked with an
/// `lstat` and might have been replaced since.
pub fn open_no_follow(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(File::from(fd))
}

/// Opens a regular file (symlinks followed) for reading without waiting on a FIFO or a
/// device: what an app's tree says is a version file may be anything, and mlib must never
/// block on it (or read the terminal through a link to `/dev/stdin`). Anything but a regular
/// file is an `InvalidInput` error.
pub fn open_regular(path: &Path) -> io::Result<File> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let file = File::from(fd);
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// The sandbox or container mlib runs in, when it can tell: Docker (`/.dockerenv`), Podman
/// (`/run/.containerenv`), Flatpak (`FLATPAK_ID`), Snap (`SNAP_NAME`). Paths it writes into
/// links are the container's view of the filesystem.
pub fn container() -> Option<&'static str> {
    if std::env::var_os("FLATPAK_ID").is_some() {
        return Some("Flatpak");
    }
    if std::env::var_os("SNAP_NAME").is_some() {
        return Some("Snap");
    }
    if Path::new("/run/.containerenv").exists() {
        return Some("Podman");
    }
    if Path::new("/.dockerenv").exists() {
        return Some("Docker");
    }
    None
}

/// A second, write-only handle on the existing file `path` with direct I/O (`O_DIRECT`):
/// writes go from mlib's buffers to the disk without a copy in the page cache. The
/// filesystem may refuse (an error here, or [`refused_direct_io`] at a write).
#[cfg(target_os = "linux")]
pub fn open_direct(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // `OFlags` are the kernel's unsigned bits; `custom_flags` takes them as a C int.
    std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(OFlags::DIRECT.bits() as i32)
        .open(path)
}

/// Whether a direct write failed because the filesystem or device does not do direct I/O
/// with this alignment (`EINVAL`): nothing was written, and buffered writes will work.
#[cfg(target_os = "linux")]
pub fn refused_direct_io(err: &io::Error) -> bool {
    rustix::io::Errno::from_io_error(err) == Some(rustix::io::Errno::INVAL)
}

/// Writes `bytes` at offset `pos` of `file` without using (or moving) its cursor; returns how
/// many bytes were written, like `write`.
pub fn write_at(file: &File, bytes: &[u8], pos: u64) -> io::Result<usize> {
    file.write_at(bytes, pos)
}

/// Makes the entries of `dir` durable: a rename or a create is data of the folder, and only
/// fsyncing the folder makes it survive a power cut.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    fs_err::File::open(dir)?.sync_all()
}

/// Asks the kernel to start writing `len` bytes of `file` from `offset` to the disk now,
/// without waiting (`posix_fadvise(DONTNEED)`: Linux starts asynchronous writeback of the
/// range's dirty pages, then drops the pages already clean). A large copy that calls it as
/// it goes has little left to write at its final fsync, which then takes milliseconds
/// instead of the whole flush; `sync_file_range` would do the same but has no safe wrapper.
/// Only a hint: elsewhere, or if the kernel refuses, nothing happens and fsync does it all.
pub fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        // A length of 0 would mean "to the end of the file".
        if let Some(len) = std::num::NonZeroU64::new(len) {
            let _ = rustix::fs::fadvise(file, offset, Some(len), rustix::fs::Advice::DontNeed);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// Makes everything written to the filesystem that holds `dir` durable, in one call
/// (`syncfs(2)` on Linux: one journal commit, however many files were written; elsewhere
/// `sync(2)`, which also waits there). Used after writing many small files: an fsync each
/// costs a journal commit each.
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let dir = fs_err::File::open(dir)?;
    #[cfg(target_os = "linux")]
    rustix::fs::syncfs(&dir)?;
    #[cfg(not(target_os = "linux"))]
    {
        drop(dir);
        rustix::fs::sync();
    }
    Ok(())
}

/// Makes `dest` (an empty file just created) share `src`'s bytes without copying them
/// (`FICLONE`: a reflink on Btrfs, XFS, bcachefs, OCFS2; copy-on-write keeps the two
/// independent afterwards). `Unsupported` where the filesystem cannot (ext4, tmpfs, two
/// filesystems): the caller copies instead.
pub fn reflink(src: &File, dest: &File) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use rustix::io::Errno;
        match rustix::fs::ioctl_ficlone(dest, src) {
            Ok(()) => Ok(()),
            // EXDEV: two filesystems; EOPNOTSUPP/ENOTTY/EINVAL: this filesystem has no clone.
            Err(Errno::XDEV | Errno::OPNOTSUPP | Errno::NOTTY | Errno::INVAL | Errno::NOSYS) => {
                Err(io::ErrorKind::Unsupported.into())
            }
            Err(e) => Err(e.into()),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (src, dest);
        Err(io::ErrorKind::Unsupported.into())
    }
}

/// `statfs` magic numbers of filesystems that can clone a file (`FICLONE`).
const REFLINK_MAGICS: &[i64] = &[
    0x5846_5342, // XFS (when made with reflink=1, the default since xfsprogs 5.1)
    0x9123_683e, // Btrfs
    0xca45_1a4e, // bcachefs
    0x7461_636f, // OCFS2
];

/// Whether the filesystem holding `path` is one that can clone files: a guess from its type
/// (a plan says what apply will likely do; apply tries [`reflink`] and says what it did).
pub fn may_reflink(path: &Path) -> bool {
    // A folder not made yet will be made on its nearest existing ancestor's filesystem.
    let Some(existing) = path.ancestors().find(|p| p.symlink_metadata().is_ok()) else {
        return false;
    };
    let Ok(stat) = rustix::fs::statfs(existing) else {
        return false;
    };
    // `f_type`'s width differs between platforms.
    #[allow(clippy::unnecessary_cast)]
    let magic = stat.f_type as i64;
    REFLINK_MAGICS.contains(&magic)
}

/// Whether the file is owned by the user running mlib: only then may mlib hard link it into
/// the store (the store makes its files read-only, which changes the other name's mode too).
pub fn owned_by_me(meta: &Metadata) -> bool {
    meta.uid() == rustix::process::geteuid().as_raw()
}

/// Fills `buf` with random bytes from the kernel (for ids, not for keys).
pub fn fill_random(buf: &mut [u8]) -> io::Result<()> {
    fs_err::File::open("/dev/urandom")?.read_exact(buf)
}

// ---------------------------------------------------------------------------------------------
// Filesystems and devices.

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
///
/// Where it matters: SQLite's WAL keeps its index in shared memory (`-shm`, mmap'ed), which
/// NFS and SMB do not share between machines, so a registry there must use a rollback
/// journal instead (<https://www.sqlite.org/wal.html>, "WAL does not work over a network
/// filesystem").
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

/// Renames `from` to `to` only if nothing is at `to` (`AlreadyExists` otherwise): a plain
/// rename(2) puts a folder over an empty folder, which would swallow an earlier backup.
#[cfg(target_os = "linux")]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use rustix::fs::{CWD, RenameFlags, renameat_with};
    match renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        // A filesystem without RENAME_NOREPLACE (some network filesystems): look, then rename.
        Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => rename_if_free(from, to),
        Err(err) => Err(err.into()),
    }
}

#[cfg(not(target_os = "linux"))]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    rename_if_free(from, to)
}

fn rename_if_free(from: &Path, to: &Path) -> io::Result<()> {
    if to.symlink_metadata().is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists", to.display()),
        ));
    }
    std::fs::rename(from, to)
}

/// Whether the block device holding `path` (or its nearest existing ancestor) spins, as Linux
/// reports it in sysfs; `None` when that cannot be told (tmpfs, `/proc`, other systems).
/// Parallel writes help on SSDs and hurt on spinning disks.
pub fn rotational(path: &Path) -> Option<bool> {
    let dev = path.ancestors().find_map(|p| p.metadata().ok())?.dev();
    let base = sysfs_block_dir(dev);
    // A partition has no queue of its own: its parent disk's is one level up.
    [
        base.join("queue/rotational"),
        base.join("../queue/rotational"),
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .map(|text| text.trim() == "1")
}

/// sysfs's folder for the block device `dev` (`/sys/dev/block/MAJOR:MINOR`).
fn sysfs_block_dir(dev: u64) -> PathBuf {
    let (major, minor) = (rustix::fs::major(dev), rustix::fs::minor(dev));
    PathBuf::from(format!("/sys/dev/block/{major}:{minor}"))
}

// ---------------------------------------------------------------------------------------------
// Processes.

/// When process `pid` started, in clock ticks after boot (field 22 of `/proc/{pid}/stat`);
/// `None` when there is no such entry or the process is a zombie (it is gone, only its exit
/// status is left for its parent). With the pid, it tells a process from a later one that
/// got the same pid.
pub fn process_start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may itself contain spaces and
    // parentheses, so fields are counted after the last `)`.
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace();
    // Fields 3, 4, ... follow the name: field 3 is the state, field 22 the 20th of them.
    if fields.next()? == "Z" {
        return None;
    }
    fields.nth(18)?.parse().ok()
}

/// Whether process `pid` is a zombie: killed, not yet reaped by its parent, doing nothing.
pub fn process_is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| Some(stat[stat.rfind(')')? + 1..].split_whitespace().next()? == "Z"))
        .unwrap_or(false)
}

/// Whether the kernel knows a process `pid` (signal 0), for when `/proc` does not tell
/// (`hidepid` hides other users' processes): only "no such process" means no, so a process
/// this one may not signal counts as existing.
pub fn process_exists(pid: u32) -> bool {
    let Some(pid) = rustix::process::Pid::from_raw(pid as i32) else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hard_link_is_the_same_file_and_a_copy_is_not() {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("original");
        std::fs::write(&original, b"bytes").unwrap();
        assert_eq!(link_count(&original.metadata().unwrap()), 1);
        let hard = tmp.path().join("hard");
        std::fs::hard_link(&original, &hard).unwrap();
        let copy = tmp.path().join("copy");
        std::fs::copy(&original, &copy).unwrap();

        let (a, b) = (original.metadata().unwrap(), hard.metadata().unwrap());
        assert_eq!(file_id(&a), file_id(&b));
        assert_eq!(link_count(&a), 2, "two names now");
        assert_eq!(link_count(&b), 2);
        let c = copy.metadata().unwrap();
        assert_ne!(file_id(&a), file_id(&c));
        assert_eq!(device(&a), device(&c), "one folder, one device");
        assert_ne!(inode(&a), inode(&c));
    }

    #[test]
    fn a_symlink_is_its_own_file_and_leads_to_its_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("target");
        std::fs::write(&target, b"bytes").unwrap();
        let link = tmp.path().join("link");
        symlink(Path::new("target"), &link).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("target"));
        let id = file_id(&target.metadata().unwrap());
        assert_eq!(file_id(&link.metadata().unwrap()), id);
        assert_ne!(file_id(&link.symlink_metadata().unwrap()), id);
        let err = open_no_follow(&link).unwrap_err();
        assert_eq!(
            rustix::io::Errno::from_io_error(&err),
            Some(rustix::io::Errno::LOOP)
        );
        let mut text = String::new();
        open_no_follow(&target)
            .unwrap()
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "bytes");
    }

    #[test]
    fn times_are_std_s_to_the_nanosecond() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let meta = path.metadata().unwrap();
        let since_epoch = |t: std::time::SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as i64
        };
        assert_eq!(mtime_ns(&meta), since_epoch(meta.modified().unwrap()));
        // Written just now: the inode changed when the bytes did, or a moment later.
        assert!(ctime_ns(&meta) >= mtime_ns(&meta));
        assert_eq!(nanos(-1, 5), -999_999_995);
        assert_eq!(nanos(i64::MAX, 0), i64::MAX);
    }

    #[test]
    fn a_lookup_in_an_open_folder_says_what_metadata_says() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("file"), b"12345").unwrap();
        symlink(Path::new("file"), &tmp.path().join("link")).unwrap();
        let dir = OpenDir::open(tmp.path()).unwrap();
        for name in ["file", "link"] {
            let path = tmp.path().join(name);
            let lstat = dir.stat(Path::new(name), false).unwrap();
            assert_eq!(lstat, Stat::of(&path.symlink_metadata().unwrap()));
            let stat = dir.stat(Path::new(name), true).unwrap();
            assert_eq!(stat, Stat::of(&path.metadata().unwrap()));
            assert_eq!((stat.kind, stat.size), (FileKind::File, 5));
        }
        let link = dir.stat(Path::new("link"), false).unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        let missing = dir.stat(Path::new("missing"), false).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(
            OpenDir::open(&tmp.path().join("file")).is_err(),
            "not a folder"
        );
    }

    #[test]
    fn read_only_and_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        make_read_only(&file).unwrap();
        make_read_only(&dir).unwrap();
        let mode = |p: &Path| p.symlink_metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file), 0o444);
        assert!(file.metadata().unwrap().permissions().readonly());
        make_owner_rwx(&dir).unwrap();
        assert_eq!(mode(&dir), 0o744);
        std::fs::remove_file(&file).unwrap();
    }

    #[test]
    fn a_trailing_separator_names_a_folder() {
        assert!(ends_with_separator(Path::new("plans/")));
        assert!(!ends_with_separator(Path::new("plans/plan.json")));
        assert!(!ends_with_separator(Path::new("plan.json")));
    }

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

    #[test]
    fn a_temp_dir_and_what_would_be_created_in_it_are_writable() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(is_writable(tmp.path()));
        assert!(is_writable(&tmp.path().join("not/yet")));
        assert!(!is_writable(Path::new("/proc/self")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_folder_and_what_would_be_created_in_it_share_a_mount() {
        let tmp = tempfile::tempdir().unwrap();
        let here = mount_id(tmp.path());
        assert!(here.is_some(), "Linux 5.8+ tells the mount id");
        assert_eq!(mount_id(&tmp.path().join("not/yet")), here);
        assert_ne!(mount_id(Path::new("/proc/self")), here);
    }

    /// The split of a device number that `rotational` relied on before it used rustix's.
    fn major_minor_by_hand(dev: u64) -> (u64, u64) {
        let major = ((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0x0000_0fff);
        let minor = ((dev >> 12) & 0xffff_ff00) | (dev & 0x0000_00ff);
        (major, minor)
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn device_numbers_split_as_linux_splits_them() {
        for (major, minor) in [
            (8, 1),
            (259, 3),
            (0, 42),
            (4096, 256),
            (0xfff_ffff, 0xfff_ffff),
        ] {
            let dev = rustix::fs::makedev(major, minor);
            assert_eq!(
                major_minor_by_hand(dev),
                (u64::from(major), u64::from(minor))
            );
            assert_eq!(
                sysfs_block_dir(dev),
                PathBuf::from(format!("/sys/dev/block/{major}:{minor}"))
            );
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn rotational_answers_only_for_block_devices() {
        // procfs has no block device behind it.
        assert_eq!(rotational(Path::new("/proc/self")), None);
        assert_eq!(rotational(Path::new("/proc/no/such/file")), None);
        // A temporary folder's device answers exactly when sysfs lists it as a block device.
        let tmp = tempfile::tempdir().unwrap();
        let dev = device(&tmp.path().metadata().unwrap());
        let listed = sysfs_block_dir(dev).exists();
        assert_eq!(rotational(tmp.path()).is_some(), listed, "{dev:#x}");
        assert_eq!(
            rotational(&tmp.path().join("not/yet")),
            rotational(tmp.path())
        );
    }

    #[test]
    fn this_process_exists_and_has_started() {
        let me = std::process::id();
        assert!(process_exists(me));
        assert!(!process_is_zombie(me));
        assert!(process_start_time(me).is_some_and(|t| t > 0));
        assert!(!process_exists(0), "no pid 0 to ask about");
    }

    #[test]
    fn random_bytes_differ() {
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        fill_random(&mut a).unwrap();
        fill_random(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
