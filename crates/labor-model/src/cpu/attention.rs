//! Causal and masked attention for the CPU inference path.
//!
//! Per (batch row, query head, block of [`QB`] queries) task: the scores against the keys the
//! block can see are one matrix product (a causal block stops at its last query's position, so
//! the hidden upper triangle is never computed), the row softmax uses a vectorised `exp`, and the
//! weighted values are a second product. Key/value heads are shared among their query heads
//! (grouped-query attention) without being copied.

use std::cell::RefCell;

use rayon::prelude::*;

use super::gemm::{View, sgemm};

/// Queries per task.
const QB: usize = 64;

/// A strided 4-d array of `f32` (`[batch, heads, positions, head_dim]`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Array4<'a> {
    /// Storage, starting at element `[0, 0, 0, 0]`.
    pub data: &'a [f32],
    /// Sizes.
    pub shape: [usize; 4],
    /// Strides, in elements (0 for a broadcast dimension).
    pub strides: [usize; 4],
}

impl Array4<'_> {
    /// Offset of `[b, h, 0, 0]`.
    fn at(&self, b: usize, h: usize) -> usize {
        b * self.strides[0] + h * self.strides[1]
    }
}

/// Which keys each query sees: `true` in `data[b * strides[0] + i * strides[1] + j * strides[2]]`
/// hides key `j` from query `i` of row `b`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Mask<'a> {
    /// Storage (one byte per entry, non-zero = hidden).
    pub data: &'a [u8],
    /// Strides of `[batch, query, key]` (batch stride 0 when shared by every row).
    pub strides: [usize; 3],
}

/// `softmax(q kᵀ / √d) v` for every query head, causal from the cached positions on
/// (query `i` sees keys `0..=t - s + i`) or, with `mask`, where the mask allows.
///
/// # Shapes
/// - q: `[b, h, s, d]`; k, v: `[b, kvh, t, d]` with `h` a multiple of `kvh`, `t >= s`
/// - output: `[b, s, h * d]`, row-major
///
/// Returns `None` where the CPU lacks the instructions the kernels need.
pub(crate) fn attention(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    mask: Option<Mask<'_>>,
) -> Option<Vec<f32>> {
    if !super::gemm::available() {
        return None;
    }
    let [b, h, s, d] = q.shape;
    let blocks = s.div_ceil(QB);
    let tasks: Vec<(usize, usize, usize)> = (0..b)
        .flat_map(|bi| (0..h).flat_map(move |hi| (0..blocks).map(move |c| (bi, hi, c))))
        .collect();
    let parts: Vec<Vec<f32>> = tasks
        .par_iter()
        .map(|&(bi, hi, c)| {
            SCORES.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => block(q, k, v, mask, (bi, hi, c), &mut buf),
                Err(_) => block(q, k, v, mask, (bi, hi, c), &mut Vec::new()),
            })
        })
        .collect();
    let mut out = vec![0.0f32; b * s * h * d];
    for (&(bi, hi, c), part) in tasks.iter().zip(&parts) {
        for (i, src) in part.chunks(d).enumerate() {
            let at = ((bi * s + c * QB + i) * h + hi) * d;
            out[at..at + d].copy_from_slice(src);
        }
    }
    Some(out)
}

thread_local! {
    /// Score rows of one task, kept between tasks.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One task: queries `c * QB..` of batch row `bi`, head `hi`; returns their outputs
/// (`[rows, d]`). `buf` holds the scores.
fn block(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    mask: Option<Mask<'_>>,
    (bi, hi, c): (usize, usize, usize),
    buf: &mut Vec<f32>,
) -> Vec<f32> {
    let [_, h, s, d] = q.shape;
    let [_, kvh, t, _] = k.shape;
    let scale = 1.0 / (d as f32).sqrt();
    let (r0, r1) = (c * QB, (c * QB + QB).min(s));
    let rows = r1 - r0;
    let past = t - s;
    // Keys the block can see at all.
    let lim = if mask.is_some() { t } else { past + r1 };
    let kv = hi / (h / kvh.max(1));
    let qo = q.at(bi, hi) + r0 * q.strides[2];
    let ko = k.at(bi, kv);
    let vo = v.at(bi, kv);
    if buf.len() < rows * lim {
        buf.resize(rows * lim, 0.0);
    }
    let scores = &mut buf[..rows * lim];
    let done = sgemm(
        [rows, lim, d],
        View {
            data: &q.data[qo..],
            rs: q.strides[2],
            cs: q.strides[3],
        },
        View {
            data: &k.data[ko..],
            rs: k.strides[3],
            cs: k.strides[2],
        },
        scores,
        lim,
        false,
    );
    debug_assert!(done);
    // Unnormalised softmax rows; the sums divide the outputs instead.
    let mut sums = [0.0f32; QB];
    for ((i, row), sum) in scores.chunks_mut(lim).enumerate().zip(&mut sums) {
        let qi = r0 + i;
        *sum = match mask {
            None => {
                let seen = past + qi + 1;
                row[seen..].fill(0.0);
                super::exp_shifted(&mut row[..seen], scale).1
            }
            Some(m) => {
                let base = bi * m.strides[0] + qi * m.strides[1];
                for (j, x) in row.iter_mut().enumerate() {
                    if m.data[base + j * m.strides[2]] != 0 {
                        *x = f32::NEG_INFINITY;
                    }
                }
                super::exp_shifted(row, scale).1
            }
        };
    }
    let mut out = vec![0.0f32; rows * d];
    let done = sgemm(
        [rows, d, lim],
        View {
            data: scores,
            rs: lim,
            cs: 1,
        },
        View {
            data: &v.data[vo..],
            rs: v.strides[2],
            cs: v.strides[3],
        },
        &mut out,
        d,
        false,
    );
    debug_assert!(done);
    for (row, sum) in out.chunks_mut(d).zip(sums) {
        // A query that sees no key (never the case for the model's masks) gets zeros.
        let inv = if sum > 0.0 { 1.0 / sum } else { 0.0 };
        row.iter_mut().for_each(|x| *x *= inv);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The formula, in f64, one query at a time.
    fn naive(
        q: &Array4<'_>,
        k: &Array4<'_>,
        v: &Array4<'_>,
        hidden: &dyn Fn(usize, usize, usize) -> bool,
    ) -> Vec<f64> {
        let [b, h, s, d] = q.shape;
        let [_, kvh, t, _] = k.shape;
        let get = |a: &Array4<'_>, i: [usize; 4]| {
            a.data[i[0] * a.strides[0]
                + i[1] * a.strides[1]
                + i[2] * a.strides[2]
                + i[3] * a.strides[3]] as f64
        };
        let mut out = vec![0.0; b * s * h * d];
        for bi in 0..b {
            for hi in 0..h {
                let kv = hi / (h / kvh);
                for i in 0..s {
                    let scores: Vec<Option<f64>> = (0..t)
                        .map(|j| {
                            (!hidden(bi, i, j)).then(|| {
                                (0..d)
                                    .map(|x| get(q, [bi, hi, i, x]) * get(k, [bi, kv, j, x]))
                                    .sum::<f64>()
                                    / (d as f64).sqrt()
                            })
                        })
                        .collect();
                    let max = scores
                        .iter()
                        .flatten()
                        .fold(f64::NEG_INFINITY, |m, x| m.max(*x));
                    let w: Vec<f64> = scores
                        .iter()
                        .map(|x| x.map_or(0.0, |x| (x - max).exp()))
                        .collect();
                    let sum: f64 = w.iter().sum();
                    for x in 0..d {
                        let o: f64 = (0..t).map(|j| w[j] * get(v, [bi, kv, j, x])).sum();
                        out[((bi * s + i) * h + hi) * d + x] = o / sum;
                    }
                }
            }
        }
        out
    }

    fn data(len: usize, seed: u64) -> Vec<f32> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(40))]

        /// Causal (with cached positions) and masked attention equal the formula, for any
        /// sizes, grouped heads, and query blocks that straddle `QB`.
        #[test]
        fn attention_equals_the_formula(
            b in 1usize..3,
            kvh in 1usize..3,
            rep in 1usize..4,
            s in 1usize..140,
            past in 0usize..40,
            d in prop::sample::select(vec![4usize, 16, 20]),
            masked in any::<bool>(),
            seed in any::<u64>(),
        ) {
            prop_assume!(crate::cpu::gemm::available());
            let (h, t) = (kvh * rep, past + s);
            // q as the model hands it: [b, s, h, d] storage viewed as [b, h, s, d].
            let qd = data(b * s * h * d, seed);
            let kd = data(b * kvh * t * d, seed ^ 1);
            let vd = data(b * kvh * t * d, seed ^ 2);
            let q = Array4 { data: &qd, shape: [b, h, s, d], strides: [s * h * d, d, h * d, 1] };
            let k = Array4 { data: &kd, shape: [b, kvh, t, d], strides: [kvh * t * d, t * d, d, 1] };
            let v = Array4 { data: &vd, shape: [b, kvh, t, d], strides: [kvh * t * d, t * d, d, 1] };
            // A tree-like mask: every cached key, and the earlier keys of the same parity.
            let bytes: Vec<u8> = (0..s)
                .flat_map(|i| (0..t).map(move |j| u8::from(j >= past && (j - past > i || (i + j - past) % 2 == 1))))
                .collect();
            let mask = masked.then_some(Mask { data: &bytes, strides: [0, t, 1] });
            let got = attention(q, k, v, mask).expect("AVX2");
            let hidden = |_: usize, i: usize, j: usize| if masked { bytes[i * t + j] != 0 } else { j > past + i };
            let want = naive(&q, &k, &v, &hidden);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((f64::from(*g) - w).abs() < 2e-5, "{} vs {}", g, w);
            }
        }
    }
}
