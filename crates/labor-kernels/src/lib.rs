#![doc = include_str!("../README.md")]

mod attention;
mod dropout;
mod exp;
mod gemm;
mod grad;
mod host;
mod kernels;
pub mod matmul;
pub mod ops;
mod packed;
mod rope;
mod seq_nodes;

pub use dropout::seed_dropout;
pub use host::{enabled, on_cpu, with_burn_ops};

/// How far a kernel's output `a` is from a reference `b`: the largest absolute difference,
/// relative to the largest absolute value of `b` (the measure of the kernel-versus-burn
/// agreement tests).
///
/// ```
/// assert_eq!(labor_kernels::relative_difference(&[1.0, 2.5], &[1.0, 2.0]), 0.25);
/// ```
///
/// # Panics
/// If the slices differ in length.
pub fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(
        a.len(),
        b.len(),
        "relative_difference of slices of different lengths"
    );
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
        / scale
}

/// Helpers of the unit tests.
#[cfg(test)]
mod test_util {
    use burn::tensor::Tensor;

    /// The values of a float tensor.
    pub(crate) fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .expect("f32 data")
    }
}
