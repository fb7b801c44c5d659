//! Training nodes for the sequence models of [`crate::seq`] (CAREER and its kin): LayerNorm,
//! a linear layer's bias, the logit clamp and the two-stage loss, each one node of burn's
//! autodiff graph whose backward pass reads its tensors once or twice.
//!
//! burn writes LayerNorm as about eight operations, a bias as a broadcast addition, the clamp
//! as two comparisons and two masked fills, and the two-stage loss of
//! [`two_stage_log_probs`](crate::seq::two_stage_log_probs) as a dozen passes over the
//! `[batch, len, states]` matrix, each with its own node and fresh tensors in both directions.
//! On CAREER's small configuration those passes, not the products, took most of a training
//! step.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use rayon::prelude::*;

use crate::exp::{exp_in_place, log_sum_exp};
use crate::grad::{dense, flex, incoming, record, tracked, values, wrap};
use crate::host::CHUNK;

/// Rows per parallel task of the row-wise kernels here.
const ROWS: usize = 64;

/// Column sums of the `[rows, d]` matrix `g`: per block of rows in parallel, then the blocks'
/// sums in their order (the same rounding on every run, however rayon splits the work).
fn column_sums(g: &[f32], d: usize) -> Vec<f32> {
    column_sums_of(g.len() / d.max(1), d, |r, acc| {
        for (a, v) in acc.iter_mut().zip(&g[r * d..(r + 1) * d]) {
            *a += v;
        }
    })
}

/// Sums over rows of what `add(row, acc)` adds to a `d`-vector, in the fixed order of
/// [`column_sums`].
fn column_sums_of(rows: usize, d: usize, add: impl Fn(usize, &mut [f32]) + Sync) -> Vec<f32> {
    let blocks: Vec<Vec<f32>> = (0..rows.div_ceil(ROWS))
        .into_par_iter()
        .map(|blk| {
            let mut acc = vec![0.0f32; d];
            for r in blk * ROWS..((blk + 1) * ROWS).min(rows) {
                add(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut out = vec![0.0f32; d];
    for b in &blocks {
        for (o, v) in out.iter_mut().zip(b) {
            *o += v;
        }
    }
    out
}

/// LayerNorm over the last dimension: `(x − mean) / √(var + ε) · γ + β`, the variance the
/// biased one (as PyTorch and burn).
///
/// # Shapes
/// - x: `[..., d]`
/// - gamma, beta: `[d]`
/// - output: like `x`
pub(crate) fn layer_norm<const D: usize>(
    x: &Tensor<D>,
    gamma: &Tensor<1>,
    beta: Option<&Tensor<1>>,
    epsilon: f64,
) -> Option<Tensor<D>> {
    let (xt, gt) = (tracked(x)?, tracked(gamma)?);
    let bt = match beta {
        Some(b) => Some(tracked(b)?),
        None => None,
    };
    let dims = x.dims();
    let d = dims[D - 1];
    if d == 0 || gamma.dims()[0] != d || beta.is_some_and(|b| b.dims()[0] != d) {
        return None;
    }
    let (xf, gf) = (dense(xt.primitive()), dense(gt.primitive()));
    let bf = bt.as_ref().map(|b| dense(b.primitive()));
    let (xv, gv) = (values(&xf), values(&gf));
    let bv = bf.as_ref().map(values);
    let rows = xv.len() / d;
    // The normalised input x̂ is kept for the backward pass, with each row's 1/σ.
    let mut norm = vec![0.0f32; xv.len()];
    let mut out = vec![0.0f32; xv.len()];
    let mut inv = vec![0.0f32; rows];
    norm.par_chunks_mut(d * ROWS)
        .zip(out.par_chunks_mut(d * ROWS))
        .zip(inv.par_chunks_mut(ROWS))
        .zip(xv.par_chunks(d * ROWS))
        .for_each(|(((n, o), r), x)| {
            for (((n, o), r), x) in n
                .chunks_mut(d)
                .zip(o.chunks_mut(d))
                .zip(r.iter_mut())
                .zip(x.chunks(d))
            {
                let mean = x.iter().sum::<f32>() / d as f32;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / d as f32;
                *r = (1.0 / (f64::from(var) + epsilon).sqrt()) as f32;
                for j in 0..d {
                    n[j] = (x[j] - mean) * *r;
                    o[j] = n[j] * gv[j] + bv.map_or(0.0, |b| b[j]);
                }
            }
        });
    let shape = dims.to_vec();
    let out = match &bt {
        Some(bt) => record(
            LayerNorm::<3>,
            [&xt, &gt, bt],
            || layer_norm_state(norm, inv, gf, shape),
            flex(out, &dims),
        ),
        None => record(
            LayerNorm::<2>,
            [&xt, &gt],
            || layer_norm_state(norm, inv, gf, shape),
            flex(out, &dims),
        ),
    };
    Some(wrap(out))
}

fn layer_norm_state(
    norm: Vec<f32>,
    inv: Vec<f32>,
    gamma: FlexTensor,
    shape: Vec<usize>,
) -> LayerNormState {
    LayerNormState {
        norm: Arc::new(norm),
        inv: Arc::new(inv),
        gamma,
        shape,
    }
}

/// LayerNorm with (`N` = 3) or without (`N` = 2) its bias.
#[derive(Debug)]
struct LayerNorm<const N: usize>;

#[derive(Debug, Clone)]
struct LayerNormState {
    /// The normalised input `x̂`.
    norm: Arc<Vec<f32>>,
    /// Each row's `1 / σ`.
    inv: Arc<Vec<f32>>,
    gamma: FlexTensor,
    shape: Vec<usize>,
}

impl<const N: usize> Backward<Flex, N> for LayerNorm<N> {
    type State = LayerNormState;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = incoming(grads, &ops);
        let s = ops.state;
        let (dy, norm, gamma) = (values(&dy), &s.norm[..], values(&s.gamma));
        let d = gamma.len();
        let parents = ops.parents;
        if let Some(node) = &parents[0] {
            // dx = (1/σ) (γ⊙dy − mean(γ⊙dy) − x̂ mean(γ⊙dy⊙x̂)).
            let mut dx = vec![0.0f32; dy.len()];
            dx.par_chunks_mut(d * ROWS)
                .zip(dy.par_chunks(d * ROWS))
                .zip(norm.par_chunks(d * ROWS))
                .zip(s.inv.par_chunks(ROWS))
                .for_each(|(((o, dy), n), inv)| {
                    for (((o, dy), n), &r) in
                        o.chunks_mut(d).zip(dy.chunks(d)).zip(n.chunks(d)).zip(inv)
                    {
                        let (mut a, mut b) = (0.0f32, 0.0f32);
                        for j in 0..d {
                            let gd = gamma[j] * dy[j];
                            a += gd;
                            b += gd * n[j];
                        }
                        let (a, b) = (a / d as f32, b / d as f32);
                        for j in 0..d {
                            o[j] = r * (gamma[j] * dy[j] - a - n[j] * b);
                        }
                    }
                });
            grads.register::<Flex>(node.id, flex(dx, &s.shape));
        }
        if let Some(node) = &parents[1] {
            // dγ = Σ over rows of dy ⊙ x̂.
            let dgamma = column_sums_of(dy.len() / d, d, |r, acc| {
                let (dy, n) = (&dy[r * d..(r + 1) * d], &norm[r * d..(r + 1) * d]);
                for j in 0..d {
                    acc[j] += dy[j] * n[j];
                }
            });
            grads.register::<Flex>(node.id, flex(dgamma, &[d]));
        }
        if N == 3
            && let Some(node) = &parents[N - 1]
        {
            grads.register::<Flex>(node.id, flex(column_sums(dy, d), &[d]));
        }
    }
}

/// Adds `bias` to every row of `y` (the output of a product node) as one node: the gradient
/// passes through to `y` unchanged, and the bias's is the column sums of the incoming one.
///
/// # Shapes
/// - y: `[..., n]`
/// - bias: `[n]`
/// - output: like `y`
pub(crate) fn add_bias<const D: usize>(y: &Tensor<D>, bias: &Tensor<1>) -> Option<Tensor<D>> {
    let (yt, bt) = (tracked(y)?, tracked(bias)?);
    let dims = y.dims();
    let n = dims[D - 1];
    if bias.dims()[0] != n || n == 0 {
        return None;
    }
    let (bf, yf) = (dense(bt.primitive()), dense(yt.primitive()));
    let bv = values(&bf);
    // One parallel pass from `y` (a copy first would be a serial pass of its own).
    let mut out = vec![0.0f32; values(&yf).len()];
    out.par_chunks_mut(n * ROWS)
        .zip(values(&yf).par_chunks(n * ROWS))
        .for_each(|(o, y)| {
            for (o, y) in o.chunks_mut(n).zip(y.chunks(n)) {
                for ((o, y), b) in o.iter_mut().zip(y).zip(bv) {
                    *o = y + b;
                }
            }
        });
    let out = record(AddBias, [&yt, &bt], || dims.to_vec(), flex(out, &dims));
    Some(wrap(out))
}

#[derive(Debug)]
struct AddBias;

impl Backward<Flex, 2> for AddBias {
    type State = Vec<usize>;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let shape = ops.state;
        let n = shape[shape.len() - 1];
        let [py, pb] = ops.parents;
        if let Some(node) = pb {
            grads.register::<Flex>(node.id, flex(column_sums(values(&g), n), &[n]));
        }
        if let Some(node) = py {
            grads.register::<Flex>(node.id, g);
        }
    }
}

/// `x` clamped to `[lo, hi]`; the gradient passes where `lo ≤ x ≤ hi` and is zero elsewhere,
/// as in burn's clamp.
///
/// # Shapes
/// - x: any
/// - output: like `x`
pub(crate) fn clamp<const D: usize>(x: &Tensor<D>, lo: f32, hi: f32) -> Option<Tensor<D>> {
    let xt = tracked(x)?;
    let dims = x.dims();
    let xf = dense(xt.primitive());
    let mut out = vec![0.0f32; values(&xf).len()];
    out.par_chunks_mut(CHUNK)
        .zip(values(&xf).par_chunks(CHUNK))
        .for_each(|(o, x)| {
            for (o, x) in o.iter_mut().zip(x) {
                *o = x.clamp(lo, hi);
            }
        });
    let out = record(Clamp, [&xt], || (xf, lo, hi), flex(out, &dims));
    Some(wrap(out))
}

#[derive(Debug)]
struct Clamp;

impl Backward<Flex, 1> for Clamp {
    type State = (FlexTensor, f32, f32);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let (xf, lo, hi) = ops.state;
        let [Some(node)] = ops.parents else {
            return;
        };
        let shape = g.layout().shape().to_vec();
        let mut dx = vec![0.0f32; values(&g).len()];
        dx.par_chunks_mut(CHUNK)
            .zip(values(&xf).par_chunks(CHUNK))
            .zip(values(&g).par_chunks(CHUNK))
            .for_each(|((d, x), g)| {
                for ((d, x), g) in d.iter_mut().zip(x).zip(g) {
                    if (lo..=hi).contains(x) {
                        *d = *g;
                    }
                }
            });
        grads.register::<Flex>(node.id, flex(dx, &shape));
    }
}

/// One position of the two-stage loss: the previous state, the target and the weight of its
/// log-probability in the loss.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pick {
    /// Previous state (`n_states`: the begin token).
    pub prev: u32,
    /// The state to predict.
    pub target: u32,
    /// Its weight (0 on padding).
    pub weight: f32,
}

/// `−Σ weight · log P(target | prev)` under the two-stage output of
/// [`two_stage_log_probs`](crate::seq::two_stage_log_probs): `P(prev) = σ(s)`, and the other
/// states share `1 − σ(s)` by the softmax of their logits (all states share 1 after the begin
/// token, the stay logit unused).
///
/// # Shapes
/// - logits: `[..., n_states + 1]` (the last column the stay logit), as many rows as `picks`
/// - output: `[1]`
pub(crate) fn two_stage_nll<const D: usize>(
    logits: &Tensor<D>,
    picks: &[Pick],
) -> Option<Tensor<1>> {
    let lt = tracked(logits)?;
    let dims = logits.dims();
    let width = dims[D - 1];
    let n = width.checked_sub(1)?;
    let rows = dims.iter().product::<usize>() / width.max(1);
    if n == 0
        || rows != picks.len()
        || picks
            .iter()
            .any(|p| p.weight != 0.0 && (p.prev as usize > n || p.target as usize >= n))
    {
        return None;
    }
    let lf = dense(lt.primitive());
    let x = values(&lf);
    // Per row: its log-probability and the log-sum-exp of the logits it normalises over.
    let (lp, lse): (Vec<f32>, Vec<f32>) = x
        .par_chunks(width)
        .zip(picks.par_iter())
        .map_init(Vec::new, |scratch, (row, p)| {
            if p.weight == 0.0 {
                return (0.0, 0.0);
            }
            let (z, s) = (&row[..n], row[n]);
            let (prev, target) = (p.prev as usize, p.target as usize);
            if prev == n {
                let lse = log_sum_exp(z);
                (z[target] - lse, lse)
            } else if target == prev {
                (log_sigmoid(s), 0.0)
            } else {
                let lse = log_sum_exp_except(z, prev, scratch);
                (z[target] - lse + log_sigmoid(-s), lse)
            }
        })
        .unzip();
    let loss: f64 = lp
        .iter()
        .zip(picks)
        .map(|(l, p)| -f64::from(p.weight) * f64::from(*l))
        .sum();
    let out = record(
        TwoStageNll,
        [&lt],
        || TwoStageState {
            logits: lf,
            lse: Arc::new(lse),
            picks: Arc::new(picks.to_vec()),
            shape: dims.to_vec(),
        },
        flex(vec![loss as f32], &[1]),
    );
    Some(wrap(out))
}

/// `log σ(s)`, without overflow on either side.
fn log_sigmoid(s: f32) -> f32 {
    if s >= 0.0 {
        -(-s).exp().ln_1p()
    } else {
        s - s.exp().ln_1p()
    }
}

/// `σ(s)`.
fn sigmoid(s: f32) -> f32 {
    1.0 / (1.0 + (-s).exp())
}

/// The log-sum-exp of `z` without its entry `skip`, with `scratch` as working space.
fn log_sum_exp_except(z: &[f32], skip: usize, scratch: &mut Vec<f32>) -> f32 {
    let max = z
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != skip)
        .fold(f32::NEG_INFINITY, |m, (_, v)| m.max(*v));
    if max == f32::NEG_INFINITY {
        return max;
    }
    scratch.clear();
    scratch.extend(z.iter().map(|v| v - max));
    // The skipped entry may be far above the others: left out, not subtracted.
    scratch[skip] = f32::NEG_INFINITY;
    exp_in_place(scratch);
    max + scratch.iter().sum::<f32>().ln()
}

#[derive(Debug)]
struct TwoStageNll;

#[derive(Debug, Clone)]
struct TwoStageState {
    logits: FlexTensor,
    lse: Arc<Vec<f32>>,
    picks: Arc<Vec<Pick>>,
    shape: Vec<usize>,
}

impl Backward<Flex, 1> for TwoStageNll {
    type State = TwoStageState;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let g = incoming(grads, &ops);
        let s = ops.state;
        let [Some(node)] = ops.parents else {
            return;
        };
        let upstream = values(&g)[0];
        let x = values(&s.logits);
        let width = s.shape[s.shape.len() - 1];
        let n = width - 1;
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(width)
            .zip(x.par_chunks(width))
            .zip(s.picks.par_iter().zip(s.lse.par_iter()))
            .for_each(|((d, row), (p, &lse))| {
                // The row's share of the loss is −c·log P(target) with c = weight·upstream.
                let c = p.weight * upstream;
                if c == 0.0 {
                    return;
                }
                let (prev, target, stay) = (p.prev as usize, p.target as usize, row[n]);
                if prev != n && target == prev {
                    // d(−log σ(s))/ds = −σ(−s).
                    d[n] = -c * sigmoid(-stay);
                    return;
                }
                // d(−log softmax(z)[target])/dz = softmax(z) − onehot(target), over the states
                // that share the softmax.
                for (o, v) in d[..n].iter_mut().zip(&row[..n]) {
                    *o = v - lse;
                }
                exp_in_place(&mut d[..n]);
                for o in &mut d[..n] {
                    *o *= c;
                }
                d[target] -= c;
                if prev != n {
                    d[prev] = 0.0;
                    // d(−log σ(−s))/ds = σ(s).
                    d[n] = c * sigmoid(stay);
                }
            });
        grads.register::<Flex>(node.id, flex(dx, &s.shape));
    }
}

#[cfg(test)]
mod tests {
    use super::{add_bias, clamp, layer_norm};
    use crate::relative_difference;
    use crate::test_util::values;
    use crate::{enabled, with_burn_ops as without};
    use burn::tensor::{Device, Tensor};

    #[test]
    fn layer_norm_affine_and_clamp_agree_with_burn() {
        if !enabled() {
            eprintln!("SKIPPED: the CPU kernels are off here (no AVX2/FMA or LABOR_CPU_KERNELS=0)");
            return;
        }
        let device = Device::default().autodiff();
        let (rows, d) = (131, 24);
        let mut xs: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 613 % 997) as f32 / 997.0 - 0.5) * 30.0)
            .collect();
        // The clamp's bounds themselves pass the gradient, as in burn.
        (xs[5], xs[77]) = (10.0, -10.0);
        let gs: Vec<f32> = (0..d).map(|j| 0.5 + j as f32 / 10.0).collect();
        let bs: Vec<f32> = (0..d).map(|j| j as f32 / 7.0 - 1.0).collect();
        let ws: Vec<f32> = (0..rows * d)
            .map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0)
            .collect();
        let run = || {
            let leaf = |v: &[f32]| Tensor::<1>::from_floats(v, &device).require_grad();
            let (x, gamma, beta) = (leaf(&xs), leaf(&gs), leaf(&bs));
            let x3 = x.clone().reshape([1, rows, d]);
            let norm = layer_norm(&x3, &gamma, Some(&beta), 1e-5).unwrap_or_else(|| {
                burn::tensor::module::layer_norm(
                    x3.clone(),
                    gamma.clone(),
                    Some(beta.clone()),
                    1e-5,
                )
            });
            // An affine map: the product node, then the bias node.
            let w = Tensor::<1>::from_floats(&ws[..d * d], &device)
                .reshape([d, d])
                .require_grad();
            let biased = crate::kernels::linear(&x3, &w)
                .and_then(|y| add_bias(&y, &beta))
                .unwrap_or_else(|| {
                    x3.clone().matmul(w.clone().unsqueeze()) + beta.clone().unsqueeze()
                });
            let clamped = clamp(&x3, -10.0, 10.0).unwrap_or_else(|| x3.clone().clamp(-10.0, 10.0));
            let up = Tensor::<1>::from_floats(ws.as_slice(), &device).reshape([1, rows, d]);
            let total = (norm.clone() * up.clone()).sum()
                + (biased.clone() * up.clone() * 0.5).sum()
                + (clamped.clone() * up * 2.0).sum();
            let grads = total.backward();
            let g = |t: &Tensor<1>| values(t.grad(&grads).expect("a gradient"));
            [
                values(norm),
                values(biased),
                values(clamped),
                g(&x),
                g(&gamma),
                g(&beta),
                values(w.grad(&grads).expect("a gradient")),
            ]
        };
        let fast = run();
        let slow = without(run);
        for (i, (f, s)) in fast.iter().zip(&slow).enumerate() {
            let d = relative_difference(f, s);
            assert!(d < 1e-5, "output {i} differs by {d} of its largest");
        }
        assert!(
            slow[2].contains(&10.0) && slow[2].contains(&-10.0),
            "the clamp bites on both sides"
        );
    }
}
