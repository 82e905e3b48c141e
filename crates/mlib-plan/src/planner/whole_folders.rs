//! Whole-folder links (`link: folder`, `link_folders:`): one symlink from an app's folder to
//! the store's, instead of one link per model. The store's flat layout keeps each type's
//! models in `{store}/{type}/` as the apps expect (validation requires it), so the app
//! lists every model of the store there.

use std::io;
use std::path::{Path, PathBuf};

use mlib_manifest::{App, LinkMode};

use super::Planner;
use crate::action::{Action, Bookkeeping, FOLDER_LINK_PREFIX, Link, LinkHow, Previous};
use crate::decide::{ConflictReason, DriftWhat};
use crate::error::PlanError;
use crate::paths;
use crate::placeholder;
use crate::stat::{Dirs, Follow, Kind, Seen};

/// One whole-folder link an app wants.
struct Wanted {
    /// `folder:*` or `folder:TYPE`: the registry's `model` of the link.
    id: String,
    /// The app's folder as the manifest names it.
    folder: PathBuf,
    /// The store's folder it links to.
    source: PathBuf,
}

impl Planner<'_> {
    /// Plans each app's whole-folder links, after its per-model links (so that mlib's own
    /// links still inside a folder about to become a link are known to be leftovers).
    pub(super) fn whole_folders(&mut self) -> Result<(), PlanError> {
        let manifest = self.input.manifest;
        let store = self.observed.store_root().to_path_buf();
        for app in manifest.apps.values() {
            // Its old folder link goes first (a `folder:*` link holds the type folders a
            // `link_folders:` link would be made in); the next plan makes the new ones.
            if self.retiring_folder_link(app) {
                continue;
            }
            for wanted in wanted_by(app, manifest, &store) {
                let link = self.folder_link(app, wanted)?;
                let meta = match self.mine.get_mut(link.target.as_os_str()) {
                    Some(recorded) => recorded.take_meta(),
                    None => Dirs::default().stat(&link.target, Follow::No),
                };
                self.observe_folder_link(link, meta);
            }
        }
        Ok(())
    }

    fn folder_link(&mut self, app: &App, wanted: Wanted) -> Result<Link, PlanError> {
        // The folder itself is not resolved: it may be mlib's link already.
        let target = self
            .physical
            .file(&wanted.folder)
            .map_err(|source| PlanError::Io {
                path: wanted.folder.clone(),
                source,
            })?;
        let store = self.observed.store_root().to_path_buf();
        if target.starts_with(&store) || store.starts_with(&target) {
            return Err(PlanError::NestedStore {
                app: app.name.clone(),
                folder: target,
                store,
            });
        }
        let parent = target.parent().unwrap_or(&target).to_path_buf();
        if let Some(other) = super::inside_a_store(&parent) {
            return Err(PlanError::InsideAnotherStore {
                app: app.name.clone(),
                folder: target,
                store: other,
            });
        }
        // Always a symlink, whatever the app's mode: a copy or a hard link of a whole store
        // folder would be a second store.
        let same_fs = {
            let dev = super::device_of(&parent);
            dev.is_some() && dev == self.store_dev
        };
        let how = if same_fs {
            LinkHow::RelativeSymlink
        } else {
            LinkHow::AbsoluteSymlink
        };
        let text = Self::container_text(
            &store,
            app.container.as_ref().and_then(|c| c.store.as_deref()),
            how,
            &wanted.source,
        );
        Ok(Link {
            model: wanted.id,
            app: app.name.clone(),
            target,
            source: wanted.source,
            how,
            replaces: None,
            moved_from: None,
            heal: false,
            previous: None,
            farm: false,
            clear: None,
            text,
        })
    }

    /// What a whole-folder link needs, given what is at its place: nothing (it is there), a
    /// new link (over nothing, or over a real folder that is cleared or backed up first), a
    /// relink (mlib's link to another place, untouched), or a conflict (anything else).
    fn observe_folder_link(&mut self, mut link: Link, meta: io::Result<Seen>) {
        let mine = self.mine.remove(link.target.as_os_str()).map(|r| r.record);
        if mine.is_none()
            && let Some(other) = self.others.get(link.target.as_os_str())
        {
            // Another environment's folder link to the same store folder serves this one too.
            if other.source != link.source {
                let owner = self.owner.owner_label(other);
                self.conflict(&link, ConflictReason::OtherEnvironment { owner });
            }
            return;
        }
        let seen = match meta {
            Ok(seen) => seen,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                if let Some(record) = &mine {
                    self.drift_at(&link, DriftWhat::Removed);
                    link.replaces = Some(record.id);
                }
                self.actions.push(Action::Link(link));
                return;
            }
            Err(err) => {
                self.conflict(&link, ConflictReason::Uninspectable(err.to_string()));
                return;
            }
        };
        match seen.kind {
            Kind::Symlink => {
                let content = std::fs::read_link(&link.target).unwrap_or_default();
                let wanted = match &link.text {
                    Some(text) => content == *text,
                    None => paths::resolve_link_target(&link.target, &content) == link.source,
                };
                // The store's folder it points at went (a type with no model left, removed by
                // `gc --include-foreign`): made again by relinking.
                if wanted
                    && !link.source.is_dir()
                    && let Some(record) = &mine
                {
                    link.replaces = Some(record.id);
                    self.actions.push(Action::Relink(link));
                    return;
                }
                if wanted {
                    if mine.is_none() {
                        // The very link mlib would make: recorded as mlib's from now on.
                        self.bookkeeping.push(Bookkeeping::Record(link));
                    }
                    return;
                }
                match mine {
                    Some(record) if record.stat == seen.stat => {
                        link.replaces = Some(record.id);
                        link.previous = Some(Previous {
                            source: record.source.clone(),
                            kind: record.kind.as_str().to_owned(),
                        });
                        self.actions.push(Action::Relink(link));
                    }
                    Some(record) => self.conflict(&link, ConflictReason::Changed(record.kind)),
                    None => self.conflict(
                        &link,
                        ConflictReason::ForeignSymlink {
                            points: content.display().to_string(),
                        },
                    ),
                }
            }
            Kind::Dir => {
                if let Some(record) = mine {
                    // mlib's link was replaced by a folder: the record goes, the folder is
                    // cleared or kept as a backup like any folder there.
                    self.drift_at(&link, DriftWhat::Changed(record.kind));
                    self.bookkeeping.push(Bookkeeping::Forget {
                        record: record.id,
                        target: record.target.clone(),
                    });
                }
                // mlib's links in there that the plan removes (untouched leftovers); one a
                // person changed is kept, and with it the folder.
                let ours = |path: &Path| {
                    self.mine
                        .get(path.as_os_str())
                        .is_some_and(|recorded| recorded.untouched())
                };
                match placeholder::clear_for(&link.target, &ours) {
                    Ok(clear) => {
                        link.clear = Some(Box::new(clear));
                        self.actions.push(Action::Link(link));
                    }
                    Err(err) => {
                        self.conflict(&link, ConflictReason::Uninspectable(err.to_string()))
                    }
                }
            }
            Kind::File => self.conflict(&link, ConflictReason::ForeignFile),
            Kind::Other => self.conflict(&link, ConflictReason::ForeignDir),
        }
    }

    /// Whether `app` has a whole-folder link of its own recorded that this manifest no
    /// longer wants: its folders lie inside the store until apply removes it.
    pub(super) fn retiring_folder_link(&self, app: &App) -> bool {
        self.mine.values().any(|r| {
            r.record.app == app.name
                && r.record.model.starts_with(FOLDER_LINK_PREFIX)
                && !app.links_folder_of(
                    r.record
                        .model
                        .strip_prefix(FOLDER_LINK_PREFIX)
                        .unwrap_or_default(),
                )
        })
    }
}

/// The whole-folder links `app` wants: its models folder (`link: folder`), or each type's
/// folder listed in `link_folders:`.
fn wanted_by(app: &App, manifest: &mlib_manifest::Manifest, store: &Path) -> Vec<Wanted> {
    if app.link == LinkMode::Folder {
        let mut types: Vec<&str> = manifest
            .models
            .values()
            .filter(|m| app.selects(m))
            .map(|m| m.model_type.as_str())
            .collect();
        types.sort_unstable();
        types.dedup();
        // Validation refused a mapping that does not fit one link.
        return match app.whole_models_folder(types) {
            Ok(folder) => vec![Wanted {
                id: format!("{FOLDER_LINK_PREFIX}*"),
                folder,
                source: store.to_path_buf(),
            }],
            Err(_) => Vec::new(),
        };
    }
    app.link_folders
        .iter()
        .filter_map(|ty| {
            Some(Wanted {
                id: format!("{FOLDER_LINK_PREFIX}{ty}"),
                folder: app.folder_for(ty)?,
                source: store.join(ty),
            })
        })
        .collect()
}
