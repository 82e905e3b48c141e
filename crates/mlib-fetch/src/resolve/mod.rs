//! Resolving: turning a manifest model into a [`LockedModel`] (exact files, sizes, hashes,
//! commit or version) with HEAD and API requests only, never by downloading the bytes.
//!
//! The lock's content is endpoint-independent, so the fetch step rebuilds URLs from the
//! current `HF_ENDPOINT` / `CIVITAI_ENDPOINT`.

pub(crate) mod civitai;
pub(crate) mod hf;
pub(crate) mod url;

use globset::{Glob, GlobSet, GlobSetBuilder};
use mlib_manifest::Model;

use crate::error::FetchError;

/// Include/exclude filtering of paths relative to a source folder. As with
/// `huggingface_hub`'s `allow_patterns`, `*` also matches `/`.
pub(crate) struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
}

impl Filter {
    pub fn new(model: &Model) -> Result<Filter, FetchError> {
        let build = |globs: &[String]| -> Result<GlobSet, FetchError> {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g).map_err(|e| FetchError::BadGlob {
                    name: model.name.clone(),
                    glob: g.clone(),
                    reason: e.to_string(),
                })?);
            }
            b.build().map_err(|e| FetchError::BadGlob {
                name: model.name.clone(),
                glob: globs.join(", "),
                reason: e.to_string(),
            })
        };
        Ok(Filter {
            include: if model.include.is_empty() {
                None
            } else {
                Some(build(&model.include)?)
            },
            exclude: build(&model.exclude)?,
        })
    }

    pub fn accepts(&self, path: &str) -> bool {
        self.include.as_ref().is_none_or(|i| i.is_match(path)) && !self.exclude.is_match(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlib_manifest::Source;

    #[test]
    fn globs_match_like_huggingface_hub() {
        let model = Model {
            name: "m".into(),
            source: Source::Url("https://x".into()),
            revision: None,
            sha256: None,
            blake3: None,
            model_type: "diffusers".into(),
            family: None,
            include: vec!["*.json".into(), "unet/*.safetensors".into()],
            exclude: vec!["*fp32*".into()],
            tags: vec![],
            file: None,
            requires: Default::default(),
        };
        let f = Filter::new(&model).unwrap();
        assert!(f.accepts("model_index.json"));
        assert!(f.accepts("text_encoder/config.json"));
        assert!(f.accepts("unet/model.safetensors"));
        assert!(!f.accepts("unet/model.fp32.safetensors"));
        assert!(!f.accepts("vae/model.safetensors"));
    }
}
