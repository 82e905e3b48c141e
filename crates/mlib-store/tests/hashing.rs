//! sha256 + blake3 in one pass must equal the plain digests, whatever the chunking.

use std::io::{self, Read, Write};

use mlib_store::{Hashes, MultiHasher, copy_hashing, copy_into_file, hash_file};
use sha2::Digest;

/// Deterministic, incompressible-looking bytes.
fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn reference(data: &[u8]) -> Hashes {
    Hashes {
        size: data.len() as u64,
        sha256: hex::encode(sha2::Sha256::digest(data)),
        blake3: blake3::hash(data).to_hex().to_string(),
    }
}

fn copy(data: &[u8]) -> (Hashes, Vec<u8>, u64) {
    let mut out = Vec::new();
    let mut total = 0;
    let hashes = copy_hashing(&mut &data[..], &mut out, &mut |n| total += n).unwrap();
    (hashes, out, total)
}

#[test]
fn known_vectors() {
    let (empty, out, total) = copy(b"");
    assert_eq!(
        empty.sha256,
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        empty.blake3,
        "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    );
    assert_eq!((empty.size, out.len(), total), (0, 0, 0));

    let (abc, out, total) = copy(b"abc");
    assert_eq!(
        abc.sha256,
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(
        abc.blake3,
        "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
    );
    assert_eq!((abc.size, out, total), (3, b"abc".to_vec(), 3));
}

#[test]
fn large_inputs_match_reference_and_copy_exactly() {
    // Around the 64 KiB first read and the 1 MiB buffer size: just below, exact, just above,
    // several buffers + a tail.
    for len in [
        (64 << 10) - 1,
        64 << 10,
        (64 << 10) + 1,
        (1 << 20) - 1,
        1 << 20,
        (1 << 20) + 1,
        2 << 20,
        (5 << 20) + 12345,
    ] {
        let data = bytes(len, len as u64);
        let (hashes, out, total) = copy(&data);
        assert_eq!(hashes, reference(&data), "len {len}");
        assert!(out == data, "copy differs for len {len}");
        assert_eq!(total, len as u64);
    }
}

/// Returns at most `max` bytes per read, like a pipe or a socket.
struct Trickle<'a> {
    data: &'a [u8],
    max: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.max).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn short_reads_are_handled() {
    let data = bytes((3 << 20) + 999, 7);
    let mut out = Vec::new();
    let mut reader = Trickle {
        data: &data,
        max: 7777,
    };
    let hashes = copy_hashing(&mut reader, &mut out, &mut |_| {}).unwrap();
    assert_eq!(hashes, reference(&data));
    assert!(out == data);
}

struct FailingReader {
    left: usize,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(1);
        self.left -= n;
        Ok(n)
    }
}

struct FailingWriter {
    left: usize,
}

impl Write for FailingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(io::ErrorKind::StorageFull, "disk full"));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn read_and_write_errors_propagate() {
    let err = copy_hashing(
        &mut FailingReader { left: 3 << 20 },
        &mut io::sink(),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");

    let data = bytes(4 << 20, 3);
    let err = copy_hashing(
        &mut &data[..],
        &mut FailingWriter { left: 2 << 20 },
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::StorageFull);
}

#[test]
fn multi_hasher_is_incremental() {
    let data = bytes((2 << 20) + 4321, 11);
    let mut hasher = MultiHasher::new();
    // Small and large (parallel) updates mixed.
    let mut rest = &data[..];
    for size in [1, 100, 300 << 10, 5, 1 << 20].into_iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let n = size.min(rest.len());
        hasher.update(&rest[..n]);
        rest = &rest[n..];
    }
    assert_eq!(hasher.size(), data.len() as u64);
    assert_eq!(hasher.finalize(), reference(&data));

    let mut writer = MultiHasher::default();
    writer.write_all(b"abc").unwrap();
    assert_eq!(writer.finalize(), reference(b"abc"));
}

#[test]
fn hash_file_reads_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.bin");
    let data = bytes((1 << 20) + 17, 5);
    std::fs::write(&path, &data).unwrap();
    assert_eq!(hash_file(&path).unwrap(), reference(&data));

    let err = hash_file(&dir.path().join("missing")).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
    assert!(err.to_string().contains("missing"), "{err}");
}

/// Into a real file (a temporary folder on the test machine's disk), with direct I/O and
/// without, around the sizes where the copy changes course (the 64 KiB first read, the 1 MiB
/// buffers, a tail that is not a whole 4 KiB block), from a reader that returns short reads.
#[test]
fn copy_into_file_writes_every_byte_and_hashes_them() {
    let dir = tempfile::tempdir().unwrap();
    for direct_io in [true, false] {
        for len in [
            0,
            3,
            (64 << 10) - 1,
            64 << 10,
            (1 << 20) - 1,
            1 << 20,
            (1 << 20) + 1,
            (3 << 20) + 12345,
        ] {
            let data = bytes(len, len as u64 + 1);
            let path = dir.path().join(format!("{direct_io}-{len}"));
            let mut file = fs_err::File::create_new(&path).unwrap();
            let mut total = 0;
            let mut reader = Trickle {
                data: &data,
                max: 300_000,
            };
            let hashes =
                copy_into_file(&mut reader, &mut file, direct_io, &mut |n| total += n).unwrap();
            file.sync_all().unwrap();
            drop(file);
            assert_eq!(hashes, reference(&data), "len {len}, direct {direct_io}");
            assert_eq!(total, len as u64);
            assert!(
                fs_err::read(&path).unwrap() == data,
                "file differs: len {len}, direct {direct_io}"
            );
        }
    }
}

#[test]
fn copy_into_file_reports_read_and_write_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = fs_err::File::create_new(dir.path().join("f")).unwrap();
    let err = copy_into_file(
        &mut FailingReader { left: 3 << 20 },
        &mut file,
        true,
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");

    // A device that is always full: the writer thread fails on its first buffer and the
    // copy returns its error (instead of waiting for buffers the writer never gave back).
    let data = bytes(12 << 20, 5);
    for direct_io in [true, false] {
        let mut full = fs_err::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let err = copy_into_file(&mut &data[..], &mut full, direct_io, &mut |_| {}).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::StorageFull, "direct {direct_io}");
    }
}
