//! Random ids (registry lineage, lock ids) from the kernel, without another dependency.

use std::io::{self, Read};

/// `bytes` random bytes as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    fs_err::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
