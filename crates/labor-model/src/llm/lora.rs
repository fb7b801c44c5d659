//! Low-rank adapters (LoRA, Hu et al. 2021) on the projections of a [`Llama`], with burn
//! 0.22.1's built-in reparameterization ([`burn::module::Module::apply_lora`]): an adapted
//! weight reads `W + (alpha / rank) · A B` with `A ~ N(0, 1/rank)` of shape `[in, rank]` and
//! `B = 0` of shape `[rank, out]`, so the model is unchanged when the adapters are attached.
//! Every other parameter (embeddings, norms, unadapted projections) is frozen.
//! [`merge_lora`] folds the adapters into the weights ([`burn::module::Module::materialize`]).
//!
//! burn composes the adapted weight before the matrix product, so the adapter input cannot be
//! dropped out separately: LoRA dropout is not supported (a non-zero dropout is refused).
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use labor_model::{LlamaConfig, LoraOptions, apply_lora, merge_lora};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let device = Device::default();
//! let model = LlamaConfig::new(16, 1, 2, 2, 32, 20).init(&device);
//! let tokens = Tensor::<1, Int>::from_ints([1, 2, 3], &device).reshape([1, 3]);
//! let before = model.forward(tokens.clone());
//! let adapted = apply_lora(model, &LoraOptions::default())?;
//! // B starts at zero: attaching adapters does not change the model.
//! let same = adapted.forward(tokens.clone()).sub(before).abs().max().into_scalar::<f32>();
//! assert!(same < 1e-6);
//! let merged = merge_lora(adapted);
//! assert!(merged.layers[0].attn.wq.weight.adapter().is_none());
//! # Ok(()) }
//! ```

use std::fmt;
use std::str::FromStr;

use burn::module::{Lora, Module, ModuleMapper, Param, ParamGroup};
use burn::tensor::{Tensor, TensorData};
use labor_data::SeededRng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::llm::model::Llama;

/// A projection of a Llama block that can carry an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoraTarget {
    /// Query projection (`q_proj`).
    Q,
    /// Key projection (`k_proj`).
    K,
    /// Value projection (`v_proj`).
    V,
    /// Attention output projection (`o_proj`).
    O,
    /// SwiGLU gate projection (`gate_proj`).
    Gate,
    /// SwiGLU up projection (`up_proj`).
    Up,
    /// SwiGLU down projection (`down_proj`).
    Down,
}

impl LoraTarget {
    /// Every projection of a block, in the order q, k, v, o, gate, up, down.
    pub const ALL: [LoraTarget; 7] = [
        Self::Q,
        Self::K,
        Self::V,
        Self::O,
        Self::Gate,
        Self::Up,
        Self::Down,
    ];

    /// The suffix of the weight's module path in [`Llama`].
    fn path(self) -> &'static str {
        match self {
            Self::Q => "attn.wq.weight",
            Self::K => "attn.wk.weight",
            Self::V => "attn.wv.weight",
            Self::O => "attn.wo.weight",
            Self::Gate => "ffn.gate.weight",
            Self::Up => "ffn.up.weight",
            Self::Down => "ffn.down.weight",
        }
    }
}

impl FromStr for LoraTarget {
    type Err = Error;

    /// Parses `q`, `k`, `v`, `o`, `gate`, `up`, `down` (or the Hugging Face names `q_proj`, …).
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s.trim_end_matches("_proj") {
            "q" => Self::Q,
            "k" => Self::K,
            "v" => Self::V,
            "o" => Self::O,
            "gate" => Self::Gate,
            "up" => Self::Up,
            "down" => Self::Down,
            other => {
                return Err(Error::InvalidOption {
                    name: "lora target",
                    detail: format!("`{other}` is not one of q, k, v, o, gate, up, down"),
                });
            }
        })
    }
}

impl fmt::Display for LoraTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Q => "q",
            Self::K => "k",
            Self::V => "v",
            Self::O => "o",
            Self::Gate => "gate",
            Self::Up => "up",
            Self::Down => "down",
        };
        f.write_str(s)
    }
}

/// Settings of the adapters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LoraOptions {
    /// Rank of `A B` (default 8).
    pub rank: usize,
    /// Scale numerator: the update is `alpha / rank · A B` (default 16).
    pub alpha: f64,
    /// Dropout on the adapter input; only 0 is supported: burn's LoRA adds `alpha / rank · A B`
    /// to the weight before the product, so the adapter input cannot be dropped separately.
    pub dropout: f64,
    /// Projections that get adapters (default q and v, as in the LoRA paper).
    pub targets: Vec<LoraTarget>,
}

impl Default for LoraOptions {
    fn default() -> Self {
        Self {
            rank: 8,
            alpha: 16.0,
            dropout: 0.0,
            targets: vec![LoraTarget::Q, LoraTarget::V],
        }
    }
}

impl LoraOptions {
    /// Default options with rank `rank` and `alpha = 2 · rank`.
    pub fn with_rank(rank: usize) -> Self {
        Self {
            rank,
            alpha: 2.0 * rank as f64,
            ..Self::default()
        }
    }

    /// Checks the options.
    ///
    /// # Errors
    /// [`Error::InvalidOption`] for rank 0, no targets, a non-finite alpha or a non-zero
    /// dropout.
    pub fn validate(&self) -> Result<()> {
        let bad = |name, detail: String| Err(Error::InvalidOption { name, detail });
        if self.rank == 0 {
            return bad("lora rank", "must be positive".into());
        }
        if !self.alpha.is_finite() {
            return bad("lora alpha", format!("{} is not finite", self.alpha));
        }
        if self.targets.is_empty() {
            return bad("lora targets", "at least one projection is needed".into());
        }
        if self.dropout != 0.0 {
            return bad(
                "lora dropout",
                format!(
                    "{}: burn's LoRA reparameterizes the weight, so adapter dropout is not supported",
                    self.dropout
                ),
            );
        }
        Ok(())
    }
}

/// Attaches trainable adapters to the target projections of every block and freezes every
/// other parameter. Apply it to a model on an autodiff device to train the adapters.
///
/// # Errors
/// As [`LoraOptions::validate`].
pub fn apply_lora(model: Llama, options: &LoraOptions) -> Result<Llama> {
    options.validate()?;
    let group = ParamGroup::from_any_predicates(
        options
            .targets
            .iter()
            .map(|t| t.path().to_string())
            .collect(),
    );
    Ok(model.apply_lora(Lora::new(options.rank, options.alpha).set_param_group(group)))
}

/// Redraws every adapter's `A` factor from `N(0, 1/rank)` with a generator seeded by `seed`
/// (one stream per adapter, in the model's visiting order), so that a fine-tuning run's
/// initial adapters depend on its seed alone: [`apply_lora`] draws them from the backend's
/// process-wide generator, which is seeded per process and shared by every thread. `B` stays
/// zero, so the model is still unchanged. [`FinetuneBuilder`](crate::FinetuneBuilder) calls
/// this with the run's seed.
pub fn seed_adapters(model: Llama, rank: usize, seed: u64) -> Llama {
    /// The trainable 2-D parameters of an adapted model are the adapters' factors, `A` then
    /// `B` for each adapter (the field order of burn's `LoraAdapter`).
    struct Seeder {
        std: f64,
        seed: u64,
        adapters: u64,
        next_is_a: bool,
    }
    impl ModuleMapper for Seeder {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D != 2 || !param.val().is_require_grad() {
                return param;
            }
            let is_a = self.next_is_a;
            self.next_is_a = !self.next_is_a;
            if !is_a {
                return param;
            }
            let mut rng = SeededRng::with_stream(self.seed, self.adapters);
            self.adapters += 1;
            let std = self.std;
            param.map(|t| {
                let shape = t.shape();
                let values: Vec<f32> = (0..shape.num_elements())
                    .map(|_| (rng.normal() * std) as f32)
                    .collect();
                Tensor::<D>::from_data(TensorData::new(values, shape), &t.device())
                    .set_require_grad(t.is_require_grad())
            })
        }
    }
    model.map(&mut Seeder {
        std: 1.0 / rank.max(1) as f64,
        seed,
        adapters: 0,
        next_is_a: true,
    })
}

/// Folds the adapters into the weights (`W ← W + alpha / rank · A B`): a plain [`Llama`] that
/// computes the same function, ready for [`save_hf`](crate::save_hf).
pub fn merge_lora(model: Llama) -> Llama {
    model.materialize()
}
