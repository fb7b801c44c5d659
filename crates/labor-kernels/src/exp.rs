//! `eˣ` and log-sum-exp on 8 lanes (AVX2/FMA), with scalar twins for the tails and for other
//! CPUs.

use crate::gemm;

/// `log Σ eˣ`, stable (the maximum is taken out first).
pub(crate) fn log_sum_exp(x: &[f32]) -> f32 {
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
pub(crate) unsafe fn log_sum_exp_avx2(x: &[f32]) -> f32 {
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
pub(crate) unsafe fn exp8(v: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
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
pub(crate) fn exp1(x: f32) -> f32 {
    if x < -87.3 { 0.0 } else { x.exp() }
}

/// Horizontal sum and maximum of 8 lanes.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) fn lanes(v: std::arch::x86_64::__m256) -> [f32; 8] {
    let mut out = [0.0f32; 8];
    // SAFETY: `out` holds 8 values.
    unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), v) };
    out
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn exp_avx2(x: &mut [f32]) {
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
pub(crate) unsafe fn exp_shifted_avx2(x: &mut [f32], scale: f32) -> (f32, f32) {
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
