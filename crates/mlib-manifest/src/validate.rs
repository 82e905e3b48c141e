//! Checks that span several entries: app selections against models, model types against app
//! folder tables, file names that would collide in one folder, and a store that overlaps an
//! app's folders.
//!
//! File names are compared ignoring case: on Windows and macOS `A.safetensors` and
//! `a.safetensors` are the same file, and one manifest should work on all three.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

// foldhash (hashbrown's default hasher): the collision checks hash 20,000 names per manifest.
use hashbrown::{HashMap, HashSet};

use crate::diagnostic::{DiagnosticKind, Span};
use crate::model::{App, StoreLayout, join_relative};
use crate::preset::Preset;
use crate::resolve::{Located, Resolver};
use crate::roots::normalize;
use crate::suggest::{closest, list};

pub(crate) fn check(r: &mut Resolver, located: &Located) {
    selections(r, located);
    requires(r, located);
    types(r, located);
    folder_links(r, located);
    app_collisions(r, located);
    if located.layout == StoreLayout::Flat {
        store_collisions(r, located);
    }
    if let Some((store, at)) = &located.store {
        nesting(r, located, store, *at);
    }
}

fn selections(r: &mut Resolver, located: &Located) {
    let mut known: Vec<&str> = Vec::new();
    let mut families: Vec<String> = Vec::new();
    for (model, _) in &located.models {
        known.push(&model.name);
        known.extend(model.tags.iter().map(String::as_str));
        families.extend(model.family.iter().map(|f| f.to_ascii_lowercase()));
    }
    families.sort();
    families.dedup();
    for (app, spans) in &located.apps {
        for (entry, at) in &spans.selection {
            if known.contains(&entry.as_str()) {
                continue;
            }
            if let Some(family) = entry.strip_prefix(crate::model::FAMILY_PREFIX) {
                if families.contains(&family.to_ascii_lowercase()) {
                    continue;
                }
                r.sink.push(
                    DiagnosticKind::UnknownSelection,
                    *at,
                    format!(
                        "app `{}`: `models:` lists `{entry}`, but no model is declared `family: {family}`",
                        app.name
                    ),
                    if families.is_empty() {
                        "give models a `family:` to select them by it".to_string()
                    } else {
                        format!("families in this manifest: {}", families.join(", "))
                    },
                );
                continue;
            }
            let hint = match closest(entry, known.iter().copied()) {
                Some(near) => format!("did you mean `{near}`?"),
                None => format!(
                    "define a model named `{entry}` under `models:`, add `tags: [{entry}]` to the \
                     models it should select, or remove it from the list"
                ),
            };
            r.sink.push(
                DiagnosticKind::UnknownSelection,
                *at,
                format!(
                    "app `{}`: `models:` lists `{entry}`, which is neither a model nor a tag",
                    app.name
                ),
                hint,
            );
        }
    }
}

/// Each `requires:` key names an app of the manifest or a preset (see `requires.rs`), and not
/// an app whose preset is another one while other apps use the preset of that name: there the
/// key would check one app's version against another program's constraint.
fn requires(r: &mut Resolver, located: &Located) {
    let presets = || Preset::ALL.iter().map(|p| p.as_str());
    for (model, spans) in &located.models {
        for (key, at) in &spans.requires {
            let app = located.apps.iter().find(|(app, _)| app.name == *key);
            let preset = Preset::ALL.iter().find(|p| p.as_str() == key);
            match (app, preset) {
                (None, None) => {
                    let names = located.apps.iter().map(|(app, _)| app.name.as_str());
                    let near = closest(key, names.clone().chain(presets()))
                        .map(|near| format!("did you mean `{near}`? "))
                        .unwrap_or_default();
                    let apps: Vec<&str> = names.collect();
                    let apps = if apps.is_empty() {
                        String::new()
                    } else {
                        format!("an app of this manifest ({}) or ", list(apps))
                    };
                    r.sink.push(
                        DiagnosticKind::UnknownApp,
                        *at,
                        format!(
                            "model `{}`: `requires` names `{key}`, which is neither an app of                              this manifest nor a preset",
                            model.name
                        ),
                        format!("{near}`requires` takes {apps}a preset ({})", list(presets())),
                    );
                }
                (Some((app, _)), Some(preset)) if app.preset != Some(*preset) => {
                    let Some((other, _)) = located
                        .apps
                        .iter()
                        .find(|(other, _)| other.preset == Some(*preset))
                    else {
                        continue;
                    };
                    let its = app
                        .preset
                        .map_or("no preset".to_owned(), |p| format!("preset {p}"));
                    r.sink.push(
                        DiagnosticKind::UnknownApp,
                        *at,
                        format!(
                            "model `{}`: `requires` key `{key}` names app `{key}` ({its}) and                              the preset of app `{}`",
                            model.name, other.name
                        ),
                        format!(
                            "rename app `{key}` so that `{key}` means the preset: one constraint                              cannot fit two programs' versions"
                        ),
                    );
                }
                _ => {}
            }
        }
    }
}

/// The folder an app's table gives `model_type`, as written (relative to the app's root).
fn folder_name<'a>(app: &'a App, model_type: &str) -> Option<&'a str> {
    app.folders
        .get(model_type)
        .map(String::as_str)
        .or_else(|| app.preset?.folder(model_type))
}

/// `link: folder` and `link_folders:`: a store's type folder linked whole into an app holds
/// what the app lists only in the flat layout, and the app must have a folder for the type.
fn folder_links(r: &mut Resolver, located: &Located) {
    for (app, spans) in &located.apps {
        let at_all = spans
            .link_folder_at
            .into_iter()
            .chain(spans.link_folders.iter().map(|(_, at)| *at));
        if located.layout != StoreLayout::Flat {
            if let Some(at) = at_all.clone().next() {
                r.sink.push(
                    DiagnosticKind::FolderLink,
                    at,
                    format!(
                        "app `{}`: a folder linked whole needs the store's flat layout, where each type's folder holds the model files themselves; this store is nested (`type/family/name/`)",
                        app.name
                    ),
                    "add `layout: flat` at the top of the manifest for a new store, or link models one by one (`link: auto`)",
                );
            }
            continue;
        }
        for (ty, at) in &spans.link_folders {
            if app.folder_for(ty).is_none() {
                let known: Vec<&str> = match app.preset {
                    Some(preset) => preset.model_types().to_vec(),
                    None => app.folders.keys().map(String::as_str).collect(),
                };
                r.sink.push(
                    DiagnosticKind::FolderLink,
                    *at,
                    format!(
                        "app `{}`: `link_folders` lists `{ty}`, a type the app has no folder for",
                        app.name
                    ),
                    format!(
                        "app `{}` has folders for {}",
                        app.name,
                        list(known.into_iter())
                    ),
                );
            }
        }
        if let Some(at) = at_all.clone().next() {
            // Another app in the same tree would get its links made inside the store.
            let root = normalize(&app.root);
            if let Some((other, _)) = located
                .apps
                .iter()
                .find(|(other, _)| other.name != app.name && normalize(&other.root) == root)
            {
                r.sink.push(
                    DiagnosticKind::FolderLink,
                    at,
                    format!(
                        "app `{}` links its folders to the store, and app `{}` has the same root {}: its links would be made inside the store",
                        app.name,
                        other.name,
                        app.root.display()
                    ),
                    "give each app a root of its own, or link them both the same way",
                );
            }
        }
        if spans.link_folder_at.is_some() && !spans.link_folders.is_empty() {
            let (_, at) = spans.link_folders[0];
            r.sink.push(
                DiagnosticKind::FolderLink,
                at,
                format!(
                    "app `{}` has `link: folder`, which links its whole models folder: `link_folders` has nothing left to do",
                    app.name
                ),
                "keep one of the two",
            );
        }
        let Some(at) = spans.link_folder_at else {
            continue;
        };
        let mut used: Vec<&str> = located
            .models
            .iter()
            .filter(|(model, spans)| spans.type_ok && app.selects(model))
            .map(|(model, _)| model.model_type.as_str())
            .collect();
        used.sort_unstable();
        used.dedup();
        if let Err(mismatch) = app.whole_models_folder(used.iter().copied()) {
            let ty = &mismatch.model_type;
            r.sink.push(
                DiagnosticKind::FolderLink,
                at,
                format!(
                    "app `{}`: `link: folder` makes the app's models folder one link to the store's root, where `{ty}` models are in `{ty}/`; but the app's folder for `{ty}` is {}{}",
                    app.name,
                    mismatch.folder.display(),
                    mismatch
                        .models_folder
                        .map(|dir| format!(", not {}", dir.join(ty).display()))
                        .unwrap_or_default()
                ),
                format!(
                    "link each type's folder to the store's instead: `link_folders: [{}]` (with `link: auto`)",
                    used.join(", ")
                ),
            );
        }
    }
}

fn types(r: &mut Resolver, located: &Located) {
    for (app, app_spans) in &located.apps {
        for (model, spans) in &located.models {
            if !spans.type_ok
                || !app.selects(model)
                || folder_name(app, &model.model_type).is_some()
            {
                continue;
            }
            let ty = &model.model_type;
            let add_folder = format!(
                "add `folders: {{ {ty}: some/folder }}` to app `{}`",
                app.name
            );
            if let Some(preset) = app.preset {
                let known = preset.model_types();
                let near = match preset.retired_type(ty) {
                    Some(why) => format!("{why}. "),
                    None => closest(ty, known.iter().copied())
                        .map(|near| format!("did you mean `{near}`? "))
                        .unwrap_or_default(),
                };
                r.sink.push(
                    DiagnosticKind::UnknownType,
                    spans.model_type,
                    format!(
                        "model `{}` has type `{ty}`, which app `{}` (preset {preset}) has no \
                         folder for",
                        model.name, app.name
                    ),
                    format!(
                        "{near}preset {preset} knows {}; or {add_folder}, or leave `{}` out of \
                         its `models:`",
                        list(known.iter().copied()),
                        model.name
                    ),
                );
            } else if let Some((_, at)) = app_spans.selection.iter().find(|(n, _)| *n == model.name)
            {
                // A custom app only gets the types it lists; naming a model it cannot place is
                // the one case that is surely a mistake.
                let known = app.folders.keys().map(String::as_str);
                r.sink.push(
                    DiagnosticKind::UnknownType,
                    *at,
                    format!(
                        "app `{}` has no folder for type `{ty}` of model `{}`",
                        app.name, model.name
                    ),
                    format!(
                        "app `{}` has folders for {}; {add_folder}",
                        app.name,
                        list(known)
                    ),
                );
            }
        }
    }
}

fn app_collisions(r: &mut Resolver, located: &Located) {
    let mut reported: HashSet<(usize, usize)> = HashSet::new();
    // Each model's file name and its lower case, once for all apps.
    let files: Vec<Option<(String, String)>> = located
        .models
        .iter()
        .map(|(model, spans)| {
            let file = model
                .file_name()
                .filter(|_| spans.type_ok && spans.file_ok)?;
            let folded = file.to_lowercase();
            Some((file, folded))
        })
        .collect();
    for (app, _) in &located.apps {
        // Keys borrowed from the app's table and from `files`: no allocation per model.
        let mut seen: HashMap<(&str, &str), usize> = HashMap::with_capacity(files.len());
        for (index, (model, spans)) in located.models.iter().enumerate() {
            let Some((file, folded)) = &files[index] else {
                continue;
            };
            if !app.selects(model) {
                continue;
            }
            let Some(folder) = folder_name(app, &model.model_type) else {
                continue;
            };
            let key = (folder.trim_end_matches('/'), folded.as_str());
            let first = match seen.entry(key) {
                hashbrown::hash_map::Entry::Vacant(slot) => {
                    slot.insert(index);
                    continue;
                }
                hashbrown::hash_map::Entry::Occupied(slot) => *slot.get(),
            };
            if !reported.insert((first, index)) {
                continue;
            }
            let other = &located.models[first].0;
            r.sink.push(
                DiagnosticKind::Collision,
                spans.file_name,
                format!(
                    "models `{}` and `{}` would both be `{file}` in app `{}`'s folder `{folder}`",
                    other.name, model.name, app.name
                ),
                format!(
                    "set `file:` on one of them to give it another name, or keep one out of app \
                     `{}`'s `models:`",
                    app.name
                ),
            );
        }
    }
}

/// In the flat layout the store is `{type}/{file}`, so equal file names of one type collide
/// there too, whatever the apps.
fn store_collisions(r: &mut Resolver, located: &Located) {
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    for (index, (model, spans)) in located.models.iter().enumerate() {
        if !spans.type_ok || !spans.file_ok {
            continue;
        }
        let Some(file) = model.file_name() else {
            continue;
        };
        let key = (model.model_type.clone(), file.to_lowercase());
        let Some(&first) = seen.get(&key) else {
            seen.insert(key, index);
            continue;
        };
        let other = &located.models[first].0;
        r.sink.push(
            DiagnosticKind::Collision,
            spans.file_name,
            format!(
                "models `{}` and `{}` would both be `{}/{file}` in the flat store",
                other.name, model.name, model.model_type
            ),
            "set `file:` on one of them to give it another name, or use `layout: nested`",
        );
    }
}

/// The store must not be one of an app's folders, lie inside one, or hold one: mlib links
/// store files into those folders, so `--adopt` would turn a store file into a link to itself
/// and unlinking could remove store files. Compared lexically on the expanded paths.
fn nesting(r: &mut Resolver, located: &Located, store: &Path, at: Span) {
    let store = normalize(store);
    for (app, spans) in &located.apps {
        if spans.root_at.is_none() {
            continue; // the root itself was reported
        }
        // Each folder once, with the first type (by name) that uses it.
        let mut folders: Vec<(PathBuf, &str, &str)> = Vec::new();
        for (ty, folder) in app_folders(app) {
            let path = normalize(&join_relative(&app.root, folder));
            if !folders.iter().any(|(seen, _, _)| *seen == path) {
                folders.push((path, ty, folder));
            }
        }
        let shown = |(_, ty, folder): &(PathBuf, &str, &str)| {
            format!("app `{}`'s folder `{folder}` (for `{ty}`)", app.name)
        };
        let message = if let Some(found) = folders.iter().find(|(path, ..)| *path == store) {
            format!("`store` is {}", shown(found))
        } else if let Some(found) = folders.iter().find(|(path, ..)| store.starts_with(path)) {
            format!("`store` is inside {}", shown(found))
        } else {
            let mut inside = folders.iter().filter(|(path, ..)| path.starts_with(&store));
            let Some(first) = inside.next() else {
                continue;
            };
            match inside.count() {
                0 => format!("{} is inside `store`", shown(first)),
                more => format!("{} and {more} more are inside `store`", shown(first)),
            }
        };
        r.sink.push(
            DiagnosticKind::NestedStore,
            at,
            message,
            format!(
                "keep the store out of app `{}`'s model folders, e.g. `store: ~/models`: mlib \
                 links each model from the store into those folders",
                app.name
            ),
        );
    }
}

/// Every (type, folder) an app's table has: its preset's, with `folders:` overriding them.
fn app_folders(app: &App) -> BTreeMap<&str, &str> {
    let mut table: BTreeMap<&str, &str> = BTreeMap::new();
    if let Some(preset) = app.preset {
        for ty in preset.model_types() {
            if let Some(folder) = preset.folder(ty) {
                table.insert(ty, folder);
            }
        }
    }
    for (ty, folder) in &app.folders {
        table.insert(ty, folder);
    }
    table
}
