//! A model's `include`/`exclude` globs as one matcher, shared by every source kind that has a
//! folder to select from (HuggingFace repositories, local folders).

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::model::Model;

/// Include/exclude filtering of `/`-separated paths relative to a source folder. As with
/// `huggingface_hub`'s `allow_patterns`, `*` also matches `/`.
#[derive(Debug, Clone)]
pub struct Selection {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

/// A glob the manifest holds but `globset` rejects (validation reports these first, so this
/// is seen only for models built by hand).
#[derive(Debug, Clone, thiserror::Error)]
#[error("invalid glob {glob:?}: {reason}")]
pub struct BadGlob {
    pub glob: String,
    pub reason: String,
}

impl Selection {
    /// The selection `model`'s globs describe (everything when it has none).
    pub fn of(model: &Model) -> Result<Selection, BadGlob> {
        Ok(Selection {
            include: if model.include.is_empty() {
                None
            } else {
                Some(build(&model.include)?)
            },
            exclude: build(&model.exclude)?,
        })
    }

    /// Whether the file at `path` (relative to the source folder) is taken.
    pub fn accepts(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|i| i.is_match(path)) && !self.exclude.is_match(path)
    }
}

fn build(globs: &[String]) -> Result<GlobSet, BadGlob> {
    let mut builder = GlobSetBuilder::new();
    for glob in globs {
        builder.add(Glob::new(glob).map_err(|e| BadGlob {
            glob: glob.clone(),
            reason: e.kind().to_string(),
        })?);
    }
    builder.build().map_err(|e| BadGlob {
        glob: globs.join(", "),
        reason: e.kind().to_string(),
    })
}

/// A glob matching exactly the file name `name` (its glob characters bracketed), for entries
/// that list files one by one.
pub fn literal_glob(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "*?[]{}".contains(c) {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_globs_match_only_their_name() {
        for name in [
            "model-00001-of-00005.safetensors",
            "weird [v2] {final}*?.safetensors",
            "a,b!.yaml",
        ] {
            let glob = Glob::new(&literal_glob(name)).unwrap().compile_matcher();
            assert!(glob.is_match(name), "{name}");
            assert!(!glob.is_match(format!("x{name}")), "{name}");
        }
        let glob = Glob::new(&literal_glob("a?.yaml"))
            .unwrap()
            .compile_matcher();
        assert!(!glob.is_match("ab.yaml"));
    }
}
