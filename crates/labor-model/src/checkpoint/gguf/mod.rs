//! A GGUF (v2, v3) reader: header, metadata and tensors, dequantised to f32; and a writer of
//! `f32` tensors ([`write_gguf`]).
//!
//! Layout (little-endian): magic `GGUF`, `u32` version, `u64` tensor count, `u64` metadata
//! count; metadata entries (string key, `u32` value type, value); tensor infos (name, `u32`
//! number of dimensions, `u64` dimensions innermost first, `u32` ggml type, `u64` offset); then
//! the data, starting at the header's end rounded up to `general.alignment` (32 by default).
//!
//! Every length read from the file is checked against what is left of it, strings and arrays
//! are capped, and nesting is bounded, so a truncated or corrupted file gives
//! [`Error::Gguf`] naming the file, the byte offset and the tensor when there is one — never a
//! panic or an out-of-bounds read.
//!
//! Supported tensor types: F32, F16, BF16, Q8_0, Q5_0, Q5_1, Q4_0, Q4_1, and the K-quants
//! Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and Q8_K, following ggml's block layouts (checked against
//! gguf-py, the reference implementation shipped with llama.cpp).
//!
//! [`GgufFile::open`] memory-maps the file once: the header is parsed from the map and
//! [`GgufFile::read_f32`] dequantises each tensor straight from the mapped bytes (no copy of
//! the raw data on the heap); the pages of a tensor are handed back to the kernel once it is
//! converted. The file must not be modified or truncated while a `GgufFile` is open (see
//! [`GgufFile::open`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::checkpoint::mapped;
use crate::error::{Error, Result};

mod tokenizer;
mod write;

pub use write::{GgufTensor, write_gguf};

const MAGIC: u32 = 0x4655_4747; // "GGUF" read as a little-endian u32
const MAX_STRING: u64 = 1 << 30;
const MAX_ARRAY: u64 = 1 << 30;
const MAX_DEPTH: usize = 64;
const MAX_DIMS: u32 = 4;

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum GgufValue {
    /// `u8`.
    U8(u8),
    /// `i8`.
    I8(i8),
    /// `u16`.
    U16(u16),
    /// `i16`.
    I16(i16),
    /// `u32`.
    U32(u32),
    /// `i32`.
    I32(i32),
    /// `f32`.
    F32(f32),
    /// `bool`.
    Bool(bool),
    /// UTF-8 string (invalid bytes replaced).
    String(String),
    /// Array of values.
    Array(Vec<GgufValue>),
    /// `u64`.
    U64(u64),
    /// `i64`.
    I64(i64),
    /// `f64`.
    F64(f64),
}

impl GgufValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v.into()),
            GgufValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    /// The value as a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as an array.
    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(a) => Some(a),
            _ => None,
        }
    }
}

/// ggml tensor types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    Bf16,
    /// Blocks of 32: f16 scale, 32 × i8.
    Q8_0,
    /// Blocks of 32: f16 scale, 32 high bits, 16 bytes of low 4 bits; 5-bit values offset
    /// by 16.
    Q5_0,
    /// Blocks of 32: f16 scale and minimum, 32 high bits, 16 bytes of low 4 bits.
    Q5_1,
    /// Blocks of 32: f16 scale, 16 bytes of 4-bit values offset by 8.
    Q4_0,
    /// Blocks of 32: f16 scale and minimum, 16 bytes of 4-bit values.
    Q4_1,
    /// Super-blocks of 256: 16 sub-blocks with 4-bit scales and minimums, 2-bit values.
    Q2K,
    /// Super-blocks of 256: 16 sub-blocks with 6-bit signed scales, 3-bit values (2 low bits
    /// and a high-bit mask).
    Q3K,
    /// Super-blocks of 256 with 6-bit scales and minimums, 4-bit values.
    Q4K,
    /// Super-blocks of 256 with 6-bit scales and minimums, 5-bit values (4 low bits and a
    /// high-bit mask).
    Q5K,
    /// Super-blocks of 256 with 8-bit scales, 6-bit values.
    Q6K,
    /// Super-blocks of 256: f32 scale, 256 × i8 (and 16 partial sums, unused here).
    Q8K,
    /// Any other ggml type id (not supported for dequantisation).
    Other(u32),
}

impl GgmlType {
    /// Dequantises whole blocks of this type to f32.
    ///
    /// # Errors
    /// [`Error::UnsupportedTensorType`] for a type without a dequantiser, [`Error::Gguf`] when
    /// `raw` is not a whole number of blocks.
    pub fn dequantize(self, raw: &[u8]) -> Result<Vec<f32>> {
        let (per_block, block_bytes) =
            self.block().ok_or_else(|| Error::UnsupportedTensorType {
                path: PathBuf::from("<memory>"),
                tensor: String::new(),
                ggml_type: self.id(),
            })?;
        if !(raw.len() as u64).is_multiple_of(block_bytes) {
            return Err(Error::Gguf {
                path: PathBuf::from("<memory>"),
                offset: 0,
                tensor: None,
                detail: format!(
                    "{} bytes is not a whole number of {block_bytes}-byte {self:?} blocks",
                    raw.len()
                ),
            });
        }
        let n = raw.len() as u64 / block_bytes * per_block;
        Ok(dequantize(self, raw, n as usize))
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q2K => 10,
            GgmlType::Q3K => 11,
            GgmlType::Q4K => 12,
            GgmlType::Q5K => 13,
            GgmlType::Q6K => 14,
            GgmlType::Q8K => 15,
            GgmlType::Bf16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// The type of ggml type id `id`.
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            10 => GgmlType::Q2K,
            11 => GgmlType::Q3K,
            12 => GgmlType::Q4K,
            13 => GgmlType::Q5K,
            14 => GgmlType::Q6K,
            15 => GgmlType::Q8K,
            30 => GgmlType::Bf16,
            other => GgmlType::Other(other),
        }
    }

    /// (elements per block, bytes per block), `None` for unsupported types.
    fn block(self) -> Option<(u64, u64)> {
        Some(match self {
            GgmlType::F32 => (1, 4),
            GgmlType::F16 | GgmlType::Bf16 => (1, 2),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q5_0 => (32, 22),
            GgmlType::Q5_1 => (32, 24),
            GgmlType::Q2K => (256, 84),
            GgmlType::Q3K => (256, 110),
            GgmlType::Q4K => (256, 144),
            GgmlType::Q5K => (256, 176),
            GgmlType::Q6K => (256, 210),
            GgmlType::Q8K => (256, 292),
            GgmlType::Other(_) => return None,
        })
    }
}

/// Where a tensor is and what it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct GgufTensorInfo {
    /// Name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, outermost first (the file stores them innermost first): a weight of a
    /// linear layer is `[out, in]`, as in PyTorch.
    pub dims: Vec<usize>,
    /// Element type.
    pub ggml_type: GgmlType,
    /// Byte offset of the data from the start of the data section.
    pub offset: u64,
}

impl GgufTensorInfo {
    /// Number of elements.
    pub fn n_elements(&self) -> usize {
        self.dims.iter().product()
    }
}

/// A parsed GGUF header; tensors are read on demand, from a memory map of the file when it was
/// opened with [`GgufFile::open`].
#[derive(Debug, Clone)]
pub struct GgufFile {
    path: PathBuf,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// Tensor infos in file order.
    pub tensors: Vec<GgufTensorInfo>,
    data_start: u64,
    file_len: u64,
    /// The whole file, mapped read-only ([`GgufFile::open`]); `None` for a header parsed with
    /// [`GgufFile::from_reader`].
    map: Option<Arc<Mmap>>,
}

struct Cursor<R> {
    r: R,
    pos: u64,
    len: u64,
    path: PathBuf,
}

impl<R: Read> Cursor<R> {
    fn err(&self, detail: impl Into<String>) -> Error {
        Error::Gguf {
            path: self.path.clone(),
            offset: self.pos,
            tensor: None,
            detail: detail.into(),
        }
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        if self.len.saturating_sub(self.pos) < N as u64 {
            return Err(self.err(format!("file ends inside a {N}-byte field")));
        }
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|e| self.err(format!("read failed: {e}")))?;
        self.pos += N as u64;
        Ok(b)
    }

    fn u32(&mut self) -> Result<u32> {
        self.bytes::<4>().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64> {
        self.bytes::<8>().map(u64::from_le_bytes)
    }

    fn string(&mut self) -> Result<String> {
        let n = self.u64()?;
        if n > MAX_STRING || n > self.len.saturating_sub(self.pos) {
            return Err(self.err(format!("string of {n} bytes runs past the end of the file")));
        }
        let mut b = vec![0u8; n as usize];
        self.r
            .read_exact(&mut b)
            .map_err(|e| self.err(format!("read failed: {e}")))?;
        self.pos += n;
        Ok(String::from_utf8_lossy(&b).into_owned())
    }

    fn value(&mut self, ty: u32, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::U8(self.bytes::<1>()?[0]),
            1 => GgufValue::I8(self.bytes::<1>()?[0] as i8),
            2 => GgufValue::U16(u16::from_le_bytes(self.bytes()?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.bytes()?)),
            4 => GgufValue::U32(self.u32()?),
            5 => GgufValue::I32(i32::from_le_bytes(self.bytes()?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.bytes()?)),
            7 => GgufValue::Bool(self.bytes::<1>()?[0] != 0),
            8 => GgufValue::String(self.string()?),
            9 => {
                if depth >= MAX_DEPTH {
                    return Err(self.err("arrays nested too deeply"));
                }
                let elem = self.u32()?;
                let n = self.u64()?;
                // Every element takes at least one byte.
                if n > MAX_ARRAY || n > self.len.saturating_sub(self.pos) {
                    return Err(self.err(format!(
                        "array of {n} elements runs past the end of the file"
                    )));
                }
                let mut v = Vec::with_capacity(n.min(1 << 20) as usize);
                for _ in 0..n {
                    v.push(self.value(elem, depth + 1)?);
                }
                GgufValue::Array(v)
            }
            10 => GgufValue::U64(self.u64()?),
            11 => GgufValue::I64(i64::from_le_bytes(self.bytes()?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.bytes()?)),
            other => return Err(self.err(format!("unknown metadata value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Memory-maps a GGUF file and parses its header from the map; the map is kept (shared by
    /// clones) for [`GgufFile::read_f32`].
    ///
    /// The file must not be modified or truncated while the returned `GgufFile` (or a clone)
    /// is alive: tensor data is read through the map, so a concurrent write would change the
    /// weights read, and a truncation would make reading the lost bytes kill the process with
    /// `SIGBUS`. A file that is short or corrupt from the start gives [`Error::Gguf`].
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be opened or mapped, [`Error::Gguf`] for anything
    /// malformed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let map = mapped::map_file(path)?;
        let mut file = Self::from_reader(&map[..], map.len() as u64, path)?;
        file.map = Some(Arc::new(map));
        Ok(file)
    }

    /// Parses a header from `reader` holding `len` bytes (used by tests on bytes in memory).
    /// The result keeps no map: [`GgufFile::read_f32`] then maps the file at `path` for each
    /// call.
    ///
    /// # Errors
    /// [`Error::Gguf`].
    pub fn from_reader(reader: impl Read, len: u64, path: &Path) -> Result<Self> {
        let mut c = Cursor {
            r: reader,
            pos: 0,
            len,
            path: path.to_path_buf(),
        };
        if c.u32()? != MAGIC {
            return Err(Error::Gguf {
                path: path.to_path_buf(),
                offset: 0,
                tensor: None,
                detail: "not a GGUF file (bad magic)".into(),
            });
        }
        let version = c.u32()?;
        if !(2..=3).contains(&version) {
            return Err(c.err(format!(
                "GGUF version {version} is not supported (2 and 3 are)"
            )));
        }
        let n_tensors = c.u64()?;
        let n_kv = c.u64()?;
        // A tensor info takes at least 24 bytes, a metadata entry at least 13.
        if n_tensors > len / 24 || n_kv > len / 13 {
            return Err(c.err(format!(
                "{n_tensors} tensors and {n_kv} metadata entries cannot fit in {len} bytes"
            )));
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = c.u32()?;
            let v = c.value(ty, 0)?;
            metadata.insert(key, v);
        }
        let mut tensors = Vec::with_capacity(n_tensors as usize);
        for _ in 0..n_tensors {
            let name = c.string()?;
            let nd = c.u32()?;
            if nd == 0 || nd > MAX_DIMS {
                return Err(c.err(format!(
                    "tensor `{name}` has {nd} dimensions (1 to 4 allowed)"
                )));
            }
            let mut dims = Vec::with_capacity(nd as usize);
            for _ in 0..nd {
                dims.push(c.u64()?);
            }
            let ty = GgmlType::from_id(c.u32()?);
            let offset = c.u64()?;
            let n = dims.iter().try_fold(1u64, |a, d| a.checked_mul(*d));
            let Some(n) = n.filter(|n| *n <= len.saturating_mul(8)) else {
                return Err(c.err(format!(
                    "tensor `{name}` has impossible dimensions {dims:?}"
                )));
            };
            let _ = n;
            dims.reverse();
            let dims = dims.into_iter().map(|d| d as usize).collect();
            tensors.push(GgufTensorInfo {
                name,
                dims,
                ggml_type: ty,
                offset,
            });
        }
        let align = metadata
            .get("general.alignment")
            .and_then(GgufValue::as_u64)
            .unwrap_or(32);
        if align == 0 || !align.is_power_of_two() {
            return Err(c.err(format!("general.alignment {align} is not a power of two")));
        }
        let data_start = c.pos.div_ceil(align) * align;
        let file = Self {
            path: path.to_path_buf(),
            version,
            metadata,
            tensors,
            data_start,
            file_len: len,
            map: None,
        };
        for t in &file.tensors {
            if !t.offset.is_multiple_of(align) {
                return Err(file.tensor_err(
                    t,
                    format!(
                        "data offset {} is not a multiple of the file's alignment {align}",
                        t.offset
                    ),
                ));
            }
            file.byte_range(t)?;
        }
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A metadata value.
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// The infos of every tensor, in the file's order.
    pub fn tensors(&self) -> &[GgufTensorInfo] {
        &self.tensors
    }

    /// The info of tensor `name`.
    pub fn tensor_info(&self, name: &str) -> Option<&GgufTensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    fn tensor_err(&self, t: &GgufTensorInfo, detail: String) -> Error {
        Error::Gguf {
            path: self.path.clone(),
            offset: self.data_start.saturating_add(t.offset),
            tensor: Some(t.name.clone()),
            detail,
        }
    }

    /// Absolute byte range of a tensor's data, checked against the file.
    fn byte_range(&self, t: &GgufTensorInfo) -> Result<(u64, u64)> {
        let Some((per_block, block_bytes)) = t.ggml_type.block() else {
            let GgmlType::Other(id) = t.ggml_type else {
                unreachable!()
            };
            return Err(Error::UnsupportedTensorType {
                path: self.path.clone(),
                tensor: t.name.clone(),
                ggml_type: id,
            });
        };
        let n = t.n_elements() as u64;
        let inner = t.dims.last().copied().unwrap_or(1) as u64;
        if !inner.is_multiple_of(per_block) {
            return Err(self.tensor_err(
                t,
                format!(
                    "row of {inner} elements is not a whole number of {per_block}-element blocks"
                ),
            ));
        }
        let bytes = (n / per_block).checked_mul(block_bytes);
        let start = self.data_start.checked_add(t.offset);
        match (start, bytes) {
            (Some(s), Some(b)) if s.checked_add(b).is_some_and(|e| e <= self.file_len) => {
                Ok((s, b))
            }
            _ => Err(self.tensor_err(
                t,
                format!(
                    "data at offset {} runs past the end of the file ({} bytes)",
                    t.offset, self.file_len
                ),
            )),
        }
    }

    /// Reads tensor `name` and dequantises it to f32, in row-major order of
    /// [`GgufTensorInfo::dims`], straight from the memory-mapped file (see
    /// [`GgufFile::open`]).
    ///
    /// # Errors
    /// [`Error::MissingTensor`], [`Error::UnsupportedTensorType`], [`Error::Gguf`] (also when
    /// the tensor's bytes lie past the end of the mapped file) or [`Error::Io`].
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let t = self.tensor_info(name).ok_or_else(|| Error::MissingTensor {
            path: self.path.clone(),
            tensor: name.to_string(),
        })?;
        let (start, len) = self.byte_range(t)?;
        let owned;
        let map: &Mmap = match &self.map {
            Some(m) => m,
            None => {
                owned = mapped::map_file(&self.path)?;
                &owned
            }
        };
        let range = usize::try_from(start)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(s, l)| Some(s..s.checked_add(l)?));
        let Some(raw) = range.clone().and_then(|r| map.get(r)) else {
            return Err(self.tensor_err(
                t,
                format!(
                    "data at offset {} runs past the end of the file ({} bytes mapped)",
                    t.offset,
                    map.len()
                ),
            ));
        };
        let values = dequantize(t.ggml_type, raw, t.n_elements());
        if let Some(r) = range {
            mapped::release(map, r.start, r.len());
        }
        Ok((t.dims.clone(), values))
    }
}

fn f16(b: [u8; 2]) -> f32 {
    half::f16::from_le_bytes(b).to_f32()
}

/// Scale and minimum of sub-block `j` (0..8) of a Q4_K or Q5_K super-block: 6 bits each,
/// packed in 12 bytes.
fn k_scale_min(scales: &[u8], j: usize) -> (u8, u8) {
    if j < 4 {
        (scales[j] & 63, scales[j + 4] & 63)
    } else {
        (
            (scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4),
            (scales[j + 4] >> 4) | ((scales[j] >> 6) << 4),
        )
    }
}

/// Signed 6-bit scale of sub-block `s` (0..16) of a Q3_K super-block: the low 4 bits in bytes
/// 0..8 (low nibbles for `s < 8`, high nibbles after), the high 2 bits in bytes 8..12.
fn q3k_scale(scales: &[u8], s: usize) -> f32 {
    let low = (scales[s % 8] >> (4 * (s / 8))) & 0x0F;
    let high = (scales[8 + s % 4] >> (2 * (s / 4))) & 3;
    f32::from((low | (high << 4)) as i8 - 32)
}

/// Dequantises `raw` (exactly the bytes of `n` elements of type `ty`) to f32.
pub(crate) fn dequantize(ty: GgmlType, raw: &[u8], n: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n);
    match ty {
        GgmlType::F32 => out.extend(
            raw.chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
        ),
        GgmlType::F16 => out.extend(raw.chunks_exact(2).map(|c| f16([c[0], c[1]]))),
        GgmlType::Bf16 => out.extend(
            raw.chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()),
        ),
        GgmlType::Q8_0 => {
            for b in raw.chunks_exact(34) {
                let d = f16([b[0], b[1]]);
                out.extend(b[2..].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in raw.chunks_exact(18) {
                let d = f16([b[0], b[1]]);
                let qs = &b[2..];
                out.extend(qs.iter().map(|q| (f32::from(q & 0x0F) - 8.0) * d));
                out.extend(qs.iter().map(|q| (f32::from(q >> 4) - 8.0) * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in raw.chunks_exact(20) {
                let (d, m) = (f16([b[0], b[1]]), f16([b[2], b[3]]));
                let qs = &b[4..];
                out.extend(qs.iter().map(|q| f32::from(q & 0x0F) * d + m));
                out.extend(qs.iter().map(|q| f32::from(q >> 4) * d + m));
            }
        }
        GgmlType::Q5_0 => {
            for b in raw.chunks_exact(22) {
                let d = f16([b[0], b[1]]);
                let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
                let qs = &b[6..22];
                // Element i < 16 is the low nibble of qs[i], element i + 16 its high nibble;
                // bit i of qh is the fifth bit of element i.
                let q = |i: usize, nibble: u8| f32::from(nibble | ((((qh >> i) & 1) as u8) << 4));
                out.extend((0..16).map(|i| (q(i, qs[i] & 0x0F) - 16.0) * d));
                out.extend((0..16).map(|i| (q(i + 16, qs[i] >> 4) - 16.0) * d));
            }
        }
        GgmlType::Q5_1 => {
            for b in raw.chunks_exact(24) {
                let (d, m) = (f16([b[0], b[1]]), f16([b[2], b[3]]));
                let qh = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
                let qs = &b[8..24];
                let q = |i: usize, nibble: u8| f32::from(nibble | ((((qh >> i) & 1) as u8) << 4));
                out.extend((0..16).map(|i| d * q(i, qs[i] & 0x0F) + m));
                out.extend((0..16).map(|i| d * q(i + 16, qs[i] >> 4) + m));
            }
        }
        GgmlType::Q2K => {
            for b in raw.chunks_exact(84) {
                let scales = &b[0..16];
                let qs = &b[16..80];
                let (d, dmin) = (f16([b[80], b[81]]), f16([b[82], b[83]]));
                // Two halves of 128: 32 bytes, each holding four 2-bit values (shifts 0, 2, 4,
                // 6 give runs of 32 elements); one 4-bit scale and minimum per 16 elements.
                for half in 0..2 {
                    let q = &qs[half * 32..half * 32 + 32];
                    for shift in 0..4 {
                        for l in 0..32 {
                            let sc = scales[half * 8 + shift * 2 + l / 16];
                            let dl = d * f32::from(sc & 0x0F);
                            let ml = dmin * f32::from(sc >> 4);
                            out.push(dl * f32::from((q[l] >> (2 * shift)) & 3) - ml);
                        }
                    }
                }
            }
        }
        GgmlType::Q3K => {
            for b in raw.chunks_exact(110) {
                let hmask = &b[0..32];
                let qs = &b[32..96];
                let scales = &b[96..108];
                let d = f16([b[108], b[109]]);
                // As Q2_K, plus a high bit per element: bit (element / 32) of hmask[element %
                // 32]; a clear bit subtracts 4.
                for half in 0..2 {
                    let q = &qs[half * 32..half * 32 + 32];
                    for shift in 0..4 {
                        let run = half * 4 + shift;
                        for l in 0..32 {
                            let dl = d * q3k_scale(scales, run * 2 + l / 16);
                            let low = ((q[l] >> (2 * shift)) & 3) as i8;
                            let high = if (hmask[l] >> run) & 1 == 0 { 4 } else { 0 };
                            out.push(dl * f32::from(low - high));
                        }
                    }
                }
            }
        }
        GgmlType::Q5K => {
            for b in raw.chunks_exact(176) {
                let (d, dmin) = (f16([b[0], b[1]]), f16([b[2], b[3]]));
                let scales = &b[4..16];
                let qh = &b[16..48];
                let qs = &b[48..176];
                // As Q4_K, plus a fifth bit per element: bit (element / 32) of
                // qh[element % 32].
                for pair in 0..4 {
                    let q = &qs[pair * 32..pair * 32 + 32];
                    for (k, shift) in [(0, 0), (1, 4)] {
                        let j = 2 * pair + k;
                        let (sc, m) = k_scale_min(scales, j);
                        let (dl, ml) = (d * f32::from(sc), dmin * f32::from(m));
                        out.extend((0..32).map(|l| {
                            let v = ((q[l] >> shift) & 0x0F) | (((qh[l] >> j) & 1) << 4);
                            dl * f32::from(v) - ml
                        }));
                    }
                }
            }
        }
        GgmlType::Q8K => {
            for b in raw.chunks_exact(292) {
                let d = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                out.extend(b[4..260].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4K => {
            for b in raw.chunks_exact(144) {
                let (d, dmin) = (f16([b[0], b[1]]), f16([b[2], b[3]]));
                let scales = &b[4..16];
                let qs = &b[16..144];
                // 8 sub-blocks of 32 with 6-bit scales and minimums packed in 12 bytes.
                for pair in 0..4 {
                    let q = &qs[pair * 32..pair * 32 + 32];
                    let (s1, m1) = k_scale_min(scales, 2 * pair);
                    let (s2, m2) = k_scale_min(scales, 2 * pair + 1);
                    let (d1, min1) = (d * f32::from(s1), dmin * f32::from(m1));
                    let (d2, min2) = (d * f32::from(s2), dmin * f32::from(m2));
                    out.extend(q.iter().map(|x| d1 * f32::from(x & 0x0F) - min1));
                    out.extend(q.iter().map(|x| d2 * f32::from(x >> 4) - min2));
                }
            }
        }
        GgmlType::Q6K => {
            for b in raw.chunks_exact(210) {
                let ql = &b[0..128];
                let qh = &b[128..192];
                let sc = &b[192..208];
                let d = f16([b[208], b[209]]);
                let mut block = [0f32; 256];
                for half in 0..2 {
                    let (ql, qh, sc) = (&ql[half * 64..], &qh[half * 32..], &sc[half * 8..]);
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = i32::from((ql[l] & 0x0F) | ((qh[l] & 3) << 4)) - 32;
                        let q2 = i32::from((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
                        let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                        let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                        let o = half * 128;
                        block[o + l] = d * f32::from(sc[is] as i8) * q1 as f32;
                        block[o + l + 32] = d * f32::from(sc[is + 2] as i8) * q2 as f32;
                        block[o + l + 64] = d * f32::from(sc[is + 4] as i8) * q3 as f32;
                        block[o + l + 96] = d * f32::from(sc[is + 6] as i8) * q4 as f32;
                    }
                }
                out.extend_from_slice(&block);
            }
        }
        GgmlType::Other(_) => {}
    }
    out
}
