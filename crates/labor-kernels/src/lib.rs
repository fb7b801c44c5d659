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
pub use host::{enabled, with_burn_ops};

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

    /// The largest difference between `a` and `b`, relative to the largest value of `b`.
    pub(crate) fn relative_difference(a: &[f32], b: &[f32]) -> f32 {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-12);
        a.iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
            / scale
    }
}
