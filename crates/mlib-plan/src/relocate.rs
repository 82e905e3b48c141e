//! `mlib relocate`: the store or an app tree moved (a drive got a new mount point, an app
//! folder was moved); every link mlib made that pointed at the old place is made to point at
//! the new one, and every path the registry holds moves with it.
//!
//! The links come first, the registry last, in one transaction: a kill in between leaves
//! some links rewritten and the registry as it was, and the next run finds those links
//! already right (it only records their new stat) and finishes the rest. So does a second
//! run after a finished one: it finds nothing under the old folder.
//!
//! Only what mlib made is rewritten, judged by the symlink's content: one that pointed at its
//! recorded store entry from its recorded place. A symlink whose content still reaches the
//! store entry from the new place (a relative link inside a tree that moved whole, or an
//! absolute one to a store that did not move) needs nothing. Anything else at a recorded
//! link (a user's file, a symlink pointing elsewhere) is left alone and reported; its record
//! still moves, so `mlib plan` reports it as a conflict as it would have before the move.

use std::io;
use std::path::{Path, PathBuf};

use mlib_registry::{FileStat, LinkKind, LinkRecord, Registry, RelocatedRows, Relocation, rebase};
use serde::Serialize;

use crate::paths;

/// What relocating found (and did, or would do) at one recorded link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkRelocation {
    pub model: String,
    pub app: String,
    pub kind: LinkKind,
    /// Where the link is now (its recorded target, moved if it was under the old folder).
    pub target: PathBuf,
    /// The store entry it links, moved likewise.
    pub source: PathBuf,
    /// In JSON, `outcome` (`rewrite`, `in_place`, `missing`, `left_alone`) with its fields.
    #[serde(flatten)]
    pub outcome: Outcome,
    #[serde(skip)]
    id: i64,
    /// The stat to record for it, when its file is mlib's link and its stat moved.
    #[serde(skip)]
    restat: Option<FileStat>,
    /// What the symlink holds before the rewrite (checked again just before replacing it).
    #[serde(skip)]
    old_content: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// A symlink that pointed at the old place: replaced by one with this content.
    Rewrite { content: PathBuf },
    /// Nothing to rewrite on disk (a relative symlink that moved with what it points at, a
    /// hard link, a copy, or a symlink already rewritten): only its record moves.
    InPlace,
    /// Nothing at the link's place: only its record moves (`mlib plan` links it again).
    Missing,
    /// Not the link mlib made any more (a user replaced or re-pointed it): left alone.
    LeftAlone { why: String },
}

impl LinkRelocation {
    pub fn is_rewrite(&self) -> bool {
        matches!(self.outcome, Outcome::Rewrite { .. })
    }
}

/// What a relocation changes (or changed): each affected link and the registry rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelocationReport {
    pub links: Vec<LinkRelocation>,
    pub rows: RelocatedRows,
}

impl RelocationReport {
    pub fn rewrites(&self) -> usize {
        self.links.iter().filter(|l| l.is_rewrite()).count()
    }

    /// Whether a relocation changes anything at all.
    pub fn has_changes(&self) -> bool {
        self.rewrites() > 0 || self.rows.total() > 0
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RelocateError {
    #[error(transparent)]
    Registry(#[from] mlib_registry::RegistryError),
    #[error(
        "cannot rewrite the link {}: {source}. {done} link{} rewritten before it; the registry \
         was not changed. Fix the cause and run the same `mlib relocate` again: it finishes \
         the rest",
        target.display(),
        if *done == 1 { " was" } else { "s were" }
    )]
    Rewrite {
        target: PathBuf,
        done: usize,
        #[source]
        source: io::Error,
    },
}

/// The relocation of the registry's paths from `from` to `to` (both absolute and physical;
/// the caller checks that `to` exists and that neither holds the other).
#[derive(Debug, Clone, Copy)]
pub struct RelocateInput<'a> {
    pub registry: &'a Registry,
    pub from: &'a Path,
    pub to: &'a Path,
    /// Environment keys that change with the move (see [`Relocation::rekey`]).
    pub rekey: &'a [(String, String)],
}

/// What [`relocate`] would do, doing nothing (a dry run).
pub fn preview(input: &RelocateInput<'_>) -> Result<RelocationReport, RelocateError> {
    let links = survey(input.registry.links()?, input.from, input.to);
    let stats = restats(&links, |_| None);
    let rows = input.registry.relocation_preview(&Relocation {
        from: input.from,
        to: input.to,
        stats: &stats,
        rekey: input.rekey,
    })?;
    Ok(RelocationReport { links, rows })
}

/// Rewrites the symlinks that pointed at the old place (each atomically: a new symlink under
/// mlib's temporary name next to it, renamed over it), then moves every registry path in one
/// transaction, which runs only if every rewrite succeeded.
pub fn relocate(input: &RelocateInput<'_>) -> Result<RelocationReport, RelocateError> {
    let mut links = survey(input.registry.links()?, input.from, input.to);
    let mut done = 0;
    for link in links.iter_mut().filter(|l| l.is_rewrite()) {
        let Outcome::Rewrite { content } = &link.outcome else {
            continue;
        };
        let stat = rewrite(
            &link.target,
            link.old_content.as_deref().unwrap_or(content),
            content,
        )
        .map_err(|source| RelocateError::Rewrite {
            target: link.target.clone(),
            done,
            source,
        })?;
        link.restat = Some(stat);
        done += 1;
    }
    let stats = restats(&links, |link| link.restat);
    let rows = input.registry.relocate(&Relocation {
        from: input.from,
        to: input.to,
        stats: &stats,
        rekey: input.rekey,
    })?;
    Ok(RelocationReport { links, rows })
}

/// The stats to record: those of links found in place, and `rewritten`'s for the rest.
fn restats(
    links: &[LinkRelocation],
    rewritten: impl Fn(&LinkRelocation) -> Option<FileStat>,
) -> Vec<(i64, FileStat)> {
    links
        .iter()
        .filter_map(|link| match link.outcome {
            Outcome::InPlace => link.restat.map(|stat| (link.id, stat)),
            // A dry run cannot know the stat of a symlink not made yet: any will differ.
            Outcome::Rewrite { .. } => Some((
                link.id,
                rewritten(link).unwrap_or(FileStat {
                    ino: u64::MAX,
                    ..link.restat.unwrap_or_default()
                }),
            )),
            Outcome::Missing | Outcome::LeftAlone { .. } => None,
        })
        .collect()
}

/// What relocating means for each recorded link with a path under `from`.
fn survey(records: Vec<LinkRecord>, from: &Path, to: &Path) -> Vec<LinkRelocation> {
    records
        .into_iter()
        .filter_map(|record| {
            let target = rebase(&record.target, from, to);
            let source = rebase(&record.source, from, to);
            if target.is_none() && source.is_none() {
                return None;
            }
            let target = target.unwrap_or_else(|| record.target.clone());
            let source = source.unwrap_or_else(|| record.source.clone());
            Some(inspect(record, target, source))
        })
        .collect()
}

/// Looks at what is at a recorded link's (new) place.
fn inspect(record: LinkRecord, target: PathBuf, source: PathBuf) -> LinkRelocation {
    let mut link = LinkRelocation {
        model: record.model.clone(),
        app: record.app.clone(),
        kind: record.kind,
        outcome: Outcome::InPlace,
        id: record.id,
        restat: None,
        old_content: None,
        target,
        source,
    };
    let meta = match link.target.symlink_metadata() {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            link.outcome = Outcome::Missing;
            return link;
        }
        Err(err) => {
            link.outcome = Outcome::LeftAlone {
                why: format!("cannot be inspected: {err}"),
            };
            return link;
        }
    };
    let is_symlink = meta.file_type().is_symlink();
    if record.kind != LinkKind::Symlink {
        if is_symlink {
            link.outcome = Outcome::LeftAlone {
                why: format!("mlib made a {}, and a symlink is there now", record.kind),
            };
        }
        // A hard link or a copy holds no path: it moved with its folder, or it did not.
        return link;
    }
    if !is_symlink {
        link.outcome = Outcome::LeftAlone {
            why: "is no longer a symlink (replaced since mlib linked it)".into(),
        };
        return link;
    }
    let content = match std::fs::read_link(&link.target) {
        Ok(content) => content,
        Err(err) => {
            link.outcome = Outcome::LeftAlone {
                why: format!("cannot be read: {err}"),
            };
            return link;
        }
    };
    let stat = FileStat::from_metadata(&meta);
    if let Some(text) = &record.text {
        // A link for a container names the store as the container sees it: moving the store
        // on the host changes the container's mount, not the link.
        if content == *text {
            link.restat = (stat != record.stat).then_some(stat);
        } else {
            link.outcome = Outcome::LeftAlone {
                why: format!(
                    "says {}, not {} as mlib made it for the app's container",
                    content.display(),
                    text.display()
                ),
            };
        }
        return link;
    }
    let reaches = |at: &Path, wanted: &Path| {
        let resolved = paths::resolve_link_target(at, &content);
        resolved == wanted || paths::physical(&resolved).is_ok_and(|real| real == wanted)
    };
    if reaches(&link.target, &link.source) {
        // Already right: a relative link that moved with its store entry, an absolute one
        // to a store that stayed, or one an interrupted relocate rewrote.
        link.restat = (stat != record.stat).then_some(stat);
    } else if paths::resolve_link_target(&record.target, &content) == record.source {
        // The link mlib made, pointing where the store entry was: rewritten the way it was
        // made (absolute stays absolute; relative is computed from its new folder).
        let new = if content.is_absolute() {
            link.source.clone()
        } else {
            let parent = mlib_fs::parent_dir(&link.target);
            let parent = paths::physical(parent).unwrap_or_else(|_| parent.to_path_buf());
            paths::relative(&parent, &link.source)
        };
        link.restat = Some(stat);
        link.old_content = Some(content);
        link.outcome = Outcome::Rewrite { content: new };
    } else {
        link.outcome = Outcome::LeftAlone {
            why: format!(
                "points at {}, not at the store entry mlib linked (changed since mlib linked it)",
                content.display()
            ),
        };
    }
    link
}

/// Replaces the symlink at `target`, which must still hold `old`, by one holding `new`:
/// made under mlib's one temporary name in the same folder, then renamed over it (an app
/// never sees the link missing). Returns the new symlink's stat.
fn rewrite(target: &Path, old: &Path, new: &Path) -> io::Result<FileStat> {
    let dir = mlib_fs::parent_dir(target);
    // Temporary names an interrupted relocate (or apply) left here.
    mlib_fs::temp::remove_stale(dir)?;
    let temp = mlib_fs::temp::sibling_of(target);
    std::os::unix::fs::symlink(new, &temp).map_err(|err| {
        io::Error::new(
            err.kind(),
            format!("cannot create symlink {}: {err}", temp.display()),
        )
    })?;
    let placed = match std::fs::read_link(target) {
        Ok(content) if content == old => fs_err::rename(&temp, target),
        Ok(_) | Err(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it changed while mlib was working; left alone",
        )),
    };
    if let Err(err) = placed {
        let _ = fs_err::remove_file(&temp);
        return Err(err);
    }
    mlib_fs::sync_dir(dir)?;
    FileStat::lstat(target)
}
