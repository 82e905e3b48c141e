//! Resolving: turning a manifest model into a [`LockedModel`] (exact files, sizes, hashes,
//! commit or version) with HEAD and API requests only, never by downloading the bytes.
//!
//! The lock's content is endpoint-independent, so the fetch step rebuilds URLs from the
//! current `HF_ENDPOINT` / `CIVITAI_ENDPOINT`.

pub(crate) mod civitai;
pub(crate) mod hf;
pub(crate) mod url;

use mlib_manifest::{Model, Selection};

use crate::error::FetchError;

/// A model's include/exclude globs, as a fetch error when one is invalid.
pub(crate) struct Filter(Selection);

impl Filter {
    pub fn new(model: &Model) -> Result<Filter, FetchError> {
        Selection::of(model)
            .map(Filter)
            .map_err(|bad| FetchError::BadGlob {
                name: model.name.clone(),
                glob: bad.glob,
                reason: bad.reason,
            })
    }

    pub fn accepts(&self, path: &str) -> bool {
        self.0.accepts(path)
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
