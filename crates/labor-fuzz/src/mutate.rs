//! Seeded structural mutations of a corpus file.

use labor_data::SeededRng;

/// Integers that break length and count fields: zero, one, the signed and unsigned extremes,
/// and sizes just past common limits.
const INTERESTING: [u64; 12] = [
    0,
    1,
    0x7f,
    0xff,
    0x7fff,
    0xffff,
    0x7fff_ffff,
    0xffff_ffff,
    1 << 32,
    1 << 40,
    0x7fff_ffff_ffff_ffff,
    u64::MAX,
];

/// Tokens that break text formats: separators, quotes, brackets, line ends, signs, huge and
/// non-finite numbers, an invalid UTF-8 byte.
const TOKENS: [&[u8]; 24] = [
    b",",
    b"\"",
    b"\n",
    b"\r\n",
    b"=",
    b"[",
    b"]",
    b"{",
    b"}",
    b":",
    b"-",
    b"-1",
    b"0",
    b"99999999999999999999",
    b"-2147483649",
    b"1e309",
    b"NaN",
    b"inf",
    b"\"\"",
    b"[[",
    b"\t",
    b" ",
    b"\xff",
    b"\0",
];

/// Mutates a corpus file with 1 to 4 seeded steps.
#[derive(Debug, Clone)]
pub struct Mutator {
    rng: SeededRng,
    text: bool,
}

impl Mutator {
    /// A mutator drawing from `rng`; `text` adds the text-format tokens to the steps.
    pub fn new(rng: SeededRng, text: bool) -> Self {
        Self { rng, text }
    }

    fn below(&mut self, n: usize) -> usize {
        self.rng.below(n.max(1) as u64) as usize
    }

    /// A mutated copy of `base` (`other`, another corpus file, feeds splices) and the steps
    /// taken, for the crash report.
    pub fn mutate(&mut self, base: &[u8], other: &[u8]) -> (Vec<u8>, Vec<String>) {
        let mut b = base.to_vec();
        let mut steps = Vec::new();
        for _ in 0..1 + self.below(4) {
            steps.push(self.step(&mut b, other));
        }
        (b, steps)
    }

    fn step(&mut self, b: &mut Vec<u8>, other: &[u8]) -> String {
        let n_kinds = if self.text { 9 } else { 7 };
        let at = self.below(b.len() + 1);
        match self.below(n_kinds) {
            0 if !b.is_empty() => {
                let i = self.below(b.len());
                let bit = self.below(8);
                b[i] ^= 1 << bit;
                format!("flip bit {bit} of byte {i}")
            }
            1 if !b.is_empty() => {
                let i = self.below(b.len());
                let v = [0u8, 0xff, 0x7f, 0x80][self.below(4)];
                b[i] = v;
                format!("byte {i} = {v:#x}")
            }
            2 => {
                // An interesting integer over 4 or 8 bytes, little-endian (binary length fields).
                let v = INTERESTING[self.below(INTERESTING.len())];
                let width = if self.below(2) == 0 { 4 } else { 8 };
                let bytes = &v.to_le_bytes()[..width];
                let end = (at + width).min(b.len());
                let len = end - at;
                b[at..end].copy_from_slice(&bytes[..len]);
                format!("{width}-byte {v:#x} at {at}")
            }
            3 => {
                b.truncate(at);
                format!("truncate to {at}")
            }
            4 if !b.is_empty() => {
                let len = 1 + self.below((b.len() - at).min(64));
                let end = (at + len).min(b.len());
                b.drain(at..end);
                format!("delete {at}..{end}")
            }
            5 if !b.is_empty() => {
                let start = self.below(b.len());
                let len = 1 + self.below((b.len() - start).min(256));
                let chunk = b[start..start + len].to_vec();
                b.splice(at..at, chunk);
                format!("duplicate {start}..{} at {at}", start + len)
            }
            6 if !other.is_empty() => {
                let start = self.below(other.len());
                let len = 1 + self.below((other.len() - start).min(256));
                b.splice(at..at, other[start..start + len].iter().copied());
                format!("splice {len} bytes of another file at {at}")
            }
            7 => {
                let t = TOKENS[self.below(TOKENS.len())];
                b.splice(at..at, t.iter().copied());
                format!("insert {:?} at {at}", String::from_utf8_lossy(t))
            }
            8 => {
                // Replace a token-sized run (a field) with a token.
                let t = TOKENS[self.below(TOKENS.len())];
                let end = (at + 1 + self.below(8)).min(b.len());
                b.splice(at..end, t.iter().copied());
                format!("replace {at}..{end} with {:?}", String::from_utf8_lossy(t))
            }
            _ => {
                b.push(b'\n');
                "append a line end".into()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_mutation_and_others_differ() {
        let base = b"worker,year,occ\n1,1990,43\n2,1991,7\n".as_slice();
        let run = |seed| Mutator::new(SeededRng::with_stream(seed, 3), true).mutate(base, base);
        assert_eq!(run(7), run(7));
        let distinct: std::collections::BTreeSet<Vec<u8>> = (0..50).map(|s| run(s).0).collect();
        assert!(distinct.len() > 40, "{}", distinct.len());
    }
}
