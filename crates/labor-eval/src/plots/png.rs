//! A small PNG writer (8-bit RGB, `Sub` filter, zlib with one fixed-Huffman deflate block
//! whose only back-references repeat the previous byte) and the matching reader.
//!
//! Plots are mostly runs of one colour, which the `Sub` filter turns into runs of zeros, so
//! this simple coder compresses them well, without a compression library.

use crate::error::{Error, Result};

fn crc32(chunks: &[&[u8]]) -> u32 {
    let mut table = [0u32; 256];
    for (n, t) in table.iter_mut().enumerate() {
        let mut c = n as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *t = c;
    }
    let mut crc = 0xFFFF_FFFFu32;
    for bytes in chunks {
        for &b in *bytes {
            crc = table[((crc ^ u32::from(b)) & 0xFF) as usize] ^ (crc >> 8);
        }
    }
    crc ^ 0xFFFF_FFFF
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for chunk in bytes.chunks(5552) {
        for &x in chunk {
            a += u32::from(x);
            b += a;
        }
        a %= 65521;
        b %= 65521;
    }
    (b << 16) | a
}

struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    /// Writes the `len` low bits of `v`, least significant first.
    fn bits(&mut self, v: u32, len: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += len;
        while self.n >= 8 {
            self.out.push((self.acc & 0xFF) as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    /// Writes a Huffman code (most significant bit first).
    fn code(&mut self, code: u32, len: u32) {
        let mut rev = 0;
        for i in 0..len {
            rev |= ((code >> i) & 1) << (len - 1 - i);
        }
        self.bits(rev, len);
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc & 0xFF) as u8);
        }
        self.out
    }
}

const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The fixed-Huffman code of a literal/length symbol.
fn fixed_code(sym: u32) -> (u32, u32) {
    match sym {
        0..=143 => (0x30 + sym, 8),
        144..=255 => (0x190 + sym - 144, 9),
        256..=279 => (sym - 256, 7),
        _ => (0xC0 + sym - 280, 8),
    }
}

fn deflate_fixed(data: &[u8]) -> Vec<u8> {
    let mut w = BitWriter {
        out: Vec::with_capacity(data.len() / 8),
        acc: 0,
        n: 0,
    };
    w.bits(1, 1); // final block
    w.bits(1, 2); // fixed Huffman
    let lit = |w: &mut BitWriter, b: u8| {
        let (c, l) = fixed_code(u32::from(b));
        w.code(c, l);
    };
    let mut i = 0;
    while i < data.len() {
        let b = data[i];
        lit(&mut w, b);
        let mut run = 0;
        while i + 1 + run < data.len() && data[i + 1 + run] == b && run < 258 {
            run += 1;
        }
        if run >= 3 {
            // Repeat the previous byte `run` times: length code, distance 1 (code 0).
            let k = LEN_BASE
                .iter()
                .rposition(|&base| base as usize <= run)
                .unwrap_or(0);
            let (c, l) = fixed_code(257 + k as u32);
            w.code(c, l);
            w.bits((run - LEN_BASE[k] as usize) as u32, u32::from(LEN_EXTRA[k]));
            w.code(0, 5);
            i += 1 + run;
        } else {
            i += 1;
        }
    }
    let (c, l) = fixed_code(256);
    w.code(c, l);
    w.finish()
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(&[kind, data]).to_be_bytes());
}

/// Encodes `rgb` (`width × height × 3` bytes, rows top to bottom) as PNG.
pub(crate) fn encode_rgb(width: u32, height: u32, rgb: &[u8]) -> Vec<u8> {
    let stride = width as usize * 3;
    let mut raw = Vec::with_capacity((stride + 1) * height as usize);
    for row in rgb.chunks(stride) {
        raw.push(1); // Sub
        for (i, &b) in row.iter().enumerate() {
            raw.push(if i >= 3 {
                b.wrapping_sub(row[i - 3])
            } else {
                b
            });
        }
    }
    let mut z = vec![0x78, 0x01];
    z.extend_from_slice(&deflate_fixed(&raw));
    z.extend_from_slice(&adler32(&raw).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, adaptive filters, no interlace
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl BitReader<'_> {
    fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let b = (byte >> (self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(b))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for i in 0..n {
            v |= self.bit()? << i;
        }
        Some(v)
    }

    fn code(&mut self, n: u32) -> Option<u32> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    /// A fixed-Huffman literal/length symbol.
    fn symbol(&mut self) -> Option<u32> {
        let mut c = self.code(7)?;
        if c <= 0x17 {
            return Some(256 + c);
        }
        c = (c << 1) | self.bit()?;
        if (0x30..=0xBF).contains(&c) {
            return Some(c - 0x30);
        }
        if (0xC0..=0xC7).contains(&c) {
            return Some(280 + c - 0xC0);
        }
        c = (c << 1) | self.bit()?;
        (0x190..=0x1FF).contains(&c).then(|| 144 + c - 0x190)
    }
}

fn inflate_fixed(data: &[u8]) -> Option<Vec<u8>> {
    let mut r = BitReader { data, pos: 0 };
    let mut out = Vec::new();
    loop {
        let last = r.bits(1)?;
        if r.bits(2)? != 1 {
            return None; // only fixed-Huffman blocks
        }
        loop {
            let s = r.symbol()?;
            match s {
                0..=255 => out.push(s as u8),
                256 => break,
                _ => {
                    let k = (s - 257) as usize;
                    let len = *LEN_BASE.get(k)? as usize
                        + r.bits(u32::from(*LEN_EXTRA.get(k)?))? as usize;
                    let d = r.code(5)? as usize;
                    let dist = *DIST_BASE.get(d)? as usize
                        + r.bits(u32::from(*DIST_EXTRA.get(d)?))? as usize;
                    let start = out.len().checked_sub(dist)?;
                    for j in 0..len {
                        out.push(out[start + j]);
                    }
                }
            }
        }
        if last == 1 {
            return Some(out);
        }
    }
}

/// Reads back a PNG written by this module (8-bit RGB, fixed-Huffman deflate) as
/// `(width, height, rgb)`, checking every chunk's CRC and the zlib checksum.
///
/// # Errors
/// [`Error::Plot`] for anything else.
pub fn decode_rgb(bytes: &[u8]) -> Result<(u32, u32, Vec<u8>)> {
    let bad = |detail: &str| Error::Plot {
        figure: "png".into(),
        detail: detail.into(),
    };
    let rest = bytes
        .strip_prefix(b"\x89PNG\r\n\x1a\n")
        .ok_or_else(|| bad("not a PNG signature"))?;
    let (mut pos, mut dims, mut z) = (0usize, None, Vec::new());
    loop {
        let head = rest
            .get(pos..pos + 8)
            .ok_or_else(|| bad("truncated chunk"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let kind = &head[4..8];
        let data = rest
            .get(pos + 8..pos + 8 + len)
            .ok_or_else(|| bad("truncated chunk data"))?;
        let crc = rest
            .get(pos + 8 + len..pos + 12 + len)
            .ok_or_else(|| bad("truncated crc"))?;
        if crc32(&[kind, data]).to_be_bytes() != crc {
            return Err(bad("chunk crc mismatch"));
        }
        match kind {
            b"IHDR" => {
                if data.len() != 13 || data[8..13] != [8, 2, 0, 0, 0] {
                    return Err(bad("not 8-bit RGB"));
                }
                let w = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                let h = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
                dims = Some((w, h));
            }
            b"IDAT" => z.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let (w, h) = dims.ok_or_else(|| bad("no IHDR"))?;
    if z.len() < 6 || z[0] & 0x0F != 8 {
        return Err(bad("not a zlib stream"));
    }
    let raw = inflate_fixed(&z[2..z.len() - 4]).ok_or_else(|| bad("bad deflate stream"))?;
    let adler = &z[z.len() - 4..];
    if adler32(&raw).to_be_bytes() != adler {
        return Err(bad("adler-32 mismatch"));
    }
    let stride = w as usize * 3;
    if raw.len() != (stride + 1) * h as usize {
        return Err(bad("wrong image size"));
    }
    let mut rgb = Vec::with_capacity(stride * h as usize);
    for row in raw.chunks(stride + 1) {
        let start = rgb.len();
        for (i, &b) in row[1..].iter().enumerate() {
            let v = match row[0] {
                0 => b,
                1 if i >= 3 => b.wrapping_add(rgb[start + i - 3]),
                1 => b,
                _ => return Err(bad("unsupported filter")),
            };
            rgb.push(v);
        }
    }
    Ok((w, h, rgb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_known_values() {
        // zlib.crc32(b"IEND") and zlib.adler32(b"Wikipedia").
        assert_eq!(crc32(&[b"IEND"]), 0xAE42_6082);
        assert_eq!(adler32(b"Wikipedia"), 0x11E6_0398);
    }

    #[test]
    fn round_trip() {
        let (w, h) = (37u32, 11u32);
        let rgb: Vec<u8> = (0..w * h * 3)
            .map(|i| {
                if i % 97 < 60 {
                    255
                } else {
                    (i * 31 % 251) as u8
                }
            })
            .collect();
        let png = encode_rgb(w, h, &rgb);
        assert_eq!(decode_rgb(&png).ok(), Some((w, h, rgb)));
        let mut broken = png.clone();
        let n = broken.len();
        broken[n - 20] ^= 1;
        assert!(decode_rgb(&broken).is_err());
    }
}
