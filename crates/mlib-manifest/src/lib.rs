//! `models.yaml`: the manifest types, parsing with source locations, `${VAR}` and `~` expansion,
//! validation with `file:line:column` diagnostics, app presets and the JSON schema.
//!
//! [`load`] and [`parse`] either return a fully checked [`Manifest`] (absolute paths, parsed
//! sources, lowercase hashes) or a [`ManifestError`] listing every problem found.

mod block;
mod diagnostic;
mod error;
mod excerpt;
mod expand;
pub mod lock;
mod mirror;
mod model;
mod peek;
mod preset;
mod raw;
mod read;
mod requires;
mod resolve;
mod roots;
mod rules;
mod schema;
mod select;
mod source;
mod spanned;
mod suggest;
mod url_template;
mod validate;
mod yaml;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub mod edit;
mod web_url;

pub use diagnostic::{Diagnostic, DiagnosticKind};
pub use error::ManifestError;
pub use excerpt::DEFAULT_WIDTH;
pub use mirror::MirrorUrl;
pub use model::{App, Container, LinkMode, Manifest, Model, ModelSelection, Source, StoreLayout};
pub use peek::peek_store;
pub use preset::Preset;
pub use read::{MAX_MANIFEST_BYTES, read};
pub use requires::{Version, VersionSpecifiers, parse_version};
pub use schema::schema;
pub use select::{BadGlob, Selection, literal_glob};
pub use url_template::{ExpandedUrl, UrlVarError, expand_url};
pub use web_url::{WebSource, from_web_url};

/// Reads (with [`read`], so at most [`MAX_MANIFEST_BYTES`]) and checks the manifest at `path`.
/// `env` looks up environment variables for `${VAR}` and `~` (the CLI passes
/// `std::env::var(..).ok()`).
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Manifest, ManifestError> {
    parse(&read(path)?, path, env)
}

/// Checks manifest `text` as if read from `path` (which places relative paths and names the file
/// in diagnostics).
pub fn parse(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    // Without the places of values first (see `spanned.rs`); a manifest with a problem is read
    // again with them, so every diagnostic is the one a single careful read would give.
    spanned::with_places(false, || check(text, path, env))
        .or_else(|_| spanned::with_places(true, || check(text, path, env)))
}

fn check(
    text: &str,
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Manifest, ManifestError> {
    let mut sink = diagnostic::Sink::new(text);
    let absolute = absolute(path);
    let dir = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| absolute.clone());
    let digest = hex::encode(Sha256::digest(text.as_bytes()));
    let manifest = yaml::read(&mut sink)
        .and_then(|raw| resolve::resolve(raw, &mut sink, &absolute, &dir, digest, env));
    match manifest {
        Some(manifest) if sink.is_empty() => Ok(manifest),
        _ => Err(ManifestError::from_sink(path, sink)),
    }
}

/// Checks a model name given outside a manifest (`mlib add --name`) by the rules model names
/// follow; the error says what is wrong and how to fix it.
pub fn check_model_name(name: &str) -> Result<(), String> {
    rules::check_name("model name", name).map_err(|p| format!("{}: {}", p.message, p.hint))
}

/// Checks an environment name given outside a manifest (`--env`, `MLIB_ENV`) by the rules
/// `environment:` follows; the error says what is wrong and how to fix it.
pub fn check_environment_name(name: &str) -> Result<(), String> {
    rules::check_name("environment name", name).map_err(|p| format!("{}: {}", p.message, p.hint))
}

/// `path` made absolute against the current directory, without touching the filesystem.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .components()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_read_without_places_is_the_one_read_with_them() {
        // The example uses every kind of field: sources of each scheme, hashes, globs, tags,
        // requires, presets, folders, selections.
        let text = include_str!("../../../models.yaml.example");
        let env = |name: &str| (name == "HOME").then(|| "/home/u".to_string());
        let path = Path::new("/p/models.yaml");
        let fast = spanned::with_places(false, || check(text, path, &env)).unwrap();
        let careful = spanned::with_places(true, || check(text, path, &env)).unwrap();
        assert_eq!(fast, careful);
        assert_eq!(parse(text, path, &env).unwrap(), careful);
    }

    #[test]
    fn a_problem_found_without_places_is_reported_with_them() {
        // The hash is checked after the YAML read, so only the second read knows its place.
        let text = "version: 1\nstore: /s\nmodels:\n  m:\n    source: /x.safetensors\n    sha256: nothex\n    type: loras\n";
        let env = |_: &str| None;
        let err = parse(text, Path::new("/p/models.yaml"), &env).unwrap_err();
        let d = &err.diagnostics()[0];
        assert_eq!((d.kind, d.line, d.column), (DiagnosticKind::BadHash, 6, 13));
        assert!(text[d.offset..].starts_with("nothex"), "{d:?}");
    }
}
