//! Global-norm gradient clipping.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::Tensor;
use labor_kernels::ops;

use crate::error::Result;
use crate::llm::model::Llama;

use super::data::scalar;

/// Global L2 norm of the gradients of `module`'s parameters.
pub(super) struct SquaredNorm<'a> {
    grads: &'a GradientsParams,
    /// The sum over the gradients the CPU kernels read directly.
    host_total: f64,
    /// The sum over the others, on their device.
    total: Option<Tensor<1>>,
}

impl ModuleVisitor for SquaredNorm<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.get::<D>(param.id) {
            match ops::sum_of_squares(&g) {
                ops::SumOfSquares::Host(s) => self.host_total += s,
                ops::SumOfSquares::Device(s) => {
                    self.total = Some(match self.total.take() {
                        Some(t) => t + *s,
                        None => *s,
                    })
                }
            }
        }
    }
}

pub(super) struct ScaleGrads<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for ScaleGrads<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(g) = self.grads.remove::<D>(param.id) {
            self.grads.register(param.id, g.mul_scalar(self.factor));
        }
    }
}

/// Scales the gradients so that their global norm is at most `max_norm` (as
/// `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping.
pub(super) fn clip_global_norm(
    model: &Llama,
    grads: &mut GradientsParams,
    max_norm: f64,
) -> Result<f64> {
    let mut v = SquaredNorm {
        grads,
        host_total: 0.0,
        total: None,
    };
    model.visit(&mut v);
    let norm = match v.total {
        Some(t) => (scalar(t)? + v.host_total).sqrt(),
        None => v.host_total.sqrt(),
    };
    if norm.is_finite() && norm > max_norm {
        model.visit(&mut ScaleGrads {
            grads,
            factor: max_norm / (norm + 1e-6),
        });
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LlamaConfig;
    use crate::finetune::data::loss_sum;
    use burn::tensor::{Device, Int};

    /// The gradients of a random model under a next-token loss.
    fn grads_of(model: &Llama) -> GradientsParams {
        let device = model.embed.weight.val().device();
        let ids: Vec<i32> = (0..2 * 40).map(|i| (i * 37 + 5) % 97).collect();
        let ids = Tensor::<1, Int>::from_ints(ids.as_slice(), &device).reshape([2, 40]);
        let mask = Tensor::<2>::ones([2, 39], &device);
        GradientsParams::from_grads(loss_sum(model, ids, mask).backward(), model)
    }

    /// The global norm of `grads`, summed in f64 from their values.
    struct Reference<'a>(&'a GradientsParams, f64);

    impl ModuleVisitor for Reference<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if let Some(g) = self.0.get::<D>(param.id) {
                let v = g
                    .into_data()
                    .convert::<f32>()
                    .try_to_vec::<f32>()
                    .expect("f32");
                self.1 += v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>();
            }
        }
    }

    fn reference_norm(model: &Llama, grads: &GradientsParams) -> f64 {
        let mut r = Reference(grads, 0.0);
        model.visit(&mut r);
        r.1.sqrt()
    }

    #[test]
    fn clipping_measures_the_global_norm_and_scales_to_the_limit() {
        let device = Device::default().autodiff();
        device.seed(3);
        let model = LlamaConfig::new(32, 2, 4, 2, 64, 97).init(&device);
        for kernels in [true, false] {
            let mut grads = grads_of(&model);
            let want = reference_norm(&model, &grads);
            assert!(want > 0.0);
            let got = if kernels {
                clip_global_norm(&model, &mut grads, want / 2.0)
            } else {
                labor_kernels::with_burn_ops(|| clip_global_norm(&model, &mut grads, want / 2.0))
            }
            .expect("norm");
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "norm {got} vs {want} (kernels {kernels})"
            );
            let after = reference_norm(&model, &grads);
            assert!(
                (after - want / 2.0).abs() <= 1e-5 * want,
                "clipped to {after}, not {} (kernels {kernels})",
                want / 2.0
            );
        }
    }
}
