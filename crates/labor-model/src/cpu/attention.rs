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
