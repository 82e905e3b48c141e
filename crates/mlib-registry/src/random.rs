//! Random ids (registry lineage, lock ids) from the kernel, without another dependency.

use std::io;

/// `bytes` random bytes as lowercase hex.
pub(crate) fn random_hex(bytes: usize) -> io::Result<String> {
    let mut buf = vec![0u8; bytes];
    mlib_fs::platform::fill_random(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
