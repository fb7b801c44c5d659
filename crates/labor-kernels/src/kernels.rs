//! The kernels' entry points on burn tensors: each returns `Some` where its kernel applies (an
//! `f32` tensor on the flex device, with or without autodiff) and `None` elsewhere, where
//! [`crate::ops`] takes burn's own operations.

use burn::backend::Flex;
use burn::tensor::{Bool, DType, Int, Tensor, TensorData};

use crate::dropout::{seed, training};
use crate::exp::{exp_in_place, log_sum_exp};
use crate::host::{CHUNK, array4, host, strided};
use crate::packed::{MIN_ROWS, project, times};
use crate::rope::RopeTables;
use crate::{attention, gemm, grad, seq_nodes};

pub(crate) use seq_nodes::{add_bias, clamp};

/// `x · w` for a linear layer's weight `w` (`[in, out]`, burn's layout), on the CPU kernels
/// where they apply.
///
/// # Shapes
/// - x: `[batch, seq, in]`
/// - w: `[in, out]`
/// - output: `[batch, seq, out]`
pub(crate) fn linear(x: &Tensor<3>, w: &Tensor<2>) -> Option<Tensor<3>> {
    if let Some(y) = grad::product(x, w, false) {
        return Some(y);
    }
    let [b, s, _] = x.dims();
    let [_, n] = w.dims();
    let out = project(x, w)?;
    Some(Tensor::from_data(
        TensorData::new(out, [b, s, n]),
        &x.device(),
    ))
}

/// `h · eᵀ` for the tied output head (`e`: the embeddings, `[vocab, d]`).
///
/// # Shapes
/// - h: `[rows, d]`
/// - e: `[vocab, d]`
/// - output: `[rows, vocab]`
pub(crate) fn matmul_transposed(h: &Tensor<2>, e: &Tensor<2>) -> Option<Tensor<2>> {
    if let Some(y) = grad::product(h, e, true) {
        return Some(y);
    }
    let [m, k] = h.dims();
    if m < MIN_ROWS {
        return None;
    }
    let (hf, ef) = (host(h)?, host(e)?);
    let [n, _] = e.dims();
    let (hd, hs) = strided::<2>(&hf);
    let (ed, es) = strided::<2>(&ef);
    let mut out = vec![0.0f32; m * n];
    let a = gemm::View {
        data: hd,
        rs: hs[0],
        cs: hs[1],
    };
    let w_view = gemm::View {
        data: ed,
        rs: es[1],
        cs: es[0],
    };
    times(a, &ef, w_view, [m, n, k], &mut out)?;
    Some(Tensor::from_data(TensorData::new(out, [m, n]), &h.device()))
}

/// Whether `q`, `k` and `v` have the shapes the attention kernels take: the same batch and
/// head width, key/value heads dividing the query heads, and at least as many keys as queries.
pub(crate) fn attention_shapes_fit(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>) -> bool {
    let [b, h, s, d] = q.dims();
    let [kb, kvh, t, kd] = k.dims();
    v.dims() == k.dims() && kb == b && kd == d && kvh > 0 && h.is_multiple_of(kvh) && t >= s
}

/// Attention of the model's heads, on the CPU kernels where they apply.
///
/// # Shapes
/// - q: `[batch, heads, seq, head_dim]`
/// - k, v: `[batch, kv_heads, past + seq, head_dim]`
/// - mask: `[batch or 1, seq, past + seq]`, `true` where a query must not see a key; `None`
///   for causal attention
/// - output: `[batch, seq, heads * head_dim]`
pub(crate) fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    mask: Option<&Tensor<3, Bool>>,
) -> Option<Tensor<3>> {
    if mask.is_none()
        && let Some(out) = grad::attention(q, k, v, None)
    {
        return Some(out);
    }
    if !attention_shapes_fit(q, k, v) {
        return None;
    }
    let (qf, kf, vf) = (host(q)?, host(k)?, host(v)?);
    let mf = match mask {
        Some(m) => Some(m.clone().try_into_primitive::<Flex>().ok()?),
        None => None,
    };
    let [b, h, s, d] = q.dims();
    let mask = match &mf {
        Some(f) => {
            // One byte per entry (burn-flex's native and u8 boolean stores).
            let bytes = matches!(f.dtype(), DType::Bool(_)) && f.dtype().size() == 1;
            if !bytes || !f.layout().has_positive_strides() {
                return None;
            }
            let layout = f.layout();
            let st = layout.strides();
            let batch = if layout.shape()[0] == 1 {
                0
            } else {
                st[0] as usize
            };
            Some(attention::Mask {
                data: &f.storage::<u8>()[layout.start_offset()..],
                strides: [batch, st[1] as usize, st[2] as usize],
            })
        }
        None => None,
    };
    let (out, _) = attention::attention(
        array4(&qf, q.dims()),
        array4(&kf, k.dims()),
        array4(&vf, v.dims()),
        mask,
        None,
    )?;
    Some(Tensor::from_data(
        TensorData::new(out, [b, s, h * d]),
        &q.device(),
    ))
}

/// `log softmax(logits[row])[token]` for every `(row, token)` of `picks`, on the CPU kernels
/// where they apply (each row's log-sum-exp once, without writing the log-softmax matrix).
///
/// # Shapes
/// - logits: `[rows, vocab]`
///
/// # Panics
/// If a pick is out of range.
pub(crate) fn log_softmax_pick(logits: &Tensor<2>, picks: &[(usize, u32)]) -> Option<Vec<f32>> {
    let lf = host(logits)?;
    if !lf.layout().is_contiguous() {
        return None;
    }
    let [rows, vocab] = logits.dims();
    let (data, _) = strided::<2>(&lf);
    for &(r, t) in picks {
        assert!(
            r < rows && (t as usize) < vocab,
            "pick ({r}, {t}) outside {rows} x {vocab}"
        );
    }
    let lse = row_log_sum_exps(data, rows, vocab, picks);
    Some(
        picks
            .iter()
            .map(|&(r, t)| data[r * vocab + t as usize] - lse[r])
            .collect(),
    )
}

/// `log softmax(logits[row])[token]` for the picks of
/// [`Llama::next_token_log_probs`](crate::Llama::next_token_log_probs), as a tensor of
/// `shape`, on the CPU kernels where they apply (with or without autodiff).
///
/// # Shapes
/// - logits: `[rows, vocab]`
/// - output: `shape`, whose size is `picks.len()`
///
/// # Panics
/// If a pick is out of range.
pub(crate) fn log_softmax_pick_tensor(
    logits: &Tensor<2>,
    picks: &[(usize, u32)],
    shape: [usize; 2],
) -> Option<Tensor<2>> {
    if let Some(t) = grad::log_softmax_pick(logits, picks, shape) {
        return Some(t);
    }
    let got = log_softmax_pick(logits, picks)?;
    Some(Tensor::from_data(
        TensorData::new(got, shape),
        &logits.device(),
    ))
}

/// The log-sum-exp of every row of `x` (`rows × vocab`, dense) that some pick reads (0 for the
/// others), rows in parallel.
pub(crate) fn row_log_sum_exps(
    x: &[f32],
    rows: usize,
    vocab: usize,
    picks: &[(usize, u32)],
) -> Vec<f32> {
    use rayon::prelude::*;
    let mut used = vec![false; rows];
    for &(r, _) in picks {
        used[r] = true;
    }
    (0..rows)
        .into_par_iter()
        .map(|r| {
            if used[r] {
                log_sum_exp(&x[r * vocab..(r + 1) * vocab])
            } else {
                0.0
            }
        })
        .collect()
}

/// `silu(gate) · up`, elementwise, in parallel chunks.
///
/// # Shapes
/// - gate, up: the same shape
/// - output: that shape
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    if let Some(h) = grad::silu_mul(gate, up) {
        return Some(h);
    }
    let (gf, uf) = (host(gate)?, host(up)?);
    if !(gf.layout().is_contiguous() && uf.layout().is_contiguous()) {
        return None;
    }
    let dims = gate.dims();
    let n: usize = dims.iter().product();
    let (g, _) = strided::<D>(&gf);
    let (u, _) = strided::<D>(&uf);
    let mut out = vec![0.0f32; n];
    silu_mul_into(&g[..n], &u[..n], &mut out);
    Some(Tensor::from_data(
        TensorData::new(out, dims),
        &gate.device(),
    ))
}

/// `out ← silu(g) · u`, in parallel chunks.
pub(crate) fn silu_mul_into(g: &[f32], u: &[f32], out: &mut [f32]) {
    use rayon::prelude::*;
    out.par_chunks_mut(CHUNK)
        .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
        .for_each(|(o, (g, u))| {
            // silu(g) = g / (1 + e^-g).
            for (o, x) in o.iter_mut().zip(g) {
                *o = -x;
            }
            exp_in_place(o);
            for ((o, x), y) in o.iter_mut().zip(g).zip(u) {
                *o = x / (1.0 + *o) * y;
            }
        });
}

/// `layer`'s dropout on `x` during training, its mask from a hash of a seed drawn from burn's
/// generator (so a seeded device gives the same masks), on the CPU kernels where they apply;
/// `None` elsewhere (burn's dropout then runs, or nothing outside training).
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub(crate) fn dropout<const D: usize>(
    layer: &burn::nn::Dropout,
    x: &Tensor<D>,
) -> Option<Tensor<D>> {
    if !training(layer) || grad::tracked(x).is_none() {
        return None;
    }
    grad::dropout(x, layer.prob, seed(&x.device())?)
}

/// Causal attention (`softmax(q kᵀ / √d) v`, no cached positions) with `layer`'s dropout on
/// the weights during training, on the CPU kernels where they apply (with or without
/// autodiff).
///
/// # Shapes
/// - q, k, v: `[batch, heads, seq, head_dim]`
/// - output: `[batch, seq, heads * head_dim]`
pub(crate) fn causal_attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    layer: &burn::nn::Dropout,
) -> Option<Tensor<3>> {
    if grad::tracked(q).is_some() {
        let drop = if training(layer) {
            Some(attention::WeightDropout {
                threshold: (layer.prob * 4_294_967_296.0) as u64,
                scale: (1.0 / (1.0 - layer.prob)) as f32,
                seed: seed(&q.device())?,
            })
        } else {
            None
        };
        return grad::attention(q, k, v, drop);
    }
    attention(q, k, v, None)
}

/// A LayerNorm layer built with `epsilon`, on the CPU kernels under autodiff; `None` elsewhere
/// (burn's own LayerNorm then runs; it is one fused kernel on flex without autodiff).
///
/// # Shapes
/// - x: `[..., d]`
/// - output: like `x`
pub(crate) fn layer_norm<const D: usize>(
    layer: &burn::nn::LayerNorm,
    x: &Tensor<D>,
    epsilon: f64,
) -> Option<Tensor<D>> {
    let beta = layer.beta.as_ref().map(|b| b.val());
    seq_nodes::layer_norm(x, &layer.gamma.val(), beta.as_ref(), epsilon)
}

/// The two-stage loss (the mean over the real positions of `−log P(target)`, see
/// [`crate::ops::two_stage_nll`]) as one node, on the CPU kernels under autodiff; `None`
/// elsewhere.
///
/// # Shapes
/// - logits: `[batch, len, n_states + 1]`
/// - prev, target, mask: `[batch, len]`
/// - output: `[1]`
pub(crate) fn two_stage_nll(
    logits: &Tensor<3>,
    prev: &Tensor<2, Int>,
    target: &Tensor<2, Int>,
    mask: &Tensor<2>,
    n_tokens: usize,
) -> Option<Tensor<1>> {
    grad::tracked(logits)?;
    let ints = |t: &Tensor<2, Int>| t.to_data().convert::<i64>().try_into_vec::<i64>().ok();
    let (prev, target) = (ints(prev)?, ints(target)?);
    let mask = mask.to_data().convert::<f32>().try_into_vec::<f32>().ok()?;
    if prev.len() != mask.len() || target.len() != mask.len() {
        return None;
    }
    let scale = 1.0 / n_tokens.max(1) as f32;
    let picks = prev
        .iter()
        .zip(&target)
        .zip(&mask)
        .map(|((&p, &t), &m)| {
            Some(seq_nodes::Pick {
                prev: u32::try_from(p).ok()?,
                target: u32::try_from(t).ok()?,
                weight: m * scale,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    seq_nodes::two_stage_nll(logits, &picks)
}

/// `Σ t²` over a dense `f32` tensor on the flex device, in one read-only parallel pass (block
/// sums in `f32`, added in `f64` in a fixed order); `None` where the kernels do not apply.
pub(crate) fn sum_of_squares<const D: usize>(t: &Tensor<D>) -> Option<f64> {
    use rayon::prelude::*;
    let f = host(t)?;
    let n: usize = t.dims().iter().product();
    if f.layout().contiguous_offsets() != Some((0, n)) || f.storage::<f32>().len() < n {
        return None;
    }
    let blocks: Vec<f64> = f.storage::<f32>()[..n]
        .par_chunks(CHUNK)
        .map(|c| f64::from(c.iter().map(|x| x * x).sum::<f32>()))
        .collect();
    Some(blocks.iter().sum())
}

/// The exact GELU (`x Φ(x)`), on the CPU kernels where they apply (with or without autodiff).
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub(crate) fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    use rayon::prelude::*;
    if let Some(y) = grad::gelu(x) {
        return Some(y);
    }
    let xf = host(x)?;
    if !xf.layout().is_contiguous() {
        return None;
    }
    let dims = x.dims();
    let n: usize = dims.iter().product();
    let (xv, _) = strided::<D>(&xf);
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(CHUNK)
        .zip(xv[..n].par_chunks(CHUNK))
        .for_each(|(o, x)| grad::gelu_into(x, o, None));
    Some(Tensor::from_data(TensorData::new(out, dims), &x.device()))
}

/// RMSNorm over the last dimension (`x / √(mean(x²) + ε) · γ`), on the CPU kernels where they
/// apply (with or without autodiff).
///
/// # Shapes
/// - x: `[..., d]`
/// - gamma: `[d]`
/// - output: like `x`
pub(crate) fn rms_norm<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    epsilon: f64,
) -> Option<Tensor<D>> {
    use rayon::prelude::*;
    if let Some(y) = grad::rms_norm(x, gamma, epsilon) {
        return Some(y);
    }
    let (xf, gf) = (host(x)?, host(gamma)?);
    if !(xf.layout().is_contiguous() && gf.layout().is_contiguous()) {
        return None;
    }
    let dims = x.dims();
    let d = dims[D - 1];
    let n: usize = dims.iter().product();
    if d == 0 || gamma.dims()[0] != d {
        return None;
    }
    let (xv, _) = strided::<D>(&xf);
    let (gv, _) = strided::<1>(&gf);
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(d)
        .zip(xv[..n].par_chunks(d))
        .for_each(|(o, x)| {
            rms_row(x, &gv[..d], epsilon, o);
        });
    Some(Tensor::from_data(TensorData::new(out, dims), &x.device()))
}

/// `out ← x · r · γ` for one row, with `r = 1 / √(mean(x²) + ε)`, which it returns.
pub(crate) fn rms_row(x: &[f32], gamma: &[f32], epsilon: f64, out: &mut [f32]) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    let r = (1.0 / ((ss / x.len() as f32) as f64 + epsilon).sqrt()) as f32;
    for ((o, v), g) in out.iter_mut().zip(x).zip(gamma) {
        *o = v * r * g;
    }
    r
}

/// `x · w` with every head of the result rotated (rotate-half RoPE), on the CPU kernels where
/// they apply.
///
/// # Shapes
/// - x: `[batch, seq, in]`
/// - w: `[in, heads * head_dim]`
/// - output: `[batch, seq, heads * head_dim]`
pub(crate) fn linear_rope(x: &Tensor<3>, w: &Tensor<2>, rope: &RopeTables) -> Option<Tensor<3>> {
    let [b, s, _] = x.dims();
    let [_, n] = w.dims();
    if !rope.fits(b, s, n) {
        return None;
    }
    if let Some(y) = grad::product(x, w, false) {
        return grad::rope(&y, rope);
    }
    let mut out = project(x, w)?;
    rope.rotate(&mut out, s, n, false);
    Some(Tensor::from_data(
        TensorData::new(out, [b, s, n]),
        &x.device(),
    ))
}

/// Rotate-half RoPE on every head of `x`, on the CPU kernels where they apply (with or
/// without autodiff).
///
/// # Shapes
/// - x: `[batch, seq, heads * head_dim]`
/// - output: like `x`
pub(crate) fn rope(x: &Tensor<3>, tables: &RopeTables) -> Option<Tensor<3>> {
    let [b, s, n] = x.dims();
    if !tables.fits(b, s, n) {
        return None;
    }
    if let Some(y) = grad::rope(x, tables) {
        return Some(y);
    }
    let xf = host(x)?;
    if !xf.layout().is_contiguous() {
        return None;
    }
    let (data, _) = strided::<3>(&xf);
    let mut out = data[..b * s * n].to_vec();
    tables.rotate(&mut out, s, n, false);
    Some(Tensor::from_data(
        TensorData::new(out, [b, s, n]),
        &x.device(),
    ))
}
