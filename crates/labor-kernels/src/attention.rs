//! Causal and masked attention for the CPU inference path.
//!
//! Per (batch row, query head, block of [`QB`] queries) task: the scores against the keys the
//! block can see are one matrix product (a causal block stops at its last query's position, so
//! the hidden upper triangle is never computed), the row softmax uses a vectorised `exp`, and the
//! weighted values are a second product. Key/value heads are shared among their query heads
//! (grouped-query attention) without being copied.

use std::cell::RefCell;

use rayon::prelude::*;

use crate::gemm::{View, sgemm, sgemm_add};

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

/// Dropout on the attention weights: weight `(b, h, i, j)` is dropped where the hash of the
/// seed and its index `((b · heads + h) · s + i) · t + j` falls below `threshold` (of 2³²),
/// and the others are scaled by `scale`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightDropout {
    /// Drop probability times 2³².
    pub threshold: u64,
    /// `1 / (1 − probability)`.
    pub scale: f32,
    /// Seed of the mask.
    pub seed: u64,
}

impl WeightDropout {
    /// Applies the mask and scale to the weights `row` of query `i` of head `(bi, hi)`.
    fn apply(&self, row: &mut [f32], [bi, hi, i]: [usize; 3], [h, s, t]: [usize; 3]) {
        let base = (((bi * h + hi) * s + i) * t) as u64;
        for (j, x) in row.iter_mut().enumerate() {
            let draw = crate::dropout::splitmix64(self.seed.wrapping_add(base + j as u64)) >> 32;
            *x = if draw >= self.threshold {
                *x * self.scale
            } else {
                0.0
            };
        }
    }
}

/// `softmax(q kᵀ / √d) v` for every query head, causal from the cached positions on
/// (query `i` sees keys `0..=t - s + i`) or, with `mask`, where the mask allows; with `drop`,
/// dropout on the weights (after the softmax, as training applies it).
///
/// # Shapes
/// - q: `[b, h, s, d]`; k, v: `[b, kvh, t, d]` with `h` a multiple of `kvh`, `t >= s`
/// - output: `[b, s, h * d]`, row-major, and the log-sum-exp of every row of scaled scores,
///   `[b, h, s]` (what [`attention_backward`] needs)
///
/// Returns `None` where the CPU lacks the instructions the kernels need.
pub(crate) fn attention(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    mask: Option<Mask<'_>>,
    drop: Option<WeightDropout>,
) -> Option<(Vec<f32>, Vec<f32>)> {
    if !crate::gemm::available() {
        return None;
    }
    let [b, h, s, d] = q.shape;
    let blocks = s.div_ceil(QB);
    let tasks: Vec<(usize, usize, usize)> = (0..b)
        .flat_map(|bi| (0..h).flat_map(move |hi| (0..blocks).map(move |c| (bi, hi, c))))
        .collect();
    let parts: Vec<(Vec<f32>, Vec<f32>)> = tasks
        .par_iter()
        .map(|&(bi, hi, c)| {
            SCORES.with(|cell| match cell.try_borrow_mut() {
                Ok(mut buf) => block(q, k, v, (mask, drop), (bi, hi, c), &mut buf),
                Err(_) => block(q, k, v, (mask, drop), (bi, hi, c), &mut Vec::new()),
            })
        })
        .collect();
    let mut out = vec![0.0f32; b * s * h * d];
    let mut lse = vec![0.0f32; b * h * s];
    for (&(bi, hi, c), (part, part_lse)) in tasks.iter().zip(&parts) {
        for (i, src) in part.chunks(d).enumerate() {
            let at = ((bi * s + c * QB + i) * h + hi) * d;
            out[at..at + d].copy_from_slice(src);
        }
        let at = (bi * h + hi) * s + c * QB;
        lse[at..at + part_lse.len()].copy_from_slice(part_lse);
    }
    Some((out, lse))
}

thread_local! {
    /// Score rows of one task, kept between tasks.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One task: queries `c * QB..` of batch row `bi`, head `hi`; returns their outputs
/// (`[rows, d]`) and the log-sum-exps of their scaled scores. `buf` holds the scores.
fn block(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    (mask, drop): (Option<Mask<'_>>, Option<WeightDropout>),
    (bi, hi, c): (usize, usize, usize),
    buf: &mut Vec<f32>,
) -> (Vec<f32>, Vec<f32>) {
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
    let mut lse = vec![0.0f32; rows];
    for (((i, row), sum), lse) in scores
        .chunks_mut(lim)
        .enumerate()
        .zip(&mut sums)
        .zip(&mut lse)
    {
        let qi = r0 + i;
        let (max, total) = match mask {
            None => {
                let seen = past + qi + 1;
                row[seen..].fill(0.0);
                crate::exp::exp_shifted(&mut row[..seen], scale)
            }
            Some(m) => {
                let base = bi * m.strides[0] + qi * m.strides[1];
                for (j, x) in row.iter_mut().enumerate() {
                    if m.data[base + j * m.strides[2]] != 0 {
                        *x = f32::NEG_INFINITY;
                    }
                }
                crate::exp::exp_shifted(row, scale)
            }
        };
        *sum = total;
        *lse = max + total.ln();
        if let Some(drop) = drop {
            // The sums above stay those of the undropped weights.
            drop.apply(&mut row[..lim], [bi, hi, qi], [h, s, t]);
        }
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
    (out, lse)
}

/// Gradients of causal [`attention`] (no mask): `(dq, dk, dv)` from the output `out` and
/// row log-sum-exps `lse` of the forward pass and the output's gradient `dout`. The scores
/// are recomputed block by block (never stored for a whole head); each task covers one
/// batch row and one key/value head, so that it alone writes that head's `dk` and `dv`.
///
/// # Shapes
/// - q: `[b, h, s, d]`; k, v: `[b, kvh, t, d]` with `h` a multiple of `kvh`, `t >= s`
/// - out, dout: `[b, s, h * d]`, row-major; lse: `[b, h, s]`
/// - output: dq `[b, h, s, d]`, dk and dv `[b, kvh, t, d]`, row-major
///
/// Runs only after [`attention`] returned its forward pass (the CPU has the instructions).
pub(crate) fn attention_backward(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    out: &[f32],
    lse: &[f32],
    dout: &[f32],
    drop: Option<WeightDropout>,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let [b, h, s, d] = q.shape;
    let [_, kvh, t, _] = k.shape;
    let rep = h / kvh.max(1);
    let mut dq = vec![0.0f32; b * h * s * d];
    let mut dk = vec![0.0f32; b * kvh * t * d];
    let mut dv = vec![0.0f32; b * kvh * t * d];
    if dq.is_empty() || dk.is_empty() {
        return (dq, dk, dv);
    }
    dq.par_chunks_mut(rep * s * d)
        .zip(dk.par_chunks_mut(t * d).zip(dv.par_chunks_mut(t * d)))
        .enumerate()
        .for_each(|(task, (dq, (dk, dv)))| {
            let (bi, g) = (task / kvh, task % kvh);
            let grads = Grads { dq, dk, dv };
            backward_group(q, k, v, (out, lse, dout), drop, (bi, g), grads);
        });
    (dq, dk, dv)
}

/// The gradients one task of [`attention_backward`] writes: its heads' `dq` (`[rep, s, d]`),
/// and `dk`, `dv` of its key/value head (`[t, d]`).
struct Grads<'a> {
    dq: &'a mut [f32],
    dk: &'a mut [f32],
    dv: &'a mut [f32],
}

/// `C += A · B` (`[m, n, k]`, `C` dense with row stride `n`).
fn add_product(mnk: [usize; 3], a: View<'_>, b: View<'_>, c: &mut [f32]) {
    let done = sgemm_add(mnk, a, b, c, mnk[1], false);
    debug_assert!(done);
}

/// One task of [`attention_backward`]: batch row `bi`, key/value head `g` and its query heads.
/// With dropout, `P̃ = P ⊙ mask · scale` weighs the values: `dV = P̃ᵀ dO`, and the gradient of
/// `P` is that of `P̃` through the same mask; `rowsum(P ⊙ dP)` is still `dO · O`.
fn backward_group(
    q: Array4<'_>,
    k: Array4<'_>,
    v: Array4<'_>,
    (out, lse, dout): (&[f32], &[f32], &[f32]),
    drop: Option<WeightDropout>,
    (bi, g): (usize, usize),
    grads: Grads<'_>,
) {
    let [_, h, s, d] = q.shape;
    let [_, kvh, t, _] = k.shape;
    let rep = h / kvh.max(1);
    let scale = 1.0 / (d as f32).sqrt();
    let past = t - s;
    let (ko, vo) = (k.at(bi, g), v.at(bi, g));
    let k_rows = View {
        data: &k.data[ko..],
        rs: k.strides[2],
        cs: k.strides[3],
    };
    let (mut p, mut dp, mut kept) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..rep {
        let hi = g * rep + r;
        for r0 in (0..s).step_by(QB) {
            let r1 = (r0 + QB).min(s);
            let (rows, lim) = (r1 - r0, past + r1);
            let q_blk = View {
                data: &q.data[q.at(bi, hi) + r0 * q.strides[2]..],
                rs: q.strides[2],
                cs: q.strides[3],
            };
            let row0 = (bi * s + r0) * h * d + hi * d;
            let do_blk = View {
                data: &dout[row0..],
                rs: h * d,
                cs: 1,
            };
            // P = softmax rows, recomputed from the scores and the saved log-sum-exps.
            p.resize(rows * lim, 0.0);
            let kt = View {
                data: k_rows.data,
                rs: k_rows.cs,
                cs: k_rows.rs,
            };
            let done = sgemm([rows, lim, d], q_blk, kt, &mut p[..rows * lim], lim, false);
            debug_assert!(done);
            for (i, row) in p[..rows * lim].chunks_mut(lim).enumerate() {
                let seen = past + r0 + i + 1;
                let l = lse[(bi * h + hi) * s + r0 + i];
                for x in row[..seen].iter_mut() {
                    *x = *x * scale - l;
                }
                crate::exp::exp_in_place(&mut row[..seen]);
                row[seen..].fill(0.0);
            }
            // P̃: P with the dropout mask and scale (P itself without dropout).
            let weights: &[f32] = match drop {
                Some(drop) => {
                    kept.clear();
                    kept.extend_from_slice(&p[..rows * lim]);
                    for (i, row) in kept.chunks_mut(lim).enumerate() {
                        drop.apply(row, [bi, hi, r0 + i], [h, s, t]);
                    }
                    &kept
                }
                None => &p[..rows * lim],
            };
            // dV += P̃ᵀ dO.
            let p_t = View {
                data: weights,
                rs: 1,
                cs: lim,
            };
            add_product([lim, d, rows], p_t, do_blk, grads.dv);
            // dP = dO Vᵀ; dS = P ⊙ (dP − rowsum(dO ⊙ O)) · scale.
            dp.resize(rows * lim, 0.0);
            let vt = View {
                data: &v.data[vo..],
                rs: v.strides[3],
                cs: v.strides[2],
            };
            let done = sgemm(
                [rows, lim, d],
                do_blk,
                vt,
                &mut dp[..rows * lim],
                lim,
                false,
            );
            debug_assert!(done);
            if let Some(drop) = drop {
                for (i, row) in dp[..rows * lim].chunks_mut(lim).enumerate() {
                    drop.apply(row, [bi, hi, r0 + i], [h, s, t]);
                }
            }
            for (i, (dpr, pr)) in dp[..rows * lim]
                .chunks_mut(lim)
                .zip(p[..rows * lim].chunks(lim))
                .enumerate()
            {
                let at = row0 + i * h * d;
                let delta: f32 = dout[at..at + d]
                    .iter()
                    .zip(&out[at..at + d])
                    .map(|(a, b)| a * b)
                    .sum();
                for (x, pij) in dpr.iter_mut().zip(pr) {
                    *x = pij * (*x - delta) * scale;
                }
            }
            let ds = View {
                data: &dp[..rows * lim],
                rs: lim,
                cs: 1,
            };
            // dQ = dS K (this block's rows alone write it).
            let at = (r * s + r0) * d;
            let done = sgemm(
                [rows, d, lim],
                ds,
                k_rows,
                &mut grads.dq[at..at + rows * d],
                d,
                false,
            );
            debug_assert!(done);
            // dK += dSᵀ Q.
            let ds_t = View {
                data: ds.data,
                rs: 1,
                cs: lim,
            };
            add_product([lim, d, rows], ds_t, q_blk, grads.dk);
        }
    }
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
            prop_assume!(crate::gemm::available());
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
            let (got, _) = attention(q, k, v, mask, None).expect("AVX2");
            let hidden = |_: usize, i: usize, j: usize| if masked { bytes[i * t + j] != 0 } else { j > past + i };
            let want = naive(&q, &k, &v, &hidden);
            for (g, w) in got.iter().zip(&want) {
                prop_assert!((f64::from(*g) - w).abs() < 2e-5, "{} vs {}", g, w);
            }
        }
    }

    /// The gradients of `Σ dout ⊙ attention(q, k, v)` by the formula, in f64, causal from the
    /// cached positions on, with the dropout mask and scale of `drop` on the weights.
    fn naive_gradients(
        q: &Array4<'_>,
        k: &Array4<'_>,
        v: &Array4<'_>,
        dout: &[f32],
        drop: Option<WeightDropout>,
    ) -> [Vec<f64>; 3] {
        let [b, h, s, d] = q.shape;
        let [_, kvh, t, _] = k.shape;
        let past = t - s;
        let at = |a: &Array4<'_>, i: [usize; 4]| {
            a.data[i[0] * a.strides[0]
                + i[1] * a.strides[1]
                + i[2] * a.strides[2]
                + i[3] * a.strides[3]] as f64
        };
        let scale = 1.0 / (d as f64).sqrt();
        let (mut dq, mut dk, mut dv) = (
            vec![0.0; b * h * s * d],
            vec![0.0; b * kvh * t * d],
            vec![0.0; b * kvh * t * d],
        );
        for bi in 0..b {
            for hi in 0..h {
                let g = hi / (h / kvh);
                for i in 0..s {
                    let seen = past + i + 1;
                    let scores: Vec<f64> = (0..seen)
                        .map(|j| {
                            (0..d)
                                .map(|x| at(q, [bi, hi, i, x]) * at(k, [bi, g, j, x]))
                                .sum::<f64>()
                                * scale
                        })
                        .collect();
                    let max = scores.iter().fold(f64::NEG_INFINITY, |m, x| m.max(*x));
                    let e: Vec<f64> = scores.iter().map(|x| (x - max).exp()).collect();
                    let sum: f64 = e.iter().sum();
                    let p: Vec<f64> = e.iter().map(|x| x / sum).collect();
                    // The mask and scale of each weight (1 without dropout).
                    let mut m = vec![1.0f32; seen];
                    if let Some(drop) = drop {
                        drop.apply(&mut m, [bi, hi, i], [h, s, t]);
                    }
                    let go = |x: usize| dout[((bi * s + i) * h + hi) * d + x] as f64;
                    // dP̃ = dout · v, dP = dP̃ ⊙ m.
                    let dp: Vec<f64> = (0..seen)
                        .map(|j| {
                            (0..d).map(|x| go(x) * at(v, [bi, g, j, x])).sum::<f64>()
                                * f64::from(m[j])
                        })
                        .collect();
                    let dot: f64 = p.iter().zip(&dp).map(|(a, b)| a * b).sum();
                    for j in 0..seen {
                        let ds = p[j] * (dp[j] - dot) * scale;
                        for x in 0..d {
                            dv[((bi * kvh + g) * t + j) * d + x] += p[j] * f64::from(m[j]) * go(x);
                            dq[((bi * h + hi) * s + i) * d + x] += ds * at(k, [bi, g, j, x]);
                            dk[((bi * kvh + g) * t + j) * d + x] += ds * at(q, [bi, hi, i, x]);
                        }
                    }
                }
            }
        }
        [dq, dk, dv]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// The backward pass equals the formula's gradients, with and without dropout on the
        /// weights, for grouped heads, cached positions and blocks straddling `QB`.
        #[test]
        fn attention_gradients_equal_the_formula(
            b in 1usize..3,
            kvh in 1usize..3,
            rep in 1usize..4,
            s in 1usize..100,
            past in 0usize..20,
            d in prop::sample::select(vec![4usize, 16]),
            dropout in any::<bool>(),
            seed in 0u64..1000,
        ) {
            prop_assume!(crate::gemm::available());
            let h = kvh * rep;
            let t = s + past;
            let (qd, kd, vd) = (
                data(b * h * s * d, seed),
                data(b * kvh * t * d, seed + 1),
                data(b * kvh * t * d, seed + 2),
            );
            let dout = data(b * s * h * d, seed + 3);
            fn dense(data: &[f32], shape: [usize; 4]) -> Array4<'_> {
                let [_, x, y, z] = shape;
                Array4 { data, shape, strides: [x * y * z, y * z, z, 1] }
            }
            let (q, k, v) = (
                dense(&qd, [b, h, s, d]),
                dense(&kd, [b, kvh, t, d]),
                dense(&vd, [b, kvh, t, d]),
            );
            let drop = dropout.then_some(WeightDropout {
                threshold: (0.3 * 4_294_967_296.0) as u64,
                scale: 1.0 / 0.7,
                seed,
            });
            let (out, lse) = attention(q, k, v, None, drop).expect("AVX2");
            let got = attention_backward(q, k, v, &out, &lse, &dout, drop);
            let want = naive_gradients(&q, &k, &v, &dout, drop);
            for (name, g, w) in [("dq", &got.0, &want[0]), ("dk", &got.1, &want[1]), ("dv", &got.2, &want[2])] {
                prop_assert_eq!(g.len(), w.len());
                for (g, w) in g.iter().zip(w.iter()) {
                    prop_assert!((f64::from(*g) - w).abs() < 1e-4 * (1.0 + w.abs()), "{}: {} vs {}", name, g, w);
                }
            }
        }
    }
}
