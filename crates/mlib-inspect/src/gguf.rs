//! The `.gguf` header (llama.cpp's format, versions 2 and 3): magic `GGUF`, `u32` version,
//! `u64` tensor count, `u64` key/value count, the key/values (key: `u64` length + UTF-8; value:
//! `u32` type + value), then per tensor: name, `u32` dimension count, `u64` dimensions, `u32`
//! ggml type, `u64` offset. All little-endian.
//!
//! Every count and length is checked against the bytes left in the file before it is used, so
//! a hostile header cannot make a huge allocation or a long loop; arrays (a tokenizer's vocab)
//! are skipped, not kept.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

use crate::classify::{Kind, classify};
use crate::error::InspectError;
use crate::{Report, shorten};

/// Longest string kept (a chat template is a few KiB; longer ones are skipped).
const MAX_STRING: u64 = 1 << 20;
/// llama.cpp's GGML_MAX_DIMS.
const MAX_DIMS: u32 = 4;

/// A parsed header.
#[derive(Debug, Clone)]
pub struct Gguf {
    pub version: u32,
    /// Scalar key/values, as text; arrays as `[N items]`.
    pub metadata: BTreeMap<String, String>,
    /// Name, shape, ggml type name.
    pub tensors: Vec<(String, Vec<u64>, String)>,
}

impl Gguf {
    /// Reads the header of a file of `size` bytes from `reader` (at its start).
    pub fn read<R: Read + Seek>(reader: &mut R, size: u64) -> Result<Gguf, InspectError> {
        let mut r = Bounded {
            inner: std::io::BufReader::new(reader),
            left: size,
        };
        let mut magic = [0u8; 4];
        r.bytes(&mut magic)?;
        if &magic != b"GGUF" {
            return Err(InspectError::malformed("no GGUF magic"));
        }
        let version = r.u32()?;
        if !(2..=3).contains(&version) {
            return Err(InspectError::malformed(format!(
                "GGUF version {version} (versions 2 and 3 are known)"
            )));
        }
        let tensor_count = r.u64()?;
        let kv_count = r.u64()?;
        // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor at least
        // 8 + 4 + 4 + 8.
        r.check_count(kv_count, 13, "key/value pairs")?;
        let mut metadata = BTreeMap::new();
        for _ in 0..kv_count {
            let key = r.string()?.unwrap_or_default();
            let kind = r.u32()?;
            if let Some(value) = r.value(kind)? {
                metadata.insert(key, value);
            }
        }
        r.check_count(tensor_count, 24, "tensors")?;
        let mut tensors = Vec::with_capacity(tensor_count as usize);
        for _ in 0..tensor_count {
            let name = r
                .string()?
                .ok_or_else(|| InspectError::malformed("a tensor name is too long"))?;
            let dims = r.u32()?;
            if dims > MAX_DIMS {
                return Err(InspectError::malformed(format!(
                    "tensor `{name}` has {dims} dimensions (at most {MAX_DIMS})"
                )));
            }
            let mut shape = Vec::with_capacity(dims as usize);
            for _ in 0..dims {
                shape.push(r.u64()?);
            }
            // GGUF lists the fastest-varying dimension first; shapes here are as PyTorch's.
            shape.reverse();
            let ggml = ggml_type(r.u32()?);
            let _offset = r.u64()?;
            tensors.push((name, shape, ggml));
        }
        Ok(Gguf {
            version,
            metadata,
            tensors,
        })
    }

    /// What the file is: a diffusion model converted to GGUF is classified by its tensors
    /// like a safetensors file; anything else with a `general.architecture` is an LLM.
    pub fn report(&self, size: u64) -> Report {
        let (mut kind, mut family) =
            classify(self.tensors.iter().map(|(n, s, _)| (n.as_str(), &s[..])));
        if let (Kind::Unknown, Some(arch)) = (kind, self.metadata.get("general.architecture")) {
            kind = Kind::Llm;
            family = Some(arch.clone());
        }
        let mut by_type: BTreeMap<&str, u64> = BTreeMap::new();
        let mut parameters = 0u64;
        for (_, shape, ggml) in &self.tensors {
            let n = shape.iter().fold(1u64, |n, d| n.saturating_mul(*d));
            parameters = parameters.saturating_add(n);
            *by_type.entry(ggml).or_default() += n;
        }
        Report {
            format: "gguf",
            kind,
            family,
            dtype: by_type
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(t, _)| (*t).to_owned()),
            parameters,
            tensors: self.tensors.len(),
            size,
            metadata: self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), shorten(v)))
                .collect(),
        }
    }
}

/// A reader that never goes past the file's end and knows how much is left.
struct Bounded<R> {
    inner: R,
    left: u64,
}

impl<R: Read + Seek> Bounded<R> {
    fn take(&mut self, n: u64) -> Result<(), InspectError> {
        if n > self.left {
            return Err(InspectError::Truncated(format!(
                "the header needs {n} more bytes, the file has {}",
                self.left
            )));
        }
        self.left -= n;
        Ok(())
    }

    fn bytes(&mut self, buf: &mut [u8]) -> Result<(), InspectError> {
        self.take(buf.len() as u64)?;
        self.inner
            .read_exact(buf)
            .map_err(|e| InspectError::Truncated(e.to_string()))
    }

    fn skip(&mut self, n: u64) -> Result<(), InspectError> {
        self.take(n)?;
        let n = i64::try_from(n).map_err(|_| InspectError::malformed("a length is too large"))?;
        self.inner
            .seek(SeekFrom::Current(n))
            .map(|_| ())
            .map_err(|e| InspectError::Truncated(e.to_string()))
    }

    fn check_count(&self, count: u64, min_bytes: u64, what: &str) -> Result<(), InspectError> {
        if count.saturating_mul(min_bytes) > self.left {
            return Err(InspectError::malformed(format!(
                "it claims {count} {what}, more than the file can hold"
            )));
        }
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, InspectError> {
        let mut b = [0u8; 4];
        self.bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, InspectError> {
        let mut b = [0u8; 8];
        self.bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A string, or `None` when it is longer than [`MAX_STRING`] (skipped).
    fn string(&mut self) -> Result<Option<String>, InspectError> {
        let len = self.u64()?;
        if len > MAX_STRING {
            self.skip(len)?;
            return Ok(None);
        }
        if len > self.left {
            return Err(InspectError::Truncated("a string runs past the end".into()));
        }
        // At most MAX_STRING, and no more than the file holds.
        let mut buf = vec![0u8; len as usize];
        self.bytes(&mut buf)?;
        Ok(Some(String::from_utf8_lossy(&buf).into_owned()))
    }

    /// A value of GGUF type `kind`, as text; arrays are skipped (`[N items]`).
    fn value(&mut self, kind: u32) -> Result<Option<String>, InspectError> {
        if kind == 9 {
            let item = self.u32()?;
            let count = self.u64()?;
            match scalar_width(item) {
                Some(width) => self.skip(
                    count
                        .checked_mul(width)
                        .ok_or_else(|| InspectError::malformed("an array is too large"))?,
                )?,
                None if item == 8 => {
                    self.check_count(count, 8, "array strings")?;
                    for _ in 0..count {
                        let len = self.u64()?;
                        self.skip(len)?;
                    }
                }
                None => {
                    return Err(InspectError::malformed(format!(
                        "an array of type {item} (nested arrays are not read)"
                    )));
                }
            }
            return Ok(Some(format!("[{count} items]")));
        }
        if kind == 8 {
            return Ok(Some(self.string()?.unwrap_or_else(|| "[long text]".into())));
        }
        let width = scalar_width(kind)
            .ok_or_else(|| InspectError::malformed(format!("unknown value type {kind}")))?;
        let mut b = [0u8; 8];
        self.bytes(&mut b[..width as usize])?;
        let text = match kind {
            0 => b[0].to_string(),
            1 => (b[0] as i8).to_string(),
            2 => u16::from_le_bytes([b[0], b[1]]).to_string(),
            3 => i16::from_le_bytes([b[0], b[1]]).to_string(),
            4 => u32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            5 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            6 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]).to_string(),
            7 => (b[0] != 0).to_string(),
            10 => u64::from_le_bytes(b).to_string(),
            11 => i64::from_le_bytes(b).to_string(),
            _ => f64::from_le_bytes(b).to_string(),
        };
        Ok(Some(text))
    }
}

/// Bytes of a scalar GGUF value type (`None` for strings and arrays).
fn scalar_width(kind: u32) -> Option<u64> {
    match kind {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// ggml's tensor type names (ggml's `ggml/include/ggml.h`, `enum ggml_type`: 4 and 5 were
/// removed, 31-33 and 36-38 are no longer written to GGUF files).
fn ggml_type(id: u32) -> String {
    const NAMES: [&str; 31] = [
        "F32", "F16", "Q4_0", "Q4_1", "", "", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K",
        "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S",
        "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64", "IQ1_M", "BF16",
    ];
    match NAMES.get(id as usize) {
        Some(name) if !name.is_empty() => (*name).to_owned(),
        _ => match id {
            34 => "TQ1_0".into(),
            35 => "TQ2_0".into(),
            39 => "MXFP4".into(),
            _ => format!("type {id}"),
        },
    }
}
