//! Training on the CPU kernels: autodiff operations of our own for burn's `Autodiff<Flex>`.
//!
//! Under autodiff, burn records each tensor operation of the model (a product, a square, a
//! mean, a division, …) as its own node, and runs products on burn-flex's matrix kernel. Each
//! operation here is one node instead, whose forward and backward passes run on the blocked
//! product of [`gemm`] and on fused element-wise loops:
//!
//! - [`product`]: `A · B` or `A · Bᵀ` (linear layers, the tied head): three products of
//!   [`gemm`], the gradients read the operands through transposed views without copying them;
//! - [`log_softmax_pick`]: picked log-probabilities from logits, whose backward pass writes
//!   `g · (onehot − softmax)` directly, without the log-softmax matrix;
//! - [`attention`]: causal attention (with dropout on the weights for CAREER), whose backward
//!   pass recomputes the probabilities block by block from the saved log-sum-exps;
//! - [`silu_mul`], [`rms_norm`], [`rope`], [`gelu`], [`dropout`]: SwiGLU's gate, RMSNorm, the
//!   rotary embedding, the exact GELU and dropout (its mask hashed, never stored), one pass
//!   each way.
//!
//! Each takes tensors on the autodiff flex device (`f32`) and returns `None` for anything else,
//! where the caller takes burn's own operations. The gradients agree with burn's up to rounding
//! (`tests::gradients_agree_with_burn`).

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, BackendTypes, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

use crate::attention as kernels;
use crate::dropout::splitmix64;
use crate::exp::exp_in_place;
use crate::gemm;
use crate::host::{CHUNK, active, array4};
use crate::kernels::{attention_shapes_fit, row_log_sum_exps, silu_mul_into};
use crate::rope::RopeTables;

type Ad = Autodiff<Flex>;
type AdTensor = <Ad as BackendTypes>::FloatTensorPrimitive;

/// The autodiff primitive of `t`, where it is an `f32` tensor on the autodiff flex device and
/// the kernels are on.
pub(super) fn tracked<const D: usize>(t: &Tensor<D>) -> Option<AdTensor> {
    if !active() {
        return None;
    }
    let a = t.clone().try_into_primitive::<Ad>().ok()?;
    let f = a.primitive();
    (f.dtype() == DType::F32 && f.layout().has_positive_strides()).then_some(a)
}

/// `f` with its elements in row-major order from the start of a buffer (a copy where they are
/// not).
pub(super) fn dense(f: &FlexTensor) -> FlexTensor {
    if f.is_contiguous() && f.layout().start_offset() == 0 {
        f.clone()
    } else {
        f.to_contiguous()
    }
}

/// The values of a [`dense`] tensor.
pub(super) fn values(f: &FlexTensor) -> &[f32] {
    &f.storage::<f32>()[..f.layout().shape().num_elements()]
}

/// A flex tensor of `shape` holding `v`.
pub(super) fn flex(v: Vec<f32>, shape: &[usize]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape.to_vec()))
}

/// The gradient of the output of the node of `ops`, dense.
pub(super) fn incoming<S, const N: usize>(grads: &mut Gradients, ops: &Ops<S, N>) -> FlexTensor {
    dense(&grads.consume::<Flex>(&ops.node))
}

/// Records `op` as the node computing `out` from `inputs`; `state` (what its backward pass
/// needs) is built only where some input is tracked.
pub(super) fn record<const N: usize, O: Backward<Flex, N>>(
    op: O,
    inputs: [&AdTensor; N],
    state: impl FnOnce() -> O::State,
    out: FlexTensor,
) -> AdTensor {
    match op
        .prepare::<NoCheckpointing>(inputs.map(AdTensor::node))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state(), out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

pub(super) fn wrap<const D: usize>(t: AdTensor) -> Tensor<D> {
    Tensor::from_primitive::<Ad>(t)
}

/// `A · B` (`transposed` false, `B`: `[k, n]`) or `A · Bᵀ` (`transposed`, `B`: `[n, k]`) over
/// the last dimension of `A`.
///
/// # Shapes
/// - a: `[..., k]`
/// - b: `[k, n]`, or `[n, k]` when `transposed`
/// - output: `[..., n]`
pub(crate) fn product<const D: usize>(
    a: &Tensor<D>,
    b: &Tensor<2>,
    transposed: bool,
) -> Option<Tensor<D>> {
    let (at, bt) = (tracked(a)?, tracked(b)?);
    let mut dims = a.dims();
    let k = dims[D - 1];
    let [r, c] = b.dims();
    let n = if transposed { r } else { c };
    if (if transposed { c } else { r }) != k || k == 0 {
        return None;
    }
    let m = dims.iter().product::<usize>() / k;
    let (af, bf) = (dense(at.primitive()), dense(bt.primitive()));
    let (a_tracked, b_tracked) = (at.is_tracked(), bt.is_tracked());
    let mut out = vec![0.0f32; m * n];
    let a_view = gemm::View {
        data: values(&af),
        rs: k,
        cs: 1,
    };
    let b_view = right(values(&bf), transposed, n, k);
    gemm::sgemm([m, n, k], a_view, b_view, &mut out, n, true).then_some(())?;
    let a_shape = dims.to_vec();
    dims[D - 1] = n;
    let out = record(
        Product,
        [&at, &bt],
        || ProductState {
            a: b_tracked.then_some(af),
            b: a_tracked.then_some(bf),
            a_shape,
            transposed,
            mnk: [m, n, k],
        },
        flex(out, &dims),
    );
    Some(wrap(out))
}

/// The view `k × n` of the right operand of [`product`] over the dense values `b`.
fn right(b: &[f32], transposed: bool, n: usize, k: usize) -> gemm::View<'_> {
    if transposed {
        gemm::View {
            data: b,
            rs: 1,
            cs: k,
        }
    } else {
        gemm::View {
            data: b,
            rs: n,
            cs: 1,
        }
    }
}

#[derive(Debug)]
struct Product;

#[derive(Debug, Clone)]
struct ProductState {
    /// The left operand, dense, where `B` is tracked.
    a: Option<FlexTensor>,
    /// The right operand, dense, where `A` is tracked.
    b: Option<FlexTensor>,
    a_shape: Vec<usize>,
    transposed: bool,
    mnk: [usize; 3],
}

impl Backward<Flex, 2> for Product {
    type State = ProductState;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let s = ops.state;
        let [m, n, k] = s.mnk;
        let gv = values(&g);
        let [pa, pb] = ops.parents;
        if let (Some(node), Some(b)) = (pa, &s.b) {
            // dA = G · op(B)ᵀ: op(B)ᵀ is the transposed view of op(B).
            let v = right(values(b), s.transposed, n, k);
            let mut da = vec![0.0f32; m * k];
            let bt = gemm::View {
                data: v.data,
                rs: v.cs,
                cs: v.rs,
            };
            let g_v = gemm::View {
                data: gv,
                rs: n,
                cs: 1,
            };
            gemm::sgemm([m, k, n], g_v, bt, &mut da, k, true);
            grads.register::<Flex>(node.id, flex(da, &s.a_shape));
        }
        if let (Some(node), Some(a)) = (pb, &s.a) {
            let av = values(a);
            let mut db = vec![0.0f32; k * n];
            if s.transposed {
                // d(B)[n, k] = Gᵀ · A.
                let (g_t, a_v) = (
                    gemm::View {
                        data: gv,
                        rs: 1,
                        cs: n,
                    },
                    gemm::View {
                        data: av,
                        rs: k,
                        cs: 1,
                    },
                );
                gemm::sgemm([n, k, m], g_t, a_v, &mut db, k, true);
                grads.register::<Flex>(node.id, flex(db, &[n, k]));
            } else {
                // d(B)[k, n] = Aᵀ · G.
                let (a_t, g_v) = (
                    gemm::View {
                        data: av,
                        rs: 1,
                        cs: k,
                    },
                    gemm::View {
                        data: gv,
                        rs: n,
                        cs: 1,
                    },
                );
                gemm::sgemm([k, n, m], a_t, g_v, &mut db, n, true);
                grads.register::<Flex>(node.id, flex(db, &[k, n]));
            }
        }
    }
}

/// `log softmax(logits[row])[token]` for every `(row, token)` of `picks`, as a tensor of
/// `shape` (row-major over the picks).
///
/// # Shapes
/// - logits: `[rows, vocab]`
/// - output: `shape`, whose size is `picks.len()`
pub(crate) fn log_softmax_pick(
    logits: &Tensor<2>,
    picks: &[(usize, u32)],
    shape: [usize; 2],
) -> Option<Tensor<2>> {
    let lt = tracked(logits)?;
    let [rows, vocab] = logits.dims();
    if shape[0] * shape[1] != picks.len()
        || picks.iter().any(|&(r, t)| r >= rows || t as usize >= vocab)
    {
        return None;
    }
    let lf = dense(lt.primitive());
    let x = values(&lf);
    let lse = row_log_sum_exps(x, rows, vocab, picks);
    let out: Vec<f32> = picks
        .iter()
        .map(|&(r, t)| x[r * vocab + t as usize] - lse[r])
        .collect();
    let out = record(
        Pick,
        [&lt],
        || PickState {
            logits: lf,
            lse: Arc::new(lse),
            picks: Arc::new(picks.to_vec()),
            vocab,
        },
        flex(out, &shape),
    );
    Some(wrap(out))
}

#[derive(Debug)]
struct Pick;

#[derive(Debug, Clone)]
struct PickState {
    logits: FlexTensor,
    lse: Arc<Vec<f32>>,
    picks: Arc<Vec<(usize, u32)>>,
    vocab: usize,
}

impl Backward<Flex, 1> for Pick {
    type State = PickState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let s = ops.state;
        let [Some(node)] = ops.parents else {
            return;
        };
        let (gv, x, v) = (values(&g), values(&s.logits), s.vocab);
        let rows = x.len() / v.max(1);
        // Per row: the sum of its picks' gradients (the softmax's weight) and the picks.
        let mut weight = vec![0.0f32; rows];
        for (&(r, _), gi) in s.picks.iter().zip(gv) {
            weight[r] += gi;
        }
        let mut dx = vec![0.0f32; rows * v];
        dx.par_chunks_mut(v).enumerate().for_each(|(r, row)| {
            if weight[r] == 0.0 {
                return;
            }
            // −w · softmax(x) = −w · e^(x − lse).
            let lse = s.lse[r];
            for (d, xi) in row.iter_mut().zip(&x[r * v..(r + 1) * v]) {
                *d = xi - lse;
            }
            exp_in_place(row);
            let w = weight[r];
            for d in row.iter_mut() {
                *d *= -w;
            }
        });
        for (&(r, t), gi) in s.picks.iter().zip(gv) {
            dx[r * v + t as usize] += gi;
        }
        grads.register::<Flex>(node.id, flex(dx, &[rows, v]));
    }
}

/// `silu(gate) · up`, elementwise.
///
/// # Shapes
/// - gate, up: the same shape
/// - output: that shape
pub(crate) fn silu_mul<const D: usize>(gate: &Tensor<D>, up: &Tensor<D>) -> Option<Tensor<D>> {
    let (gt, ut) = (tracked(gate)?, tracked(up)?);
    let dims = gate.dims();
    if up.dims() != dims {
        return None;
    }
    let (gf, uf) = (dense(gt.primitive()), dense(ut.primitive()));
    let mut out = vec![0.0f32; values(&gf).len()];
    silu_mul_into(values(&gf), values(&uf), &mut out);
    let out = record(
        SiluMul,
        [&gt, &ut],
        || (gf, uf, dims.to_vec()),
        flex(out, &dims),
    );
    Some(wrap(out))
}

#[derive(Debug)]
struct SiluMul;

impl Backward<Flex, 2> for SiluMul {
    type State = (FlexTensor, FlexTensor, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let d = incoming(grads, &ops);
        let (gf, uf, shape) = ops.state;
        let (g, u, dv) = (values(&gf), values(&uf), values(&d));
        let n = g.len();
        let [pg, pu] = ops.parents;
        // With s = σ(g): d/dg [g s] = s (1 + g (1 − s)).
        let mut dg = vec![0.0f32; n];
        let mut du = vec![0.0f32; n];
        dg.par_chunks_mut(CHUNK)
            .zip(du.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK).zip(u.par_chunks(CHUNK)))
            .zip(dv.par_chunks(CHUNK))
            .for_each(|(((dg, du), (g, u)), dv)| {
                for (s, x) in du.iter_mut().zip(g) {
                    *s = -x;
                }
                exp_in_place(du);
                for j in 0..g.len() {
                    let s = 1.0 / (1.0 + du[j]);
                    dg[j] = dv[j] * u[j] * s * (1.0 + g[j] * (1.0 - s));
                    du[j] = dv[j] * g[j] * s;
                }
            });
        if let Some(node) = pg {
            grads.register::<Flex>(node.id, flex(dg, &shape));
        }
        if let Some(node) = pu {
            grads.register::<Flex>(node.id, flex(du, &shape));
        }
    }
}

/// Inverted dropout: each element kept with probability `1 − prob` and then scaled by
/// `1 / (1 − prob)`. The mask comes from a counter-based hash of `seed` and each element's
/// index, so the backward pass recomputes it instead of storing it.
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub(crate) fn dropout<const D: usize>(x: &Tensor<D>, prob: f64, seed: u64) -> Option<Tensor<D>> {
    let xt = tracked(x)?;
    if !(prob > 0.0 && prob < 1.0) {
        return None;
    }
    let dims = x.dims();
    let xf = dense(xt.primitive());
    let out = masked(values(&xf), prob, seed);
    let out = record(
        Dropout,
        [&xt],
        || (prob, seed, dims.to_vec()),
        flex(out, &dims),
    );
    Some(wrap(out))
}

#[derive(Debug)]
struct Dropout;

impl Backward<Flex, 1> for Dropout {
    type State = (f64, u64, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let (prob, seed, shape) = ops.state;
        if let [Some(node)] = ops.parents {
            grads.register::<Flex>(node.id, flex(masked(values(&g), prob, seed), &shape));
        }
    }
}

/// `x` with dropout's mask of `seed` and its scale applied: element `i` is kept where the
/// 32-bit half `i mod 2` of `splitmix64(seed + ⌊i / 2⌋)` is at least `prob · 2³²`.
fn masked(x: &[f32], prob: f64, seed: u64) -> Vec<f32> {
    let threshold = (prob * 4_294_967_296.0) as u64;
    let scale = (1.0 / (1.0 - prob)) as f32;
    let mut out = vec![0.0f32; x.len()];
    out.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .enumerate()
        .for_each(|(c, (o, x))| {
            let base = (c * CHUNK / 2) as u64;
            for (j, (o, x)) in o.chunks_mut(2).zip(x.chunks(2)).enumerate() {
                let h = splitmix64(seed.wrapping_add(base + j as u64));
                for (k, (o, x)) in o.iter_mut().zip(x).enumerate() {
                    let draw = (h >> (32 * k)) & 0xffff_ffff;
                    *o = if draw >= threshold { x * scale } else { 0.0 };
                }
            }
        });
    out
}

/// The exact GELU, `x Φ(x)`, elementwise.
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub(crate) fn gelu<const D: usize>(x: &Tensor<D>) -> Option<Tensor<D>> {
    let xt = tracked(x)?;
    let dims = x.dims();
    let xf = dense(xt.primitive());
    let mut out = vec![0.0f32; values(&xf).len()];
    out.par_chunks_mut(CHUNK)
        .zip(values(&xf).par_chunks(CHUNK))
        .for_each(|(o, x)| gelu_into(x, o, None));
    let out = record(Gelu, [&xt], || (xf, dims.to_vec()), flex(out, &dims));
    Some(wrap(out))
}

#[derive(Debug)]
struct Gelu;

impl Backward<Flex, 1> for Gelu {
    type State = (FlexTensor, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let (xf, shape) = ops.state;
        let [Some(node)] = ops.parents else {
            return;
        };
        let mut dx = vec![0.0f32; values(&xf).len()];
        dx.par_chunks_mut(CHUNK)
            .zip(
                values(&xf)
                    .par_chunks(CHUNK)
                    .zip(values(&g).par_chunks(CHUNK)),
            )
            .for_each(|(d, (x, g))| {
                let mut slope = vec![0.0f32; x.len()];
                gelu_into(x, d, Some(&mut slope));
                for ((d, s), g) in d.iter_mut().zip(&slope).zip(g) {
                    *d = s * g;
                }
            });
        grads.register::<Flex>(node.id, flex(dx, &shape));
    }
}

/// `out ← gelu(x) = x Φ(x)` and, with `slope`, `slope ← gelu'(x) = Φ(x) + x φ(x)`, with
/// `Φ(x) = (1 + erf(x / √2)) / 2` from the rational approximation of erf of Abramowitz and
/// Stegun (7.1.26, absolute error below 1.5e-7) and the vectorised `exp`.
pub(super) fn gelu_into(x: &[f32], out: &mut [f32], slope: Option<&mut [f32]>) {
    // out ← e^(−x²/2) first.
    for (o, v) in out.iter_mut().zip(x) {
        *o = -0.5 * v * v;
    }
    exp_in_place(out);
    #[cfg(target_arch = "x86_64")]
    if gemm::available() {
        // SAFETY: the CPU has AVX2 and FMA.
        unsafe { gelu_from_gaussian_avx2(x, out, slope) };
        return;
    }
    gelu_from_gaussian(x, out, slope);
}

/// [`gelu_from_gaussian`] compiled for AVX2 and FMA, so that its loops run on 8 lanes.
///
/// # Safety
/// The CPU must have AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_from_gaussian_avx2(x: &[f32], out: &mut [f32], slope: Option<&mut [f32]>) {
    gelu_from_gaussian(x, out, slope);
}

/// The rest of [`gelu_into`], with `out` holding `e^(−x²/2)`: branch-free loops that the
/// compiler vectorises.
#[inline(always)]
fn gelu_from_gaussian(x: &[f32], out: &mut [f32], slope: Option<&mut [f32]>) {
    const P: f32 = 0.327_591_1 * std::f32::consts::FRAC_1_SQRT_2;
    const A: [f32; 5] = [
        0.254_829_6,
        -0.284_496_74,
        1.421_413_8,
        -1.453_152_1,
        1.061_405_4,
    ];
    let cdf = |v: f32, e: f32| {
        let t = 1.0 / (1.0 + P * v.abs());
        let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
        0.5 * (1.0 + (1.0 - poly * e).copysign(v))
    };
    let inv_sqrt_2pi = 1.0 / (2.0 * std::f32::consts::PI).sqrt();
    match slope {
        Some(slope) => {
            for ((o, s), &v) in out.iter_mut().zip(slope.iter_mut()).zip(x) {
                let e = *o;
                let c = cdf(v, e);
                *o = v * c;
                *s = c + v * e * inv_sqrt_2pi;
            }
        }
        None => {
            for (o, &v) in out.iter_mut().zip(x) {
                *o = v * cdf(v, *o);
            }
        }
    }
}

/// RMSNorm over the last dimension: `x / √(mean(x²) + ε) · γ`.
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
    let (xt, gt) = (tracked(x)?, tracked(gamma)?);
    let dims = x.dims();
    let d = dims[D - 1];
    if gamma.dims()[0] != d || d == 0 {
        return None;
    }
    let (xf, gf) = (dense(xt.primitive()), dense(gt.primitive()));
    let (xv, gv) = (values(&xf), values(&gf));
    let mut out = vec![0.0f32; xv.len()];
    let mut inv = vec![0.0f32; xv.len() / d];
    out.par_chunks_mut(d)
        .zip(inv.par_iter_mut())
        .zip(xv.par_chunks(d))
        .for_each(|((o, r), x)| {
            *r = crate::kernels::rms_row(x, gv, epsilon, o);
        });
    let out = record(
        RmsNormOp,
        [&xt, &gt],
        || (xf, gf, Arc::new(inv), dims.to_vec()),
        flex(out, &dims),
    );
    Some(wrap(out))
}

#[derive(Debug)]
struct RmsNormOp;

impl Backward<Flex, 2> for RmsNormOp {
    /// The input, γ, each row's `1 / rms`, and the input's shape.
    type State = (FlexTensor, FlexTensor, Arc<Vec<f32>>, Vec<usize>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = incoming(grads, &ops);
        let (xf, gf, inv, shape) = ops.state;
        let (x, gamma, dy) = (values(&xf), values(&gf), values(&dy));
        let d = gamma.len();
        let [px, pg] = ops.parents;
        if let Some(node) = px {
            // dx = r (γ ⊙ dy − x r² mean(γ ⊙ dy ⊙ x)).
            let mut dx = vec![0.0f32; x.len()];
            dx.par_chunks_mut(d)
                .zip(x.par_chunks(d).zip(dy.par_chunks(d)))
                .zip(inv.par_iter())
                .for_each(|((o, (x, dy)), &r)| {
                    let dot: f32 = x
                        .iter()
                        .zip(dy)
                        .zip(gamma)
                        .map(|((a, b), c)| a * b * c)
                        .sum();
                    let c = r * r * dot / d as f32;
                    for j in 0..d {
                        o[j] = r * (gamma[j] * dy[j] - x[j] * c);
                    }
                });
            grads.register::<Flex>(node.id, flex(dx, &shape));
        }
        if let Some(node) = pg {
            // dγ = Σ over rows of dy ⊙ x r: per block of rows in parallel, then the blocks'
            // sums in their order (the same rounding on every run, however rayon splits).
            let rows_per = 64;
            let partial: Vec<Vec<f32>> = x
                .par_chunks(d * rows_per)
                .zip(dy.par_chunks(d * rows_per))
                .zip(inv.par_chunks(rows_per))
                .map(|((x, dy), inv)| {
                    let mut acc = vec![0.0f32; d];
                    for ((x, dy), &r) in x.chunks(d).zip(dy.chunks(d)).zip(inv) {
                        for j in 0..d {
                            acc[j] += dy[j] * x[j] * r;
                        }
                    }
                    acc
                })
                .collect();
            let mut dgamma = vec![0.0f32; d];
            for p in &partial {
                for (a, b) in dgamma.iter_mut().zip(p) {
                    *a += b;
                }
            }
            grads.register::<Flex>(node.id, flex(dgamma, &[d]));
        }
    }
}

/// Causal attention (`softmax(q kᵀ / √d) v`, query `i` seeing keys up to `t − s + i`), with
/// key/value heads shared among their query heads and, with `drop`, dropout on the weights.
///
/// # Shapes
/// - q: `[batch, heads, seq, head_dim]`
/// - k, v: `[batch, kv_heads, past + seq, head_dim]`, `heads` a multiple of `kv_heads`
/// - output: `[batch, seq, heads * head_dim]`
pub(crate) fn attention(
    q: &Tensor<4>,
    k: &Tensor<4>,
    v: &Tensor<4>,
    drop: Option<kernels::WeightDropout>,
) -> Option<Tensor<3>> {
    let (qt, kt, vt) = (tracked(q)?, tracked(k)?, tracked(v)?);
    if !attention_shapes_fit(q, k, v) {
        return None;
    }
    let [b, h, s, d] = q.dims();
    let [_, kvh, t, _] = k.dims();
    let (qf, kf, vf) = (
        qt.primitive().clone(),
        kt.primitive().clone(),
        vt.primitive().clone(),
    );
    let (out, lse) = kernels::attention(
        array4(&qf, q.dims()),
        array4(&kf, k.dims()),
        array4(&vf, v.dims()),
        None,
        drop,
    )?;
    // The backward pass reads the output too: the state shares its buffer.
    let out = flex(out, &[b, s, h * d]);
    let saved = out.clone();
    let out = record(
        Attention,
        [&qt, &kt, &vt],
        || AttentionState {
            q: qf,
            k: kf,
            v: vf,
            out: saved,
            lse: Arc::new(lse),
            shapes: [[b, h, s, d], [b, kvh, t, d]],
            drop,
        },
        out,
    );
    Some(wrap(out))
}

#[derive(Debug)]
struct Attention;

#[derive(Debug, Clone)]
struct AttentionState {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// The output, `[b, s, h · d]`.
    out: FlexTensor,
    /// Log-sum-exp of each row of scaled scores, `[b, h, s]`.
    lse: Arc<Vec<f32>>,
    /// Shapes of `q` and of `k` (and `v`).
    shapes: [[usize; 4]; 2],
    /// Dropout on the weights, if any.
    drop: Option<kernels::WeightDropout>,
}

impl Backward<Flex, 3> for Attention {
    type State = AttentionState;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let st = ops.state;
        let [qs, ks] = st.shapes;
        let (dq, dk, dv) = kernels::attention_backward(
            array4(&st.q, qs),
            array4(&st.k, ks),
            array4(&st.v, ks),
            values(&st.out),
            &st.lse,
            values(&g),
            st.drop,
        );
        let [pq, pk, pv] = ops.parents;
        for (parent, grad, shape) in [(pq, dq, qs), (pk, dk, ks), (pv, dv, ks)] {
            if let Some(node) = parent {
                grads.register::<Flex>(node.id, flex(grad, &shape));
            }
        }
    }
}

/// Rotate-half RoPE on every head of `x`.
///
/// # Shapes
/// - x: `[batch, seq, heads * head_dim]`
/// - output: like `x`
pub(crate) fn rope(x: &Tensor<3>, tables: &RopeTables) -> Option<Tensor<3>> {
    let xt = tracked(x)?;
    let [b, s, n] = x.dims();
    if !tables.fits(b, s, n) {
        return None;
    }
    let mut out = values(&dense(xt.primitive())).to_vec();
    tables.rotate(&mut out, s, n, false);
    let tables = Arc::new(tables.clone());
    let out = record(Rope, [&xt], || tables, flex(out, &[b, s, n]));
    Some(wrap(out))
}

#[derive(Debug)]
struct Rope;

impl Backward<Flex, 1> for Rope {
    type State = Arc<RopeTables>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let [Some(node)] = ops.parents else {
            return;
        };
        let shape = g.layout().shape().to_vec();
        let (s, n) = (shape[1], shape[2]);
        // The rotation is orthogonal: its gradient is the rotation by the opposite angle.
        let mut dx = values(&g).to_vec();
        ops.state.rotate(&mut dx, s, n, true);
        grads.register::<Flex>(node.id, flex(dx, &shape));
    }
}

#[cfg(test)]
mod tests {
    use super::dropout;
    use crate::test_util::values;
    use crate::{enabled, with_burn_ops as without};
    use burn::tensor::{Device, Tensor};

    #[test]
    fn gelu_and_its_gradient_agree_with_burn() {
        if !enabled() {
            eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
            return;
        }
        let device = Device::default().autodiff();
        // Both tails, zero, and the range between, with uneven upstream weights.
        let xs: Vec<f32> = (0..4099).map(|i| (i as f32 - 2049.0) / 180.0).collect();
        let ws: Vec<f32> = (0..4099)
            .map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0)
            .collect();
        let run = || {
            let x = Tensor::<1>::from_floats(xs.as_slice(), &device)
                .reshape([1, 4099])
                .require_grad();
            let w = Tensor::<1>::from_floats(ws.as_slice(), &device).reshape([1, 4099]);
            let y = crate::kernels::gelu(&x)
                .unwrap_or_else(|| burn::tensor::activation::gelu(x.clone()));
            let grads = (y.clone() * w).sum().backward();
            (values(y), values(x.grad(&grads).expect("a gradient")))
        };
        let (y_fast, g_fast) = run();
        let (y_slow, g_slow) = without(run);
        let dy = y_fast
            .iter()
            .zip(&y_slow)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let dg = g_fast
            .iter()
            .zip(&g_slow)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        assert!(dy < 2e-6 * 12.0, "gelu differs by {dy}");
        assert!(dg < 2e-6 * 4.0, "its gradient differs by {dg}");
    }

    #[test]
    fn dropout_keeps_the_share_it_should_and_its_gradient_uses_the_same_mask() {
        if !enabled() {
            eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
            return;
        }
        let device = Device::default().autodiff();
        let n = 100_003;
        let xs: Vec<f32> = (0..n).map(|i| 1.0 + (i % 13) as f32).collect();
        let run = |seed: u64| {
            let x = Tensor::<1>::from_floats(xs.as_slice(), &device).require_grad();
            let y = dropout(&x, 0.1, seed).expect("a tracked f32 tensor");
            let grads = (y.clone() * 3.0).sum().backward();
            (values(y), values(x.grad(&grads).expect("a gradient")))
        };
        let (y, g) = run(7);
        let dropped = y.iter().filter(|v| **v == 0.0).count() as f64 / n as f64;
        // 0.1 give or take five standard deviations of a binomial share (0.0047).
        assert!((dropped - 0.1).abs() < 0.0047, "dropped {dropped}");
        for ((y, g), x) in y.iter().zip(&g).zip(&xs) {
            let kept = *y != 0.0;
            let want_y = if kept { x / 0.9 } else { 0.0 };
            let want_g = if kept { 3.0 / 0.9 } else { 0.0 };
            assert!((y - want_y).abs() <= 1e-6 * want_y.abs(), "{y} vs {want_y}");
            assert!((g - want_g).abs() <= 1e-6, "{g} vs {want_g}");
        }
        assert_eq!(run(7).0, y, "a seed gives one mask");
        assert_ne!(run(8).0, y, "another seed another");
    }
}
