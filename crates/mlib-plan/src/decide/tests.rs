//! The rules, table-tested: every outcome and every message, and which facts each decision
//! needed (an expensive one asked for where the outcome does not depend on it would read a
//! model's bytes for nothing).

use std::cell::RefCell;

use super::*;
use Ask::*;

/// The store entry's inode.
const STORE: u64 = 100;
/// The inode of a symlink or copy mlib made (a hard link has the store file's).
const MADE: u64 = 200;
/// Another inode: a store entry replaced since, a file put there by someone.
const ELSEWHERE: u64 = 300;
const SHA: &str = "5ha";
const SYMLINK: LinkHow = LinkHow::RelativeSymlink;
const HARDLINK: LinkHow = LinkHow::Hardlink;
const COPY: LinkHow = LinkHow::Copy;
const OWNER: &str = "/srv/models.yaml (WS_USER=ann)";

/// What the disk would say to every question, unless a row says otherwise.
fn world() -> Asked {
    Asked {
        unchanged: Some(true),
        source_ino: Some(Some(STORE)),
        points_to_source: Some(true),
        symlink: Some("../elsewhere/x.safetensors".into()),
        same_content: Some(true),
        sha256: Some(Ok(SHA.into())),
    }
}

/// Answers from a row's world, noting what was asked.
struct World {
    facts: Asked,
    asks: RefCell<Vec<Ask>>,
}

impl World {
    fn ask<T: Clone>(&self, ask: Ask, fact: &Option<T>) -> T {
        self.asks.borrow_mut().push(ask);
        fact.clone()
            .unwrap_or_else(|| panic!("the row's world has no answer to {ask:?}"))
    }
}

impl Finder for World {
    fn unchanged(&self) -> bool {
        self.ask(Unchanged, &self.facts.unchanged)
    }
    fn source_ino(&self) -> Option<u64> {
        self.ask(SourceIno, &self.facts.source_ino)
    }
    fn points_to_source(&self) -> bool {
        self.ask(PointsToSource, &self.facts.points_to_source)
    }
    fn symlink(&self) -> String {
        self.ask(Symlink, &self.facts.symlink)
    }
    fn same_content(&self) -> bool {
        self.ask(SameContent, &self.facts.same_content)
    }
    fn sha256(&self) -> Result<String, String> {
        self.ask(Sha256, &self.facts.sha256)
    }
}

/// A link wanted `how`, nothing recorded, nothing on disk.
fn want(how: LinkHow) -> Facts {
    Facts {
        wanted: Wanted {
            how,
            fetch: None,
            journaled: false,
        },
        mine: None,
        other: None,
        disk: OnDisk::Missing,
        adopt: false,
        want_sha256: Some(SHA.into()),
        target_is_source: false,
    }
}

/// The record of a link of `kind` mlib made from the wanted store entry.
fn record(kind: LinkKind) -> RecordFacts {
    RecordFacts {
        kind,
        ino: if kind == LinkKind::Hardlink {
            STORE
        } else {
            MADE
        },
        same_source: true,
        source_ino: (kind == LinkKind::Copy).then_some(STORE),
    }
}

impl Facts {
    fn mine(mut self, record: RecordFacts) -> Facts {
        self.mine = Some(record);
        self
    }
    fn other(mut self, manifest: OtherManifest) -> Facts {
        self.other = Some(OtherFacts {
            record: record(LinkKind::Symlink),
            owner: OWNER.into(),
            manifest,
        });
        self
    }
    fn disk(mut self, kind: Kind, ino: u64, nlink: u64) -> Facts {
        self.disk = OnDisk::Present(Present { kind, ino, nlink });
        self
    }
    fn fetching(mut self, reason: FetchReason) -> Facts {
        self.wanted.fetch = Some(reason);
        self
    }
    fn journaled(mut self) -> Facts {
        self.wanted.journaled = true;
        self
    }
    /// The folder at the target is the model's local source.
    fn own_source(mut self) -> Facts {
        self.target_is_source = true;
        self
    }

    fn adopt(mut self, sha256: Option<&str>) -> Facts {
        self.adopt = true;
        self.want_sha256 = sha256.map(Into::into);
        self
    }
}

fn with(edit: impl FnOnce(&mut Asked)) -> Asked {
    let mut asked = world();
    edit(&mut asked);
    asked
}

/// One row: what the rules get, what they decide, the messages a person sees, and every
/// fact they needed to find, in order.
struct Row {
    what: &'static str,
    facts: Facts,
    world: Asked,
    claim: bool,
    outcome: Outcome,
    /// The drift line, if any.
    drift: Option<&'static str>,
    /// The conflict's reason, for a conflict.
    reason: Option<&'static str>,
    asks: &'static [Ask],
}

fn row(what: &'static str, facts: Facts, outcome: Outcome) -> Row {
    Row {
        what,
        facts,
        world: world(),
        claim: false,
        outcome,
        drift: None,
        reason: None,
        asks: &[],
    }
}

impl Row {
    fn world(mut self, world: Asked) -> Row {
        self.world = world;
        self
    }
    fn claim(mut self) -> Row {
        self.claim = true;
        self
    }
    fn drift(mut self, drift: &'static str) -> Row {
        self.drift = Some(drift);
        self
    }
    fn reason(mut self, reason: &'static str) -> Row {
        self.reason = Some(reason);
        self
    }
    fn asks(mut self, asks: &'static [Ask]) -> Row {
        self.asks = asks;
        self
    }
}

fn conflict(reason: ConflictReason) -> Outcome {
    Outcome::Conflict(reason)
}

const CHANGED: &str = "was changed since mlib linked it";
const CHANGED_CONFLICT: &str =
    "was changed since mlib linked it; left alone (remove it to let mlib link it again)";
const FOREIGN_FILE: &str = "a file mlib did not make is in the way (run with --adopt to replace it by a link if it is identical to the model)";

fn rows() -> Vec<Row> {
    use ConflictReason as R;
    use Kind::{Dir, File, Other, Symlink as Sym};
    use LinkKind as L;
    let relink = Outcome::Relink { heal: false };
    vec![
        // Another environment's record at the target.
        row(
            "another environment's link: theirs to remake or remove",
            want(SYMLINK)
                .other(OtherManifest::Other { exists: true })
                .disk(Sym, MADE, 1),
            conflict(R::OtherEnvironment {
                owner: OWNER.into(),
            }),
        )
        .reason("already linked by another environment (/srv/models.yaml (WS_USER=ann))"),
        row(
            "another environment's link, removed since: still theirs",
            want(SYMLINK).other(OtherManifest::Other { exists: true }),
            conflict(R::OtherEnvironment {
                owner: OWNER.into(),
            }),
        )
        .reason("already linked by another environment (/srv/models.yaml (WS_USER=ann))"),
        row(
            "a link of an environment the registry does not know",
            want(SYMLINK).other(OtherManifest::Unknown).disk(Sym, MADE, 1),
            conflict(R::OtherEnvironment {
                owner: OWNER.into(),
            }),
        )
        .reason("already linked by another environment (/srv/models.yaml (WS_USER=ann))"),
        row(
            "this environment under another identity (same manifest): taken over, untouched",
            want(SYMLINK).other(OtherManifest::Same).disk(Sym, MADE, 1),
            Outcome::Unchanged,
        )
        .claim()
        .asks(&[Unchanged]),
        row(
            "an environment whose manifest is gone (moved): taken over, its link removed since",
            want(SYMLINK).other(OtherManifest::Other { exists: false }),
            Outcome::Link,
        )
        .claim()
        .drift("was removed since mlib linked it"),
        row(
            "taken over, and changed since: a conflict of this environment's own",
            want(SYMLINK).other(OtherManifest::Same).disk(File, ELSEWHERE, 1),
            conflict(R::Changed(L::Symlink)),
        )
        .world(with(|w| w.unchanged = Some(false)))
        .claim()
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged]),
        // Nothing at the target, or nothing to see.
        row("nothing there, nothing recorded", want(SYMLINK), Outcome::Link),
        row(
            "recorded, removed since",
            want(SYMLINK).mine(record(L::Symlink)),
            Outcome::Link,
        )
        .drift("was removed since mlib linked it"),
        row(
            "cannot be inspected",
            Facts {
                disk: OnDisk::Uninspectable("Permission denied (os error 13)".into()),
                ..want(SYMLINK).mine(record(L::Symlink))
            },
            conflict(R::Uninspectable("Permission denied (os error 13)".into())),
        )
        .reason("cannot be inspected: Permission denied (os error 13)"),
        // Recorded and untouched: is it still the link wanted?
        row(
            "a recorded symlink, untouched",
            want(SYMLINK).mine(record(L::Symlink)).disk(Sym, MADE, 1),
            Outcome::Unchanged,
        )
        .asks(&[Unchanged]),
        row(
            "a recorded symlink, the app now wants hard links",
            want(HARDLINK).mine(record(L::Symlink)).disk(Sym, MADE, 1),
            relink.clone(),
        )
        .asks(&[Unchanged]),
        row(
            "a recorded symlink to another store entry (a renamed file)",
            want(SYMLINK)
                .mine(RecordFacts {
                    same_source: false,
                    ..record(L::Symlink)
                })
                .disk(Sym, MADE, 1),
            relink.clone(),
        )
        .asks(&[Unchanged]),
        row(
            "a recorded hard link, untouched, to the store file",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, STORE, 2),
            Outcome::Unchanged,
        )
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded hard link while its model is fetched again",
            want(HARDLINK)
                .mine(record(L::Hardlink))
                .disk(File, STORE, 2)
                .fetching(FetchReason::HashChanged),
            relink.clone(),
        )
        .asks(&[Unchanged]),
        row(
            "a recorded hard link to a store file replaced since",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, STORE, 1),
            relink.clone(),
        )
        .world(with(|w| w.source_ino = Some(Some(ELSEWHERE))))
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded copy of the store entry as it is",
            want(COPY).mine(record(L::Copy)).disk(File, MADE, 1),
            Outcome::Unchanged,
        )
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded copy of a store entry replaced since",
            want(COPY).mine(record(L::Copy)).disk(File, MADE, 1),
            relink.clone(),
        )
        .world(with(|w| w.source_ino = Some(Some(ELSEWHERE))))
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded copy while its model is fetched again",
            want(COPY)
                .mine(record(L::Copy))
                .disk(File, MADE, 1)
                .fetching(FetchReason::SourceChanged),
            relink.clone(),
        )
        .asks(&[Unchanged]),
        row(
            "a copy schema 1 recorded (no source inode), not journaled: trusted, not compared",
            want(COPY)
                .mine(RecordFacts {
                    source_ino: None,
                    ..record(L::Copy)
                })
                .disk(File, MADE, 1),
            Outcome::Unchanged,
        )
        .asks(&[Unchanged]),
        row(
            "a copy schema 1 recorded, journaled by a killed apply, same bytes",
            want(COPY)
                .mine(RecordFacts {
                    source_ino: None,
                    ..record(L::Copy)
                })
                .disk(File, MADE, 1)
                .journaled(),
            Outcome::Unchanged,
        )
        .asks(&[Unchanged, SameContent]),
        row(
            "a copy schema 1 recorded, journaled by a killed apply, other bytes",
            want(COPY)
                .mine(RecordFacts {
                    source_ino: None,
                    ..record(L::Copy)
                })
                .disk(File, MADE, 1)
                .journaled(),
            relink.clone(),
        )
        .world(with(|w| w.same_content = Some(false)))
        .asks(&[Unchanged, SameContent]),
        // Recorded and changed since.
        row(
            "a recorded symlink remade by hand to the store entry",
            want(SYMLINK).mine(record(L::Symlink)).disk(Sym, ELSEWHERE, 1),
            Outcome::Record,
        )
        .world(with(|w| w.unchanged = Some(false)))
        .asks(&[Unchanged, PointsToSource]),
        row(
            "a recorded symlink pointed elsewhere by someone",
            want(SYMLINK).mine(record(L::Symlink)).disk(Sym, ELSEWHERE, 1),
            conflict(R::Changed(L::Symlink)),
        )
        .world(with(|w| {
            w.unchanged = Some(false);
            w.points_to_source = Some(false);
        }))
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged, PointsToSource]),
        row(
            "a recorded symlink replaced by a file",
            want(SYMLINK).mine(record(L::Symlink)).disk(File, ELSEWHERE, 1),
            conflict(R::Changed(L::Symlink)),
        )
        .world(with(|w| w.unchanged = Some(false)))
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged]),
        row(
            "a recorded hard link touched (still the store file, not fetched): recorded again",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, STORE, 2),
            Outcome::Record,
        )
        .world(with(|w| w.unchanged = Some(false)))
        .asks(&[Unchanged, SourceIno]),
        row(
            "a hard link written through: the store file is found corrupt and quarantined",
            want(HARDLINK)
                .mine(record(L::Hardlink))
                .disk(File, STORE, 2)
                .fetching(FetchReason::Corrupt),
            Outcome::Relink { heal: true },
        )
        .world(with(|w| w.unchanged = Some(false)))
        .drift("was modified through this hard link (its bytes are the store file's)")
        .asks(&[Unchanged, SourceIno]),
        row(
            "a hard link written through, the store file replaced since: its bytes live on elsewhere",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, STORE, 2),
            Outcome::Relink { heal: true },
        )
        .world(with(|w| {
            w.unchanged = Some(false);
            w.source_ino = Some(Some(ELSEWHERE));
        }))
        .drift("was modified through this hard link (its bytes are the store file's)")
        .asks(&[Unchanged, SourceIno]),
        row(
            "a hard link written through, the store file replaced, and it is the last name of those bytes",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, STORE, 1),
            conflict(R::Changed(L::Hardlink)),
        )
        .world(with(|w| {
            w.unchanged = Some(false);
            w.source_ino = Some(Some(ELSEWHERE));
        }))
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged, SourceIno]),
        row(
            "a hard link written through while its model is fetched for another reason",
            want(HARDLINK)
                .mine(record(L::Hardlink))
                .disk(File, STORE, 2)
                .fetching(FetchReason::HashChanged),
            conflict(R::Changed(L::Hardlink)),
        )
        .world(with(|w| w.unchanged = Some(false)))
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded hard link replaced by another file",
            want(HARDLINK).mine(record(L::Hardlink)).disk(File, ELSEWHERE, 1),
            conflict(R::Changed(L::Hardlink)),
        )
        .world(with(|w| w.unchanged = Some(false)))
        .drift(CHANGED)
        .reason(CHANGED_CONFLICT)
        .asks(&[Unchanged, SourceIno]),
        row(
            "a recorded copy modified by someone",
            want(COPY).mine(record(L::Copy)).disk(File, MADE, 1),
            conflict(R::Changed(L::Copy)),
        )
        .world(with(|w| w.unchanged = Some(false)))
        .drift("was modified since mlib copied it")
        .reason(
            "was modified since mlib copied it; left alone (remove it to let mlib link it again)",
        )
        .asks(&[Unchanged]),
        row(
            "a recorded copy changed, journaled, with the store entry's bytes (a killed relink)",
            want(COPY).mine(record(L::Copy)).disk(File, ELSEWHERE, 1).journaled(),
            Outcome::Record,
        )
        .world(with(|w| w.unchanged = Some(false)))
        .asks(&[Unchanged, SameContent]),
        // Nothing recorded, something there.
        row(
            "a symlink to the store entry (the registry was lost)",
            want(SYMLINK).disk(Sym, ELSEWHERE, 1),
            Outcome::Record,
        )
        .asks(&[PointsToSource]),
        row(
            "a hard link to the store file (the registry was lost)",
            want(HARDLINK).disk(File, STORE, 2),
            Outcome::Record,
        )
        .asks(&[SourceIno]),
        row(
            "a journaled copy with the store entry's bytes (a killed apply made it)",
            want(COPY).disk(File, ELSEWHERE, 1).journaled(),
            Outcome::Record,
        )
        .asks(&[SameContent]),
        row(
            "a journaled copy with other bytes",
            want(COPY).disk(File, ELSEWHERE, 1).journaled(),
            conflict(R::ForeignFile),
        )
        .world(with(|w| w.same_content = Some(false)))
        .reason(FOREIGN_FILE)
        .asks(&[SameContent]),
        row(
            "a file where a copy is wanted, not journaled: someone's, never compared",
            want(COPY).disk(File, ELSEWHERE, 1),
            conflict(R::ForeignFile),
        )
        .reason(FOREIGN_FILE),
        row(
            "a journaled copy while its model is fetched again: not compared",
            want(COPY)
                .disk(File, ELSEWHERE, 1)
                .journaled()
                .fetching(FetchReason::Missing),
            conflict(R::ForeignFile),
        )
        .reason(FOREIGN_FILE),
        row(
            "a hard link to the store file while its model is fetched again",
            want(HARDLINK)
                .disk(File, STORE, 2)
                .fetching(FetchReason::Corrupt),
            conflict(R::ForeignFile),
        )
        .reason(FOREIGN_FILE),
        row(
            "a symlink mlib did not make",
            want(SYMLINK).disk(Sym, ELSEWHERE, 1),
            conflict(R::ForeignSymlink {
                points: "../elsewhere/x.safetensors".into(),
            }),
        )
        .world(with(|w| w.points_to_source = Some(false)))
        .reason("a symlink mlib did not make is in the way (-> ../elsewhere/x.safetensors)")
        .asks(&[PointsToSource, Symlink]),
        row(
            "--adopt, and a symlink mlib did not make leads to the model's bytes",
            want(SYMLINK).disk(Sym, ELSEWHERE, 1).adopt(Some(SHA)),
            Outcome::Adopt,
        )
        .world(with(|w| w.points_to_source = Some(false)))
        .asks(&[PointsToSource, Sha256]),
        row(
            "--adopt, and a symlink mlib did not make leads to other bytes",
            want(SYMLINK).disk(Sym, ELSEWHERE, 1).adopt(Some("0ther")),
            conflict(R::ForeignSymlink {
                points: "../elsewhere/x.safetensors".into(),
            }),
        )
        .world(with(|w| w.points_to_source = Some(false)))
        .reason("a symlink mlib did not make is in the way (-> ../elsewhere/x.safetensors)")
        .asks(&[PointsToSource, Sha256, Symlink]),
        row(
            "a symlink where a hard link is wanted",
            want(HARDLINK).disk(Sym, ELSEWHERE, 1),
            conflict(R::ForeignSymlink {
                points: "?".into(),
            }),
        )
        .world(with(|w| w.symlink = Some("?".into())))
        .reason("a symlink mlib did not make is in the way (-> ?)")
        .asks(&[Symlink]),
        row(
            "a file mlib did not make, without --adopt",
            want(SYMLINK).disk(File, ELSEWHERE, 1),
            conflict(R::ForeignFile),
        )
        .reason(FOREIGN_FILE),
        row(
            "--adopt, and the model has no sha256",
            want(SYMLINK).disk(File, ELSEWHERE, 1).adopt(None),
            conflict(R::NoSha256),
        )
        .reason("a file is in the way and the model has no sha256 to compare it with; pin one in the manifest to adopt it"),
        row(
            "--adopt, and the file is the model",
            want(SYMLINK).disk(File, ELSEWHERE, 1).adopt(Some(SHA)),
            Outcome::Adopt,
        )
        .asks(&[Sha256]),
        row(
            "--adopt, and the file differs",
            want(SYMLINK).disk(File, ELSEWHERE, 1).adopt(Some("0ther")),
            conflict(R::Differs {
                found: SHA.into(),
                want: "0ther".into(),
            }),
        )
        .reason("a file mlib did not make is in the way and differs from the model (sha256 5ha instead of 0ther); left alone")
        .asks(&[Sha256]),
        row(
            "--adopt, and the file cannot be read",
            want(SYMLINK).disk(File, ELSEWHERE, 1).adopt(Some(SHA)),
            conflict(R::Unreadable("Permission denied (os error 13)".into())),
        )
        .world(with(|w| w.sha256 = Some(Err("Permission denied (os error 13)".into()))))
        .reason("a file is in the way and cannot be read: Permission denied (os error 13)")
        .asks(&[Sha256]),
        row(
            "--adopt, and the folder in the way is the model's own source",
            want(SYMLINK).disk(Dir, ELSEWHERE, 2).adopt(None).own_source(),
            Outcome::Adopt,
        ),
        row(
            "the model's own source folder, without --adopt",
            want(SYMLINK).disk(Dir, ELSEWHERE, 2).own_source(),
            conflict(R::ForeignDir),
        )
        .reason("a directory mlib did not make is in the way"),
        row(
            "a directory mlib did not make",
            want(SYMLINK).disk(Dir, ELSEWHERE, 2),
            conflict(R::ForeignDir),
        )
        .reason("a directory mlib did not make is in the way"),
        row(
            "a folder where a copied folder is wanted, journaled, with other content",
            want(COPY).disk(Dir, ELSEWHERE, 2).journaled(),
            conflict(R::ForeignDir),
        )
        .world(with(|w| w.same_content = Some(false)))
        .reason("a directory mlib did not make is in the way")
        .asks(&[SameContent]),
        row(
            "a FIFO, socket or device (called a directory, as before)",
            want(SYMLINK).disk(Other, ELSEWHERE, 1).adopt(Some(SHA)),
            conflict(R::ForeignDir),
        )
        .reason("a directory mlib did not make is in the way"),
    ]
}

#[test]
fn every_outcome_and_message_of_a_wanted_link() {
    let rows = rows();
    for row in &rows {
        let world = World {
            facts: row.world.clone(),
            asks: RefCell::new(Vec::new()),
        };
        let decision = settle(&mut Asked::default(), &world, |asked| {
            decide(&row.facts, asked)
        });
        let what = row.what;
        assert_eq!(decision.outcome, row.outcome, "{what}");
        assert_eq!(decision.claim, row.claim, "{what}: claim");
        assert_eq!(
            decision.drift.map(|d| d.to_string()).as_deref(),
            row.drift,
            "{what}: drift"
        );
        let reason = match &decision.outcome {
            Outcome::Conflict(reason) => Some(reason.to_string()),
            _ => None,
        };
        assert_eq!(reason.as_deref(), row.reason, "{what}: reason");
        assert_eq!(*world.asks.borrow(), row.asks, "{what}: facts asked for");
    }
    // Every outcome is somewhere in the table.
    let outcomes: [fn(&Outcome) -> bool; 7] = [
        |o| matches!(o, Outcome::Unchanged),
        |o| matches!(o, Outcome::Link),
        |o| matches!(o, Outcome::Relink { heal: false }),
        |o| matches!(o, Outcome::Relink { heal: true }),
        |o| matches!(o, Outcome::Record),
        |o| matches!(o, Outcome::Adopt),
        |o| matches!(o, Outcome::Conflict(_)),
    ];
    for (i, is) in outcomes.iter().enumerate() {
        assert!(rows.iter().any(|r| is(&r.outcome)), "outcome {i} untested");
    }
}

#[test]
fn which_environments_are_this_one_under_another_identity() {
    for (manifest, taken) in [
        (OtherManifest::Unknown, false),
        (OtherManifest::Same, true),
        (OtherManifest::Other { exists: true }, false),
        (OtherManifest::Other { exists: false }, true),
    ] {
        assert_eq!(manifest.may_take_over(), taken, "{manifest:?}");
        let facts = want(SYMLINK).other(manifest);
        assert_eq!(facts.takes_over(), taken, "{manifest:?}");
        // A record of this environment's own at the target comes first.
        assert!(!facts.mine(record(LinkKind::Symlink)).takes_over());
    }
}

#[test]
fn the_conflict_of_two_apps_of_one_manifest() {
    let reason = ConflictReason::SameManifestApp {
        app: "comfyui".into(),
    };
    assert_eq!(
        reason.to_string(),
        "app `comfyui` of this manifest links the same path; give the apps different folders"
    );
}

#[test]
fn links_no_longer_wanted() {
    for (unchanged, leftover_is, drift) in [
        (Some(true), Leftover::Remove, None),
        (
            Some(false),
            Leftover::Forget(DriftWhat::ChangedUnwanted),
            Some(
                "was changed since mlib linked it; it is no longer wanted, but mlib leaves it in place",
            ),
        ),
        // Gone, or not even stat'able: forgotten, nothing touched.
        (
            None,
            Leftover::Forget(DriftWhat::Removed),
            Some("was removed since mlib linked it"),
        ),
    ] {
        let decided = leftover(unchanged);
        assert_eq!(decided, leftover_is, "{unchanged:?}");
        let shown = match decided {
            Leftover::Forget(what) => Some(what.to_string()),
            Leftover::Remove => None,
        };
        assert_eq!(shown.as_deref(), drift, "{unchanged:?}");
    }
}

#[test]
fn a_rule_asks_until_it_knows_and_never_twice() {
    // A journaled copy nobody recorded: compared once, then decided.
    let facts = want(COPY).disk(Kind::File, ELSEWHERE, 1).journaled();
    let mut asked = Asked::default();
    assert_eq!(decide(&facts, &asked), Err(SameContent));
    asked.same_content = Some(true);
    let decided = decide(&facts, &asked).unwrap();
    assert_eq!(decided.outcome, Outcome::Record);
}
