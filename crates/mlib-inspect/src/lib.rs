//! What a model file is, from its header alone.
//!
//! `.safetensors` files start with an 8-byte length and a JSON header naming every tensor
//! (dtype, shape, byte range) plus optional string metadata; `.gguf` files start with a magic,
//! key/value metadata and tensor descriptions. Both are read with bounded reads: the weights are
//! never read, a header is never trusted for an allocation (lengths are checked against the file
//! size and hard limits first), and malformed, truncated or hostile input is an error, never a
//! panic.
//!
//! From the tensor names and shapes [`classify`] tells the kind (checkpoint, LoRA, VAE, text
//! encoder, ControlNet, upscaler, LLM) and the family (sd15, sd2, sdxl, sd3, flux-dev,
//! flux-schnell...). The rules are documented next to each check, with the tensor that decides.

mod classify;
mod error;
mod gguf;
mod safetensors;

pub use classify::{Kind, classify};
pub use error::InspectError;
pub use gguf::Gguf;
pub use safetensors::{Safetensors, Tensor};

use std::path::Path;

use serde::Serialize;

/// What [`inspect`] found in one file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `safetensors` or `gguf`.
    pub format: &'static str,
    pub kind: Kind,
    /// `sd15`, `sdxl`, `flux-dev`..., or for a GGUF model its `general.architecture`.
    pub family: Option<String>,
    /// The dtype holding most parameters (`F16`, `BF16`, `Q4_K`...).
    pub dtype: Option<String>,
    pub parameters: u64,
    pub tensors: usize,
    /// The file's size in bytes.
    pub size: u64,
    /// Embedded metadata (safetensors `__metadata__`, GGUF scalar keys), sorted; long values cut.
    pub metadata: Vec<(String, String)>,
}

/// Reads `path`'s header and tells what it is.
pub fn inspect(path: &Path) -> Result<Report, InspectError> {
    let mut file = std::fs::File::open(path).map_err(|source| InspectError::Io {
        path: path.to_owned(),
        source,
    })?;
    let size = file
        .metadata()
        .map_err(|source| InspectError::Io {
            path: path.to_owned(),
            source,
        })?
        .len();
    let mut magic = [0u8; 4];
    let peeked = read_up_to(&mut file, &mut magic).map_err(|source| InspectError::Io {
        path: path.to_owned(),
        source,
    })?;
    use std::io::Seek;
    file.rewind().map_err(|source| InspectError::Io {
        path: path.to_owned(),
        source,
    })?;
    if peeked == 4 && &magic == b"GGUF" {
        let gguf = Gguf::read(&mut file, size)?;
        return Ok(gguf.report(size));
    }
    let st = Safetensors::read(&mut file, size)?;
    Ok(st.report(size))
}

/// Reads as much of `buf` as the file has.
fn read_up_to(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Metadata values longer than this are cut when reported (LoRA training metadata holds whole
/// tag frequency tables).
pub const MAX_SHOWN_VALUE: usize = 200;

fn shorten(value: &str) -> String {
    if value.len() <= MAX_SHOWN_VALUE {
        return value.to_owned();
    }
    let mut end = MAX_SHOWN_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}
