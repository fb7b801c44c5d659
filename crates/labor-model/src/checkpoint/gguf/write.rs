//! A GGUF v3 writer for `f32` tensors: what llama.cpp's converters write for an unquantised
//! model (metadata, tensor infos, data aligned to 32 bytes), so that small models made here load
//! in [`load_gguf`](crate::load_gguf) and in llama.cpp alike. The tests and the fuzz corpus
//! build their GGUF files with it.
//!
//! ```
//! use labor_model::gguf::{GgufFile, GgufTensor, GgufValue, write_gguf};
//! let bytes = write_gguf(
//!     &[("general.architecture", GgufValue::String("llama".into()))],
//!     &[GgufTensor { name: "w", shape: &[2, 3], data: &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0] }],
//! )
//! .unwrap();
//! let path = std::env::temp_dir().join(format!("labor-gguf-doc-{}.gguf", std::process::id()));
//! std::fs::write(&path, &bytes).unwrap();
//! let file = GgufFile::open(&path).unwrap();
//! assert_eq!(file.get("general.architecture").and_then(|v| v.as_str()), Some("llama"));
//! let (dims, values) = file.read_f32("w").unwrap();
//! assert_eq!((dims, values), (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
//! # drop(file);
//! std::fs::remove_file(&path).unwrap();
//! ```

use crate::error::{Error, Result};

use super::GgufValue;

/// Alignment of the data section and of every tensor in it (GGUF's default).
const ALIGNMENT: usize = 32;

/// An `f32` tensor to write.
#[derive(Debug, Clone, Copy)]
pub struct GgufTensor<'a> {
    /// Its name (`blk.0.attn_q.weight`, ...).
    pub name: &'a str,
    /// Its shape, outermost dimension first (as burn and PyTorch give it; GGUF stores the
    /// dimensions innermost first).
    pub shape: &'a [usize],
    /// Its values, row-major.
    pub data: &'a [f32],
}

/// A GGUF v3 file holding `metadata` and `tensors` (as F32), in the order given.
///
/// # Errors
/// [`Error::InvalidOption`] for a tensor whose values do not fill its shape, a shape of more
/// than four dimensions, or an array whose elements are not all of one type.
pub fn write_gguf(metadata: &[(&str, GgufValue)], tensors: &[GgufTensor<'_>]) -> Result<Vec<u8>> {
    let bad = |detail: String| Error::InvalidOption {
        name: "gguf",
        detail,
    };
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend((tensors.len() as u64).to_le_bytes());
    b.extend((metadata.len() as u64).to_le_bytes());
    for (key, value) in metadata {
        string(&mut b, key);
        b.extend(type_id(value).to_le_bytes());
        put_value(&mut b, value).map_err(|e| bad(format!("metadata `{key}`: {e}")))?;
    }
    let mut offset = 0usize;
    for t in tensors {
        let n: usize = t.shape.iter().product();
        if n != t.data.len() || t.shape.len() > 4 {
            return Err(bad(format!(
                "tensor `{}`: {} values for shape {:?} (at most 4 dimensions)",
                t.name,
                t.data.len(),
                t.shape
            )));
        }
        string(&mut b, t.name);
        b.extend((t.shape.len() as u32).to_le_bytes());
        for d in t.shape.iter().rev() {
            b.extend((*d as u64).to_le_bytes());
        }
        b.extend(0u32.to_le_bytes()); // F32
        b.extend((offset as u64).to_le_bytes());
        offset += (n * 4).div_ceil(ALIGNMENT) * ALIGNMENT;
    }
    pad(&mut b, 0);
    for t in tensors {
        let start = b.len();
        for x in t.data {
            b.extend(x.to_le_bytes());
        }
        pad(&mut b, start);
    }
    Ok(b)
}

/// Zeros up to the next multiple of the alignment counted from `from`.
fn pad(b: &mut Vec<u8>, from: usize) {
    while !(b.len() - from).is_multiple_of(ALIGNMENT) {
        b.push(0);
    }
}

/// A GGUF string: its length as `u64`, then its bytes.
fn string(b: &mut Vec<u8>, s: &str) {
    b.extend((s.len() as u64).to_le_bytes());
    b.extend(s.as_bytes());
}

/// GGUF's type id of a metadata value.
fn type_id(v: &GgufValue) -> u32 {
    match v {
        GgufValue::U8(_) => 0,
        GgufValue::I8(_) => 1,
        GgufValue::U16(_) => 2,
        GgufValue::I16(_) => 3,
        GgufValue::U32(_) => 4,
        GgufValue::I32(_) => 5,
        GgufValue::F32(_) => 6,
        GgufValue::Bool(_) => 7,
        GgufValue::String(_) => 8,
        GgufValue::Array(_) => 9,
        GgufValue::U64(_) => 10,
        GgufValue::I64(_) => 11,
        GgufValue::F64(_) => 12,
    }
}

/// The value's bytes after its type id (an array: its element type, length and elements).
fn put_value(b: &mut Vec<u8>, v: &GgufValue) -> std::result::Result<(), String> {
    match v {
        GgufValue::U8(x) => b.push(*x),
        GgufValue::I8(x) => b.extend(x.to_le_bytes()),
        GgufValue::U16(x) => b.extend(x.to_le_bytes()),
        GgufValue::I16(x) => b.extend(x.to_le_bytes()),
        GgufValue::U32(x) => b.extend(x.to_le_bytes()),
        GgufValue::I32(x) => b.extend(x.to_le_bytes()),
        GgufValue::F32(x) => b.extend(x.to_le_bytes()),
        GgufValue::Bool(x) => b.push(u8::from(*x)),
        GgufValue::String(s) => string(b, s),
        GgufValue::U64(x) => b.extend(x.to_le_bytes()),
        GgufValue::I64(x) => b.extend(x.to_le_bytes()),
        GgufValue::F64(x) => b.extend(x.to_le_bytes()),
        GgufValue::Array(items) => {
            // An empty array is written as an array of strings, as gguf-py does.
            let id = items.first().map_or(8, type_id);
            if items.iter().any(|x| type_id(x) != id) {
                return Err("an array's elements must all be of one type".into());
            }
            b.extend(id.to_le_bytes());
            b.extend((items.len() as u64).to_le_bytes());
            for x in items {
                put_value(b, x)?;
            }
        }
    }
    Ok(())
}
