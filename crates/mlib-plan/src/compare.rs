//! Whether two files or folder trees hold the same bytes: for a copy an interrupted apply
//! finished but did not record, compared with the store entry it was copied from.

use std::io::{self, Read};
use std::path::Path;

/// Same kind, same names, same bytes, all the way down. Symlinks are compared by target.
pub(crate) fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (ma, mb) = (a.symlink_metadata()?, b.metadata()?);
    if ma.is_dir() != mb.is_dir() {
        return Ok(false);
    }
    if !ma.is_dir() {
        return same_file(a, b, ma.len(), mb.len());
    }
    let names = |dir: &Path| -> io::Result<Vec<std::ffi::OsString>> {
        let mut names: Vec<_> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort();
        Ok(names)
    };
    let (na, nb) = (names(a)?, names(b)?);
    if na != nb {
        return Ok(false);
    }
    for name in na {
        if !same_content(&a.join(&name), &b.join(&name))? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn same_file(a: &Path, b: &Path, len_a: u64, len_b: u64) -> io::Result<bool> {
    if len_a != len_b {
        return Ok(false);
    }
    let (mut fa, mut fb) = (fs_err::File::open(a)?, fs_err::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(file: &mut fs_err::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_trees() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |n: &str| tmp.path().join(n);
        std::fs::write(p("a"), b"same bytes").unwrap();
        std::fs::write(p("b"), b"same bytes").unwrap();
        std::fs::write(p("c"), b"same bytez").unwrap();
        std::fs::write(p("d"), b"same").unwrap();
        assert!(same_content(&p("a"), &p("b")).unwrap());
        assert!(!same_content(&p("a"), &p("c")).unwrap());
        assert!(!same_content(&p("a"), &p("d")).unwrap());
        for dir in ["x", "y"] {
            std::fs::create_dir_all(p(dir).join("sub")).unwrap();
            std::fs::write(p(dir).join("sub/f"), b"1").unwrap();
        }
        assert!(same_content(&p("x"), &p("y")).unwrap());
        std::fs::write(p("y").join("extra"), b"").unwrap();
        assert!(!same_content(&p("x"), &p("y")).unwrap());
        assert!(!same_content(&p("x"), &p("a")).unwrap());
    }
}
