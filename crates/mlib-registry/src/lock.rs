//! One apply at a time per store.
//!
//! The lock is `flock(2)` on `{dir}/apply.lock` (std's `File::lock`/`try_lock`). The kernel
//! releases it when the holder's process dies, however it dies, so a crashed apply never
//! leaves the store locked on a local filesystem. Who holds it is written next to it, in
//! `{dir}/apply.lock.json` (id, pid, host, command, since), only for people: waiting applies
//! print it, and `mlib force-unlock ID` needs the id.

use std::fs::TryLockError;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fs_err::File;
use mlib_fs::platform;

use serde::{Deserialize, Serialize};

use crate::RegistryError;
use crate::random::random_hex;

const LOCK_FILE: &str = "apply.lock";
const HOLDER_FILE: &str = "apply.lock.json";
const POLL: Duration = Duration::from_millis(100);
/// Waiting this long is worth telling the user about; shorter waits are just noise.
const NOTICE_AFTER: Duration = Duration::from_secs(1);

/// Who holds the apply lock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    /// Random, per acquisition: what `mlib force-unlock` takes.
    pub id: String,
    pub pid: u32,
    /// The holder's start time (see [`mlib_fs::Process`]): with the pid, tells a live holder
    /// from a later process that got the same pid. 0 in holder files of older versions.
    #[serde(default)]
    pub start: u64,
    pub host: String,
    pub command: String,
    pub since: jiff::Timestamp,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} on {} ({}, since {}; lock id {})",
            self.pid, self.host, self.command, self.since, self.id
        )
    }
}

impl LockHolder {
    /// Whether the holder is a process running on this machine now (same host name, and a
    /// process with its pid and start time exists).
    pub fn is_alive_here(&self) -> bool {
        let here = gethostname::gethostname().to_string_lossy() == self.host.as_str();
        here && mlib_fs::Process {
            pid: self.pid,
            start: self.start,
        }
        .is_alive()
    }
}

/// The held lock; dropping it releases the lock and removes the holder file.
#[derive(Debug)]
pub struct ApplyLock {
    file: File,
    dir: PathBuf,
    holder: LockHolder,
}

impl ApplyLock {
    /// Takes the lock in `dir` (created if missing), polling every ~100 ms. After ~1 s of
    /// waiting, `on_wait` is called once with the current holder (so the caller can print
    /// "waiting for lock held by ..."); after `timeout`, fails naming the holder.
    pub fn acquire(
        dir: &Path,
        command: &str,
        timeout: Duration,
        on_wait: &mut dyn FnMut(Option<&LockHolder>),
    ) -> Result<ApplyLock, RegistryError> {
        fs_err::create_dir_all(dir)?;
        let lock_path = dir.join(LOCK_FILE);
        let start = Instant::now();
        let mut told = false;
        loop {
            let file = open_lock_file(&lock_path)?;
            match file.try_lock() {
                Ok(()) => {
                    // A force-unlock may have removed the file we opened: a lock on an
                    // unlinked file excludes nobody, so start over on the new one.
                    if !still_at(&file, &lock_path)? {
                        continue;
                    }
                    return ApplyLock::hold(file, dir, command);
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(lock_error(e, &lock_path));
                }
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(RegistryError::LockTimeout {
                    path: lock_path,
                    holder: read_holder(dir).ok().flatten().map(Box::new),
                    waited,
                });
            }
            if !told && waited >= NOTICE_AFTER {
                told = true;
                on_wait(read_holder(dir).ok().flatten().as_ref());
            }
            std::thread::sleep(POLL.min(timeout - waited));
        }
    }

    fn hold(file: File, dir: &Path, command: &str) -> Result<ApplyLock, RegistryError> {
        let since = jiff::Timestamp::now();
        let me = mlib_fs::Process::current();
        let holder = LockHolder {
            id: random_hex(8)?,
            pid: me.pid,
            start: me.start,
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            command: command.to_owned(),
            since: since.round(jiff::Unit::Second).unwrap_or(since),
        };
        write_holder(dir, &holder)?;
        Ok(ApplyLock {
            file,
            dir: dir.to_owned(),
            holder,
        })
    }

    /// This lock's holder info (what others see).
    pub fn info(&self) -> &LockHolder {
        &self.holder
    }

    /// Who holds the lock in `dir` now, or `None` when nobody does. A holder file left by a
    /// process that died (the kernel released its lock) is not reported.
    pub fn holder(dir: &Path) -> Result<Option<LockHolder>, RegistryError> {
        let lock_path = dir.join(LOCK_FILE);
        let file = match fs_err::OpenOptions::new().read(true).open(&lock_path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        match file.try_lock_shared() {
            // We could take it, so nobody holds it.
            Ok(()) => Ok(None),
            Err(TryLockError::WouldBlock) => read_holder(dir),
            Err(TryLockError::Error(e)) => Err(lock_error(e, &lock_path)),
        }
    }

    /// Breaks the lock held by `id`: removes the lock file and the holder file, so the next
    /// acquirer locks a fresh file. Refused unless `id` is the current holder's, and refused
    /// while the holder is still running on this machine unless `force`.
    ///
    /// On a local filesystem this is never needed: flock dies with its process. It is for
    /// filesystems where that is not true (NFS and other network mounts can keep a dead
    /// client's lock, or emulate flock with locks the server holds on), and for a holder that
    /// hangs (`force`). A holder on another machine cannot be checked: its lock is released.
    pub fn force_unlock(dir: &Path, id: &str, force: bool) -> Result<LockHolder, RegistryError> {
        let lock_path = dir.join(LOCK_FILE);
        let Some(holder) = read_holder(dir)? else {
            return Err(RegistryError::NotLocked { path: lock_path });
        };
        if holder.id != id {
            return Err(RegistryError::LockIdMismatch {
                path: lock_path,
                given: id.to_owned(),
                holder: Box::new(holder),
            });
        }
        if !force && holder.is_alive_here() {
            return Err(RegistryError::HolderAlive {
                path: lock_path,
                holder: Box::new(holder),
            });
        }
        remove_if_present(&lock_path)?;
        remove_if_present(&dir.join(HOLDER_FILE))?;
        Ok(holder)
    }
}

impl Drop for ApplyLock {
    fn drop(&mut self) {
        // Remove the holder file while still holding the lock, and only if it is still ours
        // (after a force-unlock it may describe the next holder).
        if read_holder(&self.dir)
            .ok()
            .flatten()
            .is_some_and(|h| h.id == self.holder.id)
        {
            let _ = std::fs::remove_file(self.dir.join(HOLDER_FILE));
        }
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, RegistryError> {
    let file = fs_err::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    Ok(file)
}

fn lock_error(e: io::Error, path: &Path) -> RegistryError {
    io::Error::new(e.kind(), format!("failed to lock {}: {e}", path.display())).into()
}

/// Whether `file` is still the file at `path` (same device and inode).
fn still_at(file: &File, path: &Path) -> Result<bool, RegistryError> {
    let open = file.metadata()?;
    match fs_err::metadata(path) {
        Ok(now) => Ok(platform::file_id(&now) == platform::file_id(&open)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn read_holder(dir: &Path) -> Result<Option<LockHolder>, RegistryError> {
    let path = dir.join(HOLDER_FILE);
    let text = match fs_err::read(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|source| RegistryError::HolderFile { path, source })
}

/// Written atomically, so a reader never sees half a holder.
fn write_holder(dir: &Path, holder: &LockHolder) -> Result<(), RegistryError> {
    let path = dir.join(HOLDER_FILE);
    let mut text =
        serde_json::to_vec_pretty(holder).map_err(|source| RegistryError::HolderFile {
            path: path.clone(),
            source,
        })?;
    text.push(b'\n');
    mlib_fs::write_atomic(&path, &text)?;
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), RegistryError> {
    match fs_err::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}
