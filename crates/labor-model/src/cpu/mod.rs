//! Kernels of our own for inference on burn's CPU backend (flex).
//!
//! burn-flex runs the model correctly but spends about as much time around its matrix products
//! as in them: its attention computes and exponentiates the hidden half of every causal score
//! matrix with a scalar `exp`, RoPE, SiLU and the log-softmax are chains of separate passes, and
//! every product packs its weight again. For tensors that live on the flex device without
//! autodiff, the model's products, attention and those element-wise steps run here instead: a
//! blocked AVX2/FMA matrix product with weights packed once ([`gemm`]), an attention that skips
//! hidden keys ([`attention`]), and fused element-wise passes. They read burn's buffers in place
//! (no copy on the way in) and hand their results back as new flex tensors. Everything else
//! (autodiff, GPU backends, CPUs without AVX2/FMA) takes burn's own operations, which give the
//! same numbers up to rounding; `tests::kernels_agree_with_burn_on_a_whole_model` compares the
//! two.
//!
//! `LABOR_CPU_KERNELS=0` turns these kernels off (burn's operations everywhere), for
//! comparisons.

mod attention;
mod gemm;

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

/// The flex primitive of a float tensor, where it is an `f32` tensor on the flex device without
/// autodiff and its strides are non-negative.
fn host<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if !enabled() || OFF.with(Cell::get) {
        return None;
    }
    let f = t.clone().try_into_primitive::<Flex>().ok()?;
    (f.dtype() == DType::F32 && f.layout().has_positive_strides()).then_some(f)
}

/// Whether the kernels apply to `t` (an `f32` tensor on the flex device without autodiff).
pub(crate) fn on_host<const D: usize>(t: &Tensor<D>) -> bool {
    host(t).is_some()
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

/// `x · w` for a linear layer's weight `w` (`[in, out]`, burn's layout), on the CPU kernels
/// where they apply.
///
/// # Shapes
/// - x: `[batch, seq, in]`
/// - w: `[in, out]`
/// - output: `[batch, seq, out]`
pub(crate) fn linear(x: &Tensor<3>, w: &Tensor<2>) -> Option<Tensor<3>> {
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
    let (qf, kf, vf) = (host(q)?, host(k)?, host(v)?);
    let mf = match mask {
        Some(m) => Some(m.clone().try_into_primitive::<Flex>().ok()?),
        None => None,
    };
    let [b, h, s, d] = q.dims();
    fn array(f: &FlexTensor, shape: [usize; 4]) -> attention::Array4<'_> {
        let (data, strides) = strided::<4>(f);
        attention::Array4 {
            data,
            shape,
            strides,
        }
    }
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
    let out = attention::attention(
        array(&qf, q.dims()),
        array(&kf, k.dims()),
        array(&vf, v.dims()),
        mask,
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
    use rayon::prelude::*;
    let lf = host(logits)?;
    if !lf.layout().is_contiguous() {
        return None;
    }
    let [rows, vocab] = logits.dims();
    let (data, _) = strided::<2>(&lf);
    let mut used = vec![false; rows];
    for &(r, t) in picks {
        assert!(
            r < rows && (t as usize) < vocab,
            "pick ({r}, {t}) outside {rows} x {vocab}"
        );
        used[r] = true;
    }
    let lse: Vec<f32> = (0..rows)
        .into_par_iter()
        .map(|r| {
            if used[r] {
                log_sum_exp(&data[r * vocab..(r + 1) * vocab])
            } else {
                0.0
            }
        })
        .collect();
    Some(
        picks
            .iter()
            .map(|&(r, t)| data[r * vocab + t as usize] - lse[r])
            .collect(),
    )
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
    use rayon::prelude::*;
    let (gf, uf) = (host(gate)?, host(up)?);
    if !(gf.layout().is_contiguous() && uf.layout().is_contiguous()) {
        return None;
    }
    let dims = gate.dims();
    let n: usize = dims.iter().product();
    let (g, _) = strided::<D>(&gf);
    let (u, _) = strided::<D>(&uf);
    let mut out = vec![0.0f32; n];
    out.par_chunks_mut(CHUNK)
        .zip(g[..n].par_chunks(CHUNK).zip(u[..n].par_chunks(CHUNK)))
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
    Some(Tensor::from_data(
        TensorData::new(out, dims),
        &gate.device(),
    ))
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
    use rayon::prelude::*;
    let [b, s, _] = x.dims();
    let [_, n] = w.dims();
    let hd = rope.head_dim;
    if hd == 0 || n % hd != 0 || rope.cos.len() != rope.rows * s * hd {
        return None;
    }
    if rope.rows != 1 && rope.rows != b {
        return None;
    }
    let mut out = project(x, w)?;
    out.par_chunks_mut(n).enumerate().for_each(|(r, row)| {
        let (bi, i) = (r / s, r % s);
        let t = (if rope.rows == 1 { i } else { bi * s + i }) * hd;
        let (cos, sin) = (&rope.cos[t..t + hd], &rope.sin[t..t + hd]);
        let half = hd / 2;
        for head in row.chunks_mut(hd) {
            let (x1, x2) = head.split_at_mut(half);
            for j in 0..half {
                let (a, c) = (x1[j], x2[j]);
                x1[j] = a * cos[j] - c * sin[j];
                x2[j] = c * cos[half + j] + a * sin[half + j];
            }
        }
    });
    Some(Tensor::from_data(
        TensorData::new(out, [b, s, n]),
        &x.device(),
    ))
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

    fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
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
