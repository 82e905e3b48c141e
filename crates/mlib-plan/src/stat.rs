//! Many stats of paths that share a few directories, each made relative to an open
//! descriptor of a directory (`fstatat`) rather than from the root.
//!
//! A no-op plan is mostly stats: one per link, per store file and per local source. For a
//! full path the kernel looks up every component again (in a 10,000-model plan that lookup,
//! `__d_lookup_rcu` and `link_path_walk`, was about a tenth of all CPU); relative to its
//! parent it looks up one name. Links share a handful of app folders and sources usually a
//! few folders, so their parents are opened once; store files each have their own folder,
//! so they are stat'ed relative to the store root. Any path whose folder cannot be opened is
//! stat'ed the ordinary way.
//!
//! Only what planning needs is kept ([`Seen`]: the stat mlib records and the file's kind),
//! a fifth of `std::fs::Metadata`'s size, since 30,000 of them are held at once.

use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;

use hashbrown::HashMap;
use mlib_fs::FileStamp;
use mlib_fs::platform::{self, FileKind, OpenDir};
use mlib_registry::FileStat;

/// What a stat says, as far as planning is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    pub stat: FileStat,
    /// Nanoseconds since the epoch: with the stat, the store file's stamp ([`Seen::stamp`]).
    pub ctime_ns: i64,
    /// How many names the file has (a hard link's bytes live on while one is left).
    pub nlink: u64,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

impl Seen {
    pub fn from_metadata(meta: &std::fs::Metadata) -> Seen {
        Seen::from(platform::Stat::of(meta))
    }

    /// What says a store file is the one that was verified.
    pub fn stamp(&self) -> FileStamp {
        FileStamp {
            ino: self.stat.ino,
            size: self.stat.size,
            mtime_ns: self.stat.mtime_ns,
            ctime_ns: self.ctime_ns,
        }
    }
}

impl From<platform::Stat> for Seen {
    fn from(st: platform::Stat) -> Seen {
        Seen {
            stat: FileStat {
                dev: st.device,
                ino: st.inode,
                mtime_ns: st.mtime_ns,
                size: st.size,
            },
            ctime_ns: st.ctime_ns,
            nlink: st.link_count,
            kind: match st.kind {
                FileKind::File => Kind::File,
                FileKind::Dir => Kind::Dir,
                FileKind::Symlink => Kind::Symlink,
                FileKind::Other => Kind::Other,
            },
        }
    }
}

/// Whether a stat follows a symlink at the path itself.
#[derive(Clone, Copy)]
pub(crate) enum Follow {
    /// `lstat`: a link is looked at, not what it points to.
    No,
    /// `stat`.
    Yes,
}

/// Open directories, keyed by their path's bytes (hashed with foldhash, hashbrown's default:
/// 30,000 lookups per plan).
#[derive(Default)]
pub(crate) struct Dirs {
    open: HashMap<OsString, Option<OpenDir>>,
}

/// At most this many directories are held open at once, however the paths are spread (the
/// soft limit on open files is often 1024, and SQLite, the lock and the other thread need some).
const MAX_OPEN: usize = 64;

impl Dirs {
    /// Opens the parents that several of `paths` share (the others gain nothing from it), the
    /// most shared first, at most [`MAX_OPEN`].
    pub fn parents_of<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Dirs {
        let mut dirs = Dirs::default();
        dirs.open_parents_of(paths);
        dirs
    }

    /// [`Dirs::parents_of`], adding to what is open already.
    pub fn open_parents_of<'a>(&mut self, paths: impl IntoIterator<Item = &'a Path>) {
        // By the parent's bytes: `Path`'s own hash walks its components.
        let mut counts: HashMap<&OsStr, usize> = HashMap::new();
        for path in paths {
            if let Some((parent, _)) = split_last(path) {
                *counts.entry(parent.as_os_str()).or_default() += 1;
            }
        }
        let mut shared: Vec<(&OsStr, usize)> = counts.into_iter().filter(|(_, n)| *n > 1).collect();
        shared.sort_unstable_by_key(|&(_, n)| std::cmp::Reverse(n));
        for (parent, _) in shared {
            self.open(Path::new(parent));
        }
    }

    /// Opens `dir` (once), for stats relative to it.
    pub fn open(&mut self, dir: &Path) {
        if !self.open.contains_key(dir.as_os_str()) && self.open.len() < MAX_OPEN {
            let opened = OpenDir::open(dir).ok();
            self.open.insert(dir.as_os_str().to_owned(), opened);
        }
    }

    /// Stats `path`, relative to its parent if that is open.
    pub fn stat(&self, path: &Path, follow: Follow) -> io::Result<Seen> {
        match split_last(path) {
            Some((parent, name)) => self.stat_under(parent, Path::new(name), follow),
            None => stat_path(path, follow),
        }
    }

    /// Stats `dir/rel`, relative to `dir` if that is open.
    pub fn stat_under(&self, dir: &Path, rel: &Path, follow: Follow) -> io::Result<Seen> {
        match self.open.get(dir.as_os_str()) {
            Some(Some(open)) => open
                .stat(rel, matches!(follow, Follow::Yes))
                .map(Seen::from),
            _ => stat_path(&dir.join(rel), follow),
        }
    }
}

/// `path`'s parent and file name, as `Path::parent` and `Path::file_name` give them: cut at
/// the last `/` where the path is plain text that needs no folding (what mlib builds), else
/// taken apart by components (parsing components from the back was 3% of a no-op plan).
pub(crate) fn split_last(path: &Path) -> Option<(&Path, &OsStr)> {
    let plain = path.to_str().and_then(|text| {
        let at = text.rfind('/')?;
        let (parent, name) = (&text[..at], &text[at + 1..]);
        let odd = |part: &str| part.is_empty() || part == "." || part == "..";
        if odd(name) || parent.ends_with('/') || parent.ends_with("/.") || parent == "." {
            return None;
        }
        let parent = if parent.is_empty() { "/" } else { parent };
        Some((Path::new(parent), OsStr::new(name)))
    });
    plain.or_else(|| Some((path.parent()?, path.file_name()?)))
}

fn stat_path(path: &Path, follow: Follow) -> io::Result<Seen> {
    let meta = match follow {
        Follow::No => path.symlink_metadata()?,
        Follow::Yes => path.metadata()?,
    };
    Ok(Seen::from_metadata(&meta))
}

/// `rel` (a '/'-separated path relative to a root) as a path.
pub(crate) fn rel_path(rel: &str) -> &Path {
    Path::new(OsStr::new(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cut as text or taken apart by components: the same parent and name, or none.
    #[test]
    fn a_path_splits_as_parent_and_file_name_do() {
        for path in [
            "/a/b/c",
            "/a",
            "/",
            "a",
            "a/b",
            "",
            "/a/b/",
            "/a//b",
            "/a/./b",
            "/a/b/.",
            "/a/b/..",
            "./b",
            "../x/y",
            "/a/./b/c",
            "a/../b",
            "/.hidden/x.safetensors",
            "/a b/c d.gguf",
        ] {
            let path = Path::new(path);
            let by_components = path.parent().zip(path.file_name());
            assert_eq!(split_last(path), by_components, "{path:?}");
        }
    }

    #[test]
    fn relative_stats_equal_ordinary_ones() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("folder");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("file"), b"12345").unwrap();
        std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
        std::os::unix::fs::symlink("nowhere", dir.join("dangling")).unwrap();
        let paths = ["file", "link", "dangling", "missing"].map(|n| dir.join(n));
        let dirs = Dirs::parents_of(paths.iter().map(|p| p.as_path()));
        assert!(
            dirs.open.get(dir.as_os_str()).is_some_and(Option::is_some),
            "the shared folder is open, so the relative path is what is tested"
        );
        let none = Dirs::default();
        for path in &paths {
            for follow in [Follow::No, Follow::Yes] {
                let fast = dirs.stat(path, follow);
                let slow = none.stat(path, follow);
                match (fast, slow) {
                    (Ok(a), Ok(b)) => assert_eq!(a, b, "{}", path.display()),
                    (Err(a), Err(b)) => assert_eq!(a.kind(), b.kind(), "{}", path.display()),
                    (a, b) => panic!("{}: {a:?} vs {b:?}", path.display()),
                }
            }
        }
        let link = dirs.stat(&dir.join("link"), Follow::No).unwrap();
        assert_eq!(link.kind, Kind::Symlink);
        let target = dirs.stat(&dir.join("link"), Follow::Yes).unwrap();
        assert_eq!((target.kind, target.stat.size), (Kind::File, 5));
        let missing = dirs.stat(&dir.join("missing"), Follow::No).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);

        let mut root = Dirs::default();
        root.open(tmp.path());
        let under = root
            .stat_under(tmp.path(), rel_path("folder/file"), Follow::Yes)
            .unwrap();
        assert_eq!(under, none.stat(&dir.join("file"), Follow::Yes).unwrap());
    }

    #[test]
    fn only_shared_folders_are_opened_and_never_too_many() {
        let tmp = tempfile::tempdir().unwrap();
        let paths: Vec<_> = (0..200)
            .flat_map(|i| {
                let dir = tmp.path().join(format!("d{i}"));
                std::fs::create_dir(&dir).unwrap();
                // d0..d99 hold two paths each, d100..d199 one.
                let n = if i < 100 { 2 } else { 1 };
                (0..n).map(move |j| dir.join(format!("f{j}")))
            })
            .collect();
        let dirs = Dirs::parents_of(paths.iter().map(|p| p.as_path()));
        assert_eq!(dirs.open.len(), MAX_OPEN);
        let single = tmp.path().join("d150");
        assert!(!dirs.open.contains_key(single.as_os_str()));
    }

    #[test]
    fn a_folder_that_cannot_be_opened_falls_back_to_full_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let mut dirs = Dirs::default();
        dirs.open(&tmp.path().join("does-not-exist"));
        let seen = dirs
            .stat_under(
                &tmp.path().join("does-not-exist"),
                rel_path("../f"),
                Follow::Yes,
            )
            .map(|s| s.kind);
        assert_eq!(seen.unwrap_err().kind(), io::ErrorKind::NotFound);
        assert_eq!(dirs.stat(&file, Follow::No).unwrap().kind, Kind::File);
    }
}
