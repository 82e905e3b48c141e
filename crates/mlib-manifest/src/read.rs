//! Reading a manifest file, bounded.
//!
//! A manifest is a few kilobytes, and 10,000 models take about 2 MiB; anything past
//! [`MAX_MANIFEST_BYTES`] is a mistake (`-f` pointed at a model file, a log, `/dev/zero`), and
//! reading it whole first would cost the memory and time of its full size. So the read itself
//! stops at the cap plus one byte: the size a file's metadata claims is not trusted, since
//! devices, pipes and `/proc` files report 0 whatever they hold.

use std::io::Read;
use std::path::Path;

use crate::error::ManifestError;

/// The largest manifest mlib reads: 16 MiB.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// The manifest at `path` as UTF-8 text, read with at most [`MAX_MANIFEST_BYTES`] + 1 bytes.
/// Errors (unreadable, too large, not UTF-8) are diagnostics like any other manifest problem.
pub fn read(path: &Path) -> Result<String, ManifestError> {
    read_capped(path, MAX_MANIFEST_BYTES)
}

pub(crate) fn read_capped(path: &Path, cap: u64) -> Result<String, ManifestError> {
    let file = fs_err::File::open(path).map_err(|error| ManifestError::io(path, error))?;
    // The claimed size only sizes the buffer (and names the size in the error).
    let claimed = file
        .metadata()
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let mut bytes = Vec::with_capacity(claimed.unwrap_or(0).min(cap + 1) as usize);
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| ManifestError::io(path, error))?;
    if bytes.len() as u64 > cap {
        let size = claimed.filter(|&size| size > cap);
        return Err(ManifestError::too_large(path, size, cap));
    }
    String::from_utf8(bytes).map_err(|error| {
        let valid_up_to = error.utf8_error().valid_up_to();
        ManifestError::not_utf8(path, error.as_bytes(), valid_up_to)
    })
}

/// `bytes` as people read file sizes: exact units when exact (`16 MiB`), else one decimal and
/// the byte count (`20.0 MiB (20971521 bytes)`).
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size {
            return if bytes.is_multiple_of(size) {
                format!("{} {unit}", bytes / size)
            } else {
                format!("{:.1} {unit} ({bytes} bytes)", bytes as f64 / size as f64)
            };
        }
    }
    format!("{bytes} bytes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::DiagnosticKind;

    #[test]
    fn a_file_at_the_cap_is_read_and_one_byte_more_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models.yaml");
        std::fs::write(&path, "a".repeat(64)).unwrap();
        assert_eq!(read_capped(&path, 64).unwrap().len(), 64);
        let err = read_capped(&path, 63).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!(d.kind, DiagnosticKind::TooLarge);
        assert_eq!(d.message, "the manifest is 64 bytes; the limit is 63 bytes");
    }

    #[test]
    fn sizes_read_as_people_say_them() {
        assert_eq!(human_size(16 << 20), "16 MiB");
        assert_eq!(human_size((20 << 20) + 1), "20.0 MiB (20971521 bytes)");
        assert_eq!(human_size(64), "64 bytes");
    }

    #[test]
    fn a_device_is_read_only_up_to_the_cap() {
        // `/dev/zero` claims a size of 0 and never ends: only the cap stops the read.
        let err = read_capped(Path::new("/dev/zero"), 1 << 10).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!(d.kind, DiagnosticKind::TooLarge);
        assert_eq!(
            d.message,
            "the manifest is larger than the 1 KiB limit (reading stopped there)"
        );
    }
}
