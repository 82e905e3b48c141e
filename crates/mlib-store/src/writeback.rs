//! Writing a large file so that its final fsync is short.
//!
//! Written into the page cache, a 1 GiB copy is "done" long before it is on the disk, and the
//! fsync that makes it durable then waits for the whole flush (1-2 s here). Asking the kernel
//! to start writing each few MiB as soon as they are written lets the disk work while the
//! copy hashes the rest: the fsync then waits only for the last piece.

use std::fs::File;
use std::io::{self, Write};

/// Writeback is started every this many bytes: 128 hints per GiB, each cheap, while the
/// disk always has a few MiB queued.
const STEP: u64 = 8 << 20;

/// A file being written from its start, with writeback started as it goes
/// ([`mlib_fs::platform::start_writeback`]).
pub struct Writeback<'a> {
    file: &'a File,
    written: u64,
    /// Writeback was started for everything before this offset.
    started: u64,
}

impl<'a> Writeback<'a> {
    pub fn new(file: &'a File) -> Writeback<'a> {
        Writeback {
            file,
            written: 0,
            started: 0,
        }
    }
}

impl Write for Writeback<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (&mut &*self.file).write(buf)?;
        self.written += n as u64;
        if self.written - self.started >= STEP {
            mlib_fs::platform::start_writeback(
                self.file,
                self.started,
                self.written - self.started,
            );
            self.started = self.written;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
