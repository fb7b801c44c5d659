//! Kernels of our own on burn's CPU backend (flex), for inference and training.
//!
//! burn-flex runs the model correctly but spends about as much time around its matrix products
//! as in them: its attention computes and exponentiates the hidden half of every causal score
//! matrix with a scalar `exp`, RoPE, SiLU and the log-softmax are chains of separate passes, and
//! every product packs its weight again. For tensors that live on the flex device, the model's
//! products, attention and those element-wise steps run here instead: a blocked AVX2/FMA matrix
//! product with weights packed once ([`gemm`]), an attention that skips hidden keys
//! ([`attention`](mod@attention)), and fused element-wise passes. They read burn's buffers in place (no copy on
//! the way in) and hand their results back as new flex tensors. Under autodiff (training),
//! [`grad`] records each of them as one node of burn's graph with a backward pass on the same
//! kernels. Everything else (GPU backends, CPUs without AVX2/FMA) takes burn's own operations,
//! which give the same numbers up to rounding; `tests::kernels_agree_with_burn_on_a_whole_model`
//! and `grad::tests::gradients_agree_with_burn` compare the two.
//!
//! `LABOR_CPU_KERNELS=0` turns these kernels off (burn's operations everywhere), for
//! comparisons.

mod attention;
mod gemm;
mod grad;
mod seq;

// A linear layer's bias and the logit clamp as nodes on the CPU kernels under autodiff (`None`
// elsewhere).
pub(crate) use seq::{add_bias, clamp};

use std::cell::Cell;
use std::sync::{Arc, Mutex, OnceLock, Weak};

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::{Bool, Bytes, DType, Tensor, TensorData};

/// Whether the kernels of this module run: the CPU has AVX2 and FMA, and `LABOR_CPU_KERNELS`
/// is not `0`.
pub(crate) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        gemm::available() && std::env::var("LABOR_CPU_KERNELS").map_or(true, |v| v != "0")
    })
}

thread_local! {
    /// Kernels turned off on this thread (tests compare both paths in one process).
    static OFF: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with burn's operations instead of these kernels on this thread.
#[cfg(test)]
pub(crate) fn without<R>(f: impl FnOnce() -> R) -> R {
    OFF.with(|off| off.set(true));
    let r = f();
    OFF.with(|off| off.set(false));
    r
}

/// Whether the kernels run on this thread now.
fn active() -> bool {
    enabled() && !OFF.with(Cell::get)
}

/// The flex primitive of a float tensor, where it is an `f32` tensor on the flex device without
/// autodiff and its strides are non-negative.
fn host<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if !active() {
        return None;
    }
    let f = t.clone().try_into_primitive::<Flex>().ok()?;
    (f.dtype() == DType::F32 && f.layout().has_positive_strides()).then_some(f)
}

/// Whether the kernels apply to `t`, with or without autodiff.
pub(crate) fn on_kernels<const D: usize>(t: &Tensor<D>) -> bool {
    host(t).is_some() || grad::tracked(t).is_some()
}

/// The storage of `f` from its first element, and its strides.
fn strided<const D: usize>(f: &FlexTensor) -> (&[f32], [usize; D]) {
    let layout = f.layout();
    let mut strides = [0usize; D];
    for (s, &v) in strides.iter_mut().zip(layout.strides()) {
        *s = v.unsigned_abs();
    }
    (&f.storage::<f32>()[layout.start_offset()..], strides)
}

/// The strided view of the 4-d tensor `f` of `shape`.
fn array4(f: &FlexTensor, shape: [usize; 4]) -> attention::Array4<'_> {
    let (data, strides) = strided::<4>(f);
    attention::Array4 {
        data,
        shape,
        strides,
    }
}

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

/// The values of `x · w`, row-major `[batch · seq, out]`.
fn project(x: &Tensor<3>, w: &Tensor<2>) -> Option<Vec<f32>> {
    let (xf, wf) = (host(x)?, host(w)?);
    let [b, s, k] = x.dims();
    let [_, n] = w.dims();
    let x_flat = xf.layout().is_contiguous().then(|| {
        let (data, _) = strided::<3>(&xf);
        gemm::View { data, rs: k, cs: 1 }
    })?;
    let (wd, ws) = strided::<2>(&wf);
    let m = b * s;
    let mut out = vec![0.0f32; m * n];
    let w_view = gemm::View {
        data: wd,
        rs: ws[0],
        cs: ws[1],
    };
    times(x_flat, &wf, w_view, [m, n, k], &mut out)?;
    Some(out)
}

/// `out ← a · w` (`[m, n, k]`), with `w` (the view `w_view` of the weight `wf`) packed once and
/// kept while it lives, within the budget of [`packed_weight`].
fn times(
    a: gemm::View<'_>,
    wf: &FlexTensor,
    w_view: gemm::View<'_>,
    [m, n, k]: [usize; 3],
    out: &mut [f32],
) -> Option<()> {
    match packed_weight(wf, w_view, k, n) {
        Some(p) => {
            gemm::sgemm_packed(m, a, &p, out, n, true);
            Some(())
        }
        None => gemm::sgemm([m, n, k], a, w_view, out, n, true).then_some(()),
    }
}

/// A weight packed for the matrix product, with the storage it was packed from (held weakly:
/// the entry goes when the weight does) and the view of it.
struct PackedEntry {
    storage: Weak<Bytes>,
    view: (usize, usize, usize, usize, usize),
    packed: Arc<gemm::Packed>,
}

/// Packed weights of the models in use.
static PACKED: Mutex<Vec<PackedEntry>> = Mutex::new(Vec::new());

/// Most bytes of packed weights kept: `LABOR_PACKED_WEIGHTS_MB` (default 2048; 0 packs every
/// product's weight anew, as burn does).
fn packed_budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        std::env::var("LABOR_PACKED_WEIGHTS_MB")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(2048)
            << 20
    })
}

/// The packed form of the weight `w` (`k × n`, the view `view` of the tensor `f`): from the
/// cache, or packed now and kept if the budget allows. A weight is packed once, however many
/// products use it (the scorer runs each weight hundreds of times); entries whose weight was
/// dropped are removed on the way.
fn packed_weight(
    f: &FlexTensor,
    view: gemm::View<'_>,
    k: usize,
    n: usize,
) -> Option<Arc<gemm::Packed>> {
    let budget = packed_budget();
    if budget == 0 {
        return None;
    }
    let storage = Arc::downgrade(&f.data_arc());
    let key = (f.layout().start_offset(), view.rs, view.cs, k, n);
    let mut cache = PACKED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache.retain(|e| e.storage.strong_count() > 0);
    if let Some(e) = cache
        .iter()
        .find(|e| Weak::ptr_eq(&e.storage, &storage) && e.view == key)
    {
        return Some(Arc::clone(&e.packed));
    }
    let used: usize = cache.iter().map(|e| e.packed.bytes()).sum();
    if used + k * n * std::mem::size_of::<f32>() > budget {
        return None;
    }
    let packed = Arc::new(gemm::Packed::new(view, k, n)?);
    cache.push(PackedEntry {
        storage,
        view: key,
        packed: Arc::clone(&packed),
    });
    Some(packed)
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
    let (hf, ef) = (host(h)?, host(e)?);
    let [m, k] = h.dims();
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
fn attention_shapes_fit(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>) -> bool {
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
fn row_log_sum_exps(x: &[f32], rows: usize, vocab: usize, picks: &[(usize, u32)]) -> Vec<f32> {
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

/// `log Σ eˣ`, stable (the maximum is taken out first).
fn log_sum_exp(x: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if gemm::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { log_sum_exp_avx2(x) };
    }
    let max = x.iter().fold(f32::NEG_INFINITY, |m, v| m.max(*v));
    if max == f32::NEG_INFINITY {
        return max;
    }
    max + x.iter().map(|v| exp1(v - max)).sum::<f32>().ln()
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn log_sum_exp_avx2(x: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
    for c in chunks.clone() {
        // SAFETY: `c` holds 8 values.
        vmax = _mm256_max_ps(vmax, unsafe { _mm256_loadu_ps(c.as_ptr()) });
    }
    let max = lanes(vmax)
        .into_iter()
        .chain(tail.iter().copied())
        .fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return max;
    }
    let vm = _mm256_set1_ps(max);
    let mut vsum = _mm256_setzero_ps();
    for c in chunks {
        // SAFETY: as above; AVX2 and FMA per the caller.
        vsum = _mm256_add_ps(vsum, unsafe {
            exp8(_mm256_sub_ps(_mm256_loadu_ps(c.as_ptr()), vm))
        });
    }
    let sum: f32 =
        lanes(vsum).iter().sum::<f32>() + tail.iter().map(|v| exp1(v - max)).sum::<f32>();
    max + sum.ln()
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
fn silu_mul_into(g: &[f32], u: &[f32], out: &mut [f32]) {
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

/// Whether `layer` drops anything now (training, a non-zero probability).
fn training(layer: &burn::nn::Dropout) -> bool {
    layer.training.is_enabled() && layer.prob > 0.0
}

thread_local! {
    /// This thread's dropout generator ([`seed_dropout`]); `None`: burn's.
    static DROPOUT_RNG: std::cell::RefCell<Option<rand::rngs::StdRng>> =
        const { std::cell::RefCell::new(None) };
}

/// Draws the dropout masks of the CPU kernels on this thread from a generator of their own,
/// seeded with `seed`, instead of burn's process-wide one (which every thread shares, so two
/// trainings in one process would perturb each other's masks). It is the generator and the
/// draw burn's CPU backend makes after `Device::seed(seed)`, so a training alone in its process
/// gets the masks it got from burn's generator. The trainers call it at the start of every
/// epoch with the epoch's seed. burn's own dropout (GPU backends, CPUs without AVX2) still draws
/// from burn's generator.
pub(crate) fn seed_dropout(seed: u64) {
    use rand::SeedableRng;
    DROPOUT_RNG.with_borrow_mut(|r| *r = Some(rand::rngs::StdRng::seed_from_u64(seed)));
}

/// A seed for a dropout mask: two uniform draws in `[0, 2³²)` from this thread's generator
/// ([`seed_dropout`]) when it has one, else from burn's (seeded by `Device::seed`).
fn seed(device: &burn::tensor::Device) -> Option<u64> {
    let range = burn::tensor::Distribution::Uniform(0.0, 4_294_967_296.0);
    let data = match DROPOUT_RNG.with_borrow_mut(|r| {
        r.as_mut()
            .map(|rng| TensorData::random::<f32, _, _>([2], range, rng))
    }) {
        Some(data) => data,
        None => Tensor::<1>::random([2], range, &device.clone().inner()).into_data(),
    };
    let draw = data.convert::<f64>().try_into_vec::<f64>().ok()?;
    Some(((draw[0] as u64) << 32) ^ (draw[1] as u64))
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
    seq::layer_norm(x, &layer.gamma.val(), beta.as_ref(), epsilon)
}

/// The two-stage loss of `batch` (the mean over its real positions of `−log P(target)`, see
/// [`crate::seq::two_stage_nll`]) as one node, on the CPU kernels under autodiff; `None`
/// elsewhere.
///
/// # Shapes
/// - logits: `[batch, len, n_states + 1]`
/// - output: `[1]`
pub(crate) fn two_stage_nll(logits: &Tensor<3>, batch: &crate::seq::SeqBatch) -> Option<Tensor<1>> {
    grad::tracked(logits)?;
    let ints =
        |t: &Tensor<2, burn::tensor::Int>| t.to_data().convert::<i64>().try_into_vec::<i64>().ok();
    let (prev, target) = (ints(&batch.prev)?, ints(&batch.target)?);
    let mask = batch
        .mask
        .to_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .ok()?;
    if prev.len() != mask.len() || target.len() != mask.len() {
        return None;
    }
    let scale = 1.0 / batch.n_tokens.max(1) as f32;
    let picks = prev
        .iter()
        .zip(&target)
        .zip(&mask)
        .map(|((&p, &t), &m)| {
            Some(seq::Pick {
                prev: u32::try_from(p).ok()?,
                target: u32::try_from(t).ok()?,
                weight: m * scale,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    seq::two_stage_nll(logits, &picks)
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

/// The finaliser of SplitMix64 (Steele, Lea and Flood 2014) on `z`'s golden-ratio step: the
/// hash behind the dropout masks.
fn splitmix64(z: u64) -> u64 {
    let mut z = z.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
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
fn rms_row(x: &[f32], gamma: &[f32], epsilon: f64, out: &mut [f32]) -> f32 {
    let ss: f32 = x.iter().map(|v| v * v).sum();
    let r = (1.0 / ((ss / x.len() as f32) as f64 + epsilon).sqrt()) as f32;
    for ((o, v), g) in out.iter_mut().zip(x).zip(gamma) {
        *o = v * r * g;
    }
    r
}

/// Elements per parallel task of the elementwise kernels (fits L1 with its inputs).
const CHUNK: usize = 2048;

/// Rotary tables on the host: `cos`/`sin` of `rows × seq × head_dim` values, the frequencies
/// repeated for both halves of a head (Hugging Face's rotate-half layout); `rows` is 1 when
/// every batch row has the same positions.
#[derive(Debug, Clone)]
pub(crate) struct RopeTables {
    /// Cosines.
    pub cos: Vec<f32>,
    /// Sines.
    pub sin: Vec<f32>,
    /// Rows of the tables (1, or the batch).
    pub rows: usize,
    /// Width of a head.
    pub head_dim: usize,
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

impl RopeTables {
    /// Whether the tables cover `batch` rows of `seq` positions of `width` (whole heads).
    fn fits(&self, batch: usize, seq: usize, width: usize) -> bool {
        let hd = self.head_dim;
        hd != 0
            && hd.is_multiple_of(2)
            && width.is_multiple_of(hd)
            && self.cos.len() == self.rows * seq * hd
            && self.sin.len() == self.cos.len()
            && (self.rows == 1 || self.rows == batch)
    }

    /// Rotates every head of `x` (rows of `width` values, `seq` positions per batch row) by
    /// its position's angles, or by their opposites with `inverse` (the transpose of the
    /// rotation, for the gradient).
    fn rotate(&self, x: &mut [f32], seq: usize, width: usize, inverse: bool) {
        use rayon::prelude::*;
        let hd = self.head_dim;
        let half = hd / 2;
        let sign = if inverse { -1.0 } else { 1.0 };
        x.par_chunks_mut(width).enumerate().for_each(|(r, row)| {
            let (bi, i) = (r / seq, r % seq);
            let t = (if self.rows == 1 { i } else { bi * seq + i }) * hd;
            let (cos, sin) = (&self.cos[t..t + hd], &self.sin[t..t + hd]);
            for head in row.chunks_mut(hd) {
                let (x1, x2) = head.split_at_mut(half);
                for j in 0..half {
                    let (a, c) = (x1[j], x2[j]);
                    x1[j] = a * cos[j] - sign * c * sin[j];
                    x2[j] = c * cos[half + j] + sign * a * sin[half + j];
                }
            }
        });
    }
}

/// `x ← eˣ` for every element; inputs below −87.3 give exactly 0 (so −∞ does).
pub(crate) fn exp_in_place(x: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if gemm::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { exp_avx2(x) };
        return;
    }
    for v in x.iter_mut() {
        *v = exp1(*v);
    }
}

/// `eˣ` on 8 lanes: `x = n ln 2 + r` with `|r| ≤ ln 2 / 2`, a degree-7 polynomial for `eʳ`
/// (relative error about 2e-7), and `2ⁿ` built in the exponent bits; lanes below −87.3 give
/// exactly 0.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
unsafe fn exp8(v: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let lo = _mm256_set1_ps(-87.3);
    let under = _mm256_cmp_ps::<_CMP_LT_OQ>(v, lo);
    let v = _mm256_min_ps(_mm256_max_ps(v, lo), _mm256_set1_ps(88.3));
    let n = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(_mm256_mul_ps(
        v,
        _mm256_set1_ps(std::f32::consts::LOG2_E),
    ));
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693_359_4), v);
    let r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.121_944_4e-4), r);
    let mut y = _mm256_set1_ps(1.0 / 5040.0);
    for c in [
        1.0 / 720.0,
        1.0 / 120.0,
        1.0 / 24.0,
        1.0 / 6.0,
        0.5,
        1.0,
        1.0,
    ] {
        y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(c));
    }
    let pow = _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
        _mm256_cvtps_epi32(n),
        _mm256_set1_epi32(127),
    )));
    _mm256_andnot_ps(under, _mm256_mul_ps(y, pow))
}

/// Scalar twin of [`exp8`] for the tails.
fn exp1(x: f32) -> f32 {
    if x < -87.3 { 0.0 } else { x.exp() }
}

/// Horizontal sum and maximum of 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn lanes(v: std::arch::x86_64::__m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds 8 values.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_avx2(x: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = x.chunks_exact_mut(8);
    for c in &mut chunks {
        // SAFETY: `c` holds 8 values; AVX2 and FMA per the caller.
        unsafe { _mm256_storeu_ps(c.as_mut_ptr(), exp8(_mm256_loadu_ps(c.as_ptr()))) };
    }
    for v in chunks.into_remainder() {
        *v = exp1(*v);
    }
}

/// In place: `x ← e^(scale · x − m)` with `m = max(scale · x)`; returns `(m, Σ)` of the new
/// values. With `x` empty, returns `(−∞, 0)`.
pub(crate) fn exp_shifted(x: &mut [f32], scale: f32) -> (f32, f32) {
    #[cfg(target_arch = "x86_64")]
    if gemm::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        return unsafe { exp_shifted_avx2(x, scale) };
    }
    let max = x.iter().fold(f32::NEG_INFINITY, |m, v| m.max(v * scale));
    if max == f32::NEG_INFINITY {
        x.fill(0.0);
        return (max, 0.0);
    }
    let mut sum = 0.0;
    for v in x.iter_mut() {
        *v = exp1(*v * scale - max);
        sum += *v;
    }
    (max, sum)
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn exp_shifted_avx2(x: &mut [f32], scale: f32) -> (f32, f32) {
    use std::arch::x86_64::*;
    let n8 = x.len() / 8 * 8;
    let p = x.as_mut_ptr();
    let sc = _mm256_set1_ps(scale);
    let mut vmax = _mm256_set1_ps(f32::NEG_INFINITY);
    for i in (0..n8).step_by(8) {
        // SAFETY: `i + 8 <= x.len()`.
        vmax = _mm256_max_ps(
            vmax,
            _mm256_mul_ps(unsafe { _mm256_loadu_ps(p.add(i)) }, sc),
        );
    }
    let mut max = lanes(vmax).into_iter().fold(f32::NEG_INFINITY, f32::max);
    for v in &x[n8..] {
        max = max.max(v * scale);
    }
    if max == f32::NEG_INFINITY {
        x.fill(0.0);
        return (max, 0.0);
    }
    let vm = _mm256_set1_ps(max);
    let mut vsum = _mm256_setzero_ps();
    for i in (0..n8).step_by(8) {
        // SAFETY: as above; AVX2 and FMA per the caller.
        unsafe {
            let e = exp8(_mm256_fmsub_ps(_mm256_loadu_ps(p.add(i)), sc, vm));
            vsum = _mm256_add_ps(vsum, e);
            _mm256_storeu_ps(p.add(i), e);
        }
    }
    let mut sum: f32 = lanes(vsum).iter().sum();
    for v in &mut x[n8..] {
        *v = exp1(*v * scale - max);
        sum += *v;
    }
    (max, sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::KvCache;
    use crate::{Llama, LlamaConfig};
    use burn::tensor::{Device, Int};

    /// The values of a float tensor (the tests of [`grad`] use it too).
    pub(super) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data")
    }

    fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    fn model(tied: bool, device: &Device) -> Llama {
        // Grouped-query attention (4 query heads on 2 key/value heads), head width 16.
        LlamaConfig::new(64, 2, 4, 2, 96, 211)
            .with_tie_embeddings(tied)
            .init(device)
    }

    fn ids(b: usize, s: usize, device: &Device) -> Tensor<2, Int> {
        let v: Vec<i64> = (0..b * s).map(|i| ((i * 7919 + 13) % 211) as i64).collect();
        Tensor::<1, Int>::from_ints(v.as_slice(), device).reshape([b, s])
    }

    #[test]
    fn kernels_agree_with_burn_on_a_whole_model() {
        if !enabled() {
            eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
            return;
        }
        let device = Device::default();
        for tied in [false, true] {
            let m = model(tied, &device);
            // Causal attention over more than one block of queries, two batch rows.
            let t = ids(2, 150, &device);
            let fast = values(m.next_token_log_probs(t.clone()));
            let slow = values(without(|| m.next_token_log_probs(t)));
            let d = largest_difference(&fast, &slow);
            assert!(d < 1e-4, "log-probs differ by {d} (tied: {tied})");

            // With cached positions: the second call attends to the first's keys.
            let run = |m: &Llama| {
                let mut cache = KvCache::new();
                let _ = m.hidden(ids(1, 70, &device), &mut cache);
                let h = m.hidden(ids(1, 9, &device), &mut cache);
                // Two rows of trees after the cache: node i sees its ancestors i - 2, i - 4, ...
                let visible: Vec<Vec<Vec<bool>>> = (0..2)
                    .map(|_| {
                        (0..5)
                            .map(|i| (0..5).map(|j| j <= i && (i - j) % 2 == 0).collect())
                            .collect()
                    })
                    .collect();
                let positions = vec![vec![79, 80, 80, 81, 81], vec![79, 79, 80, 80, 81]];
                let tree = m.hidden_tree(ids(2, 5, &device), &positions, &visible, &cache);
                (values(h), values(m.head(tree)))
            };
            let (h_fast, tree_fast) = run(&m);
            let (h_slow, tree_slow) = without(|| run(&m));
            let d = largest_difference(&h_fast, &h_slow);
            assert!(
                d < 1e-4,
                "cached hidden states differ by {d} (tied: {tied})"
            );
            let d = largest_difference(&tree_fast, &tree_slow);
            assert!(d < 1e-4, "tree logits differ by {d} (tied: {tied})");
        }
    }

    #[test]
    fn shifted_exp_is_a_softmax_numerator() {
        let xs: Vec<f32> = (0..37)
            .map(|i| ((i * 7919) % 101) as f32 / 10.0 - 5.0)
            .collect();
        let mut got = xs.clone();
        let (max, sum) = exp_shifted(&mut got, 0.5);
        let want_max = xs.iter().fold(f32::NEG_INFINITY, |m, v| m.max(v * 0.5));
        assert_eq!(max, want_max);
        let want: Vec<f32> = xs.iter().map(|v| (v * 0.5 - want_max).exp()).collect();
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-6 * w, "{g} vs {w}");
        }
        assert!((sum - want.iter().sum::<f32>()).abs() <= 1e-5 * sum);
        let mut hidden = vec![f32::NEG_INFINITY; 11];
        assert_eq!(exp_shifted(&mut hidden, 1.0), (f32::NEG_INFINITY, 0.0));
        assert!(hidden.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn vector_exp_matches_the_standard_library() {
        let mut xs: Vec<f32> = (-9000..=8800).map(|i| i as f32 / 100.0).collect();
        xs.extend([f32::NEG_INFINITY, -87.29, -100.0, 0.0, -0.0]);
        let mut got = xs.clone();
        exp_in_place(&mut got);
        for (x, g) in xs.iter().zip(&got) {
            let want = if *x < -87.3 { 0.0 } else { x.exp() };
            assert!(
                (g - want).abs() <= 1e-6 * want.abs() + f32::MIN_POSITIVE,
                "exp({x}) = {g}, want {want}"
            );
        }
    }
}
