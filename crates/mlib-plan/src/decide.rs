//! The planner's safety rules, as pure functions of plain facts.
//!
//! What a plan does with a link the manifest wants depends on a handful of facts: this
//! environment's record of the target (if any), another environment's (if any), what is on
//! disk there (its kind, whether its stat is the recorded one, whether it points to the store
//! entry or shares its inode, how many names it has), whether a killed apply journaled it,
//! and whether the model is being fetched again. [`decide`] maps those facts to an
//! [`Outcome`] (with the drift to report and whether another environment's record is taken
//! over), [`holds`] says whether a recorded, untouched link is still the one wanted, and
//! [`leftover`] what becomes of a link no longer wanted. None of them looks at the disk or the
//! registry: the planner finds the facts (`planner.rs`: lstat, readlink, a stat of the store
//! entry, a byte comparison, a hash), so every rule and every message is table-tested here.
//!
//! Some facts cost more than others to find: comparing a copy with the store entry reads
//! both, a hash reads a file whole. Those in [`Asked`] stay `None` until a rule needs one:
//! the rule then returns `Err(Ask)`, [`settle`] has a [`Finder`] find that fact, and the rule
//! runs again. So nothing is read that the outcome does not depend on, exactly as when the
//! rules read the disk themselves.

use std::fmt;
use std::path::Path;

use mlib_registry::{LinkKind, LinkRecord};

use crate::action::{FetchReason, LinkHow};
use crate::stat::Kind;

/// The link the manifest wants at a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Wanted {
    pub how: LinkHow,
    /// Why the model is fetched again, if it is: copies and hard links of its old bytes go
    /// stale, and a hard link to a store file found corrupt is healed.
    pub fetch: Option<FetchReason>,
    /// This environment's last apply journaled the target and was killed before recording
    /// it: what is there may be mlib's own finished work, or predate the kill.
    pub journaled: bool,
}

impl Wanted {
    fn fetching(&self) -> bool {
        self.fetch.is_some()
    }
}

/// What a link record says, as far as the rules go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RecordFacts {
    pub kind: LinkKind,
    /// The target's inode when it was recorded.
    pub ino: u64,
    /// It links the store entry wanted now.
    pub same_source: bool,
    /// For a copy: the inode of the store entry it was copied from (schema 1 did not record
    /// it).
    pub source_ino: Option<u64>,
}

impl RecordFacts {
    /// The facts of `record`, for a link wanted from `source`.
    /// `text`: what the wanted symlink says when it is not `source` (an app in a container);
    /// a record that says otherwise points elsewhere.
    pub fn of(record: &LinkRecord, source: &Path, text: Option<&Path>) -> RecordFacts {
        RecordFacts {
            kind: record.kind,
            ino: record.stat.ino,
            same_source: record.source.as_os_str() == source.as_os_str()
                && record.text.as_deref() == text,
            source_ino: record.source_ino,
        }
    }
}

/// Another environment's record at the target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OtherFacts {
    pub record: RecordFacts,
    /// How people know the environment that owns it.
    pub owner: String,
    pub manifest: OtherManifest,
}

/// The manifest of the environment that owns another environment's record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OtherManifest {
    /// The registry does not know that environment.
    Unknown,
    /// This environment's manifest (other values of its variables, an `environment:` name
    /// added or removed).
    Same,
    /// Another manifest file, and whether it still exists.
    Other { exists: bool },
}

impl OtherManifest {
    /// Whether the environment is this one under another identity, so its record at a
    /// target this one wants is taken over: the same manifest, or one that no longer exists
    /// (it was moved or renamed). Two environments cannot both have one path; in these cases
    /// nobody else could want it.
    pub fn may_take_over(self) -> bool {
        matches!(
            self,
            OtherManifest::Same | OtherManifest::Other { exists: false }
        )
    }
}

/// What is at a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OnDisk {
    Missing,
    /// It could not be looked at (lstat failed for another reason than its absence): why.
    Uninspectable(String),
    Present(Present),
}

/// Something at a target, by its `lstat`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Present {
    pub kind: Kind,
    pub ino: u64,
    /// How many names the file has: a hard link's bytes live on while one is left.
    pub nlink: u64,
}

/// What the rules know about a link the manifest wants, besides what they ask for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Facts {
    pub wanted: Wanted,
    /// This environment's record at the target (its own, or a legacy one it claims).
    pub mine: Option<RecordFacts>,
    /// Another environment's record there.
    pub other: Option<OtherFacts>,
    pub disk: OnDisk,
    /// `--adopt`: a file in the way that is identical to the model may be replaced.
    pub adopt: bool,
    /// The sha256 the linked entry has (pinned, locked or stored), for comparing a file in
    /// the way with; `None` for a folder or an unpinned model not stored yet.
    pub want_sha256: Option<String>,
    /// The folder at the target is the model's own local source (`mlib init` describes model
    /// folders where they are): with `--adopt` it moves into the store and becomes a link.
    pub target_is_source: bool,
}

impl Facts {
    /// Whether the rules go by another environment's record, taken over: this environment
    /// has none at the target, and the other is this one under another identity.
    pub fn takes_over(&self) -> bool {
        self.mine.is_none()
            && self
                .other
                .as_ref()
                .is_some_and(|other| other.manifest.may_take_over())
    }

    /// The record the rules go by: this environment's, or another's it takes over.
    fn record(&self) -> Option<&RecordFacts> {
        match (&self.mine, &self.other) {
            (Some(mine), _) => Some(mine),
            (None, Some(other)) if self.takes_over() => Some(&other.record),
            _ => None,
        }
    }
}

/// Facts found only when a rule needs them (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Asked {
    /// Whether the target's stat (its lstat, or a copied folder's tree stat) is the one
    /// recorded by the record the rules go by.
    pub unchanged: Option<bool>,
    /// The store entry's inode now (`Some(None)`: it cannot be stat'ed).
    pub source_ino: Option<Option<u64>>,
    /// Whether the symlink at the target resolves to the store entry.
    pub points_to_source: Option<bool>,
    /// What the symlink at the target holds, for people (`?` when it cannot be read).
    pub symlink: Option<String>,
    /// Whether the target holds the store entry's bytes (`false` when either cannot be read).
    pub same_content: Option<bool>,
    /// The sha256 of the file at the target, or why it cannot be read.
    pub sha256: Option<Result<String, String>>,
}

/// A fact a rule needs that is not known yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Ask {
    Unchanged,
    SourceIno,
    PointsToSource,
    Symlink,
    SameContent,
    Sha256,
}

/// Finds the facts the rules ask for (the planner's, on disk).
pub(crate) trait Finder {
    fn unchanged(&self) -> bool;
    fn source_ino(&self) -> Option<u64>;
    fn points_to_source(&self) -> bool;
    fn symlink(&self) -> String;
    fn same_content(&self) -> bool;
    fn sha256(&self) -> Result<String, String>;
}

impl Asked {
    /// Finds the fact `ask` names. Every ask fills its own field, so [`settle`] ends.
    fn find(&mut self, ask: Ask, finder: &dyn Finder) {
        match ask {
            Ask::Unchanged => self.unchanged = Some(finder.unchanged()),
            Ask::SourceIno => self.source_ino = Some(finder.source_ino()),
            Ask::PointsToSource => self.points_to_source = Some(finder.points_to_source()),
            Ask::Symlink => self.symlink = Some(finder.symlink()),
            Ask::SameContent => self.same_content = Some(finder.same_content()),
            Ask::Sha256 => self.sha256 = Some(finder.sha256()),
        }
    }
}

/// Runs `rule` until it needs no fact it does not have, finding each one it asks for.
pub(crate) fn settle<T>(
    asked: &mut Asked,
    finder: &dyn Finder,
    rule: impl Fn(&Asked) -> Result<T, Ask>,
) -> T {
    loop {
        match rule(asked) {
            Ok(decided) => return decided,
            Err(ask) => asked.find(ask, finder),
        }
    }
}

fn known<T: Clone>(fact: &Option<T>, ask: Ask) -> Result<T, Ask> {
    fact.clone().ok_or(ask)
}

/// What the plan does with one wanted link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// The record the rules went by is another environment's, taken over first
    /// (`Bookkeeping::Claim`).
    pub claim: bool,
    pub outcome: Outcome,
    /// What the plan reports as drift at the target.
    pub drift: Option<DriftWhat>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The recorded link is the one wanted: nothing to do.
    Unchanged,
    /// Nothing is there: make the link (it replaces the record, if there is one).
    Link,
    /// Replace mlib's own link. `heal`: a hard link whose bytes were changed through it,
    /// replaced although its stat changed (those bytes are kept elsewhere).
    Relink { heal: bool },
    /// What is there is exactly the link wanted (made by mlib before the registry was lost,
    /// by an apply killed before recording it, or by hand): record it.
    Record,
    /// A file identical to the model is in the way and `--adopt` was given: replace it.
    Adopt,
    /// Left alone, and why.
    Conflict(ConflictReason),
}

/// Why a wanted link is left alone: the `!` line of a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ConflictReason {
    /// Another environment's link is at the target (or was, and is theirs to remake or
    /// remove): a link made here would be taken from them.
    OtherEnvironment {
        owner: String,
    },
    /// Another app of this manifest wants the same path first.
    SameManifestApp {
        app: String,
    },
    /// The target could not be looked at.
    Uninspectable(String),
    /// mlib's link there was changed since mlib made it.
    Changed(LinkKind),
    ForeignSymlink {
        points: String,
    },
    ForeignFile,
    /// `--adopt`, but there is no hash to compare the file with.
    NoSha256,
    /// `--adopt`, and the file's sha256 is not the model's.
    Differs {
        found: String,
        want: String,
    },
    /// `--adopt`, and the file cannot be read to hash it.
    Unreadable(String),
    /// A folder (or a device, FIFO, socket) mlib did not make.
    ForeignDir,
}

impl fmt::Display for ConflictReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConflictReason::OtherEnvironment { owner } => {
                write!(f, "already linked by another environment ({owner})")
            }
            ConflictReason::SameManifestApp { app } => write!(
                f,
                "app `{app}` of this manifest links the same path; give the apps different folders"
            ),
            ConflictReason::Uninspectable(err) => write!(f, "cannot be inspected: {err}"),
            ConflictReason::Changed(kind) => write!(
                f,
                "{}; left alone (remove it to let mlib link it again)",
                DriftWhat::Changed(*kind)
            ),
            ConflictReason::ForeignSymlink { points } => {
                write!(f, "a symlink mlib did not make is in the way (-> {points})")
            }
            ConflictReason::ForeignFile => f.write_str(
                "a file mlib did not make is in the way (run with --adopt to replace it by a \
                 link if it is identical to the model)",
            ),
            ConflictReason::NoSha256 => f.write_str(
                "a file is in the way and the model has no sha256 to compare it with; pin one \
                 in the manifest to adopt it",
            ),
            ConflictReason::Differs { found, want } => write!(
                f,
                "a file mlib did not make is in the way and differs from the model (sha256 \
                 {found} instead of {want}); left alone"
            ),
            ConflictReason::Unreadable(err) => {
                write!(f, "a file is in the way and cannot be read: {err}")
            }
            ConflictReason::ForeignDir => {
                f.write_str("a directory mlib did not make is in the way")
            }
        }
    }
}

/// What differs from what mlib left at a link: the plan's drift section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DriftWhat {
    Removed,
    /// A hard link written through: its bytes are the store file's (or were).
    ModifiedThroughHardlink,
    Changed(LinkKind),
    /// A link no longer wanted that was changed since: forgotten, left in place.
    ChangedUnwanted,
}

impl fmt::Display for DriftWhat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DriftWhat::Removed => "was removed since mlib linked it",
            DriftWhat::ModifiedThroughHardlink => {
                "was modified through this hard link (its bytes are the store file's)"
            }
            DriftWhat::Changed(LinkKind::Copy) => "was modified since mlib copied it",
            DriftWhat::Changed(LinkKind::Hardlink | LinkKind::Symlink) => {
                "was changed since mlib linked it"
            }
            DriftWhat::ChangedUnwanted => {
                "was changed since mlib linked it; it is no longer wanted, but mlib leaves it in \
                 place"
            }
        })
    }
}

/// The rules for one wanted link: what the plan does with it.
///
/// mlib replaces or removes only what the registry says it made and that nobody changed
/// since (or, healing, a hard link that is still the inode mlib linked); it records what is
/// exactly the wanted link; anything else in the way is a conflict, and `--adopt` replaces
/// only a file identical to the model.
pub(crate) fn decide(facts: &Facts, asked: &Asked) -> Result<Decision, Ask> {
    let claim = facts.takes_over();
    let record = facts.record();
    let decided = |outcome, drift| {
        Ok(Decision {
            claim,
            outcome,
            drift,
        })
    };
    if let Some(other) = &facts.other
        && !claim
    {
        let owner = other.owner.clone();
        return decided(conflict(ConflictReason::OtherEnvironment { owner }), None);
    }
    let present = match &facts.disk {
        OnDisk::Missing => return decided(Outcome::Link, record.map(|_| DriftWhat::Removed)),
        OnDisk::Uninspectable(err) => {
            return decided(conflict(ConflictReason::Uninspectable(err.clone())), None);
        }
        OnDisk::Present(present) => present,
    };
    let wanted = &facts.wanted;
    if let Some(record) = record {
        if known(&asked.unchanged, Ask::Unchanged)? {
            let outcome = if holds(record, wanted, asked)? {
                Outcome::Unchanged
            } else {
                Outcome::Relink { heal: false }
            };
            return decided(outcome, None);
        }
        // Changed since mlib made it. Still fine if it is the right link.
        if is_finished_link(wanted, present, asked)? {
            return decided(Outcome::Record, None);
        }
        if heals(record, wanted, present, asked)? {
            let drift = Some(DriftWhat::ModifiedThroughHardlink);
            return decided(Outcome::Relink { heal: true }, drift);
        }
        let drift = Some(DriftWhat::Changed(record.kind));
        return decided(conflict(ConflictReason::Changed(record.kind)), drift);
    }
    if is_finished_link(wanted, present, asked)? {
        return decided(Outcome::Record, None);
    }
    let outcome = match present.kind {
        Kind::Symlink if symlink_leads_to_the_model(facts, asked)? => Outcome::Adopt,
        Kind::Symlink => {
            let points = known(&asked.symlink, Ask::Symlink)?;
            conflict(ConflictReason::ForeignSymlink { points })
        }
        Kind::File => file_in_the_way(facts, asked)?,
        Kind::Dir if facts.adopt && facts.target_is_source => Outcome::Adopt,
        Kind::Dir | Kind::Other => conflict(ConflictReason::ForeignDir),
    };
    decided(outcome, None)
}

fn conflict(reason: ConflictReason) -> Outcome {
    Outcome::Conflict(reason)
}

/// With `--adopt`, a symlink nobody recorded that leads to the model's exact bytes (a link
/// a person made by hand, found by `mlib init`): a symlink holds no bytes, so replacing it by
/// mlib's link loses nothing, and what it points at is left alone.
fn symlink_leads_to_the_model(facts: &Facts, asked: &Asked) -> Result<bool, Ask> {
    let (true, Some(want)) = (facts.adopt, &facts.want_sha256) else {
        return Ok(false);
    };
    Ok(matches!(known(&asked.sha256, Ask::Sha256)?, Ok(found) if found == *want))
}

/// A file nobody recorded is in the way: replaced only with `--adopt`, and only when its
/// sha256 is the model's.
fn file_in_the_way(facts: &Facts, asked: &Asked) -> Result<Outcome, Ask> {
    if !facts.adopt {
        return Ok(conflict(ConflictReason::ForeignFile));
    }
    let Some(want) = &facts.want_sha256 else {
        return Ok(conflict(ConflictReason::NoSha256));
    };
    Ok(match known(&asked.sha256, Ask::Sha256)? {
        Ok(found) if found == *want => Outcome::Adopt,
        Ok(found) => conflict(ConflictReason::Differs {
            found,
            want: want.clone(),
        }),
        Err(err) => conflict(ConflictReason::Unreadable(err)),
    })
}

/// Whether a recorded link whose stat is unchanged is of the wanted kind, to the wanted store
/// entry, and gives the app the entry's current bytes.
pub(crate) fn holds(record: &RecordFacts, wanted: &Wanted, asked: &Asked) -> Result<bool, Ask> {
    if record.kind != crate::planner::kind_of(wanted.how) || !record.same_source {
        return Ok(false);
    }
    Ok(match wanted.how {
        LinkHow::Hardlink => {
            !wanted.fetching() && known(&asked.source_ino, Ask::SourceIno)? == Some(record.ino)
        }
        // A store entry replaced since the copy (by this environment or another) has another
        // inode. Copies recorded before that was known are compared when an apply was killed
        // around them.
        LinkHow::Copy => {
            !wanted.fetching()
                && match record.source_ino {
                    Some(ino) => known(&asked.source_ino, Ask::SourceIno)? == Some(ino),
                    None => !wanted.journaled || known(&asked.same_content, Ask::SameContent)?,
                }
        }
        LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink => true,
    })
}

/// Whether what is at the target is exactly the link wanted there: a symlink to the store
/// entry, a hard link to the store file, or (only where this environment's last apply was
/// making it when it was killed) a copy with the store entry's bytes.
fn is_finished_link(wanted: &Wanted, present: &Present, asked: &Asked) -> Result<bool, Ask> {
    Ok(match wanted.how {
        LinkHow::RelativeSymlink | LinkHow::AbsoluteSymlink => {
            present.kind == Kind::Symlink && known(&asked.points_to_source, Ask::PointsToSource)?
        }
        LinkHow::Hardlink => {
            present.kind == Kind::File
                && !wanted.fetching()
                && known(&asked.source_ino, Ask::SourceIno)? == Some(present.ino)
        }
        LinkHow::Copy => {
            !wanted.fetching() && wanted.journaled && known(&asked.same_content, Ask::SameContent)?
        }
    })
}

/// Whether a hard link whose bytes changed may be made again: it is still the inode mlib
/// linked, and those bytes are kept elsewhere. Either they are the store file's, found
/// changed, which apply moves to quarantine first; or the store file was replaced already
/// (by another environment's apply, or one that was killed) and another name (the
/// quarantine's) still holds them. The last name of changed bytes is never removed.
fn heals(
    record: &RecordFacts,
    wanted: &Wanted,
    present: &Present,
    asked: &Asked,
) -> Result<bool, Ask> {
    if record.kind != LinkKind::Hardlink || present.kind != Kind::File || present.ino != record.ino
    {
        return Ok(false);
    }
    Ok(
        if known(&asked.source_ino, Ask::SourceIno)? == Some(present.ino) {
            wanted.fetch == Some(FetchReason::Corrupt)
        } else {
            present.nlink >= 2
        },
    )
}

/// What becomes of a link this environment recorded that the manifest no longer wants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Leftover {
    /// Untouched since mlib made it: remove it (or move it, when the same link is wanted in
    /// another folder of its app).
    Remove,
    /// Forget its record and leave whatever is there, reporting the drift.
    Forget(DriftWhat),
}

/// The rule for a link no longer wanted, by whether its target's stat is the recorded one
/// (`None`: it could not be stat'ed, which is taken as gone).
pub(crate) fn leftover(unchanged: Option<bool>) -> Leftover {
    match unchanged {
        Some(true) => Leftover::Remove,
        Some(false) => Leftover::Forget(DriftWhat::ChangedUnwanted),
        None => Leftover::Forget(DriftWhat::Removed),
    }
}

#[cfg(test)]
mod tests;
