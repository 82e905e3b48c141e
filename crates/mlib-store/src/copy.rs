//! Copying bytes into a new file of the store, hashing them on the way: the durable copy at
//! the heart of every import, adopt and cache reuse.
//!
//! A large file is written with direct I/O ([`mlib_fs::direct`]) on a thread of its own,
//! while the calling thread reads and hashes blake3 and a second one hashes sha256 (as
//! [`crate::copy_hashing`] splits the work). Through the page cache, a 1 GiB copy made durable
//! took 1.4-3.1 s here (`dd conv=fsync`, the kernel's writeback after the fact), against
//! 0.84-0.93 s written directly (`dd oflag=direct`) and 1.04 s for `openssl dgst -sha256`
//! alone (docs/PERFORMANCE.md): written directly, the disk keeps up with the hashing and the
//! final fsync has nothing left to write. A direct write blocks until the device has the
//! bytes, hence its own thread, which mostly waits and costs little CPU.
//!
//! Where the file system refuses direct I/O, or it is turned off, the same thread writes
//! through the page cache and asks the kernel to start writing back every [`WRITEBACK_STEP`]
//! as it goes, so the disk works while the copy hashes the rest and the final fsync waits
//! only for the last piece, not the whole flush (1-2 s for 1 GiB here).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};

use mlib_fs::direct::{AlignedBuf, WRITE_PIECE, Writer};
use mlib_fs::platform::start_writeback;
use sha2::{Digest, Sha256};

use crate::hash::{BUF_COUNT, BUF_SIZE, Hashes, MultiHasher, SMALL_SIZE, read_full};

/// Writeback through the page cache is started every this many bytes: 128 hints per GiB,
/// each cheap, while the disk always has a few MiB queued.
const WRITEBACK_STEP: u64 = 8 << 20;

/// Copies `reader` into `file` (new and empty), returning the size and hashes of what was
/// written. The file is not fsynced: the caller makes it durable (one `fsync`, or one
/// `syncfs` for a batch), which after direct writes has only the metadata left to write.
pub fn copy_into_file(
    reader: &mut dyn Read,
    file: &mut fs_err::File,
    direct_io: bool,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Hashes> {
    // Small files (configs, embeddings, the 10,000 small models of a benchmark) are read
    // into a small buffer first: a zeroed 1 MiB buffer per file was 8% of a first apply.
    let mut small = [0u8; SMALL_SIZE];
    let n = read_full(reader, &mut small)?;
    if n < SMALL_SIZE {
        return write_whole(file, &small[..n], progress);
    }
    let mut first = AlignedBuf::new(BUF_SIZE);
    first.as_mut_slice()[..SMALL_SIZE].copy_from_slice(&small);
    let n = SMALL_SIZE + read_full(reader, &mut first.as_mut_slice()[SMALL_SIZE..])?;
    if n < BUF_SIZE {
        return write_whole(file, &first.as_slice()[..n], progress);
    }
    let mut writer = Writer::new(file, direct_io);
    pipeline(reader, &mut writer, progress, first)
}

/// All of a file that fit in one buffer, written through the page cache: threads and
/// direct I/O would cost more than they save.
fn write_whole(
    file: &mut fs_err::File,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64),
) -> io::Result<Hashes> {
    let mut hasher = MultiHasher::new();
    hasher.update(bytes);
    for piece in bytes.chunks(WRITE_PIECE) {
        file.write_all(piece)?;
    }
    if !bytes.is_empty() {
        progress(bytes.len() as u64);
    }
    Ok(hasher.finalize())
}

/// A full buffer shared by the sha256 thread and the writer thread; whichever finishes
/// with it last gives it back to the pool.
type Chunk = (Arc<AlignedBuf>, usize);

fn pipeline(
    reader: &mut dyn Read,
    writer: &mut Writer,
    progress: &mut dyn FnMut(u64),
    first: AlignedBuf,
) -> io::Result<Hashes> {
    let (pool_tx, pool_rx) = mpsc::channel::<AlignedBuf>();
    for _ in 1..BUF_COUNT {
        // Sending into a channel whose receiver we hold cannot fail.
        let _ = pool_tx.send(AlignedBuf::new(BUF_SIZE));
    }
    // Set by the writer when a write failed, so the reader stops instead of reading the
    // rest of a large file for nothing.
    let failed = AtomicBool::new(false);
    std::thread::scope(|scope| {
        let (sha_tx, sha_rx) = mpsc::channel::<Chunk>();
        let sha_pool = pool_tx.clone();
        let sha_thread = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for (buf, n) in sha_rx {
                hasher.update(&buf.as_slice()[..n]);
                give_back(buf, &sha_pool);
            }
            hex::encode(hasher.finalize())
        });
        let (write_tx, write_rx) = mpsc::channel::<Chunk>();
        let write_pool = pool_tx.clone();
        let failed = &failed;
        let write_thread = scope.spawn(move || -> io::Result<()> {
            let mut pos = 0u64;
            // Through the page cache: writeback was started for everything before this.
            let mut started = 0u64;
            let mut result = Ok(());
            for (buf, n) in write_rx {
                if result.is_ok() {
                    result = writer.write_at(pos, &buf.as_slice()[..n]);
                    pos += n as u64;
                    if result.is_err() {
                        failed.store(true, Ordering::Relaxed);
                    } else if !writer.is_direct() && pos - started >= WRITEBACK_STEP {
                        start_writeback(writer.file(), started, pos - started);
                        started = pos;
                    }
                }
                // Given back even after a failure: the reader may be waiting for it.
                give_back(buf, &write_pool);
            }
            result
        });

        let mut blake3 = blake3::Hasher::new();
        let mut size = 0u64;
        let mut pending = Some((first, BUF_SIZE));
        let read: io::Result<()> = loop {
            if failed.load(Ordering::Relaxed) {
                break Ok(());
            }
            let (buf, n) = match pending.take() {
                Some(filled) => filled,
                None => {
                    // Both threads hold a clone of the pool sender until they finish, and
                    // they finish only after we drop their channels: recv cannot fail here.
                    let mut buf = pool_rx.recv().expect("hash and write threads alive");
                    match read_full(reader, buf.as_mut_slice()) {
                        Ok(0) => break Ok(()),
                        Ok(n) => (buf, n),
                        Err(e) => break Err(e),
                    }
                }
            };
            let chunk = Arc::new(buf);
            // Either thread hangs up early only by panicking, which the scope re-raises.
            let _ = sha_tx.send((chunk.clone(), n));
            blake3.update(&chunk.as_slice()[..n]);
            let _ = write_tx.send((chunk, n));
            size += n as u64;
            progress(n as u64);
            if n < BUF_SIZE {
                break Ok(());
            }
        };
        drop(sha_tx);
        drop(write_tx);
        let sha256 = sha_thread.join().expect("sha256 thread panicked");
        let written = write_thread.join().expect("writer thread panicked");
        read.and(written).map(|()| Hashes {
            size,
            sha256,
            blake3: blake3.finalize().to_hex().to_string(),
        })
    })
}

fn give_back(chunk: Arc<AlignedBuf>, pool: &mpsc::Sender<AlignedBuf>) {
    // Exactly one of the holders gets the buffer back.
    if let Some(buf) = Arc::into_inner(chunk) {
        let _ = pool.send(buf);
    }
}
