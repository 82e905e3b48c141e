//! The `.safetensors` header: `u64` little-endian length N, then N bytes of JSON:
//! `{"name": {"dtype": "F16", "shape": [..], "data_offsets": [start, end]}, ...,
//! "__metadata__": {"k": "v"}}`, then the tensor data (offsets relative to its start).

use std::collections::BTreeMap;
use std::io::Read;

use serde_json::Value;

use crate::classify::classify;
use crate::error::InspectError;
use crate::{Report, shorten};

/// The most header bytes read: the safetensors format itself refuses headers over 100 MB.
pub const MAX_HEADER: u64 = 100_000_000;

/// One tensor's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tensor {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<u64>,
}

impl Tensor {
    /// How many values it holds (saturating: a hostile shape cannot overflow).
    pub fn elements(&self) -> u64 {
        self.shape.iter().fold(1u64, |n, d| n.saturating_mul(*d))
    }
}

/// A parsed header.
#[derive(Debug, Clone)]
pub struct Safetensors {
    pub tensors: Vec<Tensor>,
    pub metadata: BTreeMap<String, String>,
}

impl Safetensors {
    /// Reads the header of a file of `size` bytes from `reader` (at its start).
    pub fn read(reader: &mut impl Read, size: u64) -> Result<Safetensors, InspectError> {
        let mut prefix = [0u8; 8];
        let got = crate::read_up_to(reader, &mut prefix).map_err(io)?;
        if got < 8 {
            if let Some(what) = looks_like_text(&prefix[..got]) {
                return Err(InspectError::NotAModel { what });
            }
            return Err(InspectError::Truncated(format!(
                "{got} bytes, less than the 8-byte header length"
            )));
        }
        let len = u64::from_le_bytes(prefix);
        let available = size.saturating_sub(8);
        if len > available || !(2..=MAX_HEADER).contains(&len) {
            if let Some(what) = looks_like_text(&prefix) {
                return Err(InspectError::NotAModel { what });
            }
            if len > MAX_HEADER {
                return Err(InspectError::TooLarge {
                    size: len,
                    limit: MAX_HEADER,
                });
            }
            return Err(InspectError::Truncated(format!(
                "the header says {len} bytes, the file has {available} after the length"
            )));
        }
        let mut header = vec![0u8; len as usize];
        reader.read_exact(&mut header).map_err(io)?;
        let json: Value = serde_json::from_slice(&header)
            .map_err(|e| InspectError::malformed(format!("the header is not JSON: {e}")))?;
        let Value::Object(entries) = json else {
            return Err(InspectError::malformed("the header is not a JSON object"));
        };
        let data = available - len;
        let mut tensors = Vec::with_capacity(entries.len());
        let mut metadata = BTreeMap::new();
        for (name, value) in entries {
            if name == "__metadata__" {
                metadata = read_metadata(&value)?;
                continue;
            }
            tensors.push(read_tensor(name, &value, data)?);
        }
        Ok(Safetensors { tensors, metadata })
    }

    /// What the file is, from this header.
    pub fn report(&self, size: u64) -> Report {
        let (kind, family) = classify(self.tensors.iter().map(|t| (t.name.as_str(), &t.shape[..])));
        let family = family.or_else(|| {
            crate::classify::family_from_metadata(
                self.metadata.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )
        });
        let mut by_dtype: BTreeMap<&str, u64> = BTreeMap::new();
        for t in &self.tensors {
            *by_dtype.entry(&t.dtype).or_default() += t.elements();
        }
        let dtype = by_dtype
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(d, _)| (*d).to_owned());
        Report {
            format: "safetensors",
            kind,
            family,
            dtype,
            parameters: self
                .tensors
                .iter()
                .fold(0u64, |n, t| n.saturating_add(t.elements())),
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

fn read_metadata(value: &Value) -> Result<BTreeMap<String, String>, InspectError> {
    let Value::Object(map) = value else {
        return Err(InspectError::malformed("__metadata__ is not an object"));
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            _ => Err(InspectError::malformed(format!(
                "__metadata__ value `{k}` is not a string"
            ))),
        })
        .collect()
}

fn read_tensor(name: String, value: &Value, data: u64) -> Result<Tensor, InspectError> {
    let bad = |why: &str| InspectError::malformed(format!("tensor `{name}`: {why}"));
    let dtype = value
        .get("dtype")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no dtype"))?
        .to_owned();
    let shape = value
        .get("shape")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no shape"))?
        .iter()
        .map(|d| {
            d.as_u64()
                .ok_or_else(|| bad("a dimension is not a whole number"))
        })
        .collect::<Result<Vec<u64>, _>>()?;
    let offsets = value
        .get("data_offsets")
        .and_then(Value::as_array)
        .filter(|o| o.len() == 2)
        .ok_or_else(|| bad("no data_offsets [start, end]"))?;
    let (Some(start), Some(end)) = (offsets[0].as_u64(), offsets[1].as_u64()) else {
        return Err(bad("data_offsets are not whole numbers"));
    };
    if start > end || end > data {
        return Err(bad(&format!(
            "its bytes {start}..{end} are outside the {data} bytes of data"
        )));
    }
    let tensor = Tensor {
        name: name.clone(),
        dtype,
        shape,
    };
    if let Some(width) = dtype_bytes(&tensor.dtype) {
        let expected = tensor.elements().checked_mul(width);
        if expected != Some(end - start) {
            return Err(bad(&format!(
                "{} values of {} take {} bytes, not {}",
                tensor.elements(),
                tensor.dtype,
                expected.map_or_else(|| "too many".to_string(), |b| b.to_string()),
                end - start
            )));
        }
    }
    Ok(tensor)
}

/// Bytes per value, for the dtypes whose size is known.
fn dtype_bytes(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F64" | "I64" | "U64" => 8,
        "F32" | "I32" | "U32" => 4,
        "F16" | "BF16" | "I16" | "U16" => 2,
        "I8" | "U8" | "BOOL" | "F8_E4M3" | "F8_E5M2" => 1,
        _ => return None,
    })
}

/// An error page or a text file saved under a model's name.
pub(crate) fn looks_like_text(start: &[u8]) -> Option<&'static str> {
    let text = std::str::from_utf8(start).ok()?;
    let trimmed = text.trim_start();
    let lower = trimmed.to_ascii_lowercase();
    if lower.starts_with("<!doc") || lower.starts_with("<htm") || lower.starts_with("<") {
        Some("an HTML page")
    } else if trimmed.starts_with('{') || trimmed.starts_with('[') {
        Some("a JSON document")
    } else if !trimmed.is_empty()
        && trimmed
            .chars()
            .all(|c| !c.is_control() || c.is_whitespace())
    {
        Some("a text file")
    } else {
        None
    }
}

fn io(e: std::io::Error) -> InspectError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        InspectError::Truncated("the header ends early".into())
    } else {
        InspectError::Malformed(e.to_string())
    }
}
