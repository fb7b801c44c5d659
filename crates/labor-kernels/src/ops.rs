//! The operations the models are written in. Each returns its result on every backend: it runs
//! the crate's CPU kernel where one applies (an `f32` tensor on burn's flex device, with or
//! without autodiff, and the kernels [enabled](crate::enabled)) and burn's own operations
//! elsewhere (GPU backends, other CPUs, `LABOR_CPU_KERNELS=0`), which give the same numbers up
//! to rounding. A model calls these and never chooses a kernel itself.

use burn::nn::{Dropout, LayerNorm, Linear, RmsNorm};
use burn::tensor::activation::{log_sigmoid, log_softmax, silu, softmax};
use burn::tensor::module::attention as burn_attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor};

use crate::host::on_kernels;
use crate::kernels;
use crate::rope::RopeTables;

/// A linear layer (`x · W + b`), with or without bias. With a LoRA adapter on the weight and no
/// bias, the frozen product and the low-rank one run apart (the adapted weight is never
/// formed), each on the kernels.
///
/// # Shapes
/// - x: `[batch, seq, in]`
/// - output: `[batch, seq, out]`
pub fn linear(layer: &Linear, x: Tensor<3>) -> Tensor<3> {
    match (&layer.bias, layer.weight.adapter()) {
        (None, Some(lora)) => {
            if let Some(base) = kernels::linear(&x, &layer.weight.base()) {
                let low = |x: &Tensor<3>, w: Tensor<2>| {
                    kernels::linear(x, &w).unwrap_or_else(|| x.clone().matmul(w.unsqueeze()))
                };
                let down = low(&x, lora.a.val());
                return base + low(&down, lora.b.val()).mul_scalar(lora.scale);
            }
        }
        (bias, None) => {
            if let Some(y) = kernels::linear(&x, &layer.weight.val()) {
                return match bias {
                    Some(b) => {
                        let b = b.val();
                        kernels::add_bias(&y, &b).unwrap_or_else(|| y + b.unsqueeze())
                    }
                    None => y,
                };
            }
        }
        (Some(_), Some(_)) => {}
    }
    layer.forward(x)
}

/// `h · Eᵀ`: the output head tied to the embedding matrix `embeddings`.
///
/// # Shapes
/// - h: `[rows, d]`
/// - embeddings: `[vocab, d]`
/// - output: `[rows, vocab]`
pub fn tied_head(h: Tensor<2>, embeddings: Tensor<2>) -> Tensor<2> {
    kernels::matmul_transposed(&h, &embeddings).unwrap_or_else(|| h.matmul(embeddings.transpose()))
}

/// RMSNorm over the last dimension.
///
/// # Shapes
/// - x: `[..., d]`
/// - output: like `x`
pub fn rms_norm<const D: usize>(norm: &RmsNorm, x: Tensor<D>) -> Tensor<D> {
    kernels::rms_norm(&x, &norm.gamma.val(), norm.epsilon).unwrap_or_else(|| norm.forward(x))
}

/// `layer`'s LayerNorm, built with `epsilon` (burn keeps the layer's own private). Under
/// autodiff on the kernels it is one node; without autodiff burn's LayerNorm is already one
/// fused kernel on flex and runs.
///
/// # Shapes
/// - x: `[..., d]`
/// - output: like `x`
pub fn layer_norm<const D: usize>(layer: &LayerNorm, x: Tensor<D>, epsilon: f64) -> Tensor<D> {
    kernels::layer_norm(layer, &x, epsilon).unwrap_or_else(|| layer.forward(x))
}

/// `layer`'s dropout (nothing outside training). On the kernels the mask is hashed from a seed
/// drawn from this thread's generator ([`crate::seed_dropout`]) or burn's, never stored.
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub fn dropout<const D: usize>(layer: &Dropout, x: Tensor<D>) -> Tensor<D> {
    kernels::dropout(layer, &x).unwrap_or_else(|| layer.forward(x))
}

/// `silu(gate) · up`, SwiGLU's gate.
///
/// # Shapes
/// - gate, up: the same shape
/// - output: that shape
pub fn silu_mul<const D: usize>(gate: Tensor<D>, up: Tensor<D>) -> Tensor<D> {
    kernels::silu_mul(&gate, &up).unwrap_or_else(|| silu(gate) * up)
}

/// GELU with the erf (`x Φ(x)`, PyTorch's default), and its exact derivative on every backend.
///
/// burn's GELU computes the erf form everywhere, but its gradient is the derivative of the tanh
/// approximation on the backends without a `gelu_backward` of their own (burn 0.22.1's default
/// in `burn-backend`: the cubecl backends wgpu and cuda, and ndarray), which moves the
/// gradients of the layer before it by about 3e-4 of their largest entry. Under autodiff
/// elsewhere than flex the function is therefore written out, so that autodiff takes the erf's
/// own derivative.
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if let Some(y) = kernels::gelu(&x) {
        return y;
    }
    let device = x.device();
    if !device.is_autodiff() || crate::on_cpu(&device) {
        return burn::tensor::activation::gelu(x);
    }
    let half = x.clone().mul_scalar(0.5);
    half * x
        .mul_scalar(std::f64::consts::FRAC_1_SQRT_2)
        .erf()
        .add_scalar(1.0)
}

/// `x` clamped to `[lo, hi]` (the bounds themselves pass the gradient, as in burn).
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub fn clamp<const D: usize>(x: Tensor<D>, lo: f64, hi: f64) -> Tensor<D> {
    kernels::clamp(&x, lo as f32, hi as f32).unwrap_or_else(|| x.clamp(lo, hi))
}

/// Rotary position tables of one forward pass: for burn's operations and, on the host, for the
/// kernels.
#[derive(Debug, Clone)]
pub struct Rope {
    /// Cosines, `[rows, seq, head_dim]`.
    cos: Tensor<3>,
    /// Sines, like `cos`.
    sin: Tensor<3>,
    /// The same tables on the host.
    host: RopeTables,
}

impl Rope {
    /// Cosine and sine tables for the absolute `positions` of `rows` rows of equal length, each
    /// `[rows, positions.len() / rows, 2 · inv_freq.len()]` (the frequencies repeated for both
    /// halves of a head: Hugging Face's rotate-half layout).
    pub fn new(inv_freq: &[f64], positions: &[usize], rows: usize, device: &Device) -> Self {
        let half = inv_freq.len();
        let len = positions.len();
        let mut cos = Vec::with_capacity(len * 2 * half);
        let mut sin = Vec::with_capacity(len * 2 * half);
        for p in positions {
            for _ in 0..2 {
                for f in inv_freq {
                    let a = *p as f64 * f;
                    cos.push(a.cos() as f32);
                    sin.push(a.sin() as f32);
                }
            }
        }
        let shape = [rows, len / rows.max(1), 2 * half];
        Self {
            cos: Tensor::<1>::from_floats(cos.as_slice(), device).reshape(shape),
            sin: Tensor::<1>::from_floats(sin.as_slice(), device).reshape(shape),
            host: RopeTables {
                cos,
                sin,
                rows,
                head_dim: 2 * half,
            },
        }
    }

    /// Applies rotate-half RoPE with burn's operations.
    ///
    /// # Shapes
    /// - x: `[batch, heads, seq, head_dim]`
    /// - output: like `x`
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [b, h, s, d] = x.dims();
        let x1 = x.clone().narrow(3, 0, d / 2);
        let x2 = x.clone().narrow(3, d / 2, d / 2);
        let rotated = Tensor::cat(vec![x2.neg(), x1], 3);
        let cos = self.cos.clone().unsqueeze_dim::<4>(1).expand([b, h, s, d]);
        let sin = self.sin.clone().unsqueeze_dim::<4>(1).expand([b, h, s, d]);
        x * cos + rotated * sin
    }
}

/// `layer`'s projection of `x` split into `heads` heads, each rotated by `rope` (one pass on the
/// kernels for a bare product).
///
/// # Shapes
/// - x: `[batch, seq, in]`
/// - output: `[batch, heads, seq, head_dim]`
pub fn rotary_linear(layer: &Linear, x: &Tensor<3>, rope: &Rope, heads: usize) -> Tensor<4> {
    let [b, s, _] = x.dims();
    let split = |t: Tensor<3>| {
        let n = t.dims()[2];
        t.reshape([b, s, heads, n / heads]).swap_dims(1, 2)
    };
    let bare = layer.bias.is_none() && layer.weight.adapter().is_none();
    if bare && let Some(t) = kernels::linear_rope(x, &layer.weight.val(), &rope.host) {
        return split(t);
    }
    let y = linear(layer, x.clone());
    match kernels::rope(&y, &rope.host) {
        Some(t) => split(t),
        None => rope.apply(split(y)),
    }
}

/// Attention of `heads` query heads over grouped key/value heads, causal from the cached
/// positions on unless `mask` is given.
///
/// # Shapes
/// - q: `[batch, heads, seq, head_dim]`
/// - k, v: `[batch, kv_heads, past + seq, head_dim]`
/// - mask: `[batch or 1, seq, past + seq]`, `true` where a query must not see a key
/// - output: `[batch, seq, heads · head_dim]`
pub fn attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: Option<&Tensor<3, Bool>>,
) -> Tensor<3> {
    if let Some(out) = kernels::attention(&q, &k, &v, mask) {
        return out;
    }
    let [b, h, s, hd] = q.dims();
    let [_, kvh, t, _] = k.dims();
    let rep = h / kvh;
    // burn-flex's attention shares each key/value head among its query heads itself; the
    // generic path (autodiff, GPU backends) needs them repeated.
    let native_gqa = matches!(
        q.device().as_dispatch(),
        burn::backend::DispatchDevice::Flex(_)
    );
    let expand = |kv: Tensor<4>| {
        if rep == 1 || native_gqa {
            kv
        } else {
            kv.unsqueeze_dim::<5>(2)
                .expand([b, kvh, rep, t, hd])
                .reshape([b, h, t, hd])
        }
    };
    // The backend's fused attention (burn-flex: per-head gemm, or tiled online softmax for
    // long sequences).
    burn_attention(
        q,
        expand(k),
        expand(v),
        mask.map(|m| m.clone().unsqueeze_dim::<4>(1)),
        None,
        AttentionModuleOptions {
            is_causal: mask.is_none(),
            ..AttentionModuleOptions::default()
        },
    )
    .swap_dims(1, 2)
    .reshape([b, s, h * hd])
}

/// Causal attention without cached positions (`softmax(q kᵀ / √d) v`), with `dropout` on the
/// weights during training: CAREER's.
///
/// # Shapes
/// - q, k, v: `[batch, heads, len, head_dim]`
/// - mask: `[len, len]`, `true` where a query must not see a key (the causal mask)
/// - output: `[batch, len, heads · head_dim]`
pub fn causal_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    mask: &Tensor<2, Bool>,
    dropout: &Dropout,
) -> Tensor<3> {
    if let Some(a) = kernels::causal_attention(&q, &k, &v, dropout) {
        return a;
    }
    let [b, h, t, hd] = q.dims();
    let q = q.mul_scalar((hd as f64).powf(-0.5));
    let scores = q.matmul(k.swap_dims(2, 3));
    let scores = scores.mask_fill(
        mask.clone()
            .unsqueeze_dims::<4>(&[0, 1])
            .expand([b, h, t, t]),
        f32::NEG_INFINITY,
    );
    let w = dropout.forward(softmax(scores, 3));
    w.matmul(v).swap_dims(1, 2).reshape([b, t, h * hd])
}

/// Log-probability of each token given those before it, from the logits of every position:
/// entry `[b, i]` is `log softmax(logits[b, i])[tokens[b, i + 1]]`. On the kernels each row's
/// log-sum-exp is taken once, without the log-softmax matrix.
///
/// # Shapes
/// - logits: `[batch, seq, vocab]`
/// - tokens: `[batch, seq]`, `seq >= 2`
/// - output: `[batch, seq - 1]`
pub fn next_token_log_probs(logits: Tensor<3>, tokens: Tensor<2, Int>) -> Tensor<2> {
    let [b, s, v] = logits.dims();
    let ids = on_kernels(&logits)
        .then(|| tokens.to_data().convert::<i64>().try_into_vec::<i64>().ok())
        .flatten();
    if let Some(ids) = ids {
        let picks: Vec<(usize, u32)> = (0..b)
            .flat_map(|bi| (bi * s..bi * s + s - 1).map(|r| (r, ids[r + 1] as u32)))
            .collect();
        let flat = logits.clone().reshape([b * s, v]);
        if let Some(got) = kernels::log_softmax_pick_tensor(&flat, &picks, [b, s - 1]) {
            return got;
        }
    }
    let lp = log_softmax(logits.narrow(1, 0, s - 1), 2);
    let next = tokens.narrow(1, 1, s - 1).reshape([b, s - 1, 1]);
    lp.gather(2, next).reshape([b, s - 1])
}

/// `log softmax(logits[row])[token]` for every `(row, token)` of `picks`, in order.
///
/// # Shapes
/// - logits: `[rows, vocab]`
/// - output: `[picks.len()]`
///
/// # Panics
/// If a pick is out of range.
pub fn log_softmax_pick(logits: Tensor<2>, picks: &[(usize, u32)]) -> Tensor<1> {
    let device = logits.device();
    if let Some(got) = kernels::log_softmax_pick(&logits, picks) {
        return Tensor::<1>::from_floats(got.as_slice(), &device);
    }
    let [r, v] = logits.dims();
    for &(row, t) in picks {
        assert!(
            row < r && (t as usize) < v,
            "pick ({row}, {t}) outside {r} x {v}"
        );
    }
    let flat: Vec<i64> = picks
        .iter()
        .map(|&(row, t)| (row * v) as i64 + i64::from(t))
        .collect();
    log_softmax(logits, 1)
        .reshape([r * v])
        .select(0, Tensor::<1, Int>::from_ints(flat.as_slice(), &device))
}

/// Log-probabilities of the two-stage output (CAREER's): the last logit `s` gives
/// `P(stay) = σ(s)`, and a move goes to the other states by the softmax of their logits; the
/// first record (`prev = n_states`, the begin token) has no stay branch.
///
/// # Shapes
/// - logits: `[batch, len, n_states + 1]`
/// - prev: `[batch, len]`, previous state ids (`n_states` = begin token)
/// - output: `[batch, len, n_states]`
pub fn two_stage_log_probs(logits: Tensor<3>, prev: Tensor<2, Int>, n_states: usize) -> Tensor<3> {
    let [b, t, _] = logits.dims();
    let device = logits.device();
    let z = logits.clone().narrow(2, 0, n_states);
    let s = logits.narrow(2, n_states, 1); // [b, t, 1]
    let ids = Tensor::<1, Int>::arange(0..n_states as i64, &device)
        .reshape([1, 1, n_states])
        .expand([b, t, n_states]);
    let prev3 = prev.clone().reshape([b, t, 1]);
    let is_prev = ids.equal(prev3.clone().expand([b, t, n_states]));
    let first = prev3.equal_elem(n_states as i64); // [b, t, 1]
    let others = log_softmax(z.mask_fill(is_prev.clone(), -1.0e4), 2);
    let move_lp = log_sigmoid(s.clone().neg()).mask_fill(first, 0.0);
    let stay_lp = log_sigmoid(s);
    (others + move_lp.expand([b, t, n_states]))
        .mask_where(is_prev, stay_lp.expand([b, t, n_states]))
}

/// Mean negative log-likelihood of `target` under `log_probs` over the positions where `mask`
/// is 1, divided by `n_tokens` (the real positions of the batch).
///
/// # Shapes
/// - log_probs: `[batch, len, n_states]`
/// - target, mask: `[batch, len]`
/// - output: `[1]`
pub fn masked_nll(
    log_probs: Tensor<3>,
    target: Tensor<2, Int>,
    mask: Tensor<2>,
    n_tokens: usize,
) -> Tensor<1> {
    let [b, t, _] = log_probs.dims();
    let picked = log_probs
        .gather(2, target.reshape([b, t, 1]))
        .reshape([b, t]);
    let total = (picked * mask).sum().neg();
    total.div_scalar(n_tokens.max(1) as f64)
}

/// The training loss of the two-stage output: `masked_nll(two_stage_log_probs(logits, prev,
/// n_states), target, mask, n_tokens)` with `n_states` the logits' width less one. Under
/// autodiff on the kernels it is one node of the graph, which reads the logits once each way,
/// without the `[batch, len, n_states]` matrix of log-probabilities.
///
/// # Shapes
/// - logits: `[batch, len, n_states + 1]`
/// - prev, target, mask: `[batch, len]`
/// - output: `[1]`
pub fn two_stage_nll(
    logits: Tensor<3>,
    prev: Tensor<2, Int>,
    target: Tensor<2, Int>,
    mask: Tensor<2>,
    n_tokens: usize,
) -> Tensor<1> {
    if let Some(loss) = kernels::two_stage_nll(&logits, &prev, &target, &mask, n_tokens) {
        return loss;
    }
    let n_states = logits.dims()[2].saturating_sub(1);
    masked_nll(
        two_stage_log_probs(logits, prev, n_states),
        target,
        mask,
        n_tokens,
    )
}

/// `Σ t²`, where it was computed.
#[derive(Debug, Clone)]
pub enum SumOfSquares {
    /// On the host, in one read-only parallel pass (block sums in `f32`, added in `f64` in a
    /// fixed order).
    Host(f64),
    /// On the tensor's device, not read back yet (so that many can be added there first).
    Device(Box<Tensor<1>>),
}

/// `Σ t²` over every element of `t`.
pub fn sum_of_squares<const D: usize>(t: &Tensor<D>) -> SumOfSquares {
    match kernels::sum_of_squares(t) {
        Some(s) => SumOfSquares::Host(s),
        None => SumOfSquares::Device(Box::new(t.clone().square().sum())),
    }
}
