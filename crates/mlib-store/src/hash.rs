//! sha256 and blake3 in one read of the bytes.
//!
//! Manifests and hubs pin sha256 (HuggingFace LFS, Civitai); blake3 is what mlib itself
//! prefers. Reading a multi-GiB model twice would double the cost of every import, so both
//! digests are computed from the same buffers. sha256 is the slow one (under 1 GB/s per core
//! even with SHA-NI, which `sha2` picks at run time; blake3 is about 2.5x faster), so sha256
//! runs on a thread of its own while the calling thread reads, hashes blake3 and writes: a
//! copy then costs about what sha256 alone costs. `examples/hash_bench.rs` measures it.

use std::io::{self, Read, Write};
use std::sync::{Arc, mpsc};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Size and digests (lowercase hex) of some bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Hashes {
    pub size: u64,
    pub sha256: String,
    pub blake3: String,
}

/// 1 MiB buffers stay in L2 while two threads touch them; 8 of them keep the sha256 thread
/// fed while the reader or the writer stalls for a moment.
pub(crate) const BUF_SIZE: usize = 1 << 20;
/// What is read before deciding whether a file is small (on the stack).
pub(crate) const SMALL_SIZE: usize = 64 << 10;

/// The largest single `write()`. Writing into the page cache in 1 MiB calls cost 3-6x the
/// system time of 128 KiB calls from the same buffer on Linux 6.18 (measured for downloads,
/// in the history of docs/PERFORMANCE.md); the extra calls cost nothing measurable.
const WRITE_PIECE: usize = 128 << 10;
pub(crate) const BUF_COUNT: usize = 8;

/// Below this, handing a chunk to another thread costs more than hashing it here.
const PARALLEL_MIN: usize = 256 << 10;

/// Incremental sha256 + blake3, for bytes that arrive in pieces (downloads; a resumed download
/// re-feeds the `.part` prefix first). Large updates hash the two digests in parallel.
#[derive(Clone, Default)]
pub struct MultiHasher {
    sha256: Sha256,
    blake3: blake3::Hasher,
    size: u64,
}

impl MultiHasher {
    pub fn new() -> MultiHasher {
        MultiHasher::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        if data.len() >= PARALLEL_MIN {
            let blake = &mut self.blake3;
            std::thread::scope(|s| {
                s.spawn(|| {
                    blake.update(data);
                });
                self.sha256.update(data);
            });
        } else {
            self.sha256.update(data);
            self.blake3.update(data);
        }
        self.size += data.len() as u64;
    }

    /// Bytes fed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn finalize(self) -> Hashes {
        Hashes {
            size: self.size,
            sha256: hex::encode(self.sha256.finalize()),
            blake3: self.blake3.finalize().to_hex().to_string(),
        }
    }
}

impl std::fmt::Debug for MultiHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiHasher")
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl Write for MultiHasher {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Hashes a whole file (one read).
pub fn hash_file(path: &std::path::Path) -> io::Result<Hashes> {
    let mut file = fs_err::File::open(path)?;
    copy_hashing(&mut file, &mut io::sink(), &mut |_| {})
}

/// Streams `reader` into `writer` computing sha256+blake3 in the same pass.
///
/// `progress` is called with the number of bytes just written (a delta, not a total). The
/// writer is not flushed to disk: the caller fsyncs the file it owns.
pub fn copy_hashing(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> io::Result<Hashes> {
    // Small files (configs, embeddings, the 10,000 small models of a benchmark) are read
    // into a small buffer first: a zeroed 1 MiB buffer per file was 8% of a first apply.
    let mut small = [0u8; SMALL_SIZE];
    let n = read_full(reader, &mut small)?;
    if n < SMALL_SIZE {
        // The whole input fit: threads would cost more than they save.
        let mut hasher = MultiHasher::new();
        hasher.update(&small[..n]);
        writer.write_all(&small[..n])?;
        if n > 0 {
            progress(n as u64);
        }
        return Ok(hasher.finalize());
    }
    let mut first = vec![0u8; BUF_SIZE];
    first[..SMALL_SIZE].copy_from_slice(&small);
    let n = SMALL_SIZE + read_full(reader, &mut first[SMALL_SIZE..])?;
    if n < BUF_SIZE {
        let mut hasher = MultiHasher::new();
        hasher.update(&first[..n]);
        writer.write_all(&first[..n])?;
        progress(n as u64);
        return Ok(hasher.finalize());
    }
    pipeline(reader, writer, progress, first)
}

/// The calling thread reads, hashes blake3 and writes (`reader` and `writer` need not be
/// `Send`); one thread hashes sha256 from the same buffers. `first` is a full buffer already
/// read.
///
/// Why this split: sha256 is the slow part (about 0.75 CPU-seconds per GiB with SHA-NI), and
/// reading, blake3 and writing into the page cache together cost about as much, so two
/// threads keep both cores busy on a 2-core machine and neither waits long. A third thread
/// (blake3 on its own, as before) only made the three take turns on two cores.
fn pipeline(
    reader: &mut dyn Read,
    writer: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
    first: Vec<u8>,
) -> io::Result<Hashes> {
    let (pool_tx, pool_rx) = mpsc::channel::<Vec<u8>>();
    for _ in 1..BUF_COUNT {
        // Sending into a channel whose receiver we hold cannot fail.
        let _ = pool_tx.send(vec![0u8; BUF_SIZE]);
    }
    std::thread::scope(|scope| {
        let (sha_tx, sha_rx) = mpsc::channel::<(Arc<Vec<u8>>, usize)>();
        let sha_pool = pool_tx.clone();
        let sha_thread = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for (buf, n) in sha_rx {
                hasher.update(&buf[..n]);
                give_back(buf, &sha_pool);
            }
            hex::encode(hasher.finalize())
        });

        let mut blake3 = blake3::Hasher::new();
        let mut size = 0u64;
        let mut pending = Some((first, BUF_SIZE));
        let result: io::Result<()> = loop {
            let (buf, n) = match pending.take() {
                Some(filled) => filled,
                None => {
                    // The hasher holds a clone of the pool sender until it finishes, and it
                    // finishes only after we drop its channel: recv cannot fail here.
                    let mut buf = pool_rx.recv().expect("hash thread alive");
                    match read_full(reader, &mut buf) {
                        Ok(0) => break Ok(()),
                        Ok(n) => (buf, n),
                        Err(e) => break Err(e),
                    }
                }
            };
            let chunk = Arc::new(buf);
            // The hasher hangs up only by panicking, which the scope re-raises on exit.
            let _ = sha_tx.send((chunk.clone(), n));
            blake3.update(&chunk[..n]);
            if let Err(e) = write_in_pieces(writer, &chunk[..n]) {
                break Err(e);
            }
            give_back(chunk, &pool_tx);
            size += n as u64;
            progress(n as u64);
            if n < BUF_SIZE {
                break Ok(());
            }
        };
        drop(sha_tx);
        let sha256 = sha_thread.join().expect("sha256 thread panicked");
        result.map(|()| Hashes {
            size,
            sha256,
            blake3: blake3.finalize().to_hex().to_string(),
        })
    })
}

fn write_in_pieces(writer: &mut dyn Write, bytes: &[u8]) -> io::Result<()> {
    bytes
        .chunks(WRITE_PIECE)
        .try_for_each(|piece| writer.write_all(piece))
}

fn give_back(chunk: Arc<Vec<u8>>, pool: &mpsc::Sender<Vec<u8>>) {
    // Exactly one of the two holders gets the buffer back.
    if let Some(buf) = Arc::into_inner(chunk) {
        let _ = pool.send(buf);
    }
}

/// Fills `buf` unless the input ends first; returns how many bytes it read.
pub(crate) fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
