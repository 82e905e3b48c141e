//! Writing a file with direct I/O (`O_DIRECT`, Linux only), so its bytes go from our buffers
//! to the disk without first being copied into the page cache: downloads, and large copies
//! into the store.
//!
//! Why: such a file is written once and never read back here (the hashes are computed from
//! memory as the bytes pass), so the page cache only costs. On the benchmark machine (issue 3
//! in docs/PERFORMANCE.md: a 2-core VM, ext4 on virtio) writing 2 GiB through the page cache in
//! 128 KiB `write()`s and then `fsync`ing took 2.0-2.7 s and 1.4-1.95 s of system CPU; with
//! `O_DIRECT` in 1 MiB writes, 1.55-1.65 s and 0.3-0.4 s of system CPU (`dd`), and the `fsync`
//! before the rename then has next to nothing left to write. On two cores shared with the
//! server, that CPU is what the download was short of.
//!
//! `O_DIRECT` wants the file offset, the length and the memory address of each write aligned to
//! the device's logical block size; [`ALIGN`] (4096) covers 512-byte and 4 KiB devices. So a
//! [`Writer`] writes the aligned middle of each piece directly, and the unaligned head and tail
//! (a resume at an odd offset, the last partial block, the bytes that arrived before a dropped
//! connection) through the ordinary buffered handle: nothing received is ever held back or
//! lost. The buffers come from [`AlignedBuf`], and `pump` puts each received byte at the same
//! offset modulo [`ALIGN`] in memory as in the file, so the aligned middle needs no copy.
//!
//! Mixing the two is safe: the kernel writes back and drops any cached pages of a range before
//! a direct write to it (and the pieces here never overlap anyway), and the final `fsync` on
//! the buffered handle covers the whole inode, direct writes and their metadata included.
//!
//! When the filesystem refuses `O_DIRECT` (at `open`, or with `EINVAL` at a write: some FUSE,
//! network or older tmpfs mounts, or a device with larger blocks), or `direct_io` is off
//! (`MLIB_DIRECT_IO=0`), everything goes through the buffered handle, in [`WRITE_PIECE`]s.

use std::io::{Seek, SeekFrom, Write};

#[cfg(target_os = "linux")]
use crate::platform;

/// The largest single `write()` through the page cache.
///
/// Measured on Linux 6.18 / ext4 in a 2-core VM (`bench/downloads`, docs/PERFORMANCE.md):
/// writing 2 GiB into the page cache in 1 MiB `write()` calls cost 2.7-5.7 s of system time,
/// ~88% of it in `copy_folio_from_iter_atomic`, against 0.6-0.9 s in 128 or 256 KiB calls
/// from the same 1 MiB buffer (512 KiB calls were already slow). The kernel sizes page-cache
/// folios after the write, so this is most likely the cost of first touching large folios.
/// The extra system calls cost nothing measurable. Direct writes are not limited by it.
pub const WRITE_PIECE: usize = 128 << 10;

/// Alignment of offsets, lengths and addresses for direct writes.
pub const ALIGN: usize = 4096;

/// A zeroed heap buffer of `len` bytes starting at an [`ALIGN`]ed address, in safe code: a
/// `Vec` `ALIGN` bytes longer, and the window of it that starts at its first aligned address.
/// The `Vec` is never resized, so the window never moves (moving the `AlignedBuf` between
/// threads moves the `Vec`'s pointer, not its heap block).
pub struct AlignedBuf {
    vec: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    pub fn new(len: usize) -> AlignedBuf {
        let vec = vec![0u8; len + ALIGN];
        let start = (ALIGN - vec.as_ptr().addr() % ALIGN) % ALIGN;
        AlignedBuf { vec, start, len }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.vec[self.start..self.start + self.len]
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.vec[self.start..self.start + self.len]
    }
}

/// Writes a file at given positions: directly where alignment allows (see the module
/// documentation), through `buffered` otherwise.
pub struct Writer<'a> {
    buffered: &'a mut fs_err::File,
    /// Where `buffered`'s cursor is, if known: a buffered write seeks only when needed.
    cursor: Option<u64>,
    /// A second handle on the same file, opened with `O_DIRECT`; `None` once refused.
    #[cfg(target_os = "linux")]
    direct: Option<std::fs::File>,
}

impl<'a> Writer<'a> {
    /// Opens the direct handle when `direct_io` is set and the filesystem accepts it.
    pub fn new(buffered: &'a mut fs_err::File, direct_io: bool) -> Writer<'a> {
        #[cfg(target_os = "linux")]
        let direct = direct_io
            .then(|| platform::open_direct(buffered.path()).ok())
            .flatten();
        #[cfg(not(target_os = "linux"))]
        let _ = direct_io;
        Writer {
            buffered,
            cursor: None,
            #[cfg(target_os = "linux")]
            direct,
        }
    }

    /// Whether writes still go directly to the disk where they can.
    pub fn is_direct(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.direct.is_some();
        #[cfg(not(target_os = "linux"))]
        return false;
    }

    /// The buffered handle (for hints such as
    /// [`start_writeback`](crate::platform::start_writeback) when writes go through it).
    pub fn file(&self) -> &std::fs::File {
        self.buffered.file()
    }

    /// Writes all of `bytes` at file offset `pos`. Direct writes need `bytes` to sit at an
    /// address congruent to `pos` modulo [`ALIGN`] (what `pump` arranges); anything else is
    /// written buffered, which is correct, only slower.
    pub fn write_at(&mut self, pos: u64, bytes: &[u8]) -> std::io::Result<()> {
        if !self.is_direct() {
            return self.write_buffered(pos, bytes);
        }
        let head = ((ALIGN - (pos % ALIGN as u64) as usize) % ALIGN).min(bytes.len());
        let rest = &bytes[head..];
        let mut middle = rest.len() / ALIGN * ALIGN;
        if middle > 0 && !rest.as_ptr().addr().is_multiple_of(ALIGN) {
            debug_assert!(false, "pump keeps memory and file offsets congruent");
            middle = 0;
        }
        self.write_buffered(pos, &bytes[..head])?;
        self.write_direct(pos + head as u64, &rest[..middle])?;
        self.write_buffered(pos + (head + middle) as u64, &rest[middle..])
    }

    fn write_buffered(&mut self, pos: u64, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        if self.cursor != Some(pos) {
            self.buffered.seek(SeekFrom::Start(pos))?;
        }
        // Cleared first: after a failed write the cursor is unknown.
        self.cursor = None;
        for piece in bytes.chunks(WRITE_PIECE) {
            self.buffered.write_all(piece)?;
        }
        self.cursor = Some(pos + bytes.len() as u64);
        Ok(())
    }

    /// `bytes` (aligned in memory, in offset and in length) with `O_DIRECT`; whatever the
    /// direct handle does not take (`EINVAL`, or a short write that leaves the position
    /// unaligned) goes through the buffered handle instead.
    #[cfg(target_os = "linux")]
    fn write_direct(&mut self, pos: u64, bytes: &[u8]) -> std::io::Result<()> {
        let mut done = 0;
        while done < bytes.len() {
            let Some(direct) = &self.direct else { break };
            match platform::write_at(direct, &bytes[done..], pos + done as u64) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    done += n;
                    if !done.is_multiple_of(ALIGN) {
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                // The filesystem or device does not do direct I/O with this alignment: nothing
                // was written; from now on, only buffered writes.
                Err(e) if platform::refused_direct_io(&e) => self.direct = None,
                Err(e) => {
                    let path = self.buffered.path().display();
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("failed to write to file `{path}` (direct I/O): {e}"),
                    ));
                }
            }
        }
        self.write_buffered(pos + done as u64, &bytes[done..])
    }

    #[cfg(not(target_os = "linux"))]
    fn write_direct(&mut self, pos: u64, bytes: &[u8]) -> std::io::Result<()> {
        self.write_buffered(pos, bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> fs_err::File {
        fs_err::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap()
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + i / 4093) as u8).collect()
    }

    #[test]
    fn aligned_buffers_are_aligned() {
        for len in [1, ALIGN, 1 << 20] {
            let mut b = AlignedBuf::new(len);
            assert_eq!(b.as_slice().len(), len);
            assert_eq!(b.as_mut_slice().as_ptr().addr() % ALIGN, 0);
        }
    }

    /// Pieces at odd offsets and of odd lengths, laid out as `pump` lays them out (memory
    /// congruent to the file offset), with direct I/O on and off: the same bytes on disk.
    #[test]
    fn odd_offsets_and_lengths_land_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let data = pattern(3 * (1 << 20) + 12_345);
        let cuts = [
            0,
            1,
            4095,
            4096,
            70_001,
            1 << 20,
            2 * (1 << 20) + 3,
            data.len(),
        ];
        for direct_io in [true, false] {
            let path = dir.path().join(format!("f-{direct_io}"));
            let mut file = open(&path);
            let mut w = Writer::new(&mut file, direct_io);
            let opened_direct = w.is_direct();
            let mut buf = AlignedBuf::new(4 << 20);
            for pair in cuts.windows(2) {
                let (a, b) = (pair[0], pair[1]);
                let skew = a % ALIGN;
                buf.as_mut_slice()[skew..skew + (b - a)].copy_from_slice(&data[a..b]);
                w.write_at(a as u64, &buf.as_slice()[skew..skew + (b - a)])
                    .unwrap();
            }
            // With direct I/O, every direct write was accepted (no fallback to buffered).
            assert_eq!(w.is_direct(), opened_direct);
            assert!(direct_io || !opened_direct);
            drop(w);
            file.sync_all().unwrap();
            assert!(
                fs_err::read(&path).unwrap() == data,
                "direct_io {direct_io}"
            );
        }
    }

    /// A direct write the kernel refuses (here: a misaligned address, which `write_at` never
    /// produces, forced through `write_direct`) switches the writer to buffered writes for good
    /// and still writes the bytes.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_refused_direct_write_falls_back_to_buffered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut file = open(&path);
        let mut w = Writer::new(&mut file, true);
        if !w.is_direct() {
            eprintln!("O_DIRECT not supported on this temporary directory: nothing to test");
            return;
        }
        let data = pattern(2 * ALIGN);
        let mut buf = AlignedBuf::new(3 * ALIGN);
        buf.as_mut_slice()[1..1 + data.len()].copy_from_slice(&data);
        w.write_direct(0, &buf.as_slice()[1..1 + data.len()])
            .unwrap();
        assert!(!w.is_direct(), "EINVAL turned direct I/O off");
        w.write_at(data.len() as u64, &data).unwrap();
        drop(w);
        let mut twice = data.clone();
        twice.extend_from_slice(&data);
        assert!(fs_err::read(&path).unwrap() == twice);
    }
}
