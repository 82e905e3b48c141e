//! The version of an app, checked against models' `requires:` (`mlib_manifest::requires`
//! says what the keys mean): `version:` in the manifest wins; else the app's tree is read the
//! way the app itself finds its version, without running it or git.
//!
//! - ComfyUI: `comfyui_version.py` (`__version__ = "0.8.1"`, comfyui_version.py:3 at
//!   comfyanonymous/ComfyUI@071ff3e2; generated from `pyproject.toml` and logged by `main.py`
//!   at start, "ComfyUI version: ..."), else `pyproject.toml`'s `[project]` `version`
//!   (pyproject.toml:3 at @00636101), for trees older than the version file.
//! - A1111: `git_tag()` in modules/launch_utils.py:74-84 (AUTOMATIC1111/stable-diffusion-webui
//!   @208760f3) runs `git describe --tags`, and reads the first line of `CHANGELOG.md`
//!   (`## 1.10.1`) when that fails (a zip download). mlib reads the tag at HEAD from `.git`
//!   (`HEAD`, loose refs, `packed-refs` with their peeled lines) and otherwise the changelog:
//!   a checkout past its last tag has that release's changelog heading, as `describe` would
//!   name it (`v1.10.1-5-g...`). An annotated tag whose peeled commit is only in the object
//!   database is not followed (that would need git's object store); the changelog answers.
//! - Forge: `modules_forge/forge_version.py` (`version = '2.0.1v1.10.1'`, line 1 at
//!   lllyasviel/stable-diffusion-webui-forge@dfdcbab6): its `git_tag()`
//!   (modules/launch_utils.py:94-95) is `'f' + forge_version.version + '-' + ` the A1111 tag.
//!   Forge's own version is the part before the `v` (the rest is the A1111 it is based on);
//!   its git tags (`latest`, `previous`) are not versions, and its CHANGELOG.md is A1111's.
//! - Fooocus: `fooocus_version.py` (`version = '2.1.62'`, line 1 at lllyasviel/Fooocus@0080b25a).
//! - SD.Next (its `package.json` says `"version": "dev"`; the version comes from git at run
//!   time), SwarmUI and custom apps: only `version:`.

use std::io::Read;
use std::path::{Path, PathBuf};

use mlib_manifest::{App, Preset, Version, parse_version};

/// What is known about an app's version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppVersion {
    Known {
        version: Version,
        /// Where it was read: `version:` in the manifest, or a file of the app's tree.
        from: String,
    },
    /// Not found; says why (what was looked for).
    Unknown { why: String },
}

/// The version of `app`: its `version:`, else what its tree says.
/// Whether `model`'s `requires:` lets `app` have it, as the plan decides (an app whose
/// version is unknown gets it).
pub fn allows(app: &App, model: &mlib_manifest::Model) -> bool {
    let mut requirements = model.requirements_for(app).peekable();
    if requirements.peek().is_none() {
        return true;
    }
    match detect(app) {
        AppVersion::Known { version, .. } => {
            requirements.all(|(_, specifiers)| specifiers.contains(&version))
        }
        AppVersion::Unknown { .. } => true,
    }
}

pub fn detect(app: &App) -> AppVersion {
    if let Some(version) = &app.version {
        return AppVersion::Known {
            version: version.clone(),
            from: "`version:` in the manifest".into(),
        };
    }
    let root = &app.root;
    let (found, why) = match app.preset {
        Some(Preset::ComfyUI) => (
            python_version(root, "comfyui_version.py", "__version__")
                .or_else(|| pyproject_version(root)),
            "no version in comfyui_version.py or pyproject.toml",
        ),
        Some(Preset::A1111) => (
            git_tag_at_head(root).or_else(|| changelog_version(root)),
            "no version tag at the git HEAD, no `## VERSION` first line in CHANGELOG.md",
        ),
        Some(Preset::Forge) => (
            forge_version(root),
            "no version in modules_forge/forge_version.py",
        ),
        Some(Preset::Fooocus) => (
            python_version(root, "fooocus_version.py", "version"),
            "no version in fooocus_version.py",
        ),
        Some(preset @ (Preset::SdNext | Preset::SwarmUI)) => {
            return AppVersion::Unknown {
                why: format!("mlib cannot read {preset}'s version from its tree"),
            };
        }
        None => {
            return AppVersion::Unknown {
                why: "a custom app has no version file mlib knows".into(),
            };
        }
    };
    match found {
        Some((version, from)) => AppVersion::Known { version, from },
        None => AppVersion::Unknown { why: why.into() },
    }
}

/// How many entries of `refs/tags` are looked at, at most.
const MAX_TAG_ENTRIES: usize = 10_000;

/// Files of an app's tree that hold a version are small; anything larger is not one.
const MAX_READ: u64 = 1 << 20;

/// The start of a text file (at most `limit` bytes), or `None` if it cannot be read.
fn read_text(path: &Path, limit: u64) -> Option<String> {
    let mut bytes = Vec::new();
    mlib_fs::platform::open_regular(path)
        .ok()?
        .take(limit)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The string assigned to `name` at the top level of a Python file (`name = "0.3.40"` or with
/// single quotes), as the file's text says it.
fn python_string(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line
            .strip_prefix(name)?
            .trim_start()
            .strip_prefix('=')?
            .trim();
        let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let inner = &rest[1..];
        Some(inner[..inner.find(quote)?].to_owned())
    })
}

/// `name = "VERSION"` in `root/file`, as a version, with the file's name.
fn python_version(root: &Path, file: &str, name: &str) -> Option<(Version, String)> {
    let text = read_text(&root.join(file), MAX_READ)?;
    let version = parse_version(&python_string(&text, name)?)?;
    Some((version, file.to_owned()))
}

/// `version = "..."` in the `[project]` table of `root/pyproject.toml`.
fn pyproject_version(root: &Path) -> Option<(Version, String)> {
    let text = read_text(&root.join("pyproject.toml"), MAX_READ)?;
    let mut in_project = false;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_project = line == "[project]";
        } else if in_project && let Some(version) = python_string(line, "version") {
            return Some((parse_version(&version)?, "pyproject.toml".into()));
        }
    }
    None
}

/// Forge's `version = '2.0.1v1.10.1'`: Forge's own version is what comes before the `v` that
/// starts the A1111 version it is based on.
fn forge_version(root: &Path) -> Option<(Version, String)> {
    let file = "modules_forge/forge_version.py";
    let text = read_text(&root.join(file), MAX_READ)?;
    let full = python_string(&text, "version")?;
    let own = full.split_once('v').map_or(full.as_str(), |(own, _)| own);
    Some((parse_version(own)?, file.into()))
}

/// The first non-empty line of `root/CHANGELOG.md` without its `## `, as A1111 reads it.
fn changelog_version(root: &Path) -> Option<(Version, String)> {
    let text = read_text(&root.join("CHANGELOG.md"), 64 * 1024)?;
    let first = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let version = parse_version(first.strip_prefix("## ")?)?;
    Some((version, "CHANGELOG.md".into()))
}

/// The highest version among the tags that point at the commit checked out in `root`, read
/// from `.git` without git: `HEAD` (a branch or a detached commit), the branch's loose ref or
/// its `packed-refs` line, then every tag whose loose ref or `packed-refs` line (or the
/// peeled `^` line under an annotated tag) names that commit.
fn git_tag_at_head(root: &Path) -> Option<(Version, String)> {
    let (git_dir, common) = git_dirs(root)?;
    let head = read_text(&git_dir.join("HEAD"), 4096)?;
    let head = head.trim();
    let packed = read_text(&common.join("packed-refs"), 16 * MAX_READ).unwrap_or_default();
    let commit = match head.strip_prefix("ref:") {
        Some(name) => {
            let name = name.trim();
            [&git_dir, &common]
                .iter()
                .find_map(|dir| loose_ref(dir, name))
                .or_else(|| packed_ref(&packed, name))?
        }
        None => head.to_owned(),
    };
    if !is_object_id(&commit) {
        return None;
    }
    let mut tags = Vec::new();
    // A `refs/tags` that is a link could lead anywhere (`/`): tags are only read in place.
    let tags_dir = common.join("refs").join("tags");
    if tags_dir
        .symlink_metadata()
        .is_ok_and(|m| m.file_type().is_dir())
    {
        let mut budget = MAX_TAG_ENTRIES;
        loose_tags(&tags_dir, "", &commit, &mut tags, 0, &mut budget);
    }
    let mut last: Option<&str> = None;
    for line in packed.lines() {
        if let Some(peeled) = line.strip_prefix('^') {
            if peeled.trim() == commit
                && let Some(tag) = last
            {
                tags.push(tag.to_owned());
            }
            continue;
        }
        last = None;
        if let Some((id, name)) = line.split_once(' ')
            && let Some(tag) = name.trim().strip_prefix("refs/tags/")
        {
            if id == commit {
                tags.push(tag.to_owned());
            }
            last = Some(tag);
        }
    }
    tags.into_iter()
        .filter_map(|tag| Some((parse_version(&tag)?, format!("git tag {tag}"))))
        .max_by(|a, b| a.0.cmp(&b.0))
}

/// `.git` of `root` and the folder shared refs live in: `.git` itself, or for a worktree or
/// submodule (`.git` is a file `gitdir: PATH`), that folder and its `commondir`.
fn git_dirs(root: &Path) -> Option<(PathBuf, PathBuf)> {
    let dot_git = root.join(".git");
    let git_dir = if dot_git.is_dir() {
        dot_git
    } else {
        let text = read_text(&dot_git, 4096)?;
        let path = Path::new(text.trim().strip_prefix("gitdir:")?.trim());
        root.join(path)
    };
    let common = match read_text(&git_dir.join("commondir"), 4096) {
        Some(text) => git_dir.join(text.trim()),
        None => git_dir.clone(),
    };
    Some((git_dir, common))
}

fn is_object_id(id: &str) -> bool {
    matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A loose ref's object id (`refs/heads/master` under `dir`).
fn loose_ref(dir: &Path, name: &str) -> Option<String> {
    if name.split('/').any(|part| part.is_empty() || part == "..") {
        return None;
    }
    let id = read_text(&dir.join(name), 4096)?;
    let id = id.trim();
    is_object_id(id).then(|| id.to_owned())
}

/// A ref's object id from `packed-refs` (`ID NAME` lines).
fn packed_ref(packed: &str, name: &str) -> Option<String> {
    packed.lines().find_map(|line| {
        let (id, ref_name) = line.split_once(' ')?;
        (ref_name.trim() == name).then(|| id.to_owned())
    })
}

/// Loose tags under `dir` (prefix `prefix`) that name `commit`; nested tag folders are
/// followed a few levels deep.
fn loose_tags(
    dir: &Path,
    prefix: &str,
    commit: &str,
    out: &mut Vec<String>,
    depth: usize,
    budget: &mut usize,
) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        // A repository with more loose tags than this packs them; more is not a repository.
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let name = entry.file_name().to_string_lossy().into_owned();
        let tag = format!("{prefix}{name}");
        match entry.file_type() {
            Ok(t) if t.is_dir() && depth < 4 => loose_tags(
                &entry.path(),
                &format!("{tag}/"),
                commit,
                out,
                depth + 1,
                budget,
            ),
            Ok(t)
                if t.is_file()
                    && read_text(&entry.path(), 4096).is_some_and(|id| id.trim() == commit) =>
            {
                out.push(tag)
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The version mlib finds for an app of `preset` rooted at `root` (`version:` as given).
    fn found(preset: &str, root: &Path, version: Option<&str>) -> AppVersion {
        let version = version.map_or(String::new(), |v| format!(", version: \"{v}\""));
        let text = format!(
            "version: 1\nstore: /s\napps:\n  app: {{ preset: {preset}, root: \"{}\"{version} }}\n",
            root.display()
        );
        let manifest = mlib_manifest::parse(&text, Path::new("/m/models.yaml"), &|_| None)
            .unwrap_or_else(|e| panic!("{:?}", e.diagnostics()));
        detect(&manifest.apps["app"])
    }

    fn known(version: &str, from: &str) -> AppVersion {
        AppVersion::Known {
            version: parse_version(version).unwrap(),
            from: from.into(),
        }
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
    const OTHER: &str = "89abcdef0123456789abcdef0123456789abcdef";

    /// Found in review: a FIFO (or a link to /dev/stdin) as a version file blocked the plan
    /// forever; a `refs/tags` linked to `/` walked the whole filesystem.
    #[test]
    fn a_version_file_that_is_no_file_is_not_waited_on() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let fifo = root.join("comfyui_version.py");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        std::os::unix::fs::symlink("/dev/stdin", root.join("pyproject.toml")).unwrap();
        std::fs::create_dir_all(root.join("a1111/.git/refs")).unwrap();
        write(&root.join("a1111/.git/HEAD"), &format!("{COMMIT}\n"));
        std::os::unix::fs::symlink("/", root.join("a1111/.git/refs/tags")).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let comfy = found("comfyui", &root, None);
            let a1111 = found("a1111", &root.join("a1111"), None);
            let _ = tx.send((comfy, a1111));
        });
        let (comfy, a1111) = rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("detecting a version never blocks");
        assert!(matches!(comfy, AppVersion::Unknown { .. }), "{comfy:?}");
        assert!(matches!(a1111, AppVersion::Unknown { .. }), "{a1111:?}");
    }

    #[test]
    fn comfyui_reads_its_version_file_then_pyproject() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        assert!(matches!(
            found("comfyui", root, None),
            AppVersion::Unknown { .. }
        ));
        write(
            &root.join("pyproject.toml"),
            "[tool.x]\nversion = \"9\"\n[project]\nname = \"ComfyUI\"\nversion = \"0.3.54\"\n",
        );
        assert_eq!(
            found("comfyui", root, None),
            known("0.3.54", "pyproject.toml")
        );
        write(
            &root.join("comfyui_version.py"),
            "# This file is automatically generated\n__version__ = \"0.8.1\"\n",
        );
        assert_eq!(
            found("comfyui", root, None),
            known("0.8.1", "comfyui_version.py")
        );
        // `version:` in the manifest wins over the tree.
        assert_eq!(
            found("comfyui", root, Some("0.3.10")),
            known("0.3.10", "`version:` in the manifest")
        );
    }

    #[test]
    fn a1111_reads_the_tag_at_head_then_its_changelog() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let git = root.join(".git");
        write(
            &root.join("CHANGELOG.md"),
            "\n## 1.10.1\n\n### Bug Fixes:\n",
        );
        assert_eq!(found("a1111", root, None), known("1.10.1", "CHANGELOG.md"));

        // A branch whose commit carries a loose tag (and a tag elsewhere, not taken).
        write(&git.join("HEAD"), "ref: refs/heads/master\n");
        write(&git.join("refs/heads/master"), &format!("{COMMIT}\n"));
        write(&git.join("refs/tags/v1.9.4"), &format!("{OTHER}\n"));
        write(&git.join("refs/tags/v1.10.1"), &format!("{COMMIT}\n"));
        assert_eq!(
            found("a1111", root, None),
            known("1.10.1", "git tag v1.10.1")
        );

        // A packed branch, and an annotated tag found through its peeled line.
        std::fs::remove_dir_all(git.join("refs")).unwrap();
        write(
            &git.join("packed-refs"),
            &format!(
                "# pack-refs with: peeled fully-peeled sorted\n{COMMIT} refs/heads/master\n\
                 {OTHER} refs/tags/v1.10.0-RC\n^{OTHER}\n\
                 fedcba9876543210fedcba9876543210fedcba98 refs/tags/v1.11.0\n^{COMMIT}\n"
            ),
        );
        assert_eq!(
            found("a1111", root, None),
            known("1.11.0", "git tag v1.11.0")
        );

        // A detached HEAD on an untagged commit: the changelog answers.
        write(&git.join("HEAD"), &format!("{OTHER}0\n"));
        assert_eq!(found("a1111", root, None), known("1.10.1", "CHANGELOG.md"));
        write(&git.join("HEAD"), &format!("{OTHER}\n"));
        assert_eq!(
            found("a1111", root, None),
            known("1.10.0rc0", "git tag v1.10.0-RC")
        );
    }

    #[test]
    fn a_worktree_reads_its_own_head_and_the_shared_refs() {
        let tmp = tempfile::tempdir().unwrap();
        let main = tmp.path().join("main/.git");
        let root = tmp.path().join("wt");
        write(&main.join("refs/tags/v1.10.1"), &format!("{COMMIT}\n"));
        write(&main.join("worktrees/wt/HEAD"), &format!("{COMMIT}\n"));
        write(&main.join("worktrees/wt/commondir"), "../..\n");
        write(
            &root.join(".git"),
            &format!("gitdir: {}\n", main.join("worktrees/wt").display()),
        );
        assert_eq!(
            found("a1111", &root, None),
            known("1.10.1", "git tag v1.10.1")
        );
    }

    #[test]
    fn forge_and_fooocus_read_their_version_files() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        // Forge's CHANGELOG.md is A1111's: not Forge's version.
        write(&root.join("CHANGELOG.md"), "## 1.10.1\n");
        assert!(matches!(
            found("forge", root, None),
            AppVersion::Unknown { .. }
        ));
        write(
            &root.join("modules_forge/forge_version.py"),
            "version = '2.0.1v1.10.1'\n",
        );
        assert_eq!(
            found("forge", root, None),
            known("2.0.1", "modules_forge/forge_version.py")
        );
        write(&root.join("fooocus_version.py"), "version = '2.5.5'\n");
        assert_eq!(
            found("fooocus", root, None),
            known("2.5.5", "fooocus_version.py")
        );
        // SD.Next and SwarmUI have nothing to read: only `version:`.
        assert!(matches!(
            found("sdnext", root, None),
            AppVersion::Unknown { .. }
        ));
        assert_eq!(
            found("swarmui", root, Some("0.9.6")),
            known("0.9.6", "`version:` in the manifest")
        );
    }

    #[test]
    fn python_strings_are_read_with_either_quote() {
        let text = "# generated\n__version__ = \"0.8.1\"\n";
        assert_eq!(python_string(text, "__version__").as_deref(), Some("0.8.1"));
        assert_eq!(
            python_string("version = '2.1.62'\n", "version").as_deref(),
            Some("2.1.62")
        );
        assert_eq!(python_string("version_x = '1'\n", "version"), None);
        assert_eq!(python_string("version = 3\n", "version"), None);
    }
}
